#include "supernet.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "cpu_inference.h"
#include "ghost_bn.h"
#include "ops.h"

namespace nas {

namespace {}

void NetConfig::validate() const {
  auto need = [](bool ok, const std::string& field, const std::string& what, int64_t got) {
    if (!ok) throw NasException("ERR_NAS_BAD_CONFIG", field + ": expected " + what + ", got " + std::to_string(got));
  };
  need(inChannels >= 1, "inChannels", "a positive integer", inChannels);
  need(classes >= 2, "classes", "an integer >= 2", classes);
  need(filters >= 1, "filters", "a positive integer", filters);
  need(stacks >= 1, "stacks", "a positive integer", stacks);
  need(cellsPerStack >= 1, "cellsPerStack", "a positive integer", cellsPerStack);
  need(blocks >= 1 && blocks <= 8, "blocks", "an integer in 1..8", blocks);
  need(ghostBatch >= 1, "ghostBatch", "a positive integer", ghostBatch);
  need(imageSize >= (int64_t{1} << (stacks - 1)), "imageSize", "at least 2^(stacks-1)", imageSize);
  if (plan != "auto" && plan != "per-ghost" && plan != "fused") {
    throw NasException("ERR_NAS_BAD_CONFIG", "plan: expected 'auto', 'per-ghost' or 'fused', got '" + plan + "'");
  }
}

Supernet::Supernet(const NetConfig& cfg) : cfg_(cfg), fused_(cfg.fused()), device_(cfg.device) {
  cfg_.validate();
  Rng rng(cfg.seed);
  const int64_t F = cfg.filters;
  stem_ = add("stem.weight", {F, cfg.inChannels, 3, 3}, DecayKind::Always, rng);
  int64_t C = F;
  for (int64_t s = 0; s < cfg.stacks; ++s) {
    if (s > 0) {
      for (int r = 0; r < 2; ++r) {
        std::string p = "reduce" + std::to_string(s) + "." + std::to_string(r) + ".";
        Brc b;
        b.bnW = add(p + "bn.weight", {C}, DecayKind::None, rng);
        b.bnB = add(p + "bn.bias", {C}, DecayKind::None, rng);
        b.w = add(p + "conv.weight", {2 * C, C, 3, 3}, DecayKind::Always, rng);
        reductions_.push_back(b);
      }
      C *= 2;
    }
    for (int64_t c = 0; c < cfg.cellsPerStack; ++c) {
      CellParams cell;
      cell.channels = C;
      const std::string cp = "cells." + std::to_string(cells_.size()) + ".";
      for (int64_t i = 0; i < cfg.blocks; ++i) {
        const std::string bp = cp + "blocks." + std::to_string(i) + ".";
        BlockParams blk;
        blk.inBnW = add(bp + "in.bn.weight", {(2 + i) * C}, DecayKind::None, rng);
        blk.inBnB = add(bp + "in.bn.bias", {(2 + i) * C}, DecayKind::None, rng);
        blk.inConv = add(bp + "in.conv.weight", {C, (2 + i) * C, 1, 1}, DecayKind::Input, rng, i, -1, C);
        blk.ops.resize(kNumOps);
        for (int o = 0; o < kNumOps; ++o) {
          OpParams& op = blk.ops[o];
          const OpSpec& spec = opSpec(o);
          const std::string opn = bp + "ops." + spec.name + ".";
          const int k = spec.kind == OpKind::SepConv ? spec.kernel : 0;
          const int layers = spec.kind == OpKind::SepConv || spec.kind == OpKind::Conv7x1 ? 2 : 0;
          for (int l = 0; l < layers; ++l) {
            const std::string lp = opn + std::to_string(l) + ".";
            op.bnW.push_back(add(lp + "bn.weight", {C}, DecayKind::None, rng));
            op.bnB.push_back(add(lp + "bn.bias", {C}, DecayKind::None, rng));
            if (k) {
              op.w.push_back(add(lp + "depthwise.weight", {C, 1, k, k}, DecayKind::Op, rng, i, o));
              op.w.push_back(add(lp + "pointwise.weight", {C, C, 1, 1}, DecayKind::Op, rng, i, o));
            } else {
              const auto kernel = factorizedKernel(spec.kernel, l);
              op.w.push_back(add(lp + "conv.weight", {C, C, kernel[0], kernel[1]}, DecayKind::Op, rng, i, o));
            }
          }
        }
        cell.blocks.push_back(std::move(blk));
      }
      cell.out.bnW = add(cp + "out.bn.weight", {cfg.blocks * C}, DecayKind::None, rng);
      cell.out.bnB = add(cp + "out.bn.bias", {cfg.blocks * C}, DecayKind::None, rng);
      cell.out.w = add(cp + "out.conv.weight", {C, cfg.blocks * C, 1, 1}, DecayKind::Always, rng);
      cells_.push_back(std::move(cell));
    }
  }
  head_.bnW = add("head.bn.weight", {C}, DecayKind::None, rng);
  head_.bnB = add("head.bn.bias", {C}, DecayKind::None, rng);
  fcW_ = add("head.fc.weight", {cfg.classes, C}, DecayKind::Always, rng);
  fcB_ = add("head.fc.bias", {cfg.classes}, DecayKind::None, rng);
}

// Deterministic initialisation from our own RNG (identical on every LibTorch version and device):
// conv weights He-normal (fan-in), BN scale 1 and shift 0, the classifier uniform(+-1/sqrt(fan-in)) like nn.Linear.
torch::Tensor Supernet::add(const std::string& name, torch::IntArrayRef shape, DecayKind kind, Rng& rng, int64_t block,
                            int op, int64_t channels) {
  auto t = torch::empty(shape, torch::kFloat32);
  const int64_t n = t.numel();
  float* d = t.data_ptr<float>();
  const bool isBn = name.find(".bn.") != std::string::npos || name.rfind("bn.", 0) == 0;
  if (isBn) {
    const bool scale = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
    for (int64_t k = 0; k < n; ++k) d[k] = scale ? 1.f : 0.f;
  } else if (shape.size() == 4) {
    const double std = std::sqrt(2.0 / static_cast<double>(shape[1] * shape[2] * shape[3]));
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<float>(rng.normal() * std);
  } else {
    const double bound = 1.0 / std::sqrt(static_cast<double>(shape.size() == 2 ? shape[1] : fcW_.size(1)));
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
  }
  t = t.to(device_);
  if (shape.size() == 4 && cfg_.channelsLast) t = t.contiguous(at::MemoryFormat::ChannelsLast);
  t.set_requires_grad(true);
  params_.push_back(ParamInfo{name, t, kind, block, op, channels});
  return t;
}

int64_t Supernet::parameterCount() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.tensor.numel();
  return n;
}

