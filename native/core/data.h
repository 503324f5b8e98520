// A labelled image set living in memory owned by JavaScript (uint8 NHWC pixels, uint8 labels), read without copying.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "rng.h"

namespace nas {

struct Dataset {
  // images: n*h*w*c bytes; labels: n bytes. The memory must outlive the Dataset (the wrapper holds a reference).
  Dataset(uint8_t* images, uint8_t* labels, int64_t n, int64_t h, int64_t w, int64_t c, std::vector<float> mean,
          std::vector<float> std);
  int64_t size() const { return n; }
  // Throws ERR_NAS_BAD_DATA unless [start, start + count) lies inside the set.
  void checkRange(int64_t start, int64_t count) const;

  // Normalised float batch [B, C, H, W] (channels_last strides) on `device`. With `rng`, random crop with zero
  // padding `cropPad` and horizontal flip (`flip`) per example, both drawn from `rng` in example order.
  torch::Tensor images(const torch::Tensor& idx, const torch::Device& device, Rng* rng = nullptr, int64_t cropPad = 0,
                       bool flip = false) const;
  torch::Tensor labels(const torch::Tensor& idx, const torch::Device& device) const;

  int64_t n, h, w, c;
  torch::Tensor pixels;  // [n, h, w, c] uint8, from_blob
  torch::Tensor targets; // [n] uint8, from_blob
  torch::Tensor mean, std;  // [c]
};

}  // namespace nas
