#include "data.h"

#include <atomic>

#include "config.h"

namespace nas {

namespace {
std::atomic<uint64_t> nextDatasetId{1};

// uint8 [B, H, W, C] -> normalised float [B, H, W, C]. One definition for the host (Dataset) and device (DeviceData)
// batches, so that both give bit-identical images.
torch::Tensor normalise(const torch::Tensor& px, const torch::Tensor& mean, const torch::Tensor& std) {
  return px.to(torch::kFloat32).div_(255.f).sub_(mean).div_(std);
}

struct Crop {
  int64_t dy, dx;
  bool flip;
};

// One crop offset and flip per example, drawn in example order (dy, dx, then the flip), the order that a saved RNG
// state replays; shared by the host and device batches.
std::vector<Crop> drawCrops(Rng& rng, int64_t B, int64_t cropPad, bool flip) {
  std::vector<Crop> out(B);
  for (auto& c : out) {
    c.dy = cropPad > 0 ? static_cast<int64_t>(rng.below(2 * cropPad + 1)) : 0;
    c.dx = cropPad > 0 ? static_cast<int64_t>(rng.below(2 * cropPad + 1)) : 0;
    c.flip = flip && rng.uniform() < 0.5;
  }
  return out;
}
}  // namespace

Dataset::Dataset(const uint8_t* img, const uint8_t* lab, int64_t n_, int64_t h_, int64_t w_, int64_t c_,
                 std::vector<float> m, std::vector<float> s)
    : n(n_), h(h_), w(w_), c(c_), id(nextDatasetId++) {
  if (static_cast<int64_t>(m.size()) != c || static_cast<int64_t>(s.size()) != c) {
    throw NasException("ERR_NAS_BAD_DATA", "mean/std: expected " + std::to_string(c) +
                                               " values (one per channel), got " + std::to_string(m.size()) + "/" +
                                               std::to_string(s.size()));
  }
  pixels = torch::from_blob(const_cast<uint8_t*>(img), {n, h, w, c}, torch::kUInt8).clone();
  targets = torch::from_blob(const_cast<uint8_t*>(lab), {n}, torch::kUInt8).clone();
  mean = torch::tensor(m, torch::kFloat32);
  std = torch::tensor(s, torch::kFloat32);
}

void Dataset::checkRange(int64_t start, int64_t count) const {
  if (start < 0 || count < 0 || start + count > n) {
    throw NasException("ERR_NAS_BAD_DATA", "evaluation range [" + std::to_string(start) + ", " +
                                               std::to_string(start + count) + ") is outside the dataset of " +
                                               std::to_string(n) + " examples");
  }
}

torch::Tensor Dataset::images(const torch::Tensor& idx, const torch::Device& device, Rng* rng, int64_t cropPad,
                              bool flip) const {
  auto x = normalise(pixels.index_select(0, idx), mean, std);  // [B, H, W, C]
  if (rng && (cropPad > 0 || flip)) {
    auto padded = cropPad > 0 ? torch::constant_pad_nd(x, {0, 0, cropPad, cropPad, cropPad, cropPad}, 0) : x;
    const auto crops = drawCrops(*rng, x.size(0), cropPad, flip);
    std::vector<torch::Tensor> out;
    out.reserve(x.size(0));
    for (int64_t i = 0; i < x.size(0); ++i) {
      auto e = padded[i].narrow(0, crops[i].dy, h).narrow(1, crops[i].dx, w);
      out.push_back(crops[i].flip ? e.flip({1}) : e);
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

const DeviceData& DeviceData::in(std::unique_ptr<DeviceData>& slot, const Dataset& d, const torch::Device& device) {
  if (!slot || slot->id != d.id) {
    slot.reset();  // free the old copy before making the new one
    slot = std::make_unique<DeviceData>(d, device);
  }
  return *slot;
}

torch::Tensor DeviceData::images(const torch::Tensor& idx, Rng* rng, int64_t cropPad, bool flip) const {
  auto x = normalise(pixels.index_select(0, idx.to(device)), mean, std);  // [B, H, W, C]
  if (rng && (cropPad > 0 || flip)) {
    // Offsets and flips drawn on the host as Dataset::images draws them; one gather applies them all.
    const int64_t B = x.size(0);
    const auto crops = drawCrops(*rng, B, cropPad, flip);
    auto rows = torch::empty({B, h}, torch::kInt64), cols = torch::empty({B, w}, torch::kInt64);
    int64_t* r = rows.data_ptr<int64_t>();
    int64_t* c = cols.data_ptr<int64_t>();
    for (int64_t i = 0; i < B; ++i) {
      for (int64_t k = 0; k < h; ++k) r[i * h + k] = crops[i].dy + k;
      for (int64_t k = 0; k < w; ++k) c[i * w + k] = crops[i].dx + (crops[i].flip ? w - 1 - k : k);
    }
    auto padded = cropPad > 0 ? torch::constant_pad_nd(x, {0, 0, cropPad, cropPad, cropPad, cropPad}, 0) : x;
    auto b = torch::arange(B, torch::TensorOptions().dtype(torch::kInt64).device(device)).view({B, 1, 1});
    using torch::indexing::TensorIndex;
    x = padded.index(
        {TensorIndex(b), TensorIndex(rows.to(device).view({B, h, 1})), TensorIndex(cols.to(device).view({B, 1, w}))});
  }
  return x.contiguous().permute({0, 3, 1, 2});  // NHWC memory viewed as NCHW: the channels_last layout
}

torch::Tensor DeviceData::labels(const torch::Tensor& idx) const { return targets.index_select(0, idx.to(device)); }

torch::Tensor DeviceData::range(int64_t start, int64_t count) const {
  return normalise(pixels.narrow(0, start, count), mean, std).permute({0, 3, 1, 2});
}

torch::Tensor DeviceData::rangeLabels(int64_t start, int64_t count) const { return targets.narrow(0, start, count); }

torch::Tensor Dataset::labels(const torch::Tensor& idx, const torch::Device& device) const {
  return targets.index_select(0, idx).to(torch::kInt64).to(device);
}

}  // namespace nas
