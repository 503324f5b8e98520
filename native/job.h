// Long jobs on a dedicated thread (not libuv's 4-slot pool, which a minutes-long training would starve),
// with progress and completion delivered to the JS thread through one thread-safe function.
#pragma once
#include <napi.h>

#include <functional>
#include <vector>

namespace nasjs {

// A value produced on the worker thread and turned into JS on the JS thread (it must not capture JS values).
using ToJs = std::function<Napi::Value(Napi::Env)>;
using Emit = std::function<void(ToJs)>;
using Work = std::function<ToJs(const Emit& emit)>;

// [async] Starts `work` on its own thread and returns a Promise for its result. `keepAlive` objects (the owner, the
// datasets) are referenced until the job ends; `onProgress` (may be empty) is called with each emitted value;
// `onDone` runs on the JS thread just before the promise settles (e.g. to clear a busy flag).
// Native exceptions become rejections with a `code` (see errors.h).
Napi::Promise RunOnThread(Napi::Env env, const std::vector<Napi::Object>& keepAlive, Napi::Function onProgress, Work work,
                          std::function<void()> onDone);

}  // namespace nasjs
