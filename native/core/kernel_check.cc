#include "kernel_check.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "cpu_inference.h"

namespace nas {

namespace {

constexpr double kU = 5.9604644775390625e-08;  // float's unit roundoff, 2^-24
constexpr double kEps = 1e-5;

double gamma(int64_t n) { return static_cast<double>(n) * kU / (1.0 - static_cast<double>(n) * kU); }

struct Case {
  std::vector<int64_t> parts;  // channels of each part
  int64_t co, kh, kw;          // output channels and window (co = channels for a depthwise convolution)
  bool depthwise;
  int64_t pointwise;  // outputs of the pointwise convolution after a depthwise one, 0 for none
  int64_t h, w;
  int64_t stride = 1;
};

std::string caseName(const Case& c) {
  std::string parts;
  for (auto p : c.parts) parts += (parts.empty() ? "" : "+") + std::to_string(p);
  std::string name = parts + " ch, " + (c.depthwise ? "depthwise " : "dense ") + std::to_string(c.kh) + "x" +
                     std::to_string(c.kw) + " -> " + std::to_string(c.co);
  if (c.pointwise) name += ", pointwise -> " + std::to_string(c.pointwise);
  if (c.stride != 1) name += ", stride " + std::to_string(c.stride);
  return name + ", " + std::to_string(c.h) + "x" + std::to_string(c.w);
}

}  // namespace

bool convKernelsAvailable() {
  torch::NoGradGuard noGrad;
  auto x = torch::ones({1, 8, 1, 1}).contiguous(at::MemoryFormat::ChannelsLast);
  return bnReluConvInference({x}, {torch::ones({8})}, {torch::zeros({8})}, 1, kEps, torch::ones({8, 8, 1, 1}), 1)
      .defined();
}

std::vector<KernelCheck> checkBnReluConvKernel(uint64_t seed) {
  torch::NoGradGuard noGrad;
  const std::vector<Case> cases = {
      {{8}, 8, 1, 1, false, 0, 7, 7},
      {{8, 8, 8}, 8, 1, 1, false, 0, 5, 9},
      {{16, 16}, 16, 1, 1, false, 0, 8, 8},
      {{8}, 24, 1, 1, false, 0, 7, 7},
      {{32}, 32, 1, 1, false, 0, 7, 7},
      {{16}, 40, 1, 1, false, 0, 5, 9},
      {{64}, 64, 1, 1, false, 0, 4, 4},
      {{4}, 8, 1, 1, false, 0, 6, 6},
      {{8}, 8, 1, 7, false, 0, 7, 7},
      {{16}, 16, 7, 1, false, 0, 14, 14},
      {{32}, 32, 1, 7, false, 0, 5, 9},
      {{32}, 32, 7, 1, false, 0, 2, 2},
      {{8}, 8, 3, 3, false, 0, 8, 8},
      {{8}, 8, 3, 3, true, 8, 28, 28},
      {{16}, 16, 5, 5, true, 16, 14, 14},
      {{32}, 32, 7, 7, true, 32, 7, 7},
      {{8}, 8, 7, 7, true, 0, 9, 11},
      {{24}, 24, 5, 5, true, 40, 2, 3},
      {{64}, 64, 3, 3, true, 64, 4, 4},
      {{16}, 16, 7, 7, true, 24, 16, 16},
      // Stride 2 (a reduction's 3x3, C -> 2C), even and odd sizes.
      {{8}, 16, 3, 3, false, 0, 28, 28, 2},
      {{16}, 32, 3, 3, false, 0, 14, 14, 2},
      {{32}, 64, 3, 3, false, 0, 7, 7, 2},
      {{8, 16}, 24, 3, 3, false, 0, 5, 8, 2},
  };
  auto gen = at::detail::createCPUGenerator(seed);
  const auto f = torch::TensorOptions().dtype(torch::kFloat32);
  auto randn = [&](std::vector<int64_t> shape) { return torch::randn(shape, gen, f); };
  const int64_t G = 2, N = 4;
  std::vector<KernelCheck> out;
  for (const auto& c : cases) {
    std::vector<torch::Tensor> parts, bw, bb;
    for (auto ch : c.parts) {
      // Channels with their own offsets and spreads, so that the mean matters.
      parts.push_back((randn({N, ch, c.h, c.w}) * (randn({1, ch, 1, 1}).abs() + 0.5) + randn({1, ch, 1, 1}))
                          .contiguous(at::MemoryFormat::ChannelsLast));
      bw.push_back(randn({ch}));
      bb.push_back(randn({ch}) * 0.1);
    }
    int64_t ci = 0;
    for (auto ch : c.parts) ci += ch;
    auto w = randn({c.co, c.depthwise ? 1 : ci, c.kh, c.kw}) * (1.0 / std::sqrt(double(ci * c.kh * c.kw)));
    auto pw = c.pointwise ? randn({c.pointwise, c.co, 1, 1}) * (1.0 / std::sqrt(double(c.co))) : torch::Tensor();
    const int64_t groups = c.depthwise ? ci : 1;
    auto y = bnReluConvInference(parts, bw, bb, G, kEps, w, groups, pw, c.stride);
    KernelCheck r{caseName(c), y.defined(), 0};
    if (y.defined()) {
      // Exact (double) normalisation per ghost batch, and the rounding bound of the float one per input.
      auto x = torch::cat(parts, 1).to(torch::kFloat64);
      auto xg = x.view({G, N / G, ci, c.h, c.w});
      auto mean = xg.mean({1, 3, 4}, true);
      auto var = (xg - mean).pow(2).mean({1, 3, 4}, true);
      auto scale = torch::cat(bw).to(torch::kFloat64).view({1, 1, ci, 1, 1}) / (var + kEps).sqrt();
      auto shift = torch::cat(bb).to(torch::kFloat64).view({1, 1, ci, 1, 1});
      auto z = ((xg - mean) * scale + shift).clamp_min(0).view({N, ci, c.h, c.w});
      auto ez = (8 * kU * (xg.abs() + 2 * mean.abs()) * scale.abs() + 2 * kU * shift.abs()).view({N, ci, c.h, c.w});
      auto conv = [&](const torch::Tensor& t, const torch::Tensor& k, int64_t g, int64_t stride = 1) {
        return torch::conv2d(t, k, {}, stride, {k.size(2) / 2, k.size(3) / 2}, 1, g);
      };
      auto wd = w.to(torch::kFloat64);
      auto exact = conv(z, wd, groups, c.stride);
      auto bound = gamma((c.depthwise ? 1 : ci) * c.kh * c.kw + 1) * conv(z.abs(), wd.abs(), groups, c.stride) +
                   conv(ez, wd.abs(), groups, c.stride);
      if (pw.defined()) {
        auto pd = pw.to(torch::kFloat64);
        bound = gamma(c.co + 1) * conv(exact.abs() + bound, pd.abs(), 1) + conv(bound, pd.abs(), 1);
        exact = conv(exact, pd, 1);
      }
      auto err = (y.to(torch::kFloat64) - exact).abs();
      r.worst = (err / (bound + std::numeric_limits<double>::min())).max().item<double>();
    }
    out.push_back(r);
  }
  return out;
}

std::vector<KernelCheck> checkPoolKernel(uint64_t seed) {
  torch::NoGradGuard noGrad;
  struct Shape {
    int64_t c, h, w;
  };
  const std::vector<Shape> shapes = {{8, 28, 28}, {16, 14, 14}, {32, 7, 7}, {8, 1, 1}, {16, 2, 5}, {24, 3, 1}};
  auto gen = at::detail::createCPUGenerator(seed);
  std::vector<KernelCheck> out;
  for (const auto& sh : shapes) {
    auto x = (torch::randn({3, sh.c, sh.h, sh.w}, gen) * 3 + 1).contiguous(at::MemoryFormat::ChannelsLast);
    // A NaN, which the max must propagate to every window that holds it.
    x.data_ptr<float>()[seed % static_cast<uint64_t>(x.numel())] = std::numeric_limits<float>::quiet_NaN();
    const std::string shape = std::to_string(sh.c) + " ch, " + std::to_string(sh.h) + "x" + std::to_string(sh.w);
    for (bool isMax : {true, false}) {
      auto y = pool3Inference(x, isMax);
      KernelCheck r{(isMax ? "max pool 3x3, " : "average pool 3x3, ") + shape, y.defined(), 0};
      if (y.defined()) {
        if (isMax) {
          // Exact: the same value, or NaN where LibTorch's max is NaN.
          auto ref = torch::max_pool2d(x, 3, 1, 1);
          const bool same = ((y == ref) | (y.isnan() & ref.isnan())).all().item<bool>();
          r.worst = same ? 0 : std::numeric_limits<double>::infinity();
        } else {
          // Up to four float additions and a division: within gamma(5) * average |x| of the exact average.
          auto xd = x.to(torch::kFloat64);
          auto exact = torch::avg_pool2d(xd, 3, 1, 1, false, false);
          auto bound = gamma(5) * torch::avg_pool2d(xd.abs(), 3, 1, 1, false, false);
          auto nan = exact.isnan();
          if (!y.isnan().eq(nan).all().item<bool>()) {
            r.worst = std::numeric_limits<double>::infinity();
          } else {
            auto err = (y.to(torch::kFloat64) - exact).abs().masked_fill(nan, 0);
            r.worst = (err / (bound.masked_fill(nan, 1) + std::numeric_limits<double>::min())).max().item<double>();
          }
        }
      }
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace nas