torch::Tensor Supernet::bn(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t G) const {
  return fused_ ? ghostBatchNormFused(x, w, b, G, cfg_.bnEps) : ghostBatchNorm(x, w, b, G, cfg_.bnEps);
}

torch::Tensor Supernet::bnRelu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                               int64_t G) const {
  if (scoringKernels()) {
    auto y = ghostBnReluInference({x}, {w}, {b}, G, cfg_.bnEps);
    if (y.defined()) return y;
  }
  return torch::relu(bn(x, w, b, G));
}

torch::Tensor Supernet::bnReluConv(const torch::Tensor& x, const torch::Tensor& bnW, const torch::Tensor& bnB,
                                   int64_t G, const torch::Tensor& w, int64_t groups,
                                   const torch::Tensor& pointwise) const {
  if (scoringKernels()) {
    auto y = bnReluConvInference({x}, {bnW}, {bnB}, G, cfg_.bnEps, w, groups, pointwise);
    if (y.defined()) return y;
  }
  auto y = torch::conv2d(bnRelu(x, bnW, bnB, G), w, {}, 1, {w.size(2) / 2, w.size(3) / 2}, 1, groups);
  return pointwise.defined() ? torch::conv2d(y, pointwise) : y;
}

torch::Tensor Supernet::brc(const Brc& p, const torch::Tensor& x, int64_t G, int64_t stride) const {
  if (stride == 1) return bnReluConv(x, p.bnW, p.bnB, G, p.w);
  if (scoringKernels()) {
    auto y = bnReluConvInference({x}, {p.bnW}, {p.bnB}, G, cfg_.bnEps, p.w, 1, {}, stride);
    if (y.defined()) return y;
  }
  const int64_t k = p.w.size(2);
  return torch::conv2d(bnRelu(x, p.bnW, p.bnB, G), p.w, {}, stride, k / 2);
}

