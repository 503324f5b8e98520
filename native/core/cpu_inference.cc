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
// Pixels per float partial sum inside a run, before the sum goes into double.
constexpr int64_t kSumBlock = 16;
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
    // Eight channels at a time over all pixels: float sums over blocks of kSumBlock pixels, added up in double
    // (converting every pixel to double took 13% of a scored candidate).
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      V4d s0 = {}, s1 = {}, q0 = {}, q1 = {};
      for (int64_t pb = p0; pb < p1; pb += kSumBlock) {
        V8f fs = {}, fq = {};
        for (int64_t p = pb; p < std::min(pb + kSumBlock, p1); ++p) {
          V8f v;
          std::memcpy(&v, x + p * C + c0, sizeof v);
          fs += v;
          fq += v * v;
        }
        V4f h[4];  // the low and high halves of fs and fq
        std::memcpy(&h[0], &fs, sizeof fs);
        std::memcpy(&h[2], &fq, sizeof fq);
        s0 += __builtin_convertvector(h[0], V4d);
        s1 += __builtin_convertvector(h[1], V4d);
        q0 += __builtin_convertvector(h[2], V4d);
        q1 += __builtin_convertvector(h[3], V4d);
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

// Pooling of images [n0, n1), separable (a 3x3 window is a row of three 3-wide row windows): per image, each row's
// 3-wide max or sum into a buffer, then each output pixel combines the three buffer rows around it, 8 channels at a
// time. 4 loads and combines per output instead of 8, with no branch inside the window.
NAS_CPU_CLONES void pool3Images(const float* __restrict x, float* __restrict y, int64_t H, int64_t W, int64_t C,
                                bool isMax, int64_t n0, int64_t n1) {
#ifdef NAS_VECTORS
  const int64_t R = W * C;  // floats per row
  std::vector<float> rows(static_cast<size_t>(H * R));
  float* __restrict hb = rows.data();
  for (int64_t n = n0; n < n1; ++n) {
    const float* __restrict img = x + n * H * R;
    for (int64_t i = 0; i < H; ++i) {
      for (int64_t w = 0; w < W; ++w) {
        const int64_t w0 = std::max<int64_t>(w - 1, 0), w1 = std::min<int64_t>(w + 1, W - 1);
        for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
          V8f acc;
          std::memcpy(&acc, img + i * R + w0 * C + c0, sizeof acc);
          for (int64_t j = w0 + 1; j <= w1; ++j) {
            V8f v;
            std::memcpy(&v, img + i * R + j * C + c0, sizeof v);
            acc = isMax ? ((v > acc) | (v != v) ? v : acc) : acc + v;
          }
          std::memcpy(hb + i * R + w * C + c0, &acc, sizeof acc);
        }
      }
    }
    for (int64_t h = 0; h < H; ++h) {
      const int64_t h0 = std::max<int64_t>(h - 1, 0), h1 = std::min<int64_t>(h + 1, H - 1);
      float* __restrict o = y + (n * H + h) * R;
      for (int64_t w = 0; w < W; ++w) {
        const int64_t cols = std::min<int64_t>(w + 1, W - 1) - std::max<int64_t>(w - 1, 0) + 1;
        const float count = static_cast<float>((h1 - h0 + 1) * cols);
        for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
          const int64_t k = w * C + c0;
          V8f acc;
          std::memcpy(&acc, hb + h0 * R + k, sizeof acc);
          for (int64_t i = h0 + 1; i <= h1; ++i) {
            V8f v;
            std::memcpy(&v, hb + i * R + k, sizeof v);
            acc = isMax ? ((v > acc) | (v != v) ? v : acc) : acc + v;
          }
          if (!isMax) acc = acc / count;
          std::memcpy(o + k, &acc, sizeof acc);
        }
      }
    }
  }
#endif
}

// Convolutions: AVX2 with FMA (x86-64 with GCC or Clang), a separate code path because FMA is what makes them pay;
// elsewhere LibTorch's convolutions run. The kernels are templates inlined into the entry functions, which carry the
// target attribute, so every loop is compiled for AVX2+FMA and none runs on a CPU without them.
#if defined(__x86_64__) && defined(__GNUC__) && defined(NAS_VECTORS)
#define NAS_CONV_KERNELS
#define NAS_INLINE inline __attribute__((always_inline))
#define NAS_AVX2_FMA __attribute__((target("avx2,fma")))
#if !defined(__clang__)
// The helpers below pass vectors by value; they are always inlined into the AVX2 entry functions, so the note that
// their ABI would differ without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef int V8i __attribute__((vector_size(32)));

