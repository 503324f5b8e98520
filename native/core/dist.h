// Data-parallel workers on LibTorch's c10d: a store for rendezvous and small messages (store.h's BoundStore served
// by rank 0, or a FileStore on one machine), ProcessGroupGloo for collectives. One ProcessGroup per worker process;
// configured the way torchrun configures workers.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nas {

struct DistConfig {
  int rank = 0;
  int worldSize = 1;
  std::string masterAddr = "127.0.0.1";  // the address rank 0 serves the store on (and only that one)
  int masterPort = 29500;
  // Non-empty: rendezvous through this file (c10d FileStore) instead of the TCP store, so that workers on one machine
  // open no store port at all; Gloo then connects over 127.0.0.1.
  std::string storeFile;
  // The job this worker belongs to (docs/distributed.md#one-job): rank 0 publishes it in the store, and a worker of
  // another job is refused before it takes a rank; empty: no check.
  std::string jobId;
  int64_t timeoutMs = 120000;  // rendezvous, collectives and messages
  int64_t heartbeatMs = 500;   // liveness beat of each worker through the store
  int64_t deadAfterMs = 5000;  // a worker whose beat stalls this long is reported dead
};

// True when this build has c10d Gloo (compiled against gloo headers; Debian: libgloo-dev).
bool distAvailable();

// For tests of the store: runs `ops` against a fresh store served on host:port, `kind` "bound" (store.h) or "tcp"
// (c10d's TCPStore, the reference), with `timeoutMs` for waits. An op is {name, args...}: set k v, get k, add k n,
// cas k expected desired, del k, check k..., num, wait k...; its result is the value, "1"/"0", a count, "" for set
// and wait, or "error" when the op failed (a get or wait that timed out).
std::vector<std::string> runStoreScript(const std::string& kind, const std::string& host, int port, int64_t timeoutMs,
                                        const std::vector<std::vector<std::string>>& ops);

class ProcessGroup {
 public:
  // [blocking] Rendezvous: rank 0 starts the store server; every rank connects and builds the Gloo mesh.
  // Throws ERR_NAS_DIST (cannot connect, timeout) or ERR_NAS_DIST_UNAVAILABLE (built without Gloo).
  explicit ProcessGroup(const DistConfig& cfg);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return cfg_.rank; }
  int worldSize() const { return cfg_.worldSize; }
  const DistConfig& config() const { return cfg_; }

  // In-place sum over all workers of every tensor (same shapes and order on every worker), in flat buckets of at
  // most bucketElems elements per dtype; the buckets' all-reduces are in flight together.
  // On a failed collective throws ERR_NAS_WORKER_LOST naming the worker(s) that stopped beating.
  void allreduceSum(const std::vector<torch::Tensor>& tensors, int64_t bucketElems = int64_t{1} << 22);

  // Every worker contributes `mine` under `tag` (unique per call and the same on every worker); returns the values of
  // all workers in rank order. Small messages through the store, with liveness checks while waiting.
  std::vector<std::string> exchange(const std::string& tag, const std::string& mine);

  void barrier();

  // Names the workers whose heartbeat has stalled (waits up to deadAfterMs for evidence); "" when all beat.
  std::string diagnose();

  // Leaves the group: a final barrier (so rank 0 keeps its store up until everyone is done) and the heartbeat stops.
  void close();

 private:
  struct Impl;
  DistConfig cfg_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nas
