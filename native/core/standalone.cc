#include "standalone.h"

#include <algorithm>

#include "ghost_bn.h"
#include "ops.h"

namespace nas {

namespace nn = torch::nn;

GhostBatchNorm2dImpl::GhostBatchNorm2dImpl(int64_t c, int64_t g) : channels(c), ghost(g) { reset(); }

void GhostBatchNorm2dImpl::reset() {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
}

torch::Tensor GhostBatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (!is_training()) return at::batch_norm(x, weight, bias, running_mean, running_var, false, momentum, eps, true);
  const int64_t g = ghost > 0 ? ghost : x.size(0);
  if (fused && x.size(0) % g == 0) {
    const int64_t G = x.size(0) / g;
    auto y = ghostBatchNormFused(x, weight, bias, G, eps);
    torch::NoGradGuard ng;
    // The statistics of each ghost batch (float32 also under bf16 autocast), then G momentum updates at once.
    auto s = x.sizes();
    auto x5 = x.detach().view({G, g, s[1], s[2], s[3]});
    if (x5.scalar_type() != torch::kFloat32) x5 = x5.to(torch::kFloat32);
    auto vm = at::var_mean(x5, at::IntArrayRef{1, 3, 4}, /*unbiased=*/true, /*keepdim=*/false);  // [G, C] each
    auto decay = torch::full({G}, 1.0 - momentum, running_mean.options())
                     .pow(torch::arange(G - 1, -1, -1, running_mean.options()))
                     .mul_(momentum)
                     .view({G, 1});
    const double keep = std::pow(1.0 - momentum, static_cast<double>(G));
    running_mean.mul_(keep).add_((std::get<1>(vm) * decay).sum(0));
    running_var.mul_(keep).add_((std::get<0>(vm) * decay).sum(0));
    num_batches_tracked.add_(G);
    return y;
  }
  std::vector<torch::Tensor> out;
  for (const auto& chunk : x.split(g, 0)) {
    out.push_back(at::batch_norm(chunk, weight, bias, running_mean, running_var, true, momentum, eps, true));
    torch::NoGradGuard ng;
    num_batches_tracked.add_(1);
  }
  return out.size() == 1 ? out[0] : torch::cat(out, 0);
}