NAS_INLINE V8f load8(const float* p) {
  V8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
NAS_INLINE void store8(float* p, V8f v) { std::memcpy(p, &v, sizeof v); }
// All lanes = f, as one vbroadcastss (the vector initialiser and `V8f{} + f` compile to slower code).
NAS_INLINE V8f splat8(float f) {
#if defined(__clang__)
  return __builtin_shufflevector(V8f{f}, V8f{f}, 0, 0, 0, 0, 0, 0, 0, 0);
#else
  return __builtin_shuffle(V8f{f}, V8i{});
#endif
}

// Dense convolution, R consecutive output pixels by 8V output channels, accumulated in registers: T taps `ts`
// floats apart, each K contiguous floats of input (a tap's row of the window with its channels); output pixel r
// reads from x + r * xs. wt is [T, K, Co] (Co floats per row, this block's 8V from column 0); y's pixels are ys apart.
template <int R, int V>
NAS_INLINE void denseBlock(const float* __restrict x, int64_t xs, int64_t T, int64_t ts, int64_t K,
                           const float* __restrict wt, int64_t Co, float* __restrict y, int64_t ys) {
  V8f acc[R][V];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[r][v] = V8f{};
  }
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * ts;
    const float* wr = wt + t * K * Co;
    for (int64_t c = 0; c < K; ++c) {
      V8f wv[V];
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) wv[v] = load8(wr + c * Co + v * kLanes);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const V8f b = splat8(xt[r * xs + c]);
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) acc[r][v] += b * wv[v];
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) store8(y + r * ys + v * kLanes, acc[r][v]);
  }
}

// The last n < R pixels of a row, as one block of n.
template <int R, int V>
NAS_INLINE void denseTail(int64_t n, const float* x, int64_t xs, int64_t T, int64_t ts, int64_t K, const float* wt,
                          int64_t Co, float* y, int64_t ys) {
  if constexpr (R > 0) {
    if (n == R) {
      denseBlock<R, V>(x, xs, T, ts, K, wt, Co, y, ys);
    } else {
      denseTail<R - 1, V>(n, x, xs, T, ts, K, wt, Co, y, ys);
    }
  }
}

// W output pixels (xs floats apart in x, Co apart in y) for 8V output channels. Blocks of R pixels keep R * V
// accumulators, V weight vectors and a broadcast input in AVX2's 16 registers.
template <int V>
NAS_INLINE void denseRun(const float* x, int64_t xs, int64_t W, int64_t T, int64_t ts, int64_t K, const float* wt,
                         int64_t Co, float* y) {
  constexpr int R = V == 1 ? 8 : V == 2 ? 6 : V == 3 ? 4 : 3;
  int64_t w = 0;
  for (; w + R <= W; w += R) denseBlock<R, V>(x + w * xs, xs, T, ts, K, wt, Co, y + w * Co, Co);
  denseTail<R - 1, V>(W - w, x + w * xs, xs, T, ts, K, wt, Co, y + w * Co, Co);
}

// All Co output channels of W pixels, 32 at a time (8V with V <= 4).
NAS_INLINE void denseRunAll(const float* x, int64_t xs, int64_t W, int64_t T, int64_t ts, int64_t K, const float* wt,
                            int64_t Co, float* y) {
  for (int64_t c0 = 0; c0 < Co; c0 += 4 * kLanes) {
    switch (std::min<int64_t>(4, (Co - c0) / kLanes)) {
      case 1: denseRun<1>(x, xs, W, T, ts, K, wt + c0, Co, y + c0); break;
      case 2: denseRun<2>(x, xs, W, T, ts, K, wt + c0, Co, y + c0); break;
      case 3: denseRun<3>(x, xs, W, T, ts, K, wt + c0, Co, y + c0); break;
      default: denseRun<4>(x, xs, W, T, ts, K, wt + c0, Co, y + c0); break;
    }
  }
}

