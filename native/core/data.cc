#include "data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

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

PixelFile::PixelFile(const std::string& path, int64_t minBytes) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw NasException("ERR_NAS_IO", path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || st.st_size < minBytes) {
    const auto size = static_cast<int64_t>(st.st_size);
    ::close(fd_);
    throw NasException("ERR_NAS_BAD_DATA", path + ": expected at least " + std::to_string(minBytes) +
                                               " bytes of pixels, the file has " + std::to_string(size));
  }
  // Batches read rows in a random order: read-ahead would fetch pages no batch asked for.
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_RANDOM);
}

PixelFile::~PixelFile() {
  if (fd_ >= 0) ::close(fd_);
}

void PixelFile::read(int64_t offset, int64_t bytes, uint8_t* out) const {
  while (bytes > 0) {
    const ssize_t got = ::pread(fd_, out, static_cast<size_t>(bytes), static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      throw NasException("ERR_NAS_IO", path_ + ": cannot read " + std::to_string(bytes) + " bytes at " +
                                           std::to_string(offset) + " (" +
                                           (got < 0 ? std::strerror(errno) : "the file is shorter than it was") + ")");
    }
    offset += got;
    bytes -= got;
    out += got;
  }
}

void PixelFile::willNeed(int64_t offset, int64_t bytes) const {
  ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(bytes), POSIX_FADV_WILLNEED);
}

namespace {
// Calls f(first, length) for each run of consecutive values idx[i], idx[i] + 1, ... in idx[0..count): one read (or one
// read-ahead request) per run instead of one per example.
template <typename F>
void forEachRun(const int64_t* idx, int64_t count, F&& f) {
  for (int64_t i = 0; i < count;) {
    int64_t run = 1;
    while (i + run < count && idx[i + run] == idx[i] + run) ++run;
    f(i, run);
    i += run;
  }
}

std::vector<float> checkedStats(std::vector<float> v, int64_t c, size_t other) {
  if (static_cast<int64_t>(v.size()) != c || static_cast<int64_t>(other) != c) {
    throw NasException("ERR_NAS_BAD_DATA", "mean/std: expected " + std::to_string(c) +
                                               " values (one per channel), got " + std::to_string(v.size()) + "/" +
                                               std::to_string(other));
  }
  return v;
}
}  // namespace

Dataset::Dataset(const uint8_t* img, const uint8_t* lab, int64_t n_, int64_t h_, int64_t w_, int64_t c_,
                 std::vector<float> m, std::vector<float> s)
    : n(n_), h(h_), w(w_), c(c_), id(nextDatasetId++) {
  mean = torch::tensor(checkedStats(std::move(m), c, s.size()), torch::kFloat32);
  std = torch::tensor(s, torch::kFloat32);
  pixels = torch::from_blob(const_cast<uint8_t*>(img), {n, h, w, c}, torch::kUInt8).clone();
  targets = torch::from_blob(const_cast<uint8_t*>(lab), {n}, torch::kUInt8).clone();
}

Dataset::Dataset(std::shared_ptr<const PixelFile> f, int64_t offset, const uint8_t* lab, int64_t n_, int64_t h_,
                 int64_t w_, int64_t c_, std::vector<float> m, std::vector<float> s)
    : n(n_), h(h_), w(w_), c(c_), id(nextDatasetId++), file(std::move(f)), fileOffset(offset) {
  mean = torch::tensor(checkedStats(std::move(m), c, s.size()), torch::kFloat32);
  std = torch::tensor(s, torch::kFloat32);
  targets = torch::from_blob(const_cast<uint8_t*>(lab), {n}, torch::kUInt8).clone();
}

torch::Tensor Dataset::rows(const torch::Tensor& idx) const {
  if (!file) return pixels.index_select(0, idx);
  const int64_t B = idx.numel(), row = h * w * c;
  auto out = torch::empty({B, h, w, c}, torch::kUInt8);
  auto ix = idx.to(torch::kInt64).contiguous();
  const int64_t* p = ix.data_ptr<int64_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  forEachRun(p, B, [&](int64_t i, int64_t run) {  // an evaluation's batch is one run: one read
    if (p[i] < 0 || p[i] + run > n) throw NasException("ERR_NAS_BAD_DATA", "example index outside the dataset");
    file->read(fileOffset + p[i] * row, run * row, dst + i * row);
  });
  // One run (an evaluation's batch, in order): the next batch is most likely the run that follows.
  const int64_t last = B > 0 ? p[B - 1] : -1;
  if (B > 0 && last - p[0] == B - 1 && last + 1 < n)
    file->willNeed(fileOffset + (last + 1) * row, std::min(B, n - last - 1) * row);
  return out;
}

void Dataset::prefetch(const int64_t* idx, int64_t count) const {
  if (!file) return;
  const int64_t row = h * w * c;
  forEachRun(idx, count, [&](int64_t i, int64_t run) {
    if (idx[i] >= 0 && idx[i] + run <= n) file->willNeed(fileOffset + idx[i] * row, run * row);
  });
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
  auto x = normalise(rows(idx), mean, std);  // [B, H, W, C]
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
  if (!d.resident())
    throw NasException("ERR_NAS_NATIVE", d.file->path() + ": a dataset in a file is not made resident");
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
