#include "data.h"

#include <atomic>

#include "config.h"

namespace nas {

namespace {
std::atomic<uint64_t> nextDatasetId{1};
}

Dataset::Dataset(uint8_t* img, uint8_t* lab, int64_t n_, int64_t h_, int64_t w_, int64_t c_, std::vector<float> m,
                 std::vector<float> s)
    : n(n_), h(h_), w(w_), c(c_), id(nextDatasetId++) {
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

DeviceData::DeviceData(const Dataset& d, const torch::Device& dev) : id(d.id), device(dev), h(d.h), w(d.w) {
  pixels = d.pixels.to(dev);
  targets = d.targets.to(torch::kInt64).to(dev);
  mean = d.mean.to(dev);
  std = d.std.to(dev);
}

torch::Tensor DeviceData::normalise(const torch::Tensor& px) const {
  return px.to(torch::kFloat32).div_(255.f).sub_(mean).div_(std);  // the same ops, in the same order, as Dataset
}

torch::Tensor DeviceData::images(const torch::Tensor& idx, Rng* rng, int64_t cropPad, bool flip) const {
  auto x = normalise(pixels.index_select(0, idx.to(device)));  // [B, H, W, C]
  if (rng && (cropPad > 0 || flip)) {
    // Offsets and flips drawn on the host exactly as Dataset::images draws them; one gather applies them all.
    const int64_t B = x.size(0);
    auto rows = torch::empty({B, h}, torch::kInt64), cols = torch::empty({B, w}, torch::kInt64);
    int64_t* r = rows.data_ptr<int64_t>();
    int64_t* c = cols.data_ptr<int64_t>();
    for (int64_t i = 0; i < B; ++i) {
      const int64_t dy = cropPad > 0 ? static_cast<int64_t>(rng->below(2 * cropPad + 1)) : 0;
      const int64_t dx = cropPad > 0 ? static_cast<int64_t>(rng->below(2 * cropPad + 1)) : 0;
      const bool flipped = flip && rng->uniform() < 0.5;
      for (int64_t k = 0; k < h; ++k) r[i * h + k] = dy + k;
      for (int64_t k = 0; k < w; ++k) c[i * w + k] = dx + (flipped ? w - 1 - k : k);
    }
    auto padded = cropPad > 0 ? torch::constant_pad_nd(x, {0, 0, cropPad, cropPad, cropPad, cropPad}, 0) : x;
    auto b = torch::arange(B, torch::TensorOptions().dtype(torch::kInt64).device(device)).view({B, 1, 1});
    using torch::indexing::TensorIndex;
    x = padded.index({TensorIndex(b), TensorIndex(rows.to(device).view({B, h, 1})), TensorIndex(cols.to(device).view({B, 1, w}))});
  }
  return x.contiguous().permute({0, 3, 1, 2});  // NHWC memory viewed as NCHW: the channels_last layout
}

torch::Tensor DeviceData::labels(const torch::Tensor& idx) const { return targets.index_select(0, idx.to(device)); }

torch::Tensor DeviceData::range(int64_t start, int64_t count) const {
  return normalise(pixels.narrow(0, start, count)).permute({0, 3, 1, 2});
}

torch::Tensor DeviceData::rangeLabels(int64_t start, int64_t count) const { return targets.narrow(0, start, count); }

torch::Tensor Dataset::labels(const torch::Tensor& idx, const torch::Device& device) const {
  return targets.index_select(0, idx).to(torch::kInt64).to(device);
}

}  // namespace nas
