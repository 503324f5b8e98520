#include "trainer.h"

#include <algorithm>

#include "autocast.h"
#include "parallel.h"

namespace nas {

Trainer::Trainer(Supernet& net, const OptimConfig& opt) : net_(net), opt_(opt), rng_(opt.seed) {
  setOptions(opt);
  for (auto& p : net_.params()) momentum_.push_back(torch::zeros_like(p.tensor));
}

void Trainer::checkBatch(const OptimConfig& opt) const {
  const int64_t g = net_.config().ghostBatch;
  const int64_t W = group_ ? group_->worldSize() : 1;
  if (opt.batchSize < g * W || opt.batchSize % (g * W) != 0) {
    const std::string unit = W == 1 ? "ghostBatch (" + std::to_string(g) + ")"
                                    : "ghostBatch x workers (" + std::to_string(g) + " x " + std::to_string(W) + ")";
    throw NasException("ERR_NAS_BAD_CONFIG",
                       "batchSize: expected a positive multiple of " + unit + ", got " + std::to_string(opt.batchSize));
  }
}

void Trainer::setOptions(const OptimConfig& opt) {
  checkBatch(opt);
  opt_ = opt;
}

void Trainer::setGroup(std::shared_ptr<ProcessGroup> group) {
  std::swap(group_, group);
  try {
    checkBatch(opt_);
  } catch (...) {
    std::swap(group_, group);
    throw;
  }
}

std::array<double, 3> Trainer::syncGradients(double lossSum, double correct, bool wantStop) {
  auto& params = net_.params();
  const size_t P = params.size();
  // First which parameters have a gradient on some worker (paths run in some worker's ghost batches), with the stats.
  auto head = torch::zeros({static_cast<int64_t>(P) + 3}, torch::kFloat64);
  double* h = head.data_ptr<double>();
  for (size_t k = 0; k < P; ++k) h[k] = params[k].tensor.grad().defined() ? 1 : 0;
  h[P] = lossSum;
  h[P + 1] = correct;
  h[P + 2] = wantStop ? 1 : 0;
  group_->allreduceSum({head});
  std::vector<torch::Tensor> grads;
  for (size_t k = 0; k < P; ++k) {
    if (h[k] == 0) continue;
    auto& p = params[k].tensor;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  group_->allreduceSum(grads);
  // Each worker's loss is the mean over its share, so the sum over workers is W times the global mean's gradient.
  const double inv = 1.0 / group_->worldSize();
  torch::NoGradGuard ng;
  for (auto& g : grads) g.mul_(inv);
  return {h[P], h[P + 1], h[P + 2]};
}

namespace {
// acc += g, where an undefined tensor is a gradient that was not computed (zero); acc stays undefined if both are.
void addGrad(torch::Tensor& acc, const torch::Tensor& g) {
  if (g.defined()) acc = acc.defined() ? acc + g : g;
}
}  // namespace

int Trainer::innerThreads(int64_t ghosts) const {
  if (!net_.device().is_cpu()) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), ghosts)));
}

// Forward and backward of this worker's examples; leaves in each parameter's .grad the gradient of the mean loss
// over them (undefined where the parameter's paths ran in no ghost batch, or nothing downstream read what they
// computed: a zero gradient). Returns {loss sum, correct}.
// Ghost batches share nothing but weights (masks and BN statistics are per ghost batch), so on CPU they are split
// into contiguous groups that run on their own threads, each with one intra-op thread, and with the per-ghost plan
// each thread runs its ghost batches one at a time: a pass then computes only the paths of its ghost batch's mask.
// (One pass over several ghost batches computes the union of their paths, which at 16 ghost batches and the end
// rates is nearly every path, so large batches trained far slower: docs/results.md#the-benchmark.) Gradients are
// summed per thread in ghost-batch order, then over threads in a fixed order (deterministic for a thread count; equal
// to one pass up to float summation order). On GPUs, and with the fused plan, a thread's ghost batches are one pass.
std::pair<double, int64_t> Trainer::forwardBackward(const torch::Tensor& x, const torch::Tensor& y,
                                                    const StepMasks& masks) {
  const auto& cfg = net_.config();
  auto& params = net_.params();
  for (auto& p : params) p.tensor.mutable_grad() = torch::Tensor();  // set_to_none: skipped paths keep no grad
  const int64_t n = x.size(0), g = cfg.ghostBatch, G = masks.ghosts;
  const int T = innerThreads(G);  // 1 on GPUs and with one thread
  const bool ghostByGhost = net_.device().is_cpu() && !cfg.fused();
  std::vector<torch::Tensor> inputs;
  inputs.reserve(params.size());
  for (auto& p : params) inputs.push_back(p.tensor);
  std::vector<std::vector<torch::Tensor>> grads(T, std::vector<torch::Tensor>(params.size()));
  std::vector<double> lossSum(T, 0);
  std::vector<int64_t> correct(T, 0);
  ParallelFor(T, [&](int t) {
    const int64_t first = G * t / T, count = G * (t + 1) / T - first;
    const int64_t per = ghostByGhost ? 1 : count;
    for (int64_t s = first; s < first + count; s += per) {
      auto xt = x.narrow(0, s * g, per * g);
      auto yt = y.narrow(0, s * g, per * g);
      torch::Tensor logits, loss;
      {
        AutocastGuard autocast(cfg.bf16, net_.device());
        logits = net_.forward(xt, masks.slice(s, per));
        loss = torch::cross_entropy_loss(logits, yt, {}, at::Reduction::Sum);
      }
      auto gs = torch::autograd::grad({loss / static_cast<double>(n)}, inputs, {}, false, false, /*allow_unused=*/true);
      for (size_t k = 0; k < gs.size(); ++k) addGrad(grads[t][k], gs[k]);
      lossSum[t] += loss.item<double>();
      correct[t] += logits.argmax(1).eq(yt).sum().item<int64_t>();
    }
  });
  torch::NoGradGuard ng;
  for (size_t k = 0; k < params.size(); ++k) {
    torch::Tensor sum;
    for (int t = 0; t < T; ++t) addGrad(sum, grads[t][k]);
    if (sum.defined()) params[k].tensor.mutable_grad() = sum;
  }
  double l = 0;
  int64_t c = 0;
  for (int t = 0; t < T; ++t) {
    l += lossSum[t];
    c += correct[t];
  }
  return {l, c};
}

