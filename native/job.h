// Long jobs on a dedicated thread (not libuv's 4-slot pool, which a minutes-long training would starve),
// with progress and completion delivered to the JS thread through one thread-safe function.
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <vector>

namespace nasjs {

// A value produced on the worker thread and turned into JS on the JS thread (it must not capture JS values).
using ToJs = std::function<Napi::Value(Napi::Env)>;
using Emit = std::function<void(ToJs)>;
using Work = std::function<ToJs(const Emit& emit)>;

// [async] Starts `work` on its own thread and returns a Promise for its result. `keepAlive` objects (the owner, the
// datasets) are referenced until the job ends; `onProgress` (may be empty) is called with each emitted value;
// `onDone` runs on the JS thread just before the promise settles (e.g. to clear a busy flag). `abort` (may be null)
// is set when the environment shuts down (env_state.h: StopJobs), which then waits for the thread.
// Native exceptions become rejections with a `code` (see errors.h).
Napi::Promise RunOnThread(Napi::Env env, std::atomic<bool>* abort, const std::vector<Napi::Object>& keepAlive,
                          Napi::Function onProgress, Work work, std::function<void()> onDone);

// One job at a time per native object: `busy` while a job runs, `abort` asks it to stop between steps.
struct JobGate {
  std::atomic<bool> busy{false};
  std::atomic<bool> abort{false};

  // [async] Marks busy and runs `work` on its own thread; `self` and keepAlive are referenced until it ends.
  Napi::Promise Start(Napi::Env env, Napi::Object self, std::vector<Napi::Object> keepAlive, Napi::Function fn,
                      Work work) {
    keepAlive.insert(keepAlive.begin(), self);
    abort = false;
    auto promise = RunOnThread(env, &abort, keepAlive, fn, std::move(work), [this]() { busy = false; });
    busy = true;
    return promise;
  }
};

}  // namespace nasjs
