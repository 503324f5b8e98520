// A labelled image set (uint8 NHWC pixels, uint8 labels): in memory of its own, copied once from the caller's buffers,
// or read from a file mapped into memory (the decoded cache of an image folder, which may be larger than memory).
#pragma once
#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "rng.h"

namespace nas {

// A file mapped read-only. Batches gather their rows from it, so the pages a job reads are faulted in as it reads
// them; once `budget` bytes were gathered, every resident page of the mapping is handed back to the page cache
// (madvise DONTNEED: it stays cached by the kernel, the process no longer holds it), so the process's resident memory
// for the file stays under about `budget` whatever the file's size (docs/data.md#memory). budget 0: never handed back.
class MappedFile {
 public:
  // Throws ERR_NAS_IO naming `path` when it cannot be opened or mapped, ERR_NAS_BAD_DATA when it is shorter than
  // `minBytes`.
  MappedFile(const std::string& path, int64_t minBytes, int64_t budget);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return base_; }
  // Counts `bytes` gathered; past the budget, releases the mapping's resident pages.
  void touched(int64_t bytes) const;

 private:
  uint8_t* base_ = nullptr;
  size_t length_ = 0;
  int64_t budget_;
  mutable std::atomic<int64_t> since_{0};
};

struct Dataset {
  // images: n*h*w*c bytes; labels: n bytes; both are copied (the caller's memory may go away afterwards).
  Dataset(const uint8_t* images, const uint8_t* labels, int64_t n, int64_t h, int64_t w, int64_t c,
          std::vector<float> mean, std::vector<float> std);
  // Pixels read from `file` at byte `offset` (n*h*w*c bytes, mapped, never copied whole); labels are copied.
  Dataset(std::shared_ptr<const MappedFile> file, int64_t offset, const uint8_t* labels, int64_t n, int64_t h,
          int64_t w, int64_t c, std::vector<float> mean, std::vector<float> std);
  int64_t size() const { return n; }
  // Throws ERR_NAS_BAD_DATA unless [start, start + count) lies inside the set.
  void checkRange(int64_t start, int64_t count) const;

  // Normalised float batch [B, C, H, W] (channels_last strides) on `device`. With `rng`, random crop with zero
  // padding `cropPad` and horizontal flip (`flip`) per example, both drawn from `rng` in example order.
  torch::Tensor images(const torch::Tensor& idx, const torch::Device& device, Rng* rng = nullptr, int64_t cropPad = 0,
                       bool flip = false) const;
  torch::Tensor labels(const torch::Tensor& idx, const torch::Device& device) const;

  // Whether a device copy of the whole set (the fused plan's resident set) is made on `device`: always for a set
  // in memory; for a mapped set only on the CPU, where the "copy" is the mapping itself.
  bool residentOn(const torch::Device& device) const { return !mapped || device.is_cpu(); }

  int64_t n, h, w, c;
  uint64_t id;              // unique per Dataset object (a device copy is cached by it, never by address)
  std::shared_ptr<const MappedFile> mapped;  // the file behind `pixels`, or null
  torch::Tensor pixels;     // [n, h, w, c] uint8
  torch::Tensor targets;    // [n] uint8
  torch::Tensor mean, std;  // [c]
};

// A Dataset's pixels and labels copied once to a device (on CPU: the same memory). The fused plan keeps its
// training and validation sets resident, so that a batch is a gather and a normalisation on the device.
struct DeviceData {
  DeviceData(const Dataset& d, const torch::Device& device);
  // The copy of `d` kept in `slot`: made on first use, remade (the old one freed first) when another Dataset comes.
  static const DeviceData& in(std::unique_ptr<DeviceData>& slot, const Dataset& d, const torch::Device& device);
  // The numbers Dataset::images gives (crop offsets and flips drawn from rng in the same order), built on the device.
  torch::Tensor images(const torch::Tensor& idx, Rng* rng = nullptr, int64_t cropPad = 0, bool flip = false) const;
  torch::Tensor labels(const torch::Tensor& idx) const;
  // Examples [start, start + count) in order, without a gather.
  torch::Tensor range(int64_t start, int64_t count) const;
  torch::Tensor rangeLabels(int64_t start, int64_t count) const;

  uint64_t id;
  torch::Device device;
  int64_t h, w;
  std::shared_ptr<const MappedFile> mapped;  // a mapped set on the CPU: the file behind `pixels`
  torch::Tensor pixels, targets, mean, std;  // on device; targets int64
};

}  // namespace nas
