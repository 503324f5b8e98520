#include "cpu_inference.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace nas {

namespace {

// x86-64 builds get an AVX2 clone of the two loops below, chosen at load time by the CPU's features (an "arch="
// clone would be chosen by CPU model, so an AMD CPU would run the default); other CPUs (and clang before 14, which
// lacks target_clones) run the default.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && !(defined(__clang__) && __clang_major__ < 14)
#define NAS_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NAS_CPU_CLONES
#endif

// Pixels per partial sum: fixed, so the summation order (and the result) is the same on any number of threads.
constexpr int64_t kStatPixels = 256;
// Channels per vector step (8 floats: one AVX2 register), written with GCC/Clang vector types; without them (or
// for a channel count that is not a multiple of 8) plain loops.
constexpr int kLanes = 8;
#if defined(__GNUC__)
#define NAS_VECTORS
typedef float V8f __attribute__((vector_size(32)));
typedef float V4f __attribute__((vector_size(16)));
typedef double V4d __attribute__((vector_size(32)));
#endif

// Adds the per-channel sum and sum of squares of pixels [p0, p1) of a channels_last [P, C] block to s and q.
NAS_CPU_CLONES void channelSums(const float* __restrict x, int64_t C, int64_t p0, int64_t p1, double* __restrict s,
                                double* __restrict q) {
#ifdef NAS_VECTORS
  if (C % kLanes == 0) {
    // Eight channels at a time over all pixels, the sums in vector registers.
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      V4d s0 = {}, s1 = {}, q0 = {}, q1 = {};
      for (int64_t p = p0; p < p1; ++p) {
        V4f lo, hi;
        std::memcpy(&lo, x + p * C + c0, sizeof lo);
        std::memcpy(&hi, x + p * C + c0 + 4, sizeof hi);
        const V4d a = __builtin_convertvector(lo, V4d), b = __builtin_convertvector(hi, V4d);
        s0 += a;
        s1 += b;
        q0 += a * a;
        q1 += b * b;
      }
      for (int k = 0; k < 4; ++k) {
        s[c0 + k] += s0[k];
        s[c0 + 4 + k] += s1[k];
        q[c0 + k] += q0[k];
        q[c0 + 4 + k] += q1[k];
      }
    }
    return;
  }
#endif
  for (int64_t p = p0; p < p1; ++p) {
    const float* __restrict r = x + p * C;
    for (int64_t c = 0; c < C; ++c) {
      const double v = r[c];
      s[c] += v;
      q[c] += v * v;
    }
  }
}

// y[p, c] = max((x[p, c] - m[c]) * a[c] + b[c], 0) for pixels [p0, p1); y's pixels are `stride` floats apart. NaN
// stays NaN, as with torch::relu.
NAS_CPU_CLONES void centreScaleRelu(const float* __restrict x, float* __restrict y, int64_t C, int64_t stride,
                                    int64_t p0, int64_t p1, const float* __restrict m, const float* __restrict a,
                                    const float* __restrict b) {
#ifdef NAS_VECTORS
  if (C % kLanes == 0) {
    const V8f zero = {};
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      V8f lm, la, lb;
      std::memcpy(&lm, m + c0, sizeof lm);
      std::memcpy(&la, a + c0, sizeof la);
      std::memcpy(&lb, b + c0, sizeof lb);
      for (int64_t p = p0; p < p1; ++p) {
        V8f v;
        std::memcpy(&v, x + p * C + c0, sizeof v);
        v = (v - lm) * la + lb;
        v = v < zero ? zero : v;
        std::memcpy(y + p * stride + c0, &v, sizeof v);
      }
    }
    return;
  }
#endif
  for (int64_t p = p0; p < p1; ++p) {
    const float* __restrict r = x + p * C;
    float* __restrict o = y + p * stride;
    for (int64_t c = 0; c < C; ++c) {
      const float v = (r[c] - m[c]) * a[c] + b[c];
      o[c] = v < 0.f ? 0.f : v;
    }
  }
}

bool qualifies(const torch::Tensor& t, const torch::Tensor& first) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == 4 &&
         t.size(0) == first.size(0) && t.size(2) == first.size(2) && t.size(3) == first.size(3) &&
         t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// Pooling of images [n0, n1): every output pixel reads its 3x3 neighbourhood inside the image, 8 channels at a time.
