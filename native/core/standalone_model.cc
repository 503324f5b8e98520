#include "standalone_model.h"

#include "archive.h"
#include "autocast.h"

namespace nas {

StandaloneModel::StandaloneModel(const NetConfig& cfg, const Arch& arch, const OptimConfig& opt)
    : cfg_(cfg), opt_(opt), net_(cfg, arch), device_(cfg.device), stream_(device_), rng_(opt.seed) {
  if (opt.batchSize < 1) throw NasException("ERR_NAS_BAD_CONFIG", "batchSize: expected a positive integer");
  auto onStream = stream_.use();
  // Deterministic initialisation from the seed, independent of LibTorch's global generator.
  Rng init(cfg.seed);
  torch::NoGradGuard ng;
  for (auto& p : net_->named_parameters()) {
    auto& t = p.value();
    auto cpu = torch::empty(t.sizes(), torch::kFloat32);
    float* d = cpu.data_ptr<float>();
    const int64_t n = cpu.numel();
    if (t.dim() == 4) {  // He-normal on fan-in
      const double std = std::sqrt(2.0 / static_cast<double>(t.size(1) * t.size(2) * t.size(3)));
      for (int64_t k = 0; k < n; ++k) d[k] = static_cast<float>(init.normal() * std);
    } else if (t.dim() == 2 || p.key().find("head_fc") != std::string::npos) {  // classifier, like nn.Linear
      const double bound = 1.0 / std::sqrt(static_cast<double>(net_->fc->weight.size(1)));
      for (int64_t k = 0; k < n; ++k) d[k] = static_cast<float>((2.0 * init.uniform() - 1.0) * bound);
    } else {
      const bool scale = p.key().size() >= 6 && p.key().compare(p.key().size() - 6, 6, "weight") == 0;
      for (int64_t k = 0; k < n; ++k) d[k] = scale ? 1.f : 0.f;
    }
    t.copy_(cpu);
  }
  net_->to(device_);
  for (auto& p : net_->named_parameters()) {
    if (p.value().dim() == 4 && cfg.channelsLast)
      p.value().set_data(p.value().data().contiguous(at::MemoryFormat::ChannelsLast));
    params_.push_back(p.value());
    momentum_.push_back(torch::zeros_like(p.value()));
    decay_.push_back(p.value().dim() >= 2);  // conv and linear weights; not BN, not biases
  }
}

StepStats StandaloneModel::step(const Dataset& data, double lr, bool read) {
  auto onStream = stream_.use();
  net_->train();
  auto idx = sampler_.next(rng_, data.size(), opt_.batchSize);
  int64_t upcoming = 0;
  const int64_t* next = sampler_.upcoming(opt_.batchSize, &upcoming);
  data.prefetch(next, upcoming);  // a set in a file: the next batch's rows are read while this one computes
  torch::Tensor x, y;
  // The set lives on the device: a gather there instead of a host batch and an upload.
  if (cfg_.fused() && data.resident()) {
    const DeviceData& d = DeviceData::in(trainData_, data, device_);
    x = d.images(idx, &rng_, opt_.cropPad, opt_.flip);
    y = d.labels(idx);
  } else {
    x = data.images(idx, device_, &rng_, opt_.cropPad, opt_.flip);
    y = data.labels(idx, device_);
  }
  if (cfg_.channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
  // Per-ghost plan: one forward and backward per ghost batch, so that BatchNorm sees exactly its ghost batch (no
  // split and concatenation of every activation) and the running statistics are updated in the same order as by a
  // whole-batch forward; each ghost batch's loss is its share of the batch mean, so the summed gradients are those
  // of the batch mean. Fused plan: one forward and backward of the whole batch, the ghost batches inside the fused
  // ghost BN (standalone.h), the same values.
  int64_t B = x.size(0);
  const int64_t g = cfg_.fused() || cfg_.ghostBatch <= 0 ? B : std::min(cfg_.ghostBatch, B);
  torch::Tensor lossSum, correct;  // summed on the device, read once
  for (int64_t at = 0; at < B; at += g) {
    const int64_t n = std::min(g, B - at);
    const auto yg = y.narrow(0, at, n);
    torch::Tensor logits, loss;
    {
      AutocastGuard autocast(cfg_.bf16, device_);
      logits = net_->forward(x.narrow(0, at, n));
      loss = torch::cross_entropy_loss(logits, yg, {}, at::Reduction::Sum);
    }
    loss.div(static_cast<double>(B)).backward();
    auto hits = logits.argmax(1).eq(yg).sum();
    lossSum = lossSum.defined() ? lossSum + loss.detach() : loss.detach();
    correct = correct.defined() ? correct + hits : hits;
  }
  sgdStep(lr);
  ++step_;
  if (cfg_.fused()) {
    windowLoss_ = windowLoss_.defined() ? windowLoss_.add(lossSum) : lossSum;
    windowCorrect_ = windowCorrect_.defined() ? windowCorrect_.add(correct) : correct;
    windowExamples_ += B;
    if (!read) return lastRead_;
    lossSum = windowLoss_;
    correct = windowCorrect_;
    B = windowExamples_;
    windowLoss_ = windowCorrect_ = torch::Tensor();
    windowExamples_ = 0;
  }
  StepStats st;
  st.loss = lossSum.item<double>() / static_cast<double>(B);
  st.correct = correct.item<int64_t>();
  st.examples = B;
  lastRead_ = st;
  return st;
}

// SGD with momentum (Nesterov or not) and L2 weight decay on conv and linear weights (docs/model.md), as
// multi-tensor ops: a handful of calls for every parameter at once instead of five per tensor (on CUDA, one fused
// kernel per call; on the CPU, the same per-tensor arithmetic, so the same numbers as a loop over the tensors).
void StandaloneModel::sgdStep(double lr) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> p, g, m, pd, gd;  // with a gradient; pd/gd: the decayed ones among them
  std::vector<size_t> at;
  for (size_t k = 0; k < params_.size(); ++k) {
    if (!params_[k].grad().defined()) continue;
    p.push_back(params_[k]);
    m.push_back(momentum_[k]);
    g.push_back(params_[k].grad());
    if (decay_[k]) {
      at.push_back(g.size() - 1);
      pd.push_back(params_[k]);
      gd.push_back(params_[k].grad());
    }
  }
  if (p.empty()) return;
  if (!gd.empty()) {  // g <- g + wd * p on the decayed tensors (new tensors: the gradients stay as backward left them)
    auto decayed = at::_foreach_add(gd, pd, opt_.weightDecay);
    for (size_t i = 0; i < at.size(); ++i) g[at[i]] = decayed[i];
  }
  if (opt_.momentum != 0) {
    at::_foreach_mul_(m, opt_.momentum);
    at::_foreach_add_(m, g);
    g = opt_.nesterov ? at::_foreach_add(g, m, opt_.momentum) : m;
  }
  at::_foreach_add_(p, g, -lr);
}

EvalStats StandaloneModel::evaluate(const Dataset& data, int64_t start, int64_t count, int64_t batchSize) {
  auto onStream = stream_.use();
  data.checkRange(start, count);
  net_->eval();
  c10::InferenceMode guard;
  AutocastGuard autocast(cfg_.bf16, device_);
  EvalStats st;
  for (int64_t pos = start; pos < start + count; pos += batchSize) {
    const int64_t b = std::min(batchSize, start + count - pos);
    auto idx = torch::arange(pos, pos + b, torch::kInt64);
    auto x = data.images(idx, device_);
    if (cfg_.channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    auto y = data.labels(idx, device_);
    auto logits = net_->forward(x);
    st.lossSum += torch::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).item<double>();
    st.correct += logits.argmax(1).eq(y).sum().item<int64_t>();
    st.examples += b;
  }
  return st;
}

torch::Tensor StandaloneModel::predict(const torch::Tensor& images, bool logits) {
  auto onStream = stream_.use();
  net_->eval();
  c10::InferenceMode guard;
  auto x = images.to(device_);
  if (cfg_.channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  auto y = net_->forward(x);
  return (logits ? y : torch::softmax(y, 1)).to(torch::kCPU);
}

std::vector<std::pair<std::string, torch::Tensor>> StandaloneModel::stateDict() {
  auto onStream = stream_.use();
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : net_->named_parameters()) out.emplace_back(p.key(), p.value().detach().to(torch::kCPU).contiguous());
  for (auto& b : net_->named_buffers()) out.emplace_back(b.key(), b.value().detach().to(torch::kCPU).contiguous());
  return out;
}

void StandaloneModel::setTensor(const std::string& name, const torch::Tensor& value) {
  auto onStream = stream_.use();
  torch::NoGradGuard ng;
  auto params = net_->named_parameters();
  auto buffers = net_->named_buffers();
  torch::Tensor* target = params.find(name);
  if (!target) target = buffers.find(name);
  if (!target) throw NasException("ERR_NAS_BAD_ARG", "name: the model has no tensor '" + name + "'");
  if (target->numel() != value.numel()) {
    throw NasException("ERR_NAS_BAD_ARG", "value: '" + name + "' has " + std::to_string(target->numel()) +
                                              " elements, got " + std::to_string(value.numel()));
  }
  target->copy_(value.reshape(target->sizes()).to(target->scalar_type()));
}

void StandaloneModel::save(const std::string& path, const std::string& meta) {
  auto onStream = stream_.use();
  torch::serialize::OutputArchive ar;
  writeKey(ar, "meta", bytesTensor(meta));
  for (auto& kv : stateDict()) writeKey(ar, "state/" + kv.first, kv.second);
  auto names = net_->named_parameters().keys();
  for (size_t k = 0; k < momentum_.size(); ++k) writeKey(ar, "momentum/" + names[k], momentum_[k]);
  writeLoopState(ar, step_, sampler_, rng_);
  saveArchive(ar, path);
}

std::string StandaloneModel::load(const std::string& path) {
  auto onStream = stream_.use();
  auto ar = openArchive(path);
  const std::string meta = tensorBytes(readKey(ar, "meta", path));
  std::vector<std::pair<std::string, torch::Tensor>> values;
  for (auto& kv : stateDict()) {
    auto v = readKey(ar, "state/" + kv.first, path);
    if (v.sizes() != kv.second.sizes())
      throw NasException("ERR_NAS_CHECKPOINT", path + ": '" + kv.first + "' has another shape (another architecture?)");
    values.emplace_back(kv.first, v);
  }
  auto names = net_->named_parameters().keys();
  std::vector<torch::Tensor> moms;
  for (auto& n : names) moms.push_back(readKey(ar, "momentum/" + n, path));
  auto loop = readLoopState(ar, path);
  for (auto& kv : values) setTensor(kv.first, kv.second);
  torch::NoGradGuard ng;
  for (size_t k = 0; k < moms.size(); ++k) momentum_[k].copy_(moms[k]);
  applyLoopState(loop, &step_, &sampler_, &rng_);
  return meta;
}

}  // namespace nas
