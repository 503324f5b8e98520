// Hand-written CPU kernels for scoring (no autograd): the per-ghost plan's forward with an architecture fixed runs
// many small channels_last ops (8 to 64 channels, docs/model.md's one-shot model at F = 8 or 16), where LibTorch's
// CPU kernels spend more time on their set-up and generic loops than on the arithmetic
// (docs/results.md#where-the-time-goes). Each function returns an undefined tensor where its input does not qualify;
// the caller then runs LibTorch's ops, which compute the same values up to float summation order.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace nas {

// False when the environment has NAS_SCORING_KERNELS=0 (read once).
bool scoringKernelsOn();

// While one lives on a thread, the kernels below compute the BN statistics (per-channel sums per ghost batch) of a
// tensor once and reuse them for every later reader on that thread: in a cell, s0, s1 and the blocks' outputs are
// read by several blocks and by the cell's output, and a block's h by both of its operations. The sums are the same
// either way (bit for bit). The scope holds every tensor it has sums for until it ends, so the tensors must not be
// changed in place meanwhile. A scope inside another one adds nothing.
class GhostSumsScope {
 public:
  GhostSumsScope();
  ~GhostSumsScope();
  GhostSumsScope(const GhostSumsScope&) = delete;
  GhostSumsScope& operator=(const GhostSumsScope&) = delete;

 private:
  bool owner_;
};

// Scoring on the CPU (no autograd, float32, channels_last parts of equal batch and resolution): relu(ghost BN) of the
// parts' concatenation along channels, written straight into one channels_last output. Two passes over each part
// (per-channel sums in float over 16 pixels, added in double, then (x - mean) * invstd * w + b clamped at 0) instead
// of LibTorch's batch norm, ReLU and concatenation with their temporaries. The statistics are those of the per-ghost
// plan (biased variance per ghost batch); a channel that is zero throughout a ghost batch comes out at exactly
// max(b, 0) (its sums are exact). Partial sums are over fixed runs of pixels, so the result does not depend on the
// thread count.
// w[j], b[j] are part j's affine ([C_j]). Returns an undefined tensor where the parts do not qualify (the caller then
// uses LibTorch's ops).
torch::Tensor ghostBnReluInference(const std::vector<torch::Tensor>& parts, const std::vector<torch::Tensor>& w,
                                   const std::vector<torch::Tensor>& b, int64_t G, double eps);

// max_pool2d(x, 3, 1, 1) (isMax) or avg_pool2d(x, 3, 1, 1, count_include_pad = false) of a channels_last float32
// CPU tensor whose channel count is a multiple of 8, with no autograd, separable: each row's 3-wide max or sum, then
// three of those rows combined. The max is exact and propagates NaN; the average sums its window row by row, so it
// differs from LibTorch's (which sums the nine values in one sequence) by float summation order only.
torch::Tensor pool3Inference(const torch::Tensor& x, bool isMax);

// conv2d(relu(ghost BN of the parts' concatenation), conv, {}, stride, {kh / 2, kw / 2}, 1, groups), then, if given, a
// 1x1 conv2d with `pointwise` (a separable convolution's second half), with no autograd: the BN statistics as in
// ghostBnReluInference, then per image the normalisation, the convolution(s) and the write of the output, so the
// intermediate tensors of the unfused ops are never written out. The convolution has an odd kernel: dense (groups 1,
// output channels a multiple of 8; stride 1, or 2 with no pointwise, as in a reduction) or depthwise 3x3, 5x5, 7x7
// (groups = channels, a multiple of 8; stride 1);
// `pointwise`'s outputs are a multiple of 8 too. Each output is one sum over its window's taps and input channels
// in a fixed order, computed per image, so the result does not depend on the thread count; it differs from
// LibTorch's (oneDNN's) convolution by float summation order only. Needs a CPU with AVX2 and FMA (x86-64): elsewhere,
// and where the inputs do not qualify, returns an undefined tensor.
torch::Tensor bnReluConvInference(const std::vector<torch::Tensor>& parts, const std::vector<torch::Tensor>& w,
                                  const std::vector<torch::Tensor>& b, int64_t G, double eps, const torch::Tensor& conv,
                                  int64_t groups, const torch::Tensor& pointwise = torch::Tensor(), int64_t stride = 1);

}  // namespace nas
