#include "ghost_bn.h"

#include <cstdlib>

namespace nas {

torch::Tensor ghostBatchNorm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G,
                             double eps) {
  if (G == 1) {
    // One ghost batch: LibTorch's fused kernel (mkldnn/cudnn) computes exactly the batch statistics.
    return at::batch_norm(x, w, b, {}, {}, /*training=*/true, /*momentum=*/0.0, eps, /*cudnn_enabled=*/true);
  }
  // Per ghost batch, LibTorch's fused batch_norm (one pass for statistics, one for the affine) on a view of the chunk,
  // then one concatenation: faster on CPU than composing mean/var/scale ops over a [G, g, C, H, W] view, whose strided
  // reductions are slow in LibTorch's CPU kernels (docs/architecture.md#execution-plans).
  auto chunks = x.chunk(G, 0);
  std::vector<torch::Tensor> out;
  out.reserve(G);
  for (const auto& c : chunks) out.push_back(at::batch_norm(c, w, b, {}, {}, true, 0.0, eps, true));
  return torch::cat(out, 0);
}

namespace {

// [B, C, H, W] -> [G, g, C, H, W]: splitting the batch dimension is a view in both memory formats.
torch::Tensor ghostView(const torch::Tensor& x, int64_t G) {
  auto s = x.sizes();
  return x.view({G, s[0] / G, s[1], s[2], s[3]});
}

// Fused ghost BN forward; returns y and, for the backward, the centred input xc = x - mean ([G, g, C, H, W], float32)
// and invstd ([G, 1, C, 1, 1]). Centring first, as LibTorch's kernels do, keeps a channel that is constant within a
// ghost batch (downstream of a dropped path: var ~ 0, invstd ~ 1/sqrt(eps)) at exactly b; the algebraically equal
// x * scale + (b - mean * scale) cancels two large numbers there and flips the ReLU that follows.
torch::Tensor fusedForward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G,
                           double eps, torch::Tensor* xcOut, torch::Tensor* invstdOut) {
  auto x5 = ghostView(x, G);
  if (x5.scalar_type() != torch::kFloat32) x5 = x5.to(torch::kFloat32);  // bf16 autocast: statistics in float32
  auto vm = at::var_mean(x5, at::IntArrayRef{1, 3, 4}, /*unbiased=*/false, /*keepdim=*/true);
  auto invstd = (std::get<0>(vm) + eps).rsqrt();
  auto xc = x5 - std::get<1>(vm);
  auto scale = invstd * w.view({1, 1, -1, 1, 1});
  if (xcOut) *xcOut = xc;
  if (invstdOut) *invstdOut = invstd;
  // Under autograd (the NAS_FUSED_BN_AUTOGRAD diagnostic) a view of the 5-D result, which autograd tracks. Inside
  // GhostBnFn (no grad mode) the result is written into a tensor of x's shape and memory format instead: a caller may
  // apply an in-place op to it (the stand-alone model's ReLU), which autograd forbids on a view that a custom
  // Function returns. Splitting the batch dimension is a view in both memory formats.
  if (torch::GradMode::is_enabled()) return at::addcmul(b.view({1, 1, -1, 1, 1}), xc, scale).view(x.sizes());
  auto y = torch::empty(x.sizes(), x.options().dtype(torch::kFloat32).memory_format(x.suggest_memory_format()));
  auto y5 = y.view(x5.sizes());
  at::addcmul_out(y5, b.view({1, 1, -1, 1, 1}), xc, scale);
  return y;
}

class GhostBnFn : public torch::autograd::Function<GhostBnFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, int64_t G, double eps) {
    torch::Tensor xc, invstd;
    auto y = fusedForward(x, w, b, G, eps, &xc, &invstd);
    ctx->save_for_backward({xc, w, invstd});
    ctx->saved_data["dtype"] = static_cast<int64_t>(x.scalar_type());
    return y;
  }

  // The batch-norm backward per ghost batch, N = g * H * W, xhat = xc * invstd:
  //   dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),  dw = sum(dy * xhat),  db = sum(dy)
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& xc = saved[0];
    const auto& w = saved[1];
    const auto& invstd = saved[2];
    const auto dtype = static_cast<c10::ScalarType>(ctx->saved_data["dtype"].toInt());
    const auto s = grads[0].sizes();
    auto dy5 = grads[0].reshape({xc.size(0), xc.size(1), s[1], s[2], s[3]});
    if (dy5.scalar_type() != torch::kFloat32) dy5 = dy5.to(torch::kFloat32);
    const double N = static_cast<double>(xc.size(1) * xc.size(3) * xc.size(4));
    auto sdy = dy5.sum({1, 3, 4}, /*keepdim=*/true);
    auto sdyxc = (dy5 * xc).sum({1, 3, 4}, /*keepdim=*/true);
    auto a = invstd * w.view({1, 1, -1, 1, 1});         // w * invstd
    auto dx = at::addcmul(-a * sdy / N, dy5, a);        // a * (dy - mean(dy))
    dx.addcmul_(xc, -a * invstd * invstd * sdyxc / N);  // - a * xhat * mean(dy * xhat)
    auto dw = (sdyxc * invstd).sum({0, 1, 3, 4});
    auto db = sdy.sum({0, 1, 3, 4});
    return {dx.view(s).to(dtype), dw, db, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor ghostBatchNormFused(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G,
                                  double eps) {
  if (G == 1) return ghostBatchNorm(x, w, b, 1, eps);
  // Diagnostic (test/native/plans.test.ts): NAS_FUSED_BN_AUTOGRAD=1 differentiates the same forward with autograd
  // instead of the hand-written backward, so the two can be compared.
  static const bool viaAutograd = std::getenv("NAS_FUSED_BN_AUTOGRAD") != nullptr;
  if (!torch::GradMode::is_enabled() || viaAutograd) return fusedForward(x, w, b, G, eps, nullptr, nullptr);
  return GhostBnFn::apply(x, w, b, G, eps);
}

std::pair<torch::Tensor, torch::Tensor> ghostStats(const torch::Tensor& x, int64_t G) {
  auto s = x.sizes();
  auto xv = x.view({G, s[0] / G, s[1], s[2], s[3]});
  auto mean = xv.mean({1, 3, 4});
  auto var = (xv - mean.view({G, 1, -1, 1, 1})).pow(2).mean({1, 3, 4});
  return {mean, var};
}

}  // namespace nas
