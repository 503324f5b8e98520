#include "supernet_wrap.h"

#include <thread>

#include "args.h"
#include "core/standalone.h"
#include "dataset_wrap.h"
#include "dist_wrap.h"
#include "errors.h"
#include "job.h"
#include "profile.h"
#include "train_loop.h"

namespace nasjs {

using nas::NasException;

Napi::Function SupernetWrap::Init(Napi::Env env) {
  return DefineClass(
      env, "Supernet",
      {InstanceMethod<&SupernetWrap::ParameterCount>("parameterCount"),
       InstanceMethod<&SupernetWrap::Describe>("describe"), InstanceMethod<&SupernetWrap::Train>("train"),
       InstanceMethod<&SupernetWrap::Evaluate>("evaluate"), InstanceMethod<&SupernetWrap::Forward>("forward"),
       InstanceMethod<&SupernetWrap::StandaloneForward>("standaloneForward"),
       InstanceMethod<&SupernetWrap::LastMasks>("lastMasks"),
       InstanceMethod<&SupernetWrap::ParameterNames>("parameterNames"),
       InstanceMethod<&SupernetWrap::GetParameter>("getParameter"),
       InstanceMethod<&SupernetWrap::SetParameter>("setParameter"),
       InstanceMethod<&SupernetWrap::GetGradient>("getGradient"), InstanceMethod<&SupernetWrap::StepCount>("stepCount"),
       InstanceMethod<&SupernetWrap::SetOptim>("setOptim"), InstanceMethod<&SupernetWrap::SetGroup>("setGroup"),
       InstanceMethod<&SupernetWrap::Save>("save"), InstanceMethod<&SupernetWrap::Load>("load"),
       InstanceMethod<&SupernetWrap::Abort>("abort"), InstanceMethod<&SupernetWrap::Dispose>("dispose"),
       StaticMethod<&SupernetWrap::ReadCheckpointMeta>("readCheckpointMeta")});
}

SupernetWrap::SupernetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SupernetWrap>(info) {
  Guard(info.Env(), [&]() -> Napi::Value {
    auto c = ObjArg(info, 0, "config");
    nas::NetConfig cfg = ParseNetConfig(c);
    threads_ = static_cast<int>(IntField(c, "threads", 0));
    CheckDevice(cfg);
    UseThreads(threads_);
    nas::OptimConfig opt;
    opt.batchSize = 2 * cfg.ghostBatch;
    if (info.Length() > 1 && info[1].IsObject()) opt = ParseOptim(info[1].As<Napi::Object>(), opt);
    net_ = std::make_unique<nas::Supernet>(cfg);
    trainer_ = std::make_unique<nas::Trainer>(*net_, opt);
    trainer_->setAbortFlag(&gate_.abort);
    return info.Env().Undefined();
  });
}

void SupernetWrap::CheckUsable(bool allowBusy) const {
  if (!net_) throw NasException("ERR_NAS_DISPOSED", "this Supernet was disposed");
  if (!allowBusy && gate_.busy) {
    throw NasException("ERR_NAS_BUSY",
                       "this Supernet is running a job (train, evaluate, save or load); await it first");
  }
}

Napi::Promise SupernetWrap::StartJob(const Napi::CallbackInfo& info, std::vector<Napi::Object> keepAlive,
                                     Napi::Function fn, Work work) {
  CheckUsable();
  return gate_.Start(info.Env(), Value(), std::move(keepAlive), fn, std::move(work));
}

nas::ParamInfo& SupernetWrap::FindParam(const std::string& name) {
  for (auto& p : net_->params()) {
    if (p.name == name) return p;
  }
  throw NasException("ERR_NAS_BAD_ARG", "name: no parameter called '" + name + "'");
}

nas::Arch SupernetWrap::ArchAt(const Napi::Uint32Array& a, size_t index) const {
  const size_t B = static_cast<size_t>(net_->config().blocks);
  if (a.ElementLength() < (index + 1) * 2 * B) {
    throw NasException("ERR_NAS_BAD_ARCH",
                       "architecture array: expected " + std::to_string(2 * B) + " words per architecture");
  }
  nas::Arch arch;
  const uint32_t* d = a.Data() + index * 2 * B;
  arch.inputs.assign(d, d + B);
  arch.ops.assign(d + B, d + 2 * B);
  arch.validate(static_cast<int64_t>(B));
  return arch;
}

Napi::Value SupernetWrap::ParameterCount(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable(true);
    return Napi::Number::New(info.Env(), static_cast<double>(net_->parameterCount()));
  });
}