torch::Tensor Supernet::opForward(BlockParams& blk, int o, const torch::Tensor& h, int64_t G) {
  const OpSpec& spec = opSpec(o);
  switch (spec.kind) {
    case OpKind::Identity: return h;
    case OpKind::MaxPool:
    case OpKind::AvgPool: {
      const bool isMax = spec.kind == OpKind::MaxPool;
      if (spec.kernel == 3 && scoringKernels()) {
        auto y = pool3Inference(h, isMax);
        if (y.defined()) return y;
      }
      if (isMax) return torch::max_pool2d(h, spec.kernel, 1, spec.kernel / 2);
      return torch::avg_pool2d(h, spec.kernel, 1, spec.kernel / 2, /*ceil_mode=*/false, /*count_include_pad=*/false);
    }
    case OpKind::SepConv:
    case OpKind::Conv7x1: break;
  }
  OpParams& op = blk.ops[o];
  torch::Tensor x = h;
  const int k = spec.kind == OpKind::SepConv ? spec.kernel : 0;
  for (int l = 0; l < 2; ++l) {
    // Separable: depthwise k x k, then pointwise. Factorized: 1 x k, then k x 1 (padding factorizedPadding(k, l)).
    x = k ? bnReluConv(x, op.bnW[l], op.bnB[l], G, op.w[2 * l], x.size(1), op.w[2 * l + 1])
          : bnReluConv(x, op.bnW[l], op.bnB[l], G, op.w[l]);
  }
  return x;
}

