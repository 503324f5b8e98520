// The stand-alone model of one architecture (docs/model.md#stand-alone-models): only the layers the architecture
// selects; BatchNorm with statistics per ghost batch of cfg.ghostBatch examples while training (the paper's retraining:
// "batch size of 64 and a ghost batch size of 32") and running statistics for inference. Written with torch::nn
// modules, independently of the masked one-shot code, so that it serves as the reference the one-shot model is checked
// against.
#pragma once
#include <torch/torch.h>

#include "masks.h"
#include "supernet.h"

namespace nas {

// BatchNorm2d whose train-mode statistics are per ghost batch (consecutive chunks of `ghost` examples; a shorter
// tail is its own); the running statistics (momentum 0.1) are updated once per ghost batch and used in eval(). The
// same parameters and buffers, under the same names, as torch::nn::BatchNorm2d (so checkpoints and exports keep
// their layout). Its own module rather than a subclass: Debian's LibTorch 1.13 does not export symbols that
// BatchNorm2dImpl's vtable needs.
// With `fused` (the fused execution plan, config.h), a batch of whole ghost batches is normalised by the fused ghost
// BN (ghost_bn.h: a constant number of kernels for all ghost batches) and the G running-statistics updates are
// applied in closed form, r <- (1-m)^G r + sum_q m (1-m)^(G-1-q) s_q: the per-ghost loop's values without its
// G kernel launches and G autograd nodes.
struct GhostBatchNorm2dImpl : torch::nn::Cloneable<GhostBatchNorm2dImpl> {
  GhostBatchNorm2dImpl(int64_t channels, int64_t ghost);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  int64_t channels, ghost;
  bool fused = false;
  double momentum = 0.1, eps = 1e-5;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};
TORCH_MODULE(GhostBatchNorm2d);

struct StandaloneCellImpl;
struct StandaloneNetImpl : torch::nn::Module {
  StandaloneNetImpl(const NetConfig& cfg, const Arch& arch);
  // [sync] Logits. BN uses ghost-batch statistics in train() mode and running statistics in eval() mode.
  torch::Tensor forward(torch::Tensor x);
  int64_t parameterCount();
  // Multiply-adds of one forward on one image: every conv and the linear layer (BN, ReLU and pooling not counted).
  int64_t multiplyAdds();
  // Copies the weights of the selected paths out of the one-shot model (same values, sliced where pruned).
  void copyFrom(const Supernet& net);

  NetConfig cfg;
  Arch arch;
  torch::nn::Conv2d stem{nullptr};
  // (constructor) every GhostBatchNorm2d gets fused = cfg.fused()
  std::vector<torch::nn::Sequential> reductions;
  std::vector<std::shared_ptr<StandaloneCellImpl>> cells;
  GhostBatchNorm2d headBn{nullptr};
  torch::nn::Linear fc{nullptr};
  int64_t madds_ = 0;
  bool counting_ = false;
};
TORCH_MODULE(StandaloneNet);

}  // namespace nas