StepStats Trainer::step(const Dataset& data, double lr, const float* dropIn, const float* dropOp, bool wantStop) {
  const auto& cfg = net_.config();
  if (data.c != cfg.inChannels || data.h != cfg.imageSize || data.w != cfg.imageSize) {
    throw NasException("ERR_NAS_BAD_DATA", "training images are " + std::to_string(data.h) + "x" +
                                               std::to_string(data.w) + "x" + std::to_string(data.c) +
                                               ", the model expects " + std::to_string(cfg.imageSize) + "x" +
                                               std::to_string(cfg.imageSize) + "x" + std::to_string(cfg.inChannels));
  }
  const int64_t G = opt_.batchSize / cfg.ghostBatch;
  // Every worker draws the whole global batch's order, augmentation and masks from the same RNG stream, and runs
  // its own contiguous share of whole ghost batches.
  const int64_t W = group_ ? group_->worldSize() : 1, R = group_ ? group_->rank() : 0;
  const int64_t localB = opt_.batchSize / W, localG = G / W;
  auto idx = sampler_.next(rng_, data.size(), opt_.batchSize);
  int64_t upcoming = 0;
  const int64_t* next = sampler_.upcoming(opt_.batchSize, &upcoming);
  data.prefetch(next, upcoming);  // a set in a file: the next batch's rows are read while this one computes
  const bool augment = opt_.cropPad > 0 || opt_.flip;
  if (W > 1 && !augment) idx = idx.narrow(0, R * localB, localB);  // augmentation draws per image: draw them all
  torch::Tensor x, y;
  // The set lives on the device: a gather there instead of a host batch and an upload.
  if (cfg.fused() && data.resident()) {
    const DeviceData& d = DeviceData::in(trainData_, data, net_.device());
    x = d.images(idx, &rng_, opt_.cropPad, opt_.flip);
    y = d.labels(idx);
  } else {
    x = data.images(idx, net_.device(), &rng_, opt_.cropPad, opt_.flip);
    y = data.labels(idx, net_.device());
  }
  if (W > 1 && augment) {
    x = x.narrow(0, R * localB, localB);
    y = y.narrow(0, R * localB, localB);
  }
  lastMasks_ = StepMasks::draw(rng_, G, cfg.blocks, dropIn, dropOp);
  const StepMasks local = W > 1 ? lastMasks_.slice(R * localG, localG) : lastMasks_;

  const auto fb = forwardBackward(x, y, local);
  StepStats st;
  st.loss = fb.first / static_cast<double>(localB);
  st.correct = fb.second;
  st.stop = wantStop;
  if (W > 1) {
    const auto global = syncGradients(fb.first, static_cast<double>(fb.second), wantStop);
    st.loss = global[0] / static_cast<double>(opt_.batchSize);
    st.correct = static_cast<int64_t>(global[1]);
    st.stop = global[2] > 0;
  }
  const auto counts = lastMasks_.activeCounts();
  applyUpdate(lr, counts, lastMasks_.ghosts);
  ++step_;
  st.examples = opt_.batchSize;
  st.activePaths = counts.activePaths();
  return st;
}