// Fused plan: the candidates active in some ghost batch are concatenated first, so that their BN, ReLU and mask
// are one call each (per-channel BN over a concatenation is BN per input); the mask multiplies a
// [G, g, inputs, C, H, W] view by the [G, inputs] mask table. Returns the 1x1 conv's output.
torch::Tensor Supernet::fusedInputs(BlockParams& blk, int64_t C, const std::vector<torch::Tensor>& cands,
                                    const BlockMask& m, int64_t G) {
  std::vector<int64_t> on;
  bool allOn = true;  // every active candidate is active in every ghost batch: no mask to apply
  for (int64_t j = 0; j < static_cast<int64_t>(m.in.size()); ++j) {
    if (!m.in[j].any) continue;
    on.push_back(j);
    allOn = allOn && m.in[j].all;
  }
  if (on.empty()) return {};
  const int64_t n = static_cast<int64_t>(on.size());
  const bool every = n == static_cast<int64_t>(m.in.size());
  std::vector<torch::Tensor> xs, bw, bb, cw;
  for (int64_t j : on) {
    xs.push_back(cands[j].defined() ? cands[j] : torch::zeros_like(cands[0]));
    if (!every) {
      bw.push_back(blk.inBnW.narrow(0, j * C, C));
      bb.push_back(blk.inBnB.narrow(0, j * C, C));
      cw.push_back(blk.inConv.narrow(1, j * C, C));
    }
  }
  auto x = n == 1 ? xs[0] : torch::cat(xs, 1);
  if (cfg_.channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  auto y = torch::relu(every ? bn(x, blk.inBnW, blk.inBnB, G) : bn(x, torch::cat(bw), torch::cat(bb), G));
  if (!allOn) {
    // Fixed (docs/model.md#removing-a-path): zero after the ReLU and before the 1x1 conv.
    auto mask = every ? m.inAll : m.inAll.index_select(1, torch::tensor(on, torch::kInt64).to(m.inAll.device()));
    auto s = y.sizes();
    y = (y.view({G, s[0] / G, n, C, s[2], s[3]}) * mask.reshape({G, 1, n, 1, 1, 1}).to(y.scalar_type())).reshape(s);
  }
  return torch::conv2d(y, every ? blk.inConv : torch::cat(cw, 1));
}

// Per-ghost plan: each candidate active in some ghost batch gets its own BN slice, ReLU and mask; the results are
// concatenated for the 1x1 conv. Returns the conv's output (undefined when no candidate is active anywhere).
torch::Tensor Supernet::perGhostInputs(BlockParams& blk, int64_t C, const std::vector<torch::Tensor>& cands,
                                       const BlockMask& m, int64_t G) {
  // Active inputs (those dropped in every ghost batch get no compute, so exactly zero gradient) and their slices of
  // the BN affine and the 1x1 conv.
  std::vector<torch::Tensor> xs, bw, bb, ws;
  std::vector<int64_t> on;
  bool whole = true;  // no active input is dropped in some ghost batches only
  for (int64_t j = 0; j < static_cast<int64_t>(m.in.size()); ++j) {
    if (!m.in[j].any) continue;
    on.push_back(j);
    whole = whole && m.in[j].all;
    xs.push_back(cands[j].defined() ? cands[j] : torch::zeros_like(cands[0]));
    bw.push_back(blk.inBnW.narrow(0, j * C, C));
    bb.push_back(blk.inBnB.narrow(0, j * C, C));
    ws.push_back(blk.inConv.narrow(1, j * C, C));
  }
  if (xs.empty()) return {};
  auto w = xs.size() == m.in.size() ? blk.inConv : (ws.size() == 1 ? ws[0] : torch::cat(ws, 1));
  // Scoring: one kernel for BN+ReLU and the conv, else one that writes the active inputs' BN+ReLU into one tensor
  // (no concatenation).
  torch::Tensor x;
  if (whole && scoringKernels()) {
    auto y = bnReluConvInference(xs, bw, bb, G, cfg_.bnEps, w, 1);
    if (y.defined()) return y;
    x = ghostBnReluInference(xs, bw, bb, G, cfg_.bnEps);
  }
  if (!x.defined()) {
    std::vector<torch::Tensor> ys;
    for (size_t k = 0; k < xs.size(); ++k) {
      // Fixed (docs/model.md#removing-a-path): zero after the ReLU and before the 1x1 conv, so a removed input
      // contributes nothing at all.
      auto y = torch::relu(bn(xs[k], bw[k], bb[k], G));
      if (!m.in[on[k]].all) y = applyGhostMask(y, m.in[on[k]].m);
      ys.push_back(y);
    }
    x = ys.size() == 1 ? ys[0] : torch::cat(ys, 1);
  }
  return torch::conv2d(x, w);
}

torch::Tensor Supernet::blockForward(BlockParams& blk, int64_t C, const std::vector<torch::Tensor>& cands,
                                     const BlockMask& m, int64_t G, bool probe) {
  if (probe && m.in[0].any) std::tie(probeMean, probeVar) = ghostStats(cands[0].detach(), G);
  auto h = fused_ ? fusedInputs(blk, C, cands, m, G) : perGhostInputs(blk, C, cands, m, G);
  if (!h.defined()) return {};
  torch::Tensor out;
  for (int o = 0; o < kNumOps; ++o) {
    if (!m.op[o].any) continue;
    auto t = opForward(blk, o, h, G);
    if (!m.op[o].all) t = applyGhostMask(t, m.op[o].m);
    out = out.defined() ? out + t : t;
  }
  return out;
}

torch::Tensor Supernet::cellForward(CellParams& cell, const torch::Tensor& s0, const torch::Tensor& s1,
                                    const std::vector<BlockMask>& bm, int64_t G, bool firstCell) {
  std::vector<torch::Tensor> cands{s0, s1};
  std::vector<torch::Tensor> outs;
  // Scoring: the BN statistics of s0, s1, each h and each block's output once, however many kernels read them.
  std::optional<GhostSumsScope> sums;
  if (scoringKernels()) sums.emplace();
  for (int64_t i = 0; i < cfg_.blocks; ++i) {
    auto b = blockForward(cell.blocks[i], cell.channels, cands, bm[i], G, firstCell && i == 0 && probeBn);
    cands.push_back(b);
    outs.push_back(b);
  }
  for (auto& o : outs) {
    if (!o.defined()) o = torch::zeros_like(s1);  // a block dropped everywhere still has a place in the concat
  }
  if (scoringKernels()) {
    std::vector<torch::Tensor> bw, bb;
    for (int64_t i = 0; i < cfg_.blocks; ++i) {
      bw.push_back(cell.out.bnW.narrow(0, i * cell.channels, cell.channels));
      bb.push_back(cell.out.bnB.narrow(0, i * cell.channels, cell.channels));
    }
    auto y = bnReluConvInference(outs, bw, bb, G, cfg_.bnEps, cell.out.w, 1);
    if (y.defined()) return y;
    y = ghostBnReluInference(outs, bw, bb, G, cfg_.bnEps);  // the concatenation is written by the BN pass
    if (y.defined()) return torch::conv2d(y, cell.out.w);
  }
  return brc(cell.out, torch::cat(outs, 1), G, 1);
}

namespace {
// Profiler scope names of the forward's parts; stacks past the third share the last name.
constexpr const char* kReductionScope[] = {"nas::reduction 1", "nas::reduction 2+"};
constexpr const char* kCellScope[] = {"nas::cells, stack 1", "nas::cells, stack 2", "nas::cells, stack 3+"};
}  // namespace

torch::Tensor Supernet::forward(const torch::Tensor& input, const StepMasks& masks) {
  const int64_t G = masks.ghosts;
  if (input.size(0) % G != 0) {
    throw NasException("ERR_NAS_BAD_BATCH", "batch of " + std::to_string(input.size(0)) +
                                                " examples does not split into " + std::to_string(G) +
                                                " equal ghost batches");
  }
  auto bm = buildBlockMasks(masks, device_);
  auto x = input;
  // The parts are user scopes for the profiler (scripts/profile.js sums the op time inside each); they cost nothing
  // when no profiler or op counter listens.
  {
    RECORD_USER_SCOPE("nas::stem");
    if (cfg_.channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    x = torch::conv2d(x, stem_, {}, 1, 1);
  }
  torch::Tensor s0 = x, s1 = x;
  size_t cellIdx = 0;
  for (int64_t s = 0; s < cfg_.stacks; ++s) {
    if (s > 0) {
      RECORD_USER_SCOPE(kReductionScope[std::min<int64_t>(s, 2) - 1]);
      auto r0 = brc(reductions_[2 * (s - 1)], s0, G, 2);
      auto r1 = brc(reductions_[2 * (s - 1) + 1], s1, G, 2);
      s0 = r0;
      s1 = r1;
    }
    RECORD_USER_SCOPE(kCellScope[std::min<int64_t>(s, 2)]);
    for (int64_t c = 0; c < cfg_.cellsPerStack; ++c, ++cellIdx) {
      auto out = cellForward(cells_[cellIdx], s0, s1, bm, G, cellIdx == 0);
      s0 = s1;
      s1 = out;
    }
  }
  RECORD_USER_SCOPE("nas::head");
  auto y = bnRelu(s1, head_.bnW, head_.bnB, G).mean({2, 3});
  return torch::linear(y, fcW_, fcB_);
}

}  // namespace nas