namespace {
// LibTorch forbids dots in submodule names; the parameter paths keep the one-shot model's naming with '_' instead.
std::string key(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

// BN -> ReLU -> Conv (no bias), the paper's order. The ReLU is in place: BN's backward needs its input, not its output.
nn::Sequential brc(int64_t ghost, int64_t cin, int64_t cout, torch::ExpandingArray<2> k, torch::ExpandingArray<2> pad,
                   int64_t stride = 1, int64_t groups = 1) {
  return nn::Sequential(
      GhostBatchNorm2d(cin, ghost), nn::ReLU(nn::ReLUOptions(true)),
      nn::Conv2d(nn::Conv2dOptions(cin, cout, k).stride(stride).padding(pad).groups(groups).bias(false)));
}

int64_t convMadds(const nn::Conv2dImpl& conv, const torch::Tensor& out) {
  const auto& w = conv.weight;
  return out.size(1) * out.size(2) * out.size(3) * w.size(1) * w.size(2) * w.size(3);
}

// Runs a Sequential, adding each conv's multiply-adds to `acc` when counting.
torch::Tensor runSeq(nn::Sequential& seq, torch::Tensor x, int64_t* acc) {
  for (auto& m : *seq) {
    x = m.forward(x);
    if (acc) {
      if (auto* c = m.ptr()->as<nn::Conv2dImpl>()) *acc += convMadds(*c, x);
    }
  }
  return x;
}
}  // namespace

struct StandaloneBlock {
  std::vector<int64_t> inputs;  // selected candidate indices
  std::vector<int> ops;
  GhostBatchNorm2d inBn{nullptr};
  nn::Conv2d inConv{nullptr};
  std::vector<nn::Sequential> opLayers;  // one per selected op (empty Sequential for parameter-free ops)
};

struct StandaloneCellImpl : nn::Module {
  StandaloneCellImpl(int64_t C, const Arch& arch, int64_t g) {
    for (size_t i = 0; i < arch.inputs.size(); ++i) {
      StandaloneBlock b;
      for (int64_t j = 0; j < static_cast<int64_t>(2 + i); ++j) {
        if ((arch.inputs[i] >> j) & 1u) b.inputs.push_back(j);
      }
      const int64_t n = static_cast<int64_t>(b.inputs.size());
      const std::string p = "blocks." + std::to_string(i) + ".";
      b.inBn = register_module(key(p + "in.bn"), GhostBatchNorm2d(n * C, g));
      b.inConv = register_module(key(p + "in.conv"), nn::Conv2d(nn::Conv2dOptions(n * C, C, 1).bias(false)));
      for (int o = 0; o < kNumOps; ++o) {
        if (!((arch.ops[i] >> o) & 1u)) continue;
        b.ops.push_back(o);
        nn::Sequential seq;
        const OpSpec& spec = opSpec(o);
        const int64_t k = spec.kernel;
        switch (spec.kind) {
          case OpKind::Identity: break;
          case OpKind::SepConv:
            for (int l = 0; l < 2; ++l) {
              seq->push_back(GhostBatchNorm2d(C, g));
              seq->push_back(nn::ReLU(nn::ReLUOptions(true)));
              seq->push_back(nn::Conv2d(nn::Conv2dOptions(C, C, k).padding(k / 2).groups(C).bias(false)));
              seq->push_back(nn::Conv2d(nn::Conv2dOptions(C, C, 1).bias(false)));
            }
            break;
          case OpKind::Conv7x1: {
            seq = brc(g, C, C, at::IntArrayRef(factorizedKernel(k, 0)), at::IntArrayRef(factorizedPadding(k, 0)));
            // named: iterating a temporary holder would dangle
            auto second =
                brc(g, C, C, at::IntArrayRef(factorizedKernel(k, 1)), at::IntArrayRef(factorizedPadding(k, 1)));
            for (auto& m : *second) seq->push_back(m);
            break;
          }
          case OpKind::MaxPool: seq->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(k).stride(1).padding(k / 2))); break;
          case OpKind::AvgPool:
            seq->push_back(nn::AvgPool2d(nn::AvgPool2dOptions(k).stride(1).padding(k / 2).count_include_pad(false)));
            break;
        }
        b.opLayers.push_back(register_module(key(p + "ops." + spec.name), seq));
      }
      blocks.push_back(std::move(b));
    }
    out = register_module("out", brc(g, static_cast<int64_t>(arch.inputs.size()) * C, C, 1, 0));
  }

  torch::Tensor forward(const torch::Tensor& s0, const torch::Tensor& s1, int64_t* acc) {
    std::vector<torch::Tensor> states{s0, s1};
    std::vector<torch::Tensor> outs;
    for (auto& b : blocks) {
      std::vector<torch::Tensor> sel;
      for (auto j : b.inputs) sel.push_back(states[j]);
      auto x = b.inBn->forward(torch::cat(sel, 1)).relu_();
      auto h = b.inConv->forward(x);
      if (acc) *acc += convMadds(*b.inConv, h);
      torch::Tensor sum;
      for (size_t k = 0; k < b.ops.size(); ++k) {
        auto y = opSpec(b.ops[k]).kind == OpKind::Identity ? h : runSeq(b.opLayers[k], h, acc);
        sum = sum.defined() ? sum + y : y;
      }
      states.push_back(sum);
      outs.push_back(sum);
    }
    return runSeq(out, torch::cat(outs, 1), acc);
  }

  std::vector<StandaloneBlock> blocks;
  nn::Sequential out{nullptr};
};

StandaloneNetImpl::StandaloneNetImpl(const NetConfig& c, const Arch& a) : cfg(c), arch(a) {
  cfg.validate();
  arch.validate(cfg.blocks);
  stem = register_module("stem", nn::Conv2d(nn::Conv2dOptions(cfg.inChannels, cfg.filters, 3).padding(1).bias(false)));
  int64_t C = cfg.filters;
  for (int64_t s = 0; s < cfg.stacks; ++s) {
    if (s > 0) {
      for (int r = 0; r < 2; ++r) {
        reductions.push_back(register_module(key("reduce" + std::to_string(s) + "." + std::to_string(r)),
                                             brc(cfg.ghostBatch, C, 2 * C, 3, 1, 2)));
      }
      C *= 2;
    }
    for (int64_t k = 0; k < cfg.cellsPerStack; ++k) {
      cells.push_back(register_module(key("cells." + std::to_string(cells.size())),
                                      std::make_shared<StandaloneCellImpl>(C, arch, cfg.ghostBatch)));
    }
  }
  headBn = register_module("head_bn", GhostBatchNorm2d(C, cfg.ghostBatch));
  fc = register_module("head_fc", nn::Linear(C, cfg.classes));
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* bn = m->as<GhostBatchNorm2dImpl>()) bn->fused = cfg.fused();
  }
}