// Depthwise k x k, R consecutive output pixels of one padded row, 8 channels at a time, over window rows [i0, i1):
// each input vector of a window row is loaded once and added into every output of the block that it reaches.
template <int R, int K>
NAS_INLINE void depthwiseBlock(const float* __restrict x, int64_t Wp, int64_t C, int i0, int i1,
                               const float* __restrict wt, float* __restrict y) {
  for (int64_t c = 0; c < C; c += kLanes) {
    V8f acc[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = V8f{};
    for (int i = i0; i < i1; ++i) {
      const float* xr = x + i * Wp * C + c;
      V8f wv[K];
#pragma GCC unroll 8
      for (int j = 0; j < K; ++j) wv[j] = load8(wt + (i * K + j) * C + c);
#pragma GCC unroll 16
      for (int t = 0; t < R + K - 1; ++t) {
        const V8f xv = load8(xr + t * C);
#pragma GCC unroll 8
        for (int j = 0; j < K; ++j) {
          if (t - j >= 0 && t - j < R) acc[t - j] += xv * wv[j];
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) store8(y + r * C + c, acc[r]);
  }
}

template <int R, int K>
NAS_INLINE void depthwiseTail(int64_t n, const float* x, int64_t Wp, int64_t C, int i0, int i1, const float* wt,
                              float* y) {
  if constexpr (R > 0) {
    if (n == R) {
      depthwiseBlock<R, K>(x, Wp, C, i0, i1, wt, y);
    } else {
      depthwiseTail<R - 1, K>(n, x, Wp, C, i0, i1, wt, y);
    }
  }
}

// One padded image ([H + K - 1, W + K - 1, C]) into y ([H, W, C]), each row in blocks of R pixels (7 where the
// width is a multiple of 7, as at 28, 14 and 7 pixels; else 8).
template <int K>
NAS_INLINE void depthwiseImage(const float* pad, float* y, int64_t H, int64_t W, int64_t C, const float* wt) {
  const int64_t Wp = W + K - 1;
  constexpr int p = K / 2;
  for (int64_t h = 0; h < H; ++h) {
    // Window rows [i0, i1) lie inside the image; the others read only the zero border.
    const int i0 = static_cast<int>(std::max<int64_t>(0, p - h)),
              i1 = static_cast<int>(std::min<int64_t>(K, H + p - h));
    const float* xr = pad + h * Wp * C;
    float* yr = y + h * W * C;
    int64_t w = 0;
    if (W % 7 == 0) {
      for (; w + 7 <= W; w += 7) depthwiseBlock<7, K>(xr + w * C, Wp, C, i0, i1, wt, yr + w * C);
    } else {
      for (; w + 8 <= W; w += 8) depthwiseBlock<8, K>(xr + w * C, Wp, C, i0, i1, wt, yr + w * C);
      depthwiseTail<7, K>(W - w, xr + w * C, Wp, C, i0, i1, wt, yr + w * C);
    }
  }
}

bool cpuHasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

// Ghost-BN statistics of parts concatenated along channels: for part j, ghost batch g and channel c, mean[j][g * C_j
// + c] and scale[j][g * C_j + c] = w_j[c] / sqrt(var + eps), so that the normalised value is (x - mean) * scale +
// b_j[c]. Sums over fixed runs of pixels (float over 16 pixels, added in double; the same on any thread count), then
// the biased variance.
struct GhostAffine {
  int64_t N = 0, H = 0, W = 0, Ctot = 0;
  std::vector<const float*> x, b;
  std::vector<int64_t> C, offset;  // channels of part j, and its first channel in the concatenation
  std::vector<std::vector<float>> mean, scale;
};

// The sums of a scope (GhostSumsScope): per tensor seen, its [G, 2, C] sums, and the tensor itself, held so that its
// storage is not reused for another tensor while the scope lasts.
struct SumsEntry {
  torch::Tensor x;
  int64_t G;
  std::vector<double> sums;
};
thread_local std::vector<SumsEntry> tlsSums;
thread_local bool tlsSumsOn = false;

// Per ghost batch g and channel c of channels_last x: sums[g * 2C + c] = sum of x, sums[g * 2C + C + c] = sum of x^2.
// Float over 16 pixels, added in double over fixed runs of pixels, the runs added in order: the same on any thread
// count, and the same whether computed now or taken from the scope's earlier computation.
std::vector<double> ghostSums(const torch::Tensor& x, int64_t G) {
  if (tlsSumsOn) {
    for (const auto& e : tlsSums) {
      if (e.G == G && e.x.unsafeGetTensorImpl() == x.unsafeGetTensorImpl() && e.x.data_ptr() == x.data_ptr()) {
        return e.sums;
      }
    }
  }
  const int64_t C = x.size(1), Pg = x.size(0) / G * x.size(2) * x.size(3);
  const int64_t runs = (Pg + kStatPixels - 1) / kStatPixels;
  const float* xp = x.data_ptr<float>();
  std::vector<double> partial(static_cast<size_t>(G * runs * 2 * C), 0.0);
  at::parallel_for(0, G * runs, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t g = r / runs, p0 = g * Pg + (r % runs) * kStatPixels;
      double* s = partial.data() + r * 2 * C;
      channelSums(xp, C, p0, std::min(p0 + kStatPixels, (g + 1) * Pg), s, s + C);
    }
  });
  std::vector<double> sums(static_cast<size_t>(G * 2 * C), 0.0);
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t r = g * runs; r < (g + 1) * runs; ++r) {
      for (int64_t k = 0; k < 2 * C; ++k) sums[g * 2 * C + k] += partial[r * 2 * C + k];
    }
  }
  if (tlsSumsOn) tlsSums.push_back(SumsEntry{x, G, sums});
  return sums;
}