Napi::Value SupernetWrap::Describe(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable(true);
    nas::NetConfig cfg = net_->config();
    cfg.device = "cpu";
    nas::Arch arch = info.Length() > 0 && info[0].IsTypedArray()
                         ? ArchAt(TypedArg<Napi::Uint32Array>(info[0], "arch"), 0)
                         : nas::Arch::allOn(cfg.blocks);
    nas::StandaloneNet model(cfg, arch);
    auto out = Napi::Object::New(info.Env());
    out.Set("params", static_cast<double>(model->parameterCount()));
    out.Set("madds", static_cast<double>(model->multiplyAdds()));
    return out;
  });
}

Napi::Value SupernetWrap::Train(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto* ds = DatasetWrap::Unwrap(info[0]);
    auto o = ObjArg(info, 1, "options");
    const int64_t steps = IntField(o, "steps", -1);
    const int64_t B = net_->config().blocks;
    auto lr = TypedArg<Napi::Float64Array>(o.Get("lr"), "lr");
    auto dropIn = TypedArg<Napi::Float32Array>(o.Get("dropIn"), "dropIn");
    auto dropOp = TypedArg<Napi::Float32Array>(o.Get("dropOp"), "dropOp");
    if (steps < 0 || static_cast<int64_t>(lr.ElementLength()) < steps ||
        static_cast<int64_t>(dropIn.ElementLength()) < steps * B ||
        static_cast<int64_t>(dropOp.ElementLength()) < steps * B) {
      throw NasException("ERR_NAS_BAD_ARG",
                         "train: expected steps >= 0, lr of `steps` values and dropIn/dropOp of steps*blocks");
    }
    // Copy the schedules: the worker must not read JS memory that the caller may reuse.
    std::vector<double> lrs(lr.Data(), lr.Data() + steps);
    std::vector<float> din(dropIn.Data(), dropIn.Data() + steps * B), dop(dropOp.Data(), dropOp.Data() + steps * B);
    const int threads = static_cast<int>(IntField(o, "threads", threads_));
    auto fn = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
    nas::Trainer* trainer = trainer_.get();
    const nas::Dataset* data = &ds->data();
    std::atomic<bool>* abort = &gate_.abort;
    return StartJob(info, {info[0].As<Napi::Object>()}, fn, [=](const Emit& emit) -> ToJs {
      UseThreads(threads);
      auto profile = MaybeProfile("train");
      return RunSteps(
          steps, abort, emit,
          [&](int64_t i, bool stop) {
            return trainer->step(*data, lrs[i], din.data() + i * B, dop.data() + i * B, stop);
          },
          [&] { return trainer->stepCount(); }, trainer->group() != nullptr);
    });
  });
}

Napi::Value SupernetWrap::Evaluate(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto* ds = DatasetWrap::Unwrap(info[0]);
    auto archArr = TypedArg<Napi::Uint32Array>(info[1], "archs");
    auto o = ObjArg(info, 2, "options");
    const size_t B = static_cast<size_t>(net_->config().blocks);
    const size_t n = archArr.ElementLength() / (2 * B);
    std::vector<nas::Arch> archs;
    for (size_t i = 0; i < n; ++i) archs.push_back(ArchAt(archArr, i));
    const int64_t start = IntField(o, "start", 0);
    const int64_t count = IntField(o, "count", ds->data().size() - start);
    // Examples per forward. Any batch size gives the same scores (BN per ghost batch); the fused plan wants big
    // batches; batched scoring puts up to this many examples (all architectures' copies) in one forward.
    const int64_t batchArg = IntField(o, "batchSize", 0);
    const int64_t batch = batchArg > 0 ? batchArg : net_->config().fused() ? 2048 : 256;
    const int64_t batchedMax = batchArg > 0 ? batchArg : 4096;
    const int threads = static_cast<int>(IntField(o, "threads", threads_));
    const bool batched = BoolField(o, "batched", false);
    auto fn = info.Length() > 3 && info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
    nas::Trainer* trainer = trainer_.get();
    const nas::Dataset* data = &ds->data();
    std::atomic<bool>* abort = &gate_.abort;
    return StartJob(info, {info[0].As<Napi::Object>()}, fn, [=](const Emit& emit) -> ToJs {
      UseThreads(threads);
      auto profile = MaybeProfile("evaluate");
      auto results = std::make_shared<std::vector<nas::EvalStats>>();
      if (batched && !archs.empty()) {
        *results = trainer->evaluateBatched(*data, archs, start, count, batchedMax, [&emit](int64_t k) {
          emit([k](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(k)); });
        });
      }
      for (size_t i = results->size(); i < archs.size() && !*abort; ++i) {
        auto r = trainer->evaluate(*data, archs[i], start, count, batch);
        if (*abort) break;  // cut short: not a result
        results->push_back(r);
        const double k = static_cast<double>(i + 1);
        emit([k](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, k); });
      }
      return [results](Napi::Env env) -> Napi::Value {
        auto arr = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); ++i) {
          auto r = Napi::Object::New(env);
          r.Set("lossSum", (*results)[i].lossSum);
          r.Set("correct", static_cast<double>((*results)[i].correct));
          r.Set("examples", static_cast<double>((*results)[i].examples));
          arr.Set(static_cast<uint32_t>(i), r);
        }
        return arr;
      };
    });
  });
}

