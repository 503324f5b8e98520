// The one-shot model of docs/model.md: every path present, executed under per-ghost-batch path masks.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "config.h"
#include "cpu_inference.h"
#include "masks.h"
#include "rng.h"

namespace nas {

// Which weight decay rule a parameter follows (docs/model.md#weight-decay).
enum class DecayKind { None, Always, Op, Input };

struct ParamInfo {
  std::string name;
  torch::Tensor tensor;  // a handle to the model's leaf tensor (same TensorImpl, so in-place updates are shared)
  DecayKind decay = DecayKind::None;
  int64_t block = -1;    // for Op / Input
  int op = -1;           // for Op
  int64_t channels = 0;  // for Input: C, so that in-channel j*C..(j+1)*C reads candidate j
};

struct Brc {
  torch::Tensor bnW, bnB, w;
};

// The stacked BN-ReLU-conv layers of an operation: sep k (two depthwise+pointwise pairs) or conv7x1.
struct OpParams {
  std::vector<torch::Tensor> bnW, bnB, w;  // per layer; sep ops keep (depthwise, pointwise) in w as pairs
};

struct BlockParams {
  torch::Tensor inBnW, inBnB, inConv;  // BN over all 2+i candidates, 1x1 conv over their concatenation
  std::vector<OpParams> ops;           // kNumOps entries; parameter-free ops hold nothing
};

struct CellParams {
  int64_t channels = 0;
  std::vector<BlockParams> blocks;
  Brc out;  // BRC(4C, C, 1x1)
};

class Supernet {
 public:
  explicit Supernet(const NetConfig& cfg);

  // [sync] Logits [B, classes]. B must be masks.ghosts * g; ghost batch q uses masks q and its own BN statistics.
  // With bnProbe, the first choice block's input BN statistics of the first cell are stored ([G, C] mean, var).
  torch::Tensor forward(const torch::Tensor& x, const StepMasks& masks);

  const NetConfig& config() const { return cfg_; }
  torch::Device device() const { return device_; }
  std::vector<ParamInfo>& params() { return params_; }
  int64_t parameterCount() const;
  const std::vector<CellParams>& cells() const { return cells_; }
  const torch::Tensor& stem() const { return stem_; }
  const std::vector<Brc>& reductions() const { return reductions_; }
  const Brc& headBn() const { return head_; }
  const torch::Tensor& fcW() const { return fcW_; }
  const torch::Tensor& fcB() const { return fcB_; }

  bool probeBn = false;
  torch::Tensor probeMean, probeVar;

 private:
  torch::Tensor add(const std::string& name, torch::IntArrayRef shape, DecayKind kind, Rng& rng, int64_t block = -1,
                    int op = -1, int64_t channels = 0);
  torch::Tensor cellForward(CellParams& cell, const torch::Tensor& s0, const torch::Tensor& s1,
                            const std::vector<BlockMask>& bm, int64_t G, bool firstCell);
  torch::Tensor blockForward(BlockParams& blk, int64_t C, const std::vector<torch::Tensor>& cands, const BlockMask& m,
                             int64_t G, bool probe);
  torch::Tensor opForward(BlockParams& blk, int o, const torch::Tensor& h, int64_t G);
  // A block's input stage (BN, ReLU and mask of the active candidates, then the 1x1 conv), per plan.
  torch::Tensor perGhostInputs(BlockParams& blk, int64_t C, const std::vector<torch::Tensor>& cands, const BlockMask& m,
                               int64_t G);
  torch::Tensor fusedInputs(BlockParams& blk, int64_t C, const std::vector<torch::Tensor>& cands, const BlockMask& m,
                            int64_t G);
  torch::Tensor brc(const Brc& p, const torch::Tensor& x, int64_t G, int64_t stride) const;
  // Ghost BN of the plan in force (per ghost batch, or fused over all ghost batches).
  torch::Tensor bn(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G) const;
  // relu(bn(x)); in per-ghost scoring on the CPU one pass of ghostBnReluInference over x, else LibTorch's ops.
  torch::Tensor bnRelu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G) const;
  // conv2d(relu(bn(x)), w) with stride 1 and padding (kh / 2, kw / 2), no bias, then a 1x1 conv2d with pointwise
  // if given: in per-ghost scoring on the CPU one pass of bnReluConvInference, else bnRelu and LibTorch's convs.
  torch::Tensor bnReluConv(const torch::Tensor& x, const torch::Tensor& bnW, const torch::Tensor& bnB, int64_t G,
                           const torch::Tensor& w, int64_t groups = 1,
                           const torch::Tensor& pointwise = torch::Tensor()) const;
  // Whether the hand-written scoring kernels (cpu_inference.h) may apply: the per-ghost plan without autograd.
  // NAS_SCORING_KERNELS=0 turns them off (LibTorch's ops throughout), for comparison.
  bool scoringKernels() const { return !fused_ && !torch::GradMode::is_enabled() && scoringKernelsOn(); }

  NetConfig cfg_;
  bool fused_ = false;
  torch::Device device_;
  std::vector<ParamInfo> params_;
  torch::Tensor stem_;
  std::vector<Brc> reductions_;  // 2 per stack after the first
  std::vector<CellParams> cells_;
  Brc head_;  // head BN (w unused)
  torch::Tensor fcW_, fcB_;
};

// Kernel size of op o (1..3: sep 3/5/7); 0 for parameter-free ops.

}  // namespace nas
