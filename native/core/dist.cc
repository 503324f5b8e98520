#include "dist.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "brief.h"
#include "config.h"
#include "store.h"

#ifdef NAS_WITH_GLOO
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

namespace nas {

#ifdef NAS_WITH_GLOO

bool distAvailable() { return true; }

namespace {
using Clock = std::chrono::steady_clock;

std::string beatKey(int r) { return "nas/hb/" + std::to_string(r); }
// Worker r's last heartbeat counter ("" before its first beat).
std::string beatOf(c10d::Store& store, int r) {
  const std::string k = beatKey(r);
  return store.check({k}) ? fromBytes(store.get(k)) : std::string();
}

// Where the group meets, for messages.
std::string where(const DistConfig& c) {
  return c.storeFile.empty() ? c.masterAddr + ":" + std::to_string(c.masterPort) : c.storeFile;
}

bool isLoopback(const std::string& a) { return a == "localhost" || a.rfind("127.", 0) == 0 || a == "::1"; }

// The group's store: a FileStore with storeFile (one machine), else a BoundStore served by rank 0 on exactly
// masterAddr (store.h). `counted`: returns once every worker has arrived (each sets its key, then waits for all;
// waiting reads, it writes nothing).
c10::intrusive_ptr<c10d::Store> connectStore(const DistConfig& c, bool server, bool counted) {
  const std::chrono::milliseconds timeout(c.timeoutMs);
  c10::intrusive_ptr<c10d::Store> store;
  if (!c.storeFile.empty()) {
    // numWorkers -1: no worker removes the file (two instances per worker would count wrong); the launcher that
    // made its private folder removes it.
    store = c10::make_intrusive<c10d::FileStore>(c.storeFile, -1);
    store->setTimeout(timeout);
  } else {
    store = c10::make_intrusive<BoundStore>(c.masterAddr, c.masterPort, server, timeout);
  }
  if (counted) {
    // One job per store (docs/distributed.md#one-job). Rank 0 publishes its job id first; every other worker reads it
    // before it writes anything, so a worker of another job leaves the group untouched.
    if (server) {
      store->set("nas/job", toBytes(c.jobId));
    } else {
      store->wait({"nas/job"}, timeout);
      const std::string theirs = fromBytes(store->get("nas/job"));
      if (theirs != c.jobId)
        throw NasException("ERR_NAS_DIST", "worker " + std::to_string(c.rank) + " is of job '" + c.jobId +
                                               "', but the group at " + where(c) + " is job '" + theirs +
                                               "': another job's worker 0 is there. Give each job its own " +
                                               "--master-port (or the same --job-id to workers of one job)");
    }
    // Each rank is taken once: a second worker with a rank already in the group (a restarted or stray worker) would
    // otherwise replace the first in the rendezvous and hang in Gloo's.
    if (store->add("nas/rank/" + std::to_string(c.rank), 1) != 1)
      throw NasException("ERR_NAS_DIST", "rank " + std::to_string(c.rank) + " of job '" + c.jobId +
                                             "' has already joined the group at " + where(c) +
                                             ": another worker was started with the same rank");
    store->set("nas/joined/" + std::to_string(c.rank), toBytes("1"));
    std::vector<std::string> all;
    for (int r = 0; r < c.worldSize; ++r) all.push_back("nas/joined/" + std::to_string(r));
    store->wait(all, timeout);
  }
  return store;
}
}  // namespace

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;      // this thread's client (TCP: rank 0 also serves it)
  c10::intrusive_ptr<c10d::Store> beatStore;  // the heartbeat thread's own client
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::thread beat;
  std::recursive_mutex storeMu;  // `store` is used by one thread at a time (exchange, diagnose)
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool closed = false;

  void stopBeat() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (beat.joinable()) beat.join();
  }
};

