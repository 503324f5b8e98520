#include "job.h"

#include <thread>

#include "env_state.h"
#include "errors.h"

namespace nasjs {

struct Msg {
  enum Kind { Progress, Done, Failed } kind;
  ToJs value;
  std::string code, message;
};

struct JobCtx {
  JobCtx(Napi::Env env, EnvState* s, std::atomic<bool>* a)
      : deferred(Napi::Promise::Deferred::New(env)), state(s), abort(a) {}
  Napi::Promise::Deferred deferred;
  std::vector<Napi::ObjectReference> keepAlive;
  Napi::FunctionReference progress;
  std::function<void()> onDone;
  std::thread thread;
  EnvState* state;
  std::atomic<bool>* abort;  // the owner's stop flag (it outlives the job: keepAlive holds the owner)
};

namespace {
void CallJs(Napi::Env env, Napi::Function, JobCtx* ctx, Msg* raw) {
  std::unique_ptr<Msg> msg(raw);
  // The environment is going away (nullptr), or is stopping (StopJobs ran on its 'exit' or teardown): JavaScript
  // can no longer be called, and even making an Error value there is fatal.
  if (env == nullptr || msg == nullptr || ctx->state->stopping) return;
  Napi::HandleScope scope(env);
  if (msg->kind == Msg::Progress) {
    if (ctx->progress.IsEmpty()) return;
    // The C call, not Napi's: a listener that ends the environment (process.exit() inside a worker) returns here
    // with a termination pending, where Napi's wrapper would try to build an Error and abort the process.
    napi_value arg = msg->value(env), result;
    if (napi_call_function(env, env.Undefined(), ctx->progress.Value(), 1, &arg, &result) != napi_ok) {
      bool pending = false;
      napi_value exception;
      if (ctx->state->stopping || napi_is_exception_pending(env, &pending) != napi_ok || !pending ||
          napi_get_and_clear_last_exception(env, &exception) != napi_ok) {
        return;
      }
      // A throwing progress listener must not kill the job; report it on stderr.
      napi_value text;
      size_t len = 0;
      char buf[512] = "";
      if (napi_coerce_to_string(env, exception, &text) == napi_ok)
        napi_get_value_string_utf8(env, text, buf, sizeof buf, &len);
      fprintf(stderr, "oneshot-nas: progress listener threw: %s\n", buf);
    }
    return;
  }
  if (ctx->state->stopping) return;  // a listener above ended the environment
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

// Posts msg to the JS thread; when the environment is closing the call is refused and the message is dropped.
void Post(Tsfn& tsfn, Msg* msg) {
  if (tsfn.BlockingCall(msg) != napi_ok) delete msg;
}

void Join(JobCtx* c) {
  if (c->thread.joinable() && c->thread.get_id() != std::this_thread::get_id()) c->thread.join();
}
}  // namespace

Napi::Promise RunOnThread(Napi::Env env, std::atomic<bool>* abort, const std::vector<Napi::Object>& keepAlive,
                          Napi::Function onProgress, Work work, std::function<void()> onDone) {
  EnvState& state = State(env);
  if (state.stopping) {
    throw nas::NasException("ERR_NAS_DISPOSED", "the JavaScript environment is shutting down; no new job starts");
  }
  auto* ctx = new JobCtx(env, &state, abort);
  for (const auto& o : keepAlive) ctx->keepAlive.push_back(Napi::Persistent(o));
  if (!onProgress.IsEmpty() && onProgress.IsFunction()) ctx->progress = Napi::Persistent(onProgress);
  ctx->onDone = std::move(onDone);
  auto promise = ctx->deferred.Promise();
  Tsfn tsfn = Tsfn::New(
      env, "oneshot-nas job", 0, 1, ctx,
      [](Napi::Env, void*, JobCtx* c) {
        c->state->jobs.erase(c);
        Join(c);  // the thread has already posted its last message
        delete c;
      },
      static_cast<void*>(nullptr));
  state.jobs.insert(ctx);
  ctx->thread = std::thread([tsfn, work = std::move(work)]() mutable {
    Emit emit = [&tsfn](ToJs v) { Post(tsfn, new Msg{Msg::Progress, std::move(v), {}, {}}); };
    Msg* last;
    try {
      last = new Msg{Msg::Done, work(emit), {}, {}};
    } catch (...) {
      auto [code, message] = DescribeCurrentException();
      last = new Msg{Msg::Failed, {}, code, message};
    }
    Post(tsfn, last);
    tsfn.Release();
  });
  return promise;
}

namespace {
void Cleanup(void* data) { StopJobs(*static_cast<EnvState*>(data)); }
}  // namespace

void InitEnvState(Napi::Env env) {
  auto* state = new EnvState();
  env.SetInstanceData<EnvState>(state);  // deleted with the environment, after the cleanup hook
  napi_add_env_cleanup_hook(env, Cleanup, state);
}

EnvState& State(Napi::Env env) {
  auto* s = env.GetInstanceData<EnvState>();
  if (s == nullptr) throw nas::NasException("ERR_NAS_INTERNAL", "the addon was not initialised in this environment");
  return *s;
}

void StopJobs(EnvState& state) {
  state.stopping = true;
  for (JobCtx* c : state.jobs) {
    if (c->abort != nullptr) *c->abort = true;
  }
  for (JobCtx* c : state.jobs) Join(c);
}

}  // namespace nasjs