NAS_CPU_CLONES void pool3Images(const float* __restrict x, float* __restrict y, int64_t H, int64_t W, int64_t C,
                                bool isMax, int64_t n0, int64_t n1) {
#ifdef NAS_VECTORS
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t h0 = std::max<int64_t>(h - 1, 0), h1 = std::min<int64_t>(h + 1, H - 1);
      for (int64_t w = 0; w < W; ++w) {
        const int64_t w0 = std::max<int64_t>(w - 1, 0), w1 = std::min<int64_t>(w + 1, W - 1);
        const float count = static_cast<float>((h1 - h0 + 1) * (w1 - w0 + 1));
        float* __restrict o = y + ((n * H + h) * W + w) * C;
        for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
          V8f acc = {};
          bool first = true;
          for (int64_t i = h0; i <= h1; ++i) {
            for (int64_t j = w0; j <= w1; ++j) {
              V8f v;
              std::memcpy(&v, x + ((n * H + i) * W + j) * C + c0, sizeof v);
              if (first) {
                acc = isMax ? v : acc + v;
                first = false;
              } else if (isMax) {
                acc = (v > acc) | (v != v) ? v : acc;
              } else {
                acc += v;
              }
            }
          }
          if (!isMax) acc = acc / count;
          std::memcpy(o + c0, &acc, sizeof acc);
        }
      }
    }
  }
#endif
}

}  // namespace

torch::Tensor ghostBnReluInference(const std::vector<torch::Tensor>& parts, const std::vector<torch::Tensor>& w,
                                   const std::vector<torch::Tensor>& b, int64_t G, double eps) {
  if (torch::GradMode::is_enabled() || parts.empty() || parts[0].dim() != 4 || parts[0].size(0) % G != 0) return {};
  int64_t Ctot = 0;
  for (size_t j = 0; j < parts.size(); ++j) {
    const auto& x = parts[j];
    if (!qualifies(x, parts[0])) return {};
    for (const auto* affine : {&w[j], &b[j]}) {
      if (!affine->device().is_cpu() || affine->scalar_type() != torch::kFloat32 || !affine->is_contiguous() ||
          affine->numel() != x.size(1)) {
        return {};
      }
    }
    Ctot += x.size(1);
  }
  const auto& x0 = parts[0];
  const int64_t N = x0.size(0), H = x0.size(2), W = x0.size(3);
  const int64_t Pg = N / G * H * W;  // pixels per ghost batch
  auto y = torch::empty({N, Ctot, H, W}, x0.options().memory_format(at::MemoryFormat::ChannelsLast));
  float* yp = y.data_ptr<float>();
  const int64_t runs = (Pg + kStatPixels - 1) / kStatPixels;
  int64_t offset = 0;
  for (size_t j = 0; j < parts.size(); ++j) {
    const int64_t C = parts[j].size(1);
    const float* xp = parts[j].data_ptr<float>();
    const float* wp = w[j].data_ptr<float>();
    const float* bp = b[j].data_ptr<float>();
    std::vector<double> partial(static_cast<size_t>(G * runs * 2 * C), 0.0);
    at::parallel_for(0, G * runs, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t g = r / runs, p0 = g * Pg + (r % runs) * kStatPixels;
        double* s = partial.data() + r * 2 * C;
        channelSums(xp, C, p0, std::min(p0 + kStatPixels, (g + 1) * Pg), s, s + C);
      }
    });
    // Per ghost batch: mean, and the scale w * invstd, in float for the affine pass.
    std::vector<float> mean(static_cast<size_t>(G * C)), scale(static_cast<size_t>(G * C));
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t c = 0; c < C; ++c) {
        double s = 0, q = 0;
        for (int64_t r = g * runs; r < (g + 1) * runs; ++r) {
          s += partial[r * 2 * C + c];
          q += partial[r * 2 * C + C + c];
        }
        const double m = s / static_cast<double>(Pg);
        const double var = std::max(q / static_cast<double>(Pg) - m * m, 0.0);
        mean[g * C + c] = static_cast<float>(m);
        scale[g * C + c] = static_cast<float>(wp[c] / std::sqrt(var + eps));
      }
    }
    at::parallel_for(0, G * runs, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t g = r / runs, p0 = g * Pg + (r % runs) * kStatPixels;
        centreScaleRelu(xp, yp + offset, C, Ctot, p0, std::min(p0 + kStatPixels, (g + 1) * Pg), &mean[g * C],
                        &scale[g * C], bp);
      }
    });
    offset += C;
  }
  return y;
}

bool scoringKernelsOn() {
  static const bool on = [] {
    const char* v = std::getenv("NAS_SCORING_KERNELS");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

torch::Tensor pool3Inference(const torch::Tensor& x, bool isMax) {
#ifdef NAS_VECTORS
  if (torch::GradMode::is_enabled() || !x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || x.dim() != 4 ||
      x.size(1) % kLanes != 0 || !x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return {};
  }
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto y = torch::empty_like(x, at::MemoryFormat::ChannelsLast);
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) { pool3Images(xp, yp, H, W, C, isMax, n0, n1); });
  return y;
#else
  (void)x;
  (void)isMax;
  return {};
#endif
}

}  // namespace nas