torch::Tensor StandaloneNetImpl::forward(torch::Tensor x) {
  int64_t* acc = counting_ ? &madds_ : nullptr;
  x = stem->forward(x);
  if (acc) *acc += convMadds(*stem, x);
  torch::Tensor s0 = x, s1 = x;
  size_t cell = 0;
  for (int64_t s = 0; s < cfg.stacks; ++s) {
    if (s > 0) {
      auto r0 = runSeq(reductions[2 * (s - 1)], s0, acc);
      auto r1 = runSeq(reductions[2 * (s - 1) + 1], s1, acc);
      s0 = r0;
      s1 = r1;
    }
    for (int64_t k = 0; k < cfg.cellsPerStack; ++k) {
      auto out = cells[cell++]->forward(s0, s1, acc);
      s0 = s1;
      s1 = out;
    }
  }
  auto y = headBn->forward(s1).relu_().mean({2, 3});
  if (acc) *acc += fc->weight.numel();
  return fc->forward(y);
}

int64_t StandaloneNetImpl::parameterCount() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

int64_t StandaloneNetImpl::multiplyAdds() {
  torch::NoGradGuard ng;
  const bool wasTraining = is_training();
  eval();
  madds_ = 0;
  counting_ = true;
  auto dev = stem->weight.device();
  forward(torch::zeros({1, cfg.inChannels, cfg.imageSize, cfg.imageSize}, torch::TensorOptions().device(dev)));
  counting_ = false;
  train(wasTraining);
  return madds_;
}

void StandaloneNetImpl::copyFrom(const Supernet& net) {
  torch::NoGradGuard ng;
  auto cp = [](const torch::Tensor& dst, const torch::Tensor& src) { dst.copy_(src.detach()); };
  auto cpBrc = [&](nn::Sequential& seq, const Brc& b) {
    cp(seq[0]->as<GhostBatchNorm2dImpl>()->weight, b.bnW);
    cp(seq[0]->as<GhostBatchNorm2dImpl>()->bias, b.bnB);
    cp(seq[2]->as<nn::Conv2dImpl>()->weight, b.w);
  };
  cp(stem->weight, net.stem());
  for (size_t r = 0; r < reductions.size(); ++r) cpBrc(reductions[r], net.reductions()[r]);
  for (size_t c = 0; c < cells.size(); ++c) {
    const CellParams& src = net.cells()[c];
    const int64_t C = src.channels;
    for (size_t i = 0; i < cells[c]->blocks.size(); ++i) {
      StandaloneBlock& b = cells[c]->blocks[i];
      const BlockParams& sb = src.blocks[i];
      std::vector<torch::Tensor> bw, bb, cw;
      for (auto j : b.inputs) {
        bw.push_back(sb.inBnW.narrow(0, j * C, C));
        bb.push_back(sb.inBnB.narrow(0, j * C, C));
        cw.push_back(sb.inConv.narrow(1, j * C, C));
      }
      cp(b.inBn->weight, torch::cat(bw));
      cp(b.inBn->bias, torch::cat(bb));
      cp(b.inConv->weight, torch::cat(cw, 1));
      for (size_t k = 0; k < b.ops.size(); ++k) {
        const OpParams& op = sb.ops[b.ops[k]];
        size_t bnIdx = 0, wIdx = 0;
        for (auto& m : *b.opLayers[k]) {
          if (auto* bn = m.ptr()->as<GhostBatchNorm2dImpl>()) {
            cp(bn->weight, op.bnW[bnIdx]);
            cp(bn->bias, op.bnB[bnIdx++]);
          } else if (auto* conv = m.ptr()->as<nn::Conv2dImpl>()) {
            cp(conv->weight, op.w[wIdx++]);
          }
        }
      }
    }
    cpBrc(cells[c]->out, src.out);
  }
  cp(headBn->weight, net.headBn().bnW);
  cp(headBn->bias, net.headBn().bnB);
  cp(fc->weight, net.fcW());
  cp(fc->bias, net.fcB());
}

}  // namespace nas