// SGD with (Nesterov) momentum, PyTorch's formulation: d = g + decay; buf = m*buf + d; p -= lr*(d + m*buf)
// (Nesterov) or lr*buf. Decay is per ghost batch (docs/model.md#weight-decay): the L2 term is part of each ghost
// batch's loss over its active paths, so a weight used by c of the step's G ghost batches gets wd * c / G * p (op
// weights: the ghost batches where the op ran; the block's 1x1 input conv: per candidate j, its in-channels
// j*C..(j+1)*C; weights of every architecture: c = G). A path that ran in no ghost batch has a zero gradient (its
// compute was skipped, so no .grad): no decay, but its momentum still decays and moves it, as in a framework that
// multiplies by masks.
void Trainer::applyUpdate(double lr, const StepMasks::Counts& counts, int64_t ghosts) {
  torch::NoGradGuard ng;
  const double G = static_cast<double>(ghosts);
  const double wd = opt_.weightDecay, m = opt_.momentum;
  auto& params = net_.params();
  for (size_t k = 0; k < params.size(); ++k) {
    const ParamInfo& pi = params[k];
    const torch::Tensor& p = pi.tensor;
    torch::Tensor g = p.grad();
    torch::Tensor& buf = momentum_[k];
    if (!g.defined()) {
      // No gradient, yet used: nothing downstream read what the weight computed (a reduction whose state no block
      // read; a block's input conv whose ops were all dropped; an op in a cell whose output no later cell read in the
      // ghost batches where it ran), so its gradient is zero, but it still decays (docs/model.md#weight-decay: by ghost
      // batches that use it).
      bool used = pi.decay == DecayKind::Always;
      if (pi.decay == DecayKind::Op) used = counts.ops[pi.block][pi.op] > 0;
      if (pi.decay == DecayKind::Input) {
        const auto& c = counts.inputs[pi.block];
        used = std::any_of(c.begin(), c.end(), [](int64_t v) { return v > 0; });
      }
      if (used && wd != 0) g = torch::zeros_like(p);
    }
    if (!g.defined()) {  // zero gradient, zero decay: d = 0
      if (m != 0) {
        buf.mul_(m);
        p.sub_(buf, opt_.nesterov ? lr * m : lr);
      }
      continue;
    }
    torch::Tensor d;
    switch (pi.decay) {
      case DecayKind::None: d = g; break;
      case DecayKind::Always: d = g.add(p, wd); break;
      case DecayKind::Op: {
        const int64_t c = counts.ops[pi.block][pi.op];
        d = c ? g.add(p, wd * static_cast<double>(c) / G) : g;
        break;
      }
      case DecayKind::Input: {
        const auto& c = counts.inputs[pi.block];
        if (std::all_of(c.begin(), c.end(), [&](int64_t v) { return v == ghosts; })) {
          d = g.add(p, wd);
        } else {
          d = g.clone();
          for (int64_t j = 0; j < 2 + pi.block; ++j) {
            if (c[j])
              d.narrow(1, j * pi.channels, pi.channels)
                  .add_(p.narrow(1, j * pi.channels, pi.channels), wd * static_cast<double>(c[j]) / G);
          }
        }
        break;
      }
    }
    if (m != 0) {
      buf.mul_(m).add_(d);
      d = opt_.nesterov ? d.add(buf, m) : buf;
    }
    p.sub_(d, lr);
  }
}

EvalStats Trainer::evaluate(const Dataset& data, const Arch& arch, int64_t start, int64_t count, int64_t batchSize) {
  const auto& cfg = net_.config();
  arch.validate(cfg.blocks);
  data.checkRange(start, count);
  const int64_t g = cfg.ghostBatch;
  batchSize = std::max(g, batchSize / g * g);
  if (cfg.fused()) {
    // Batches of `batchSize` examples from the device-resident set, queued without a host synchronisation, sums read
    // once: a group of one architecture.
    c10::InferenceMode guard;
    AutocastGuard autocast(cfg.bf16, net_.device());
    std::vector<EvalStats> one;
    evaluateGroup(data, {arch}, start, count, batchSize, one);
    return one.empty() ? EvalStats{} : one[0];  // empty: aborted, so examples (0) < count
  }
  // On CPU one ghost batch per forward is faster (docs/results.md#where-the-time-goes): BN is then one call instead
  // of a small call per ghost batch plus a concatenation, and threads take the batches. The statistics are the same.
  if (net_.device().is_cpu()) batchSize = g;
  // Full ghost batches first; a tail shorter than one ghost batch is its own (smaller) ghost batch.
  std::vector<std::pair<int64_t, int64_t>> batches;  // (first example, examples)
  for (int64_t pos = start, end = start + count; pos < end;) {
    int64_t b = std::min(batchSize, end - pos);
    if (b >= g) b = b / g * g;
    batches.emplace_back(pos, b);
    pos += b;
  }
  // Batches are independent: on CPU they are dealt round robin to threads with one intra-op thread each.
  const int T = innerThreads(static_cast<int64_t>(batches.size()));
  std::vector<EvalStats> part(T);
  ParallelFor(T, [&](int t) {
    c10::InferenceMode guard;
    AutocastGuard autocast(cfg.bf16, net_.device());
    for (size_t i = t; i < batches.size() && !aborted(); i += T) {
      const auto [pos, b] = batches[i];
      const int64_t G = b >= g ? b / g : 1;
      auto idx = torch::arange(pos, pos + b, torch::kInt64);
      auto x = data.images(idx, net_.device());
      auto y = data.labels(idx, net_.device());
      auto logits = net_.forward(x, StepMasks::fixed(arch, G));
      part[t].lossSum += torch::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).item<double>();
      part[t].correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      part[t].examples += b;
    }
  });
  EvalStats st;
  for (const auto& p : part) {
    st.lossSum += p.lossSum;
    st.correct += p.correct;
    st.examples += p.examples;
  }
  return st;
}

