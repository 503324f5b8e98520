#include "store.h"

#ifdef NAS_WITH_GLOO

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "config.h"
#include "dist.h"

namespace nas {

namespace {
using Clock = std::chrono::steady_clock;
using Frames = std::vector<std::string>;

// A message is a frame count, then each frame as a length and its bytes (lengths big-endian u32). A peer that sends
// more than this in one message is not one of ours: its connection is closed.
constexpr uint32_t kMaxFrames = 1 << 16;
constexpr uint32_t kMaxBytes = 256u << 20;

void putU32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
uint32_t getU32(const std::string& in, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[at + i]);
  return v;
}

std::string encode(const Frames& frames) {
  std::string out;
  putU32(out, static_cast<uint32_t>(frames.size()));
  for (const auto& f : frames) {
    putU32(out, static_cast<uint32_t>(f.size()));
    out += f;
  }
  return out;
}

// Takes one whole message off the front of `buf`: 1 done, 0 incomplete, -1 malformed.
int decode(std::string& buf, Frames* frames) {
  if (buf.size() < 4) return 0;
  const uint32_t n = getU32(buf, 0);
  if (n > kMaxFrames) return -1;
  size_t at = 4;
  Frames out;
  for (uint32_t i = 0; i < n; ++i) {
    if (buf.size() < at + 4) return 0;
    const uint32_t len = getU32(buf, at);
    if (len > kMaxBytes) return -1;
    if (buf.size() < at + 4 + len) return 0;
    out.emplace_back(buf, at + 4, len);
    at += 4 + len;
  }
  buf.erase(0, at);
  *frames = std::move(out);
  return 1;
}

bool sendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t k = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    sent += static_cast<size_t>(k);
  }
  return true;
}

struct AddrInfo {
  addrinfo* list = nullptr;
  AddrInfo(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
    if (rc != 0)
      throw NasException("ERR_NAS_DIST", "cannot resolve the store address " + host + ": " + ::gai_strerror(rc));
  }
  ~AddrInfo() {
    if (list != nullptr) ::freeaddrinfo(list);
  }
};

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
}  // namespace

