// Checks bnReluConvInference (cpu_inference.h) against an exact reference: the same BN, ReLU and convolutions in
// double, with a worst-case bound on float rounding for each output.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nas {

struct KernelCheck {
  std::string name;  // the case: parts, kernel, output channels, image size
  bool ran = false;  // the kernel applied (false: it returned an undefined tensor)
  double worst = 0;  // max over outputs of |kernel - exact| / bound; at most 1 where the kernel is right
};

// Random parts, BN affines and weights (seeded) over the shapes the one-shot model uses and the kernel's edge cases:
// 1 to 3 parts, dense 1x1 / 1x7 / 7x1 / 3x3 and depthwise 3x3 / 5x5 / 7x7 with and without a pointwise
// convolution, output channels from 8 to 64 (each register-block width and a remainder), images whose widths are
// and are not multiples of the blocks, two ghost batches. The bound of an output is gamma_n * sum |z| |w| (n
// products, each a float rounding, Higham's recursive-summation bound) plus the normalisation's own rounding
// (8 u (|x| + 2 |mean|) |scale| + 2 u |b| per input) carried through |w|; a pointwise convolution adds its own sum
// over the first one's bounds.
std::vector<KernelCheck> checkBnReluConvKernel(uint64_t seed);

// pool3Inference against LibTorch: the max exactly (NaN propagated), the average within gamma_5 * average |x| of the
// exact (double) average. Shapes from 28x28 down to 1x1, 8 to 32 channels, one NaN in each input.
std::vector<KernelCheck> checkPoolKernel(uint64_t seed);

// Whether this build and CPU run the convolution kernels (x86-64 with AVX2 and FMA).
bool convKernelsAvailable();

}  // namespace nas
