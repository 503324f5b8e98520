#include "job.h"

#include <thread>

#include "errors.h"

namespace nasjs {

namespace {
struct Msg {
  enum Kind { Progress, Done, Failed } kind;
  ToJs value;
  std::string code, message;
};

struct JobCtx {
  explicit JobCtx(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  std::vector<Napi::ObjectReference> keepAlive;
  Napi::FunctionReference progress;
  std::function<void()> onDone;
  std::thread thread;
};

void CallJs(Napi::Env env, Napi::Function, JobCtx* ctx, Msg* raw) {
  std::unique_ptr<Msg> msg(raw);
  if (env == nullptr || msg == nullptr) return;  // the environment is going away
  Napi::HandleScope scope(env);
  if (msg->kind == Msg::Progress) {
    if (ctx->progress.IsEmpty()) return;
    try {
      ctx->progress.Call({msg->value(env)});
    } catch (const Napi::Error& e) {
      // A throwing progress listener must not kill the job; report it once on stderr.
      fprintf(stderr, "oneshot-nas: progress listener threw: %s\n", e.Message().c_str());
    }
    return;
  }
  if (ctx->onDone) ctx->onDone();
  if (msg->kind == Msg::Done) {
    try {
      ctx->deferred.Resolve(msg->value(env));
    } catch (...) {
      auto [code, message] = DescribeCurrentException();
      ctx->deferred.Reject(MakeError(env, code, message).Value());
    }
  } else {
    ctx->deferred.Reject(MakeError(env, msg->code, msg->message).Value());
  }
}

using Tsfn = Napi::TypedThreadSafeFunction<JobCtx, Msg, CallJs>;
}  // namespace

Napi::Promise RunOnThread(Napi::Env env, const std::vector<Napi::Object>& keepAlive, Napi::Function onProgress, Work work,
                          std::function<void()> onDone) {
  auto* ctx = new JobCtx(env);
  for (const auto& o : keepAlive) ctx->keepAlive.push_back(Napi::Persistent(o));
  if (!onProgress.IsEmpty() && onProgress.IsFunction()) ctx->progress = Napi::Persistent(onProgress);
  ctx->onDone = std::move(onDone);
  auto promise = ctx->deferred.Promise();
  Tsfn tsfn = Tsfn::New(env, "oneshot-nas job", 0, 1, ctx, [](Napi::Env, void*, JobCtx* c) {
    if (c->thread.joinable()) c->thread.join();  // the thread has already posted its last message
    delete c;
  }, static_cast<void*>(nullptr));
  ctx->thread = std::thread([tsfn, work = std::move(work)]() mutable {
    Emit emit = [&tsfn](ToJs v) { tsfn.BlockingCall(new Msg{Msg::Progress, std::move(v), {}, {}}); };
    Msg* last;
    try {
      last = new Msg{Msg::Done, work(emit), {}, {}};
    } catch (...) {
      auto [code, message] = DescribeCurrentException();
      last = new Msg{Msg::Failed, {}, code, message};
    }
    tsfn.BlockingCall(last);
    tsfn.Release();
  });
  return promise;
}

}  // namespace nasjs
