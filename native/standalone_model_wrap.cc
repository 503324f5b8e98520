#include "standalone_model_wrap.h"

#include "args.h"
#include "dataset_wrap.h"
#include "errors.h"
#include "profile.h"
#include "train_loop.h"

namespace nasjs {

namespace {
constexpr int64_t kReadEvery = 16;  // fused plan: steps per read of the training loss and accuracy
}  // namespace

Napi::Function StandaloneModelWrap::Init(Napi::Env env) {
  return DefineClass(
      env, "StandaloneModel",
      {InstanceMethod<&StandaloneModelWrap::Train>("train"), InstanceMethod<&StandaloneModelWrap::Evaluate>("evaluate"),
       InstanceMethod<&StandaloneModelWrap::Predict>("predict"),
       InstanceMethod<&StandaloneModelWrap::StateDict>("stateDict"),
       InstanceMethod<&StandaloneModelWrap::SetTensor>("setTensor"),
       InstanceMethod<&StandaloneModelWrap::ParameterCount>("parameterCount"),
       InstanceMethod<&StandaloneModelWrap::MultiplyAdds>("multiplyAdds"),
       InstanceMethod<&StandaloneModelWrap::StepCount>("stepCount"), InstanceMethod<&StandaloneModelWrap::Save>("save"),
       InstanceMethod<&StandaloneModelWrap::Load>("load"), InstanceMethod<&StandaloneModelWrap::Abort>("abort"),
       InstanceMethod<&StandaloneModelWrap::Dispose>("dispose"),
       InstanceMethod<&StandaloneModelWrap::CountStepOps>("countStepOps"),
       InstanceMethod<&StandaloneModelWrap::StepMemory>("stepMemory")});
}

StandaloneModelWrap::StandaloneModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StandaloneModelWrap>(info) {
  Guard(info.Env(), [&]() -> Napi::Value {
    auto c = ObjArg(info, 0, "config");
    cfg_ = ParseNetConfig(c);
    threads_ = static_cast<int>(IntField(c, "threads", 0));
    CheckDevice(cfg_);
    auto words = TypedArg<Napi::Uint32Array>(info[1], "arch");
    const size_t B = static_cast<size_t>(cfg_.blocks);
    if (words.ElementLength() != 2 * B)
      throw NasException("ERR_NAS_BAD_ARCH", "arch: expected " + std::to_string(2 * B) + " words");
    nas::Arch arch;
    arch.inputs.assign(words.Data(), words.Data() + B);
    arch.ops.assign(words.Data() + B, words.Data() + 2 * B);
    nas::OptimConfig opt;
    if (info.Length() > 2 && info[2].IsObject()) opt = ParseOptim(info[2].As<Napi::Object>(), opt);
    UseThreads(threads_);
    model_ = std::make_unique<nas::StandaloneModel>(cfg_, arch, opt);
    return info.Env().Undefined();
  });
}

void StandaloneModelWrap::CheckUsable() const {
  if (!model_) throw NasException("ERR_NAS_DISPOSED", "this StandaloneModel was disposed");
  if (gate_.busy) throw NasException("ERR_NAS_BUSY", "this StandaloneModel is running a job; await it first");
}

Napi::Value StandaloneModelWrap::Train(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto* ds = DatasetWrap::Unwrap(info[0]);
    auto o = ObjArg(info, 1, "options");
    const int64_t steps = IntField(o, "steps", -1);
    auto lr = TypedArg<Napi::Float64Array>(o.Get("lr"), "lr");
    if (steps < 0 || static_cast<int64_t>(lr.ElementLength()) < steps)
      throw NasException("ERR_NAS_BAD_ARG", "train: expected steps >= 0 and one lr per step");
    std::vector<double> lrs(lr.Data(), lr.Data() + steps);
    const int threads = static_cast<int>(IntField(o, "threads", threads_));
    auto fn = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
    nas::StandaloneModel* m = model_.get();
    const nas::Dataset* data = &ds->data();
    std::atomic<bool>* abort = &gate_.abort;
    return gate_.Start(info.Env(), Value(), {info[0].As<Napi::Object>()}, fn, [=](const Emit& emit) -> ToJs {
      UseThreads(threads);
      auto profile = MaybeProfile("retrain");
      // Fused plan: the loss and accuracy are read (a host synchronisation) at the first and last step of the call
      // and every kReadEvery steps; the steps between report the last window read.
      auto read = [steps](int64_t i) { return i == 0 || i + 1 == steps || (i + 1) % kReadEvery == 0; };
      return RunSteps(
          steps, abort, emit, [&](int64_t i, bool) { return m->step(*data, lrs[i], read(i)); },
          [&] { return m->stepCount(); });
    });
  });
}

