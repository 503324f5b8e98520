// A labelled image set (uint8 NHWC pixels, uint8 labels): in memory of its own, copied once from the caller's buffers,
// or read a batch at a time from a file (the decoded cache of an image folder, which may be larger than memory).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "rng.h"

namespace nas {

// A file of pixels read with positional reads (pread): a batch reads its rows into memory of its own, so the process
// holds one batch, never the file, whatever its size; the kernel's page cache keeps what fits in memory for the next
// epoch (memory the kernel reclaims, not the process's). A mapping would not do: Linux maps every cached page of a
// large folio (up to megabytes) around each row a batch touches, so resident memory grows towards the file's size.
class PixelFile {
 public:
  // Throws ERR_NAS_IO naming `path` when it cannot be opened, ERR_NAS_BAD_DATA when it is shorter than `minBytes`.
  PixelFile(const std::string& path, int64_t minBytes);
  ~PixelFile();
  PixelFile(const PixelFile&) = delete;
  PixelFile& operator=(const PixelFile&) = delete;
  // Reads `bytes` bytes at `offset` into `out`; ERR_NAS_IO naming the file when it cannot (it shrank, say).
  void read(int64_t offset, int64_t bytes, uint8_t* out) const;
  // Asks the kernel to start reading these bytes into the page cache now (posix_fadvise WILLNEED), so that a later
  // read finds them there; returns at once.
  void willNeed(int64_t offset, int64_t bytes) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

struct Dataset {
  // images: n*h*w*c bytes; labels: n bytes; both are copied (the caller's memory may go away afterwards).
  Dataset(const uint8_t* images, const uint8_t* labels, int64_t n, int64_t h, int64_t w, int64_t c,
          std::vector<float> mean, std::vector<float> std);
  // Pixels read from `file` from byte `offset` (n*h*w*c bytes), a batch at a time; labels are copied.
  Dataset(std::shared_ptr<const PixelFile> file, int64_t offset, const uint8_t* labels, int64_t n, int64_t h, int64_t w,
          int64_t c, std::vector<float> mean, std::vector<float> std);
  int64_t size() const { return n; }
  // Throws ERR_NAS_BAD_DATA unless [start, start + count) lies inside the set.
  void checkRange(int64_t start, int64_t count) const;

  // Normalised float batch [B, C, H, W] (channels_last strides) on `device`. With `rng`, random crop with zero
  // padding `cropPad` and horizontal flip (`flip`) per example, both drawn from `rng` in example order.
  torch::Tensor images(const torch::Tensor& idx, const torch::Device& device, Rng* rng = nullptr, int64_t cropPad = 0,
                       bool flip = false) const;
  torch::Tensor labels(const torch::Tensor& idx, const torch::Device& device) const;

  // Whether the fused plan keeps a copy of the whole set on the device: for a set in memory; a set in a file is read
  // a batch at a time on every plan.
  bool resident() const { return !file; }
  // uint8 [B, H, W, C] pixels of examples `idx` (int64, on the CPU): a gather in memory, or reads from the file (one
  // read per run of consecutive indices).
  torch::Tensor rows(const torch::Tensor& idx) const;
  // A set in a file: starts reading examples idx[0..count) into the page cache while the current batch computes
  // (the sampler knows the next batch); does nothing for a set in memory.
  void prefetch(const int64_t* idx, int64_t count) const;

  int64_t n, h, w, c;
  uint64_t id;                            // unique per Dataset object (a device copy is cached by it, never by address)
  std::shared_ptr<const PixelFile> file;  // the pixels' file (then `pixels` is undefined), or null
  int64_t fileOffset = 0;
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
  torch::Tensor pixels, targets, mean, std;  // on device; targets int64
};

}  // namespace nas
