// ProcessGroup: one data-parallel worker's membership in a c10d group (store rendezvous, see core/store.h, +
// ProcessGroupGloo).
//
//   new ProcessGroup({rank, worldSize, masterAddr, masterPort, timeoutMs, deadAfterMs}) [sync, connects nothing]
//   [async] connect(): rendezvous with the other workers (rank 0 serves the store)
//   [async] exchange(tag: string, value: string): string[]   every worker's value, in rank order
//   [async] barrier(); close()   close: a last barrier, then the heartbeat stops
//   [sync]  rank, worldSize (properties)
// A Supernet joins with supernet.setGroup(group) (null leaves). Failures reject with ERR_NAS_WORKER_LOST (naming the
// worker that stopped), ERR_NAS_DIST (rendezvous or timeout), ERR_NAS_DIST_UNAVAILABLE (built without Gloo).
#pragma once
#include <napi.h>

#include <memory>

#include "core/dist.h"
#include "job.h"

namespace nasjs {

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ProcessGroupWrap(const Napi::CallbackInfo& info);
  static ProcessGroupWrap* Unwrap(const Napi::Value& v);  // throws ERR_NAS_BAD_ARG for anything else
  // The connected group; throws ERR_NAS_DIST when connect() has not finished or close() ran.
  std::shared_ptr<nas::ProcessGroup> group() const;

 private:
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Exchange(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Rank(const Napi::CallbackInfo& info);
  Napi::Value WorldSize(const Napi::CallbackInfo& info);
  // [sync] ProcessGroup.storeScript(kind, {host, port, timeoutMs}, ops): core/dist.h runStoreScript, for tests.
  static Napi::Value StoreScript(const Napi::CallbackInfo& info);
  Napi::Promise Start(const Napi::CallbackInfo& info, Work work);

  nas::DistConfig cfg_;
  std::shared_ptr<nas::ProcessGroup> group_;
  JobGate gate_;
};

}  // namespace nasjs