ProcessGroup::ProcessGroup(const DistConfig& cfg) : cfg_(cfg), impl_(std::make_unique<Impl>()) {
  auto need = [](bool ok, const std::string& field, const std::string& what, const std::string& got) {
    if (!ok) throw NasException("ERR_NAS_BAD_CONFIG", field + ": expected " + what + ", got " + got);
  };
  need(cfg.worldSize >= 1, "worldSize", "a positive integer", std::to_string(cfg.worldSize));
  need(cfg.rank >= 0 && cfg.rank < cfg.worldSize, "rank", "an integer in 0.." + std::to_string(cfg.worldSize - 1),
       std::to_string(cfg.rank));
  need(cfg.masterPort > 0 && cfg.masterPort < 65536, "masterPort", "a TCP port (1..65535)",
       std::to_string(cfg.masterPort));
  need(cfg.timeoutMs > 0, "timeoutMs", "a positive number", std::to_string(cfg.timeoutMs));
  try {
    impl_->store = connectStore(cfg, cfg.rank == 0, true);
    impl_->beatStore = connectStore(cfg, false, false);
    auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(cfg.timeoutMs));
    if (isLoopback(cfg.masterAddr) || !cfg.storeFile.empty()) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("nas/gloo", impl_->store);
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, cfg.rank, cfg.worldSize, opts);
  } catch (const NasException&) {
    throw;
  } catch (const std::exception& e) {
    throw NasException(
        "ERR_NAS_DIST",
        "worker " + std::to_string(cfg.rank) + " of " + std::to_string(cfg.worldSize) +
            " could not join the group at " + where(cfg) + " within " + std::to_string(cfg.timeoutMs / 1000) +
            " s (--dist-timeout): " + briefError(e) +
            (cfg.storeFile.empty() ? "; are the other workers started, with the same --master-addr and --master-port?"
                                   : "; are the other workers started, with the same store file?"));
  }
  impl_->beat = std::thread([this]() {
    Impl& im = *impl_;
    int64_t n = 0;
    std::unique_lock<std::mutex> lock(im.mu);
    while (!im.stop) {
      lock.unlock();
      try {
        im.beatStore->set(beatKey(cfg_.rank), toBytes(std::to_string(++n)));
      } catch (...) {
        // The store is gone (rank 0 died): the next collective or message reports it.
      }
      lock.lock();
      im.cv.wait_for(lock, std::chrono::milliseconds(cfg_.heartbeatMs), [&]() { return im.stop; });
    }
  });
}

ProcessGroup::~ProcessGroup() { impl_->stopBeat(); }

std::string ProcessGroup::diagnose() {
  std::lock_guard<std::recursive_mutex> lock(impl_->storeMu);
  auto& store = *impl_->store;
  const int W = cfg_.worldSize;
  std::vector<std::string> first(W);
  std::vector<bool> alive(W, false);
  alive[cfg_.rank] = true;
  try {
    for (int r = 0; r < W; ++r) first[r] = beatOf(store, r);
    const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.deadAfterMs);
    for (;;) {
      bool all = true;
      for (int r = 0; r < W; ++r) {
        if (alive[r]) continue;
        const std::string v = beatOf(store, r);
        if (!v.empty() && v != first[r]) alive[r] = true;
        all = all && alive[r];
      }
      if (all || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(cfg_.heartbeatMs / 2 + 1));
    }
  } catch (const std::exception&) {
    if (cfg_.rank != 0) {
      return "worker 0 (it hosts the store at " + cfg_.masterAddr + ":" + std::to_string(cfg_.masterPort) +
             ") is unreachable";
    }
  }
  std::string dead;
  for (int r = 0; r < W; ++r) {
    if (!alive[r]) dead += (dead.empty() ? "" : ", ") + std::to_string(r);
  }
  if (dead.empty()) return "";
  return (dead.find(',') == std::string::npos ? "worker " : "workers ") + dead +
         " stopped responding (no heartbeat for " + std::to_string(cfg_.deadAfterMs) + " ms)";
}

namespace {
[[noreturn]] void lost(ProcessGroup& g, const std::string& what, const std::string& detail) {
  std::string who = g.diagnose();
  if (who.empty()) who = "no worker is known to be dead";
  throw NasException("ERR_NAS_WORKER_LOST",
                     "worker " + std::to_string(g.rank()) + ": " + what + " failed: " + who + " (" + detail + ")");
}
}  // namespace

void ProcessGroup::allreduceSum(const std::vector<torch::Tensor>& tensors, int64_t bucketElems) {
  if (cfg_.worldSize == 1 || tensors.empty()) return;
  torch::NoGradGuard ng;
  struct Bucket {
    std::vector<size_t> members;
    int64_t elems = 0;
    torch::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    Bucket* b = nullptr;
    for (auto& c : buckets) {
      const auto& head = tensors[c.members[0]];
      if (head.scalar_type() == t.scalar_type() && head.device() == t.device() && c.elems + t.numel() <= bucketElems)
        b = &c;
    }
    if (!b) {
      buckets.emplace_back();
      b = &buckets.back();
    }
    b->members.push_back(i);
    b->elems += t.numel();
  }
  try {
    for (auto& b : buckets) {
      std::vector<torch::Tensor> parts;
      for (size_t m : b.members) parts.push_back(tensors[m].reshape({-1}));
      b.flat = parts.size() == 1 ? parts[0].clone() : torch::cat(parts);
      std::vector<torch::Tensor> io{b.flat};
      b.work = impl_->pg->allreduce(io);
    }
    for (auto& b : buckets) b.work->wait();
  } catch (const NasException&) {
    throw;
  } catch (const std::exception& e) {
    lost(*this, "all-reduce", briefError(e));
  }
  for (auto& b : buckets) {
    int64_t at = 0;
    for (size_t m : b.members) {
      const auto& t = tensors[m];
      t.copy_(b.flat.narrow(0, at, t.numel()).view(t.sizes()));
      at += t.numel();
    }
  }
}