// The server: one thread that owns the key-value map. A get or wait for keys not there yet is parked and answered
// when a later set, add or compare-and-set brings them.
class StoreServer {
 public:
  StoreServer(const std::string& host, int port) {
    AddrInfo ai(host, port);
    std::string why = "no address";
    for (addrinfo* a = ai.list; a != nullptr && listen_ < 0; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
        listen_ = fd;
      } else {
        why = std::strerror(errno);
        ::close(fd);
      }
    }
    if (listen_ < 0) {
      throw NasException("ERR_NAS_DIST",
                         "worker 0 cannot serve the store on " + host + ":" + std::to_string(port) + " (" + why +
                             "); --master-addr must be an address of worker 0's machine, and the port free");
    }
    if (::pipe2(wake_, O_CLOEXEC) != 0) {
      ::close(listen_);
      throw NasException("ERR_NAS_DIST", std::string("cannot start the store: ") + std::strerror(errno));
    }
    thread_ = std::thread([this]() { run(); });
  }

  ~StoreServer() {
    const char x = 1;
    (void)!::write(wake_[1], &x, 1);
    thread_.join();
    for (auto& c : conns_) ::close(c.first);
    ::close(listen_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }

 private:
  struct Conn {
    std::string in;
  };
  struct Parked {
    int fd;
    Frames request;
  };

  void run() {
    for (;;) {
      std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_, POLLIN, 0}};
      for (auto& c : conns_) fds.push_back({c.first, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;  // the destructor asks to stop
      if (fds[1].revents & POLLIN) {
        const int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          setNoDelay(fd);
          timeval t{10, 0};  // a client that stops reading does not hold the server for longer
          ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
          conns_[fd] = Conn{};
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents != 0) readFrom(fds[i].fd);
      }
    }
  }

  void readFrom(int fd) {
    char buf[65536];
    const ssize_t k = ::recv(fd, buf, sizeof buf, 0);
    if (k <= 0) return drop(fd);
    Conn& c = conns_[fd];
    c.in.append(buf, static_cast<size_t>(k));
    Frames req;
    int got;
    while ((got = decode(c.in, &req)) == 1) {
      if (!handle(fd, req)) return drop(fd);
    }
    if (got < 0) drop(fd);
  }

  void drop(int fd) {
    ::close(fd);
    conns_.erase(fd);
    parked_.erase(std::remove_if(parked_.begin(), parked_.end(), [fd](const Parked& p) { return p.fd == fd; }),
                  parked_.end());
  }

  bool reply(int fd, const Frames& frames) { return sendAll(fd, encode(frames)); }

  bool has(const Frames& req, size_t from) const {
    for (size_t i = from; i < req.size(); ++i) {
      if (data_.count(req[i]) == 0) return false;
    }
    return true;
  }

  // Answers one request (or parks it); false closes the connection (malformed, or the reply could not be sent).
  bool handle(int fd, const Frames& req) {
    if (req.empty() || req[0].size() != 1) return false;
    const char op = req[0][0];
    auto need = [&](size_t n) { return req.size() == n; };
    bool changed = false;
    bool ok = true;
    switch (op) {
      case 's':  // set key value
        if (!need(3)) return false;
        data_[req[1]] = req[2];
        changed = true;
        ok = reply(fd, {"ok"});
        break;
      case 'g':  // get key (waits)
      case 'w':  // wait key...
        if ((op == 'g' && !need(2)) || req.size() < 2) return false;
        if (!has(req, 1)) {
          parked_.push_back({fd, req});
          return true;
        }
        ok = op == 'g' ? reply(fd, {"ok", data_[req[1]]}) : reply(fd, {"ok"});
        break;
      case 'a': {  // add key delta
        if (!need(3)) return false;
        const auto it = data_.find(req[1]);
        const int64_t v = (it == data_.end() ? 0 : std::strtoll(it->second.c_str(), nullptr, 10)) +
                          std::strtoll(req[2].c_str(), nullptr, 10);
        data_[req[1]] = std::to_string(v);
        changed = true;
        ok = reply(fd, {"ok", std::to_string(v)});
        break;
      }
      case 'c': {  // compare-and-set key expected desired: c10d's TCPStore semantics
        if (!need(4)) return false;
        const auto it = data_.find(req[1]);
        std::string now;
        if (it == data_.end()) {
          if (req[2].empty())
            data_[req[1]] = now = req[3], changed = true;
          else
            now = req[2];
        } else {
          if (it->second == req[2]) it->second = req[3], changed = true;
          now = it->second;
        }
        ok = reply(fd, {"ok", now});
        break;
      }
      case 'd':  // delete key
        if (!need(2)) return false;
        ok = reply(fd, {"ok", data_.erase(req[1]) > 0 ? "1" : "0"});
        break;
      case 'k':  // check key...
        ok = reply(fd, {"ok", has(req, 1) ? "1" : "0"});
        break;
      case 'n':  // number of keys
        ok = reply(fd, {"ok", std::to_string(data_.size())});
        break;
      default: return false;
    }
    if (changed) answerParked();
    return ok;
  }

  void answerParked() {
    std::vector<Parked> still, ready;
    for (auto& p : parked_) (has(p.request, 1) ? ready : still).push_back(std::move(p));
    parked_ = std::move(still);
    for (const auto& p : ready) {
      const bool sent = p.request[0] == "g" ? reply(p.fd, {"ok", data_[p.request[1]]}) : reply(p.fd, {"ok"});
      if (!sent) drop(p.fd);
    }
  }

  int listen_ = -1;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  std::map<std::string, std::string> data_;
  std::map<int, Conn> conns_;
  std::vector<Parked> parked_;
};

BoundStore::BoundStore(const std::string& host, int port, bool serve, std::chrono::milliseconds timeout)
    : c10d::Store(timeout), host_(host), port_(port) {
  if (serve) server_ = std::make_shared<StoreServer>(host, port);
  std::lock_guard<std::mutex> lock(mu_);
  call({"n"}, timeout);  // connects (retrying until the timeout) and checks that a store answers
}

BoundStore::~BoundStore() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> BoundStore::call(const std::vector<std::string>& request, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string where = host_ + ":" + std::to_string(port_);
  auto fail = [&](const std::string& why) {
    if (fd_ >= 0) ::close(fd_);  // a late reply must not be read as the next one's
    fd_ = -1;
    TORCH_CHECK(false, "store at " + where + ": " + why);
  };
  while (fd_ < 0) {
    AddrInfo ai(host_, port_);
    for (addrinfo* a = ai.list; a != nullptr && fd_ < 0; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        setNoDelay(fd);
        fd_ = fd;
      } else {
        ::close(fd);
      }
    }
    if (fd_ >= 0) break;
    if (Clock::now() >= deadline) fail("no store answers (timeout)");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!sendAll(fd_, encode(request))) fail(std::string("connection lost (") + std::strerror(errno) + ")");
  std::string in;
  Frames reply;
  for (;;) {
    const int got = decode(in, &reply);
    if (got > 0) break;
    if (got < 0) fail("malformed reply");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) fail("timeout");
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    char buf[65536];
    const ssize_t k = ::recv(fd_, buf, sizeof buf, 0);
    if (k <= 0) fail("connection closed (is worker 0 still running?)");
    in.append(buf, static_cast<size_t>(k));
  }
  if (reply.empty() || reply[0] != "ok") fail("unexpected reply");
  return reply;
}

