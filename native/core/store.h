// The rendezvous store of data-parallel workers across machines: a c10d::Store whose server listens on exactly the
// address it is given (--master-addr), never on every interface. LibTorch 1.13's TCPStore has no bind address, so
// its server was reachable on every address of rank 0's machine. Clients and server speak a small framed protocol
// of their own (store.cc); the store has no authentication: it belongs on a trusted network (docs/distributed.md,
// "Trust").
#pragma once
#ifdef NAS_WITH_GLOO

#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace nas {

class StoreServer;  // store.cc: the listening thread and the key-value map

// A store value from text and back (c10d stores hold bytes).
inline std::vector<uint8_t> toBytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
inline std::string fromBytes(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

class BoundStore : public c10d::Store {
 public:
  // With `serve`, first starts a server bound to host:port (host resolved to one address; ERR_NAS_DIST naming it
  // when that address is not this machine's or the port is taken). Then connects a client to host:port, retrying
  // until `timeout` (the server may start later than this worker).
  BoundStore(const std::string& host, int port, bool serve, std::chrono::milliseconds timeout);
  ~BoundStore() override;

  void set(const std::string& key, const std::vector<uint8_t>& value) override;
  std::vector<uint8_t> compareSet(const std::string& key, const std::vector<uint8_t>& expected,
                                  const std::vector<uint8_t>& desired) override;
  std::vector<uint8_t> get(const std::string& key) override;  // waits for the key up to the timeout
  int64_t add(const std::string& key, int64_t value) override;
  bool deleteKey(const std::string& key) override;
  bool check(const std::vector<std::string>& keys) override;
  int64_t getNumKeys() override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;
  // A second client of the same server (newer LibTorch declares this pure virtual; older ones have no clone, and
  // there it is a plain member).
  c10::intrusive_ptr<c10d::Store> clone();

 private:
  // One request and its reply (frames), under the client's lock; throws c10::Error on a timeout or a closed link.
  std::vector<std::string> call(const std::vector<std::string>& request, std::chrono::milliseconds timeout);

  std::string host_;
  int port_;
  std::shared_ptr<StoreServer> server_;  // rank 0's store only
  int fd_ = -1;
  std::mutex mu_;
};

}  // namespace nas

#endif  // NAS_WITH_GLOO