// One group of architectures: chunks of `chunk` examples (whole ghost batches, then a tail shorter than a ghost
// batch as its own), each repeated once per architecture; copy k's ghost batches use architecture k's mask.
void Trainer::evaluateGroup(const Dataset& data, const std::vector<Arch>& archs, int64_t start, int64_t count,
                            int64_t chunk, std::vector<EvalStats>& out) {
  const auto& cfg = net_.config();
  const int64_t g = cfg.ghostBatch, K = static_cast<int64_t>(archs.size());
  const bool fused = cfg.fused() && data.resident();
  const DeviceData* d = fused ? &DeviceData::in(evalData_, data, net_.device()) : nullptr;
  auto opts = torch::TensorOptions().device(net_.device());
  auto lossSum = torch::zeros({K}, opts.dtype(torch::kFloat64));
  auto correct = torch::zeros({K}, opts.dtype(torch::kInt64));
  for (int64_t pos = start, end = start + count; pos < end;) {
    if (aborted()) return;
    int64_t b = std::min(chunk, end - pos);
    if (b >= g) b = b / g * g;
    const int64_t perArch = b >= g ? b / g : 1;  // ghost batches per copy
    StepMasks sm;
    sm.ghosts = K * perArch;
    sm.blocks = cfg.blocks;
    for (const auto& a : archs) {
      for (int64_t q = 0; q < perArch; ++q) {
        sm.inputs.insert(sm.inputs.end(), a.inputs.begin(), a.inputs.end());
        sm.ops.insert(sm.ops.end(), a.ops.begin(), a.ops.end());
      }
    }
    torch::Tensor x, y;
    if (fused) {
      x = d->range(pos, b);
      y = d->rangeLabels(pos, b);
    } else {
      auto idx = torch::arange(pos, pos + b, torch::kInt64);
      x = data.images(idx, net_.device());
      y = data.labels(idx, net_.device());
    }
    auto logits = net_.forward(K == 1 ? x : x.repeat({K, 1, 1, 1}), sm).to(torch::kFloat32);
    auto loss = torch::cross_entropy_loss(logits, K == 1 ? y : y.repeat({K}), {}, at::Reduction::None).view({K, b});
    lossSum.add_(loss.sum(1));
    correct.add_(logits.argmax(1).view({K, b}).eq(y.unsqueeze(0)).sum(1));
    pos += b;
  }
  auto l = lossSum.to(torch::kCPU);
  auto c = correct.to(torch::kCPU);
  for (int64_t k = 0; k < K; ++k) out.push_back(EvalStats{l[k].item<double>(), c[k].item<int64_t>(), count});
}

std::vector<EvalStats> Trainer::evaluateBatched(const Dataset& data, const std::vector<Arch>& archs, int64_t start,
                                                int64_t count, int64_t maxExamples,
                                                const std::function<void(int64_t)>& done) {
  const auto& cfg = net_.config();
  data.checkRange(start, count);
  for (const auto& a : archs) a.validate(cfg.blocks);
  const int64_t g = cfg.ghostBatch, K = static_cast<int64_t>(archs.size());
  // At most maxExamples per forward: groups of architectures, and (fused plan) chunks of several ghost batches.
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(K, maxExamples / g));
  c10::InferenceMode guard;
  AutocastGuard autocast(cfg.bf16, net_.device());
  std::vector<EvalStats> out;
  for (int64_t first = 0; first < K && !aborted(); first += group) {
    const int64_t n = std::min(group, K - first);
    const int64_t chunk = cfg.fused() ? std::max<int64_t>(1, maxExamples / (n * g)) * g : g;
    std::vector<Arch> part(archs.begin() + first, archs.begin() + first + n);
    evaluateGroup(data, part, start, count, chunk, out);
    if (done && static_cast<int64_t>(out.size()) == first + n) done(first + n);
  }
  return out;
}

}  // namespace nas