void BoundStore::set(const std::string& key, const std::vector<uint8_t>& value) {
  std::lock_guard<std::mutex> lock(mu_);
  call({"s", key, fromBytes(value)}, timeout_);
}

std::vector<uint8_t> BoundStore::compareSet(const std::string& key, const std::vector<uint8_t>& expected,
                                            const std::vector<uint8_t>& desired) {
  std::lock_guard<std::mutex> lock(mu_);
  return toBytes(call({"c", key, fromBytes(expected), fromBytes(desired)}, timeout_).at(1));
}

std::vector<uint8_t> BoundStore::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return toBytes(call({"g", key}, timeout_).at(1));
}

int64_t BoundStore::add(const std::string& key, int64_t value) {
  std::lock_guard<std::mutex> lock(mu_);
  return std::stoll(call({"a", key, std::to_string(value)}, timeout_).at(1));
}

bool BoundStore::deleteKey(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return call({"d", key}, timeout_).at(1) == "1";
}

bool BoundStore::check(const std::vector<std::string>& keys) {
  Frames req{"k"};
  req.insert(req.end(), keys.begin(), keys.end());
  std::lock_guard<std::mutex> lock(mu_);
  return call(req, timeout_).at(1) == "1";
}

int64_t BoundStore::getNumKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::stoll(call({"n"}, timeout_).at(1));
}

void BoundStore::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

void BoundStore::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  if (keys.empty()) return;
  Frames req{"w"};
  req.insert(req.end(), keys.begin(), keys.end());
  std::lock_guard<std::mutex> lock(mu_);
  call(req, timeout);
}

c10::intrusive_ptr<c10d::Store> BoundStore::clone() {
  return c10::make_intrusive<BoundStore>(host_, port_, false, timeout_);
}

std::vector<std::string> runStoreScript(const std::string& kind, const std::string& host, int port, int64_t timeoutMs,
                                        const std::vector<std::vector<std::string>>& ops) {
  const std::chrono::milliseconds timeout(timeoutMs);
  c10::intrusive_ptr<c10d::Store> store;
  if (kind == "tcp") {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(port);
    o.isServer = true;
    o.waitWorkers = false;
    o.timeout = std::chrono::seconds(5);  // to connect (1.13 counts this one in whole seconds)
    store = c10::make_intrusive<c10d::TCPStore>(host, o);
  } else {
    store = c10::make_intrusive<BoundStore>(host, port, true, std::chrono::seconds(5));
  }
  store->setTimeout(timeout);
  std::vector<std::string> out;
  for (const auto& op : ops) {
    const std::vector<std::string> args(op.begin() + (op.empty() ? 0 : 1), op.end());
    const std::string name = op.empty() ? "" : op[0];
    try {
      if (name == "set")
        store->set(args.at(0), toBytes(args.at(1))), out.push_back("");
      else if (name == "get")
        out.push_back(fromBytes(store->get(args.at(0))));
      else if (name == "add")
        out.push_back(std::to_string(store->add(args.at(0), std::stoll(args.at(1)))));
      else if (name == "cas")
        out.push_back(fromBytes(store->compareSet(args.at(0), toBytes(args.at(1)), toBytes(args.at(2)))));
      else if (name == "del")
        out.push_back(store->deleteKey(args.at(0)) ? "1" : "0");
      else if (name == "check")
        out.push_back(store->check(args) ? "1" : "0");
      else if (name == "num")
        out.push_back(std::to_string(store->getNumKeys()));
      else if (name == "wait")
        store->wait(args, timeout), out.push_back("");
      else
        throw NasException("ERR_NAS_BAD_ARG", "store op: unknown '" + name + "'");
    } catch (const NasException&) {
      throw;
    } catch (const std::exception&) {
      out.push_back("error");
    }
  }
  return out;
}

}  // namespace nas

#endif  // NAS_WITH_GLOO
