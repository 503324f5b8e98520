// The stand-alone model of one architecture (SPEC.md): only the layers the architecture selects, plain BatchNorm
// with running statistics. Written with torch::nn modules, independently of the masked one-shot code, so that it
// serves as the reference the one-shot model is checked against.
#pragma once
#include <torch/torch.h>

#include "masks.h"
#include "supernet.h"

namespace nas {

struct StandaloneCellImpl;
struct StandaloneNetImpl : torch::nn::Module {
  StandaloneNetImpl(const NetConfig& cfg, const Arch& arch);
  // [sync] Logits. BN uses batch statistics in train() mode and running statistics in eval() mode.
  torch::Tensor forward(torch::Tensor x);
  int64_t parameterCount();
  // Multiply-adds of one forward on one image: every conv and the linear layer (BN, ReLU and pooling not counted).
  int64_t multiplyAdds();
  // Copies the weights of the selected paths out of the one-shot model (same values, sliced where pruned).
  void copyFrom(const Supernet& net);

  NetConfig cfg;
  Arch arch;
  torch::nn::Conv2d stem{nullptr};
  std::vector<torch::nn::Sequential> reductions;
  std::vector<std::shared_ptr<StandaloneCellImpl>> cells;
  torch::nn::BatchNorm2d headBn{nullptr};
  torch::nn::Linear fc{nullptr};
  int64_t madds_ = 0;
  bool counting_ = false;
};
TORCH_MODULE(StandaloneNet);

}  // namespace nas
