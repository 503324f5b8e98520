// Per-environment state. Node runs the addon once per environment: the main thread and every worker thread that
// loads it. Everything tied to one environment (class constructors, the jobs it started) lives in that environment's
// N-API instance data, never in a global, so that workers run side by side and one exiting leaves the others intact.
#pragma once
#include <napi.h>

#include <unordered_set>

namespace nasjs {

struct JobCtx;  // job.cc: one running job (its thread, its promise)

struct EnvState {
  Napi::FunctionReference datasetCtor, groupCtor;  // for InstanceOf checks of this environment's objects
  std::unordered_set<JobCtx*> jobs;                // started and not yet finalized; touched on the JS thread only
  bool stopping = false;                           // StopJobs ran: no new job starts
};

// [sync] Creates this environment's state and registers the cleanup hook that stops its jobs when it is torn down
// (a worker exiting or terminated, or the main thread ending). Call once, from the module's Init.
void InitEnvState(Napi::Env env);
EnvState& State(Napi::Env env);

// [sync] Asks every running job of this environment to stop, then waits for their threads (a job stops between
// steps or batches). Afterwards nothing of this environment runs LibTorch, and no new job starts. Idempotent.
// Runs from the environment cleanup hook and from `shutdown()` (src/native/binding.ts calls it on process 'exit':
// process.exit() runs exit handlers and static destructors, not environment cleanup hooks, on the main thread).
void StopJobs(EnvState& state);

}  // namespace nasjs