Napi::Value StandaloneModelWrap::Evaluate(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto* ds = DatasetWrap::Unwrap(info[0]);
    auto o = ObjArg(info, 1, "options");
    const int64_t start = IntField(o, "start", 0);
    const int64_t count = IntField(o, "count", ds->data().size() - start);
    const int64_t batch = std::max<int64_t>(1, IntField(o, "batchSize", 256));
    const int threads = static_cast<int>(IntField(o, "threads", threads_));
    nas::StandaloneModel* m = model_.get();
    const nas::Dataset* data = &ds->data();
    return gate_.Start(info.Env(), Value(), {info[0].As<Napi::Object>()}, Napi::Function(), [=](const Emit&) -> ToJs {
      UseThreads(threads);
      auto st = m->evaluate(*data, start, count, batch);
      return [st](Napi::Env env) -> Napi::Value {
        auto r = Napi::Object::New(env);
        r.Set("lossSum", st.lossSum);
        r.Set("correct", static_cast<double>(st.correct));
        r.Set("examples", static_cast<double>(st.examples));
        return r;
      };
    });
  });
}

Napi::Value StandaloneModelWrap::CountStepOps(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto* ds = DatasetWrap::Unwrap(info[0]);
    const double lr = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0.0;
    UseThreads(threads_);
    OpCounter counter;
    model_->step(ds->data(), lr);
    auto r = Napi::Object::New(info.Env());
    r.Set("opsTotal", static_cast<double>(counter.total()));
    r.Set("opsTopLevel", static_cast<double>(counter.topLevel()));
    return r;
  });
}

// Tensor bytes of one training step beyond the model's resting state (gradients, activations kept for the backward,
// temporaries): a first step makes the lasting state (momentum, the fused plan's resident data), the second is
// measured. Both are real steps.
Napi::Value StandaloneModelWrap::StepMemory(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto* ds = DatasetWrap::Unwrap(info[0]);
    UseThreads(1);
    model_->step(ds->data(), 0.0);
    AllocationMeter meter;
    model_->step(ds->data(), 0.0);
    auto r = Napi::Object::New(info.Env());
    r.Set("peakBytes", static_cast<double>(meter.peak()));
    r.Set("residentBytes", static_cast<double>(model_->residentDataBytes()));
    return r;
  });
}

Napi::Value StandaloneModelWrap::Predict(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto images = TypedArg<Napi::Float32Array>(info[0], "images");
    const int64_t batch = info[1].As<Napi::Number>().Int64Value();
    const int64_t per = cfg_.inChannels * cfg_.imageSize * cfg_.imageSize;
    if (batch <= 0 || static_cast<int64_t>(images.ElementLength()) != batch * per) {
      throw NasException("ERR_NAS_BAD_ARG", "images: expected batch*" + std::to_string(per) + " floats (NCHW)");
    }
    auto x = torch::from_blob(images.Data(), {batch, cfg_.inChannels, cfg_.imageSize, cfg_.imageSize}, torch::kFloat32)
                 .clone();
    const bool logits = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    return ToF32(info.Env(), model_->predict(x, logits));
  });
}

Napi::Value StandaloneModelWrap::StateDict(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto arr = Napi::Array::New(info.Env());
    uint32_t i = 0;
    for (auto& kv : model_->stateDict()) {
      auto e = Napi::Object::New(info.Env());
      e.Set("name", kv.first);
      auto shape = Napi::Array::New(info.Env());
      for (int64_t d = 0; d < kv.second.dim(); ++d)
        shape.Set(static_cast<uint32_t>(d), static_cast<double>(kv.second.size(d)));
      e.Set("shape", shape);
      e.Set("data", ToF32(info.Env(), kv.second));
      arr.Set(i++, e);
    }
    return arr;
  });
}

Napi::Value StandaloneModelWrap::SetTensor(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    auto v = TypedArg<Napi::Float32Array>(info[1], "value");
    model_->setTensor(StrArg(info, 0, "name"),
                      torch::from_blob(v.Data(), {static_cast<int64_t>(v.ElementLength())}, torch::kFloat32));
    return info.Env().Undefined();
  });
}

Napi::Value StandaloneModelWrap::ParameterCount(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    return Napi::Number::New(info.Env(), static_cast<double>(model_->parameterCount()));
  });
}

Napi::Value StandaloneModelWrap::MultiplyAdds(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    return Napi::Number::New(info.Env(), static_cast<double>(model_->multiplyAdds()));
  });
}

Napi::Value StandaloneModelWrap::StepCount(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    return Napi::Number::New(info.Env(), static_cast<double>(model_->stepCount()));
  });
}

Napi::Value StandaloneModelWrap::Save(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    const std::string path = StrArg(info, 0, "path"), meta = StrArg(info, 1, "meta");
    nas::StandaloneModel* m = model_.get();
    return gate_.Start(info.Env(), Value(), {}, Napi::Function(), [=](const Emit&) -> ToJs {
      m->save(path, meta);
      return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
    });
  });
}

Napi::Value StandaloneModelWrap::Load(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckUsable();
    const std::string path = StrArg(info, 0, "path");
    nas::StandaloneModel* m = model_.get();
    return gate_.Start(info.Env(), Value(), {}, Napi::Function(), [=](const Emit&) -> ToJs {
      auto meta = std::make_shared<std::string>(m->load(path));
      return [meta](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *meta); };
    });
  });
}

Napi::Value StandaloneModelWrap::Abort(const Napi::CallbackInfo& info) {
  gate_.abort = true;
  return info.Env().Undefined();
}

Napi::Value StandaloneModelWrap::Dispose(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (!model_) return info.Env().Undefined();
    CheckUsable();
    model_.reset();
    return info.Env().Undefined();
  });
}

}  // namespace nasjs