static torch::Tensor ImagesArg(const Napi::CallbackInfo& info, const nas::NetConfig& cfg, int64_t* batch) {
  auto images = TypedArg<Napi::Float32Array>(info[0], "images");
  *batch = info[1].As<Napi::Number>().Int64Value();
  const int64_t per = cfg.inChannels * cfg.imageSize * cfg.imageSize;
  if (*batch <= 0 || static_cast<int64_t>(images.ElementLength()) != *batch * per) {
    throw NasException("ERR_NAS_BAD_ARG", "images: expected batch*" + std::to_string(per) + " floats (NCHW), got " +
                                              std::to_string(images.ElementLength()));
  }
  return torch::from_blob(images.Data(), {*batch, cfg.inChannels, cfg.imageSize, cfg.imageSize}, torch::kFloat32)
      .clone();
}

Napi::Value SupernetWrap::Forward(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    int64_t batch = 0;
    auto x = ImagesArg(info, net_->config(), &batch).to(net_->device());
    auto masks = TypedArg<Napi::Uint32Array>(info[2], "masks");
    const int64_t B = net_->config().blocks;
    const int64_t G = static_cast<int64_t>(masks.ElementLength()) / (2 * B);
    if (G < 1 || G * 2 * B != static_cast<int64_t>(masks.ElementLength())) {
      throw NasException("ERR_NAS_BAD_ARG", "masks: expected G * 2 * blocks words (one architecture per ghost batch)");
    }
    nas::StepMasks sm;
    sm.ghosts = G;
    sm.blocks = B;
    for (int64_t g = 0; g < G; ++g) {
      const uint32_t* d = masks.Data() + g * 2 * B;
      sm.inputs.insert(sm.inputs.end(), d, d + B);
      sm.ops.insert(sm.ops.end(), d + B, d + 2 * B);
    }
    const bool probe = info.Length() > 3 && info[3].ToBoolean();
    auto out = Napi::Object::New(info.Env());
    if (info.Length() > 4 && info[4].IsObject()) {
      // Op counting: one forward (with `backward`, also the backward of the summed logits), ops recorded here.
      const bool backward = BoolField(info[4].As<Napi::Object>(), "backward", false);
      const int before = at::get_num_threads();
      at::set_num_threads(1);
      OpCounter counter;
      if (backward) {
        net_->forward(x, sm).sum().backward();
      } else {
        c10::InferenceMode guard;
        net_->forward(x, sm);
      }
      out.Set("opsTotal", static_cast<double>(counter.total()));
      out.Set("opsTopLevel", static_cast<double>(counter.topLevel()));
      if (backward) {
        for (auto& p : net_->params()) p.tensor.mutable_grad() = torch::Tensor();
      }
      at::set_num_threads(before);
      return out;
    }
    c10::InferenceMode guard;
    net_->probeBn = probe;
    torch::Tensor logits;
    try {
      logits = net_->forward(x, sm);
    } catch (...) {
      net_->probeBn = false;
      throw;
    }
    net_->probeBn = false;
    out.Set("logits", ToF32(info.Env(), logits));
    if (probe && net_->probeMean.defined()) {
      out.Set("probeMean", ToF32(info.Env(), net_->probeMean));
      out.Set("probeVar", ToF32(info.Env(), net_->probeVar));
    }
    return out;
  });
}

