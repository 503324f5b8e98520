// Ghost batch normalisation: BatchNorm statistics per ghost batch of g = B / G examples, never running averages
// (SPEC: the one-shot model computes BN statistics per ghost batch in training and in candidate evaluation).
#pragma once
#include <torch/torch.h>

namespace nas {

// x: [B, C, H, W] with B divisible by G; w, b: [C]. Autograd flows through the statistics.
torch::Tensor ghostBatchNorm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G, double eps);

// Per-ghost-batch mean and biased variance of x, each [G, C] (for tests and diagnostics).
std::pair<torch::Tensor, torch::Tensor> ghostStats(const torch::Tensor& x, int64_t G);

}  // namespace nas