// False where the parts or affines do not qualify (see ghostBnReluInference).
bool ghostAffine(const std::vector<torch::Tensor>& parts, const std::vector<torch::Tensor>& w,
                 const std::vector<torch::Tensor>& b, int64_t G, double eps, GhostAffine& out) {
  if (torch::GradMode::is_enabled() || parts.empty() || parts[0].dim() != 4 || parts[0].size(0) % G != 0) {
    return false;
  }
  for (size_t j = 0; j < parts.size(); ++j) {
    const auto& x = parts[j];
    if (!qualifies(x, parts[0])) return false;
    for (const auto* affine : {&w[j], &b[j]}) {
      if (!affine->device().is_cpu() || affine->scalar_type() != torch::kFloat32 || !affine->is_contiguous() ||
          affine->numel() != x.size(1)) {
        return false;
      }
    }
  }
  out.N = parts[0].size(0);
  out.H = parts[0].size(2);
  out.W = parts[0].size(3);
  const int64_t Pg = out.N / G * out.H * out.W;  // pixels per ghost batch
  for (size_t j = 0; j < parts.size(); ++j) {
    const int64_t C = parts[j].size(1);
    const float* xp = parts[j].data_ptr<float>();
    const float* wp = w[j].data_ptr<float>();
    const std::vector<double> sums = ghostSums(parts[j], G);
    // Per ghost batch: mean, and the scale w * invstd, in float for the affine pass.
    std::vector<float> mean(static_cast<size_t>(G * C)), scale(static_cast<size_t>(G * C));
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t c = 0; c < C; ++c) {
        const double s = sums[g * 2 * C + c], q = sums[g * 2 * C + C + c];
        const double m = s / static_cast<double>(Pg);
        const double var = std::max(q / static_cast<double>(Pg) - m * m, 0.0);
        mean[g * C + c] = static_cast<float>(m);
        scale[g * C + c] = static_cast<float>(wp[c] / std::sqrt(var + eps));
      }
    }
    out.x.push_back(xp);
    out.b.push_back(b[j].data_ptr<float>());
    out.C.push_back(C);
    out.offset.push_back(out.Ctot);
    out.mean.push_back(std::move(mean));
    out.scale.push_back(std::move(scale));
    out.Ctot += C;
  }
  return true;
}

#ifdef NAS_CONV_KERNELS
// A convolution of bnReluConvInference, its weights tap-major: [kh, kw, Ci, Co] (dense) or [k, k, C] (depthwise),
// and the pointwise convolution after a depthwise one ([C, Co2]) if any.
struct ConvPlan {
  int64_t kh = 1, kw = 1, Co = 0, Co2 = 0, stride = 1;
  bool depthwise = false;
  std::vector<float> wt, pwt;
};

// w ([Co, Cw, kh, kw], any memory format) as [kh, kw, Cw, Co]: a tap's row of input channels meets a contiguous row
// of output channels.
std::vector<float> tapMajor(const torch::Tensor& w) {
  const auto wc = w.contiguous();
  const float* wp = wc.data_ptr<float>();
  const int64_t Co = w.size(0), Cw = w.size(1), kh = w.size(2), kw = w.size(3);
  std::vector<float> wt(static_cast<size_t>(kh * kw * Cw * Co));
  for (int64_t o = 0; o < Co; ++o) {
    for (int64_t c = 0; c < Cw; ++c) {
      for (int64_t i = 0; i < kh; ++i) {
        for (int64_t j = 0; j < kw; ++j) wt[((i * kw + j) * Cw + c) * Co + o] = wp[((o * Cw + c) * kh + i) * kw + j];
      }
    }
  }
  return wt;
}

