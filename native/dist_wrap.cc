#include "dist_wrap.h"

#include "args.h"
#include "env_state.h"
#include "errors.h"

namespace nasjs {

Napi::Function ProcessGroupWrap::Init(Napi::Env env) {
  auto fn = DefineClass(
      env, "ProcessGroup",
      {InstanceMethod<&ProcessGroupWrap::Connect>("connect"), InstanceMethod<&ProcessGroupWrap::Exchange>("exchange"),
       InstanceMethod<&ProcessGroupWrap::Barrier>("barrier"), InstanceMethod<&ProcessGroupWrap::Close>("close"),
       InstanceAccessor<&ProcessGroupWrap::Rank>("rank"), InstanceAccessor<&ProcessGroupWrap::WorldSize>("worldSize"),
       StaticMethod<&ProcessGroupWrap::StoreScript>("storeScript")});
  State(env).groupCtor = Napi::Persistent(fn);
  return fn;
}

ProcessGroupWrap::ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
  Guard(info.Env(), [&]() -> Napi::Value {
    auto o = ObjArg(info, 0, "options");
    cfg_.rank = static_cast<int>(IntField(o, "rank", 0));
    cfg_.worldSize = static_cast<int>(IntField(o, "worldSize", 1));
    auto addr = o.Get("masterAddr");
    if (addr.IsString()) cfg_.masterAddr = addr.As<Napi::String>().Utf8Value();
    cfg_.masterPort = static_cast<int>(IntField(o, "masterPort", cfg_.masterPort));
    if (o.Get("jobId").IsString()) cfg_.jobId = o.Get("jobId").As<Napi::String>().Utf8Value();
    if (o.Get("storeFile").IsString()) cfg_.storeFile = o.Get("storeFile").As<Napi::String>().Utf8Value();
    cfg_.timeoutMs = IntField(o, "timeoutMs", cfg_.timeoutMs);
    cfg_.deadAfterMs = IntField(o, "deadAfterMs", cfg_.deadAfterMs);
    cfg_.heartbeatMs = std::max<int64_t>(10, std::min<int64_t>(cfg_.heartbeatMs, cfg_.deadAfterMs / 4));
    return info.Env().Undefined();
  });
}

ProcessGroupWrap* ProcessGroupWrap::Unwrap(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(State(v.Env()).groupCtor.Value())) {
    throw NasException("ERR_NAS_BAD_ARG", "group: expected a native ProcessGroup");
  }
  return Napi::ObjectWrap<ProcessGroupWrap>::Unwrap(v.As<Napi::Object>());
}

std::shared_ptr<nas::ProcessGroup> ProcessGroupWrap::group() const {
  if (!group_) throw NasException("ERR_NAS_DIST", "this ProcessGroup is not connected (await connect()) or was closed");
  return group_;
}

Napi::Promise ProcessGroupWrap::Start(const Napi::CallbackInfo& info, Work work) {
  if (gate_.busy)
    throw NasException("ERR_NAS_BUSY",
                       "this ProcessGroup is running connect, exchange, barrier or close; await it first");
  return gate_.Start(info.Env(), Value(), {}, Napi::Function(), std::move(work));
}

Napi::Value ProcessGroupWrap::Connect(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (group_) throw NasException("ERR_NAS_DIST", "this ProcessGroup is already connected");
    const nas::DistConfig cfg = cfg_;
    auto* slot = &group_;
    return Start(info, [cfg, slot](const Emit&) -> ToJs {
      auto g = std::make_shared<nas::ProcessGroup>(cfg);
      return [g, slot](Napi::Env env) -> Napi::Value {
        *slot = g;  // on the JS thread
        return env.Undefined();
      };
    });
  });
}

Napi::Value ProcessGroupWrap::Exchange(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto g = group();
    const std::string tag = StrArg(info, 0, "tag"), value = StrArg(info, 1, "value");
    return Start(info, [g, tag, value](const Emit&) -> ToJs {
      auto all = g->exchange(tag, value);
      return [all](Napi::Env env) -> Napi::Value {
        auto arr = Napi::Array::New(env, all.size());
        for (size_t i = 0; i < all.size(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::String::New(env, all[i]));
        return arr;
      };
    });
  });
}

Napi::Value ProcessGroupWrap::Barrier(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto g = group();
    return Start(info, [g](const Emit&) -> ToJs {
      g->barrier();
      return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
    });
  });
}

Napi::Value ProcessGroupWrap::Close(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (!group_) {
      auto d = Napi::Promise::Deferred::New(info.Env());
      d.Resolve(info.Env().Undefined());
      return d.Promise();
    }
    auto g = group_;
    group_.reset();  // a Supernet that joined keeps its own reference until it leaves or is disposed
    return Start(info, [g](const Emit&) -> ToJs {
      g->close();
      return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
    });
  });
}

Napi::Value ProcessGroupWrap::StoreScript(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const std::string kind = StrArg(info, 0, "kind");
    auto o = ObjArg(info, 1, "options");
    if (!info[2].IsArray()) throw NasException("ERR_NAS_BAD_ARG", "ops: expected an array of string arrays");
    auto arr = info[2].As<Napi::Array>();
    std::vector<std::vector<std::string>> ops;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      auto op = arr.Get(i).As<Napi::Array>();
      std::vector<std::string> words;
      for (uint32_t j = 0; j < op.Length(); ++j) words.push_back(op.Get(j).ToString().Utf8Value());
      ops.push_back(words);
    }
    const std::string host = o.Get("host").IsString() ? o.Get("host").As<Napi::String>().Utf8Value() : "127.0.0.1";
    auto results =
        nas::runStoreScript(kind, host, static_cast<int>(IntField(o, "port", 0)), IntField(o, "timeoutMs", 500), ops);
    auto out = Napi::Array::New(info.Env(), results.size());
    for (size_t i = 0; i < results.size(); ++i)
      out.Set(static_cast<uint32_t>(i), Napi::String::New(info.Env(), results[i]));
    return out;
  });
}

Napi::Value ProcessGroupWrap::Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cfg_.rank); }
Napi::Value ProcessGroupWrap::WorldSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cfg_.worldSize);
}

}  // namespace nasjs