Napi::Value SupernetWrap::StandaloneForward(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    int64_t batch = 0;
    auto x = ImagesArg(info, net_->config(), &batch);
    auto arch = ArchAt(TypedArg<Napi::Uint32Array>(info[2], "arch"), 0);
    nas::NetConfig cfg = net_->config();
    cfg.device = "cpu";
    nas::StandaloneNet model(cfg, arch);
    model->copyFrom(*net_);
    model->train();  // BN on batch statistics, as the one-shot model uses
    torch::NoGradGuard ng;
    return ToF32(info.Env(), model->forward(x));
  });
}

Napi::Value SupernetWrap::LastMasks(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    const auto& m = trainer_->lastMasks();
    auto out = Napi::Object::New(info.Env());
    out.Set("ghosts", static_cast<double>(m.ghosts));
    auto in = Napi::Uint32Array::New(info.Env(), m.inputs.size());
    auto op = Napi::Uint32Array::New(info.Env(), m.ops.size());
    std::copy(m.inputs.begin(), m.inputs.end(), in.Data());
    std::copy(m.ops.begin(), m.ops.end(), op.Data());
    out.Set("inputs", in);
    out.Set("ops", op);
    return out;
  });
}

Napi::Value SupernetWrap::ParameterNames(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable(true);
    auto arr = Napi::Array::New(info.Env());
    uint32_t i = 0;
    for (const auto& p : net_->params()) arr.Set(i++, p.name);
    return arr;
  });
}

Napi::Value SupernetWrap::GetParameter(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    return ToF32(info.Env(), FindParam(StrArg(info, 0, "name")).tensor.contiguous());
  });
}

Napi::Value SupernetWrap::GetGradient(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    const auto& g = FindParam(StrArg(info, 0, "name")).tensor.grad();
    if (!g.defined()) return info.Env().Null();
    return ToF32(info.Env(), g.contiguous());
  });
}

Napi::Value SupernetWrap::SetParameter(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto& p = FindParam(StrArg(info, 0, "name"));
    auto v = TypedArg<Napi::Float32Array>(info[1], "value");
    if (static_cast<int64_t>(v.ElementLength()) != p.tensor.numel()) {
      throw NasException("ERR_NAS_BAD_ARG", "value: '" + p.name + "' has " + std::to_string(p.tensor.numel()) +
                                                " elements, got " + std::to_string(v.ElementLength()));
    }
    torch::NoGradGuard ng;
    p.tensor.copy_(torch::from_blob(v.Data(), p.tensor.sizes(), torch::kFloat32));
    return info.Env().Undefined();
  });
}

Napi::Value SupernetWrap::StepCount(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable(true);
    return Napi::Number::New(info.Env(), static_cast<double>(trainer_->stepCount()));
  });
}

Napi::Value SupernetWrap::SetOptim(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    trainer_->setOptions(ParseOptim(ObjArg(info, 0, "optim"), trainer_->options()));
    return info.Env().Undefined();
  });
}

Napi::Value SupernetWrap::SetGroup(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    const bool leave = info.Length() == 0 || info[0].IsNull() || info[0].IsUndefined();
    trainer_->setGroup(leave ? nullptr : ProcessGroupWrap::Unwrap(info[0])->group());
    return info.Env().Undefined();
  });
}

Napi::Value SupernetWrap::Save(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    const std::string path = StrArg(info, 0, "path"), meta = StrArg(info, 1, "meta");
    nas::Trainer* trainer = trainer_.get();
    return StartJob(info, {}, Napi::Function(), [=](const Emit&) -> ToJs {
      trainer->save(path, meta);
      return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
    });
  });
}

Napi::Value SupernetWrap::Load(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    const std::string path = StrArg(info, 0, "path");
    nas::Trainer* trainer = trainer_.get();
    return StartJob(info, {}, Napi::Function(), [=](const Emit&) -> ToJs {
      auto meta = std::make_shared<std::string>(trainer->load(path));
      return [meta](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *meta); };
    });
  });
}

Napi::Value SupernetWrap::ReadCheckpointMeta(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const std::string path = StrArg(info, 0, "path");
    return RunOnThread(
        info.Env(), nullptr, {}, Napi::Function(),
        [=](const Emit&) -> ToJs {
          auto meta = std::make_shared<std::string>(nas::Trainer::readMeta(path));
          return [meta](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *meta); };
        },
        nullptr);
  });
}

Napi::Value SupernetWrap::Abort(const Napi::CallbackInfo& info) {
  gate_.abort = true;
  return info.Env().Undefined();
}

Napi::Value SupernetWrap::Dispose(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (!net_) return info.Env().Undefined();
    CheckUsable();
    trainer_.reset();
    net_.reset();
    return info.Env().Undefined();
  });
}

}  // namespace nasjs