// centreScaleRelu of one image of a part (C channels, a multiple of 8) into its channels [off, off + C) of the padded
// buffer (Ci channels a pixel, Wp pixels a row, the image at row ph and column pw): inlined into the AVX2 entry, not
// a call per row. The product is kept apart from the add (no FMA), so the values are centreScaleRelu's exactly.
NAS_INLINE void normaliseImage(const float* __restrict x, float* __restrict pad, int64_t H, int64_t W, int64_t C,
                               int64_t Ci, int64_t Wp, int64_t ph, int64_t pw, int64_t off, const float* m,
                               const float* a, const float* b) {
  const V8f zero = {};
  for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
    const V8f lm = load8(m + c0), la = load8(a + c0), lb = load8(b + c0);
    for (int64_t h = 0; h < H; ++h) {
      const float* __restrict r = x + h * W * C + c0;
      float* __restrict o = pad + ((h + ph) * Wp + pw) * Ci + off + c0;
      for (int64_t w = 0; w < W; ++w) {
        V8f t = (load8(r + w * C) - lm) * la;
        __asm__("" : "+x"(t));  // no contraction of the product into an FMA with the add
        t += lb;
        store8(o + w * Ci, t < zero ? zero : t);
      }
    }
  }
}

// Images [n0, n1) of bnReluConvInference. Per image: the normalised parts are written into a buffer with a zero
// border of the window's padding (the concatenation and the padding in one pass), the convolution reads that buffer,
// and a pointwise convolution after a depthwise one reads the depthwise output of the same image, so the
// intermediate tensors of the unfused ops never leave the core's cache.
NAS_AVX2_FMA void bnReluConvImages(const GhostAffine& st, int64_t G, const ConvPlan& cp, float* y, int64_t n0,
                                   int64_t n1) {
  const int64_t H = st.H, W = st.W, Ci = st.Ctot, ph = cp.kh / 2, pw = cp.kw / 2, Wp = W + 2 * pw, s = cp.stride;
  const int64_t Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1;  // (H + 2 * ph - kh) / s + 1 with an odd kh
  const int64_t perGhost = st.N / G, Cy = cp.pwt.empty() ? cp.Co : cp.Co2;
  std::vector<float> pad(static_cast<size_t>((H + 2 * ph) * Wp * Ci), 0.f);
  std::vector<float> mid(cp.pwt.empty() ? 0 : static_cast<size_t>(H * W * cp.Co));
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t g = n / perGhost;
    for (size_t j = 0; j < st.x.size(); ++j) {
      const int64_t C = st.C[j];
      if (C % kLanes == 0) {
        normaliseImage(st.x[j] + n * H * W * C, pad.data(), H, W, C, Ci, Wp, ph, pw, st.offset[j], &st.mean[j][g * C],
                       &st.scale[j][g * C], st.b[j]);
        continue;
      }
      for (int64_t h = 0; h < H; ++h) {
        centreScaleRelu(st.x[j] + (n * H + h) * W * C, pad.data() + ((h + ph) * Wp + pw) * Ci + st.offset[j], C, Ci, 0,
                        W, &st.mean[j][g * C], &st.scale[j][g * C], st.b[j]);
      }
    }
    float* yi = y + n * Ho * Wo * Cy;
    float* out = cp.pwt.empty() ? yi : mid.data();
    if (cp.depthwise) {
      switch (cp.kh) {
        case 3: depthwiseImage<3>(pad.data(), out, H, W, Ci, cp.wt.data()); break;
        case 5: depthwiseImage<5>(pad.data(), out, H, W, Ci, cp.wt.data()); break;
        default: depthwiseImage<7>(pad.data(), out, H, W, Ci, cp.wt.data()); break;
      }
    } else if (cp.kh == 1 && cp.kw == 1 && s == 1) {
      denseRunAll(pad.data(), Ci, H * W, 1, 0, Ci, cp.wt.data(), cp.Co, out);
    } else {
      for (int64_t h = 0; h < Ho; ++h) {
        // Output row h's window starts at padded row h * s; its rows [i0, i1) lie inside the image (the others read
        // only the zero border). Output pixels are s input pixels apart.
        const int64_t top = h * s;
        const int64_t i0 = std::max<int64_t>(0, ph - top), i1 = std::min<int64_t>(cp.kh, H + ph - top);
        denseRunAll(pad.data() + (top + i0) * Wp * Ci, s * Ci, Wo, i1 - i0, Wp * Ci, cp.kw * Ci,
                    cp.wt.data() + i0 * cp.kw * Ci * cp.Co, cp.Co, out + h * Wo * cp.Co);
      }
    }
    if (!cp.pwt.empty()) denseRunAll(mid.data(), cp.Co, H * W, 1, 0, cp.Co, cp.pwt.data(), cp.Co2, yi);
  }
}

