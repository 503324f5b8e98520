#include "data.h"

#include "config.h"

namespace nas {

Dataset::Dataset(uint8_t* img, uint8_t* lab, int64_t n_, int64_t h_, int64_t w_, int64_t c_, std::vector<float> m,
                 std::vector<float> s)
    : n(n_), h(h_), w(w_), c(c_) {
  if (static_cast<int64_t>(m.size()) != c || static_cast<int64_t>(s.size()) != c) {
    throw NasException("ERR_NAS_BAD_DATA", "mean/std: expected " + std::to_string(c) + " values (one per channel), got " +
                                               std::to_string(m.size()) + "/" + std::to_string(s.size()));
  }
  pixels = torch::from_blob(img, {n, h, w, c}, torch::kUInt8);
  targets = torch::from_blob(lab, {n}, torch::kUInt8);
  mean = torch::tensor(m, torch::kFloat32);
  std = torch::tensor(s, torch::kFloat32);
}

void Dataset::checkRange(int64_t start, int64_t count) const {
  if (start < 0 || count < 0 || start + count > n) {
    throw NasException("ERR_NAS_BAD_DATA", "evaluation range [" + std::to_string(start) + ", " + std::to_string(start + count) +
                                               ") is outside the dataset of " + std::to_string(n) + " examples");
  }
}

torch::Tensor Dataset::images(const torch::Tensor& idx, const torch::Device& device, Rng* rng, int64_t cropPad,
                              bool flip) const {
  auto x = pixels.index_select(0, idx).to(torch::kFloat32).div_(255.f).sub_(mean).div_(std);  // [B, H, W, C]
  if (rng && (cropPad > 0 || flip)) {
    auto padded = cropPad > 0 ? torch::constant_pad_nd(x, {0, 0, cropPad, cropPad, cropPad, cropPad}, 0) : x;
    std::vector<torch::Tensor> out;
    out.reserve(x.size(0));
    for (int64_t i = 0; i < x.size(0); ++i) {
      const int64_t dy = cropPad > 0 ? static_cast<int64_t>(rng->below(2 * cropPad + 1)) : 0;
      const int64_t dx = cropPad > 0 ? static_cast<int64_t>(rng->below(2 * cropPad + 1)) : 0;
      auto e = padded[i].narrow(0, dy, h).narrow(1, dx, w);
      if (flip && rng->uniform() < 0.5) e = e.flip({1});
      out.push_back(e);
    }
    x = torch::stack(out);
  }
  // NHWC memory viewed as NCHW is exactly the channels_last layout: no copy.
  return x.to(device).permute({0, 3, 1, 2});
}

torch::Tensor Dataset::labels(const torch::Tensor& idx, const torch::Device& device) const {
  return targets.index_select(0, idx).to(torch::kInt64).to(device);
}

}  // namespace nas