std::vector<std::string> ProcessGroup::exchange(const std::string& tag, const std::string& mine) {
  const int W = cfg_.worldSize;
  if (W == 1) return {mine};
  std::lock_guard<std::recursive_mutex> lock(impl_->storeMu);
  auto& store = *impl_->store;
  auto key = [&](int r) { return "nas/x/" + tag + "/" + std::to_string(r); };
  std::vector<std::string> out(W);
  try {
    store.set(key(cfg_.rank), toBytes(mine));
    out[cfg_.rank] = mine;
    const auto start = Clock::now();
    std::vector<std::string> beat(W);
    std::vector<Clock::time_point> beatSeen(W, start);
    for (int r = 0; r < W; ++r) {
      if (r == cfg_.rank) continue;
      const std::string k = key(r);
      for (;;) {
        if (store.check({k})) {
          out[r] = fromBytes(store.get(k));
          break;
        }
        const auto now = Clock::now();
        const std::string b = beatOf(store, r);
        if (b != beat[r]) {
          beat[r] = b;
          beatSeen[r] = now;
        } else if (now - beatSeen[r] > std::chrono::milliseconds(cfg_.deadAfterMs)) {
          throw NasException("ERR_NAS_WORKER_LOST", "worker " + std::to_string(cfg_.rank) + ": waiting for worker " +
                                                        std::to_string(r) + " (" + tag + "): worker " +
                                                        std::to_string(r) + " stopped responding (no heartbeat for " +
                                                        std::to_string(cfg_.deadAfterMs) + " ms)");
        }
        if (now - start > std::chrono::milliseconds(cfg_.timeoutMs)) {
          throw NasException("ERR_NAS_DIST", "worker " + std::to_string(cfg_.rank) + ": worker " + std::to_string(r) +
                                                 " is alive but sent nothing for " + tag + " within " +
                                                 std::to_string(cfg_.timeoutMs) + " ms (timeoutMs)");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  } catch (const NasException&) {
    throw;
  } catch (const std::exception& e) {
    if (cfg_.rank == 0) lost(*this, "message exchange", briefError(e));
    throw NasException("ERR_NAS_WORKER_LOST",
                       "worker " + std::to_string(cfg_.rank) + ": worker 0 (it hosts the store at " + cfg_.masterAddr +
                           ":" + std::to_string(cfg_.masterPort) + ") is unreachable (" + briefError(e) + ")");
  }
  return out;
}

void ProcessGroup::barrier() {
  if (cfg_.worldSize == 1) return;
  try {
    impl_->pg->barrier()->wait();
  } catch (const std::exception& e) {
    lost(*this, "barrier", briefError(e));
  }
}

void ProcessGroup::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  barrier();
  impl_->stopBeat();
}

#else  // built without gloo headers

bool distAvailable() { return false; }

std::vector<std::string> runStoreScript(const std::string&, const std::string&, int, int64_t,
                                        const std::vector<std::vector<std::string> >&) {
  throw NasException("ERR_NAS_DIST_UNAVAILABLE", "this build of the addon has no c10d Gloo");
}

struct ProcessGroup::Impl {};

ProcessGroup::ProcessGroup(const DistConfig& cfg) : cfg_(cfg) {
  throw NasException("ERR_NAS_DIST_UNAVAILABLE",
                     "this build of the addon has no c10d Gloo (its gloo headers were missing at build time): install "
                     "libgloo-dev (Debian) and rebuild with `npm run build:native`");
}
ProcessGroup::~ProcessGroup() = default;
void ProcessGroup::allreduceSum(const std::vector<torch::Tensor>&, int64_t) {}
std::vector<std::string> ProcessGroup::exchange(const std::string&, const std::string& mine) { return {mine}; }
void ProcessGroup::barrier() {}
std::string ProcessGroup::diagnose() { return ""; }
void ProcessGroup::close() {}

#endif

}  // namespace nas