bool floatCpu4d(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == 4;
}
#endif

}  // namespace

GhostSumsScope::GhostSumsScope() : owner_(!tlsSumsOn) { tlsSumsOn = true; }

GhostSumsScope::~GhostSumsScope() {
  if (!owner_) return;
  tlsSums.clear();
  tlsSumsOn = false;
}

torch::Tensor ghostBnReluInference(const std::vector<torch::Tensor>& parts, const std::vector<torch::Tensor>& w,
                                   const std::vector<torch::Tensor>& b, int64_t G, double eps) {
  GhostAffine st;
  if (!ghostAffine(parts, w, b, G, eps, st)) return {};
  const int64_t Pg = st.N / G * st.H * st.W;
  const int64_t runs = (Pg + kStatPixels - 1) / kStatPixels;
  auto y = torch::empty({st.N, st.Ctot, st.H, st.W}, parts[0].options().memory_format(at::MemoryFormat::ChannelsLast));
  float* yp = y.data_ptr<float>();
  for (size_t j = 0; j < parts.size(); ++j) {
    const int64_t C = st.C[j];
    at::parallel_for(0, G * runs, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t g = r / runs, p0 = g * Pg + (r % runs) * kStatPixels;
        centreScaleRelu(st.x[j], yp + st.offset[j], C, st.Ctot, p0, std::min(p0 + kStatPixels, (g + 1) * Pg),
                        &st.mean[j][g * C], &st.scale[j][g * C], st.b[j]);
      }
    });
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

torch::Tensor bnReluConvInference(const std::vector<torch::Tensor>& parts, const std::vector<torch::Tensor>& w,
                                  const std::vector<torch::Tensor>& b, int64_t G, double eps, const torch::Tensor& conv,
                                  int64_t groups, const torch::Tensor& pointwise, int64_t stride) {
#ifdef NAS_CONV_KERNELS
  if (torch::GradMode::is_enabled() || !cpuHasAvx2Fma() || !floatCpu4d(conv) ||
      (pointwise.defined() && !floatCpu4d(pointwise))) {
    return {};
  }
  int64_t Ci = 0;
  for (const auto& x : parts) Ci += x.dim() == 4 ? x.size(1) : 0;
  ConvPlan cp;
  cp.Co = conv.size(0);
  cp.kh = conv.size(2);
  cp.kw = conv.size(3);
  cp.depthwise = groups == Ci && groups > 1;
  const bool dense = groups == 1 && conv.size(1) == Ci;
  const bool dwShape = cp.depthwise && conv.size(1) == 1 && cp.Co == Ci && Ci % kLanes == 0 && cp.kh == cp.kw &&
                       (cp.kh == 3 || cp.kh == 5 || cp.kh == 7);
  cp.stride = stride;
  if (!(dense || dwShape) || cp.kh % 2 == 0 || cp.kw % 2 == 0 || cp.Co % kLanes != 0 ||
      !(stride == 1 || (stride == 2 && dense && !pointwise.defined()))) {
    return {};
  }
  if (pointwise.defined()) {
    cp.Co2 = pointwise.size(0);
    if (pointwise.size(1) != cp.Co || pointwise.size(2) != 1 || pointwise.size(3) != 1 || cp.Co2 % kLanes != 0) {
      return {};
    }
  }
  GhostAffine st;
  if (!ghostAffine(parts, w, b, G, eps, st)) return {};
  cp.wt = tapMajor(conv);
  if (pointwise.defined()) cp.pwt = tapMajor(pointwise);
  auto y = torch::empty({st.N, pointwise.defined() ? cp.Co2 : cp.Co, (st.H - 1) / stride + 1, (st.W - 1) / stride + 1},
                        parts[0].options().memory_format(at::MemoryFormat::ChannelsLast));
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, st.N, 1, [&](int64_t n0, int64_t n1) { bnReluConvImages(st, G, cp, yp, n0, n1); });
  return y;
#else
  (void)parts;
  (void)w;
  (void)b;
  (void)G;
  (void)eps;
  (void)conv;
  (void)groups;
  (void)pointwise;
  (void)stride;
  return {};
#endif
}

}  // namespace nas
