// A labelled image set in memory of its own (uint8 NHWC pixels, uint8 labels), copied once from the caller's buffers.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "rng.h"

namespace nas {

struct Dataset {
  // images: n*h*w*c bytes; labels: n bytes; both are copied (the caller's memory may go away afterwards).
  Dataset(const uint8_t* images, const uint8_t* labels, int64_t n, int64_t h, int64_t w, int64_t c,
          std::vector<float> mean, std::vector<float> std);
  int64_t size() const { return n; }
  // Throws ERR_NAS_BAD_DATA unless [start, start + count) lies inside the set.
  void checkRange(int64_t start, int64_t count) const;

  // Normalised float batch [B, C, H, W] (channels_last strides) on `device`. With `rng`, random crop with zero
  // padding `cropPad` and horizontal flip (`flip`) per example, both drawn from `rng` in example order.
  torch::Tensor images(const torch::Tensor& idx, const torch::Device& device, Rng* rng = nullptr, int64_t cropPad = 0,
                       bool flip = false) const;
  torch::Tensor labels(const torch::Tensor& idx, const torch::Device& device) const;

  int64_t n, h, w, c;
  uint64_t id;              // unique per Dataset object (a device copy is cached by it, never by address)
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
