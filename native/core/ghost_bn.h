// Ghost batch normalisation: BatchNorm statistics per ghost batch of g = B / G examples, never running averages
// (docs/model.md#ghost-batch-normalization: the one-shot model computes BN statistics per ghost batch in training and
// in candidate evaluation).
#pragma once
#include <torch/torch.h>

namespace nas {

// x: [B, C, H, W] with B divisible by G; w, b: [C]. Autograd flows through the statistics.
// Per-ghost plan: LibTorch's batch_norm once per ghost batch (G calls and a concatenation).
torch::Tensor ghostBatchNorm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G,
                             double eps);

// Fused plan: the same result for all G ghost batches in a constant number of kernels (statistics over a
// [G, g, C, H, W] view, one affine pass; a hand-written backward of six full-size passes). Statistics in float32
// also under bf16 autocast. The memory format of x (channels_last or not) is kept.
torch::Tensor ghostBatchNormFused(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G,
                                  double eps);

// Per-ghost-batch mean and biased variance of x, each [G, C] (for tests and diagnostics).
std::pair<torch::Tensor, torch::Tensor> ghostStats(const torch::Tensor& x, int64_t G);

}  // namespace nas
