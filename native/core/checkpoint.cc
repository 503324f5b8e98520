// Trainer::save / load: one file holding parameters, momentum, step, data order, RNG state and the caller's JSON meta.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "archive.h"
#include "trainer.h"

namespace nas {

namespace {
constexpr int64_t kFormatVersion = 1;
}  // namespace

torch::Tensor bytesTensor(const std::string& s) {
  return torch::from_blob(const_cast<char*>(s.data()), {static_cast<int64_t>(s.size())}, torch::kUInt8).clone();
}
std::string tensorBytes(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kCPU);
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), c.numel());
}

void writeAtomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw NasException("ERR_NAS_IO", "cannot write checkpoint " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw NasException("ERR_NAS_IO", "cannot write checkpoint " + tmp + ": " + err);
    }
    off += static_cast<size_t>(w);
  }
  // fsync before rename: after a crash the file is either the old checkpoint or the complete new one.
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw NasException("ERR_NAS_IO", "cannot flush checkpoint " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw NasException("ERR_NAS_IO", "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
}

torch::serialize::InputArchive openArchive(const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    throw NasException("ERR_NAS_IO", "cannot read checkpoint " + path + ": " + std::strerror(errno));
  }
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path, torch::Device(torch::kCPU));
  } catch (const c10::Error& e) {
    throw NasException("ERR_NAS_CHECKPOINT",
                       path + " is not a oneshot-nas checkpoint (" + e.what_without_backtrace() + ")");
  } catch (const std::exception& e) {
    throw NasException("ERR_NAS_CHECKPOINT",
                       path + " is not a oneshot-nas checkpoint or is damaged (" + e.what() + ")");
  }
  return ar;
}

namespace {
int64_t checksum(const torch::Tensor& t) {
  auto c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  int64_t out;
  std::memcpy(&out, &h, sizeof out);
  return out;
}
}  // namespace

void writeKey(torch::serialize::OutputArchive& ar, const std::string& key, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  ar.write(key, c);
  ar.write("checksum/" + key, torch::tensor({checksum(c)}, torch::kInt64));
}

torch::Tensor readKey(torch::serialize::InputArchive& ar, const std::string& key, const std::string& path) {
  torch::Tensor t, sum;
  bool summed = false;
  // A damaged archive fails inside LibTorch in more than one way (c10::Error, std::out_of_range from a lookup of a
  // mangled name): every one is this file's entry that cannot be read.
  try {
    ar.read(key, t);
    summed = ar.try_read("checksum/" + key, sum);
  } catch (const c10::Error&) {
    throw NasException("ERR_NAS_CHECKPOINT", path + ": missing entry '" + key + "'");
  } catch (const std::exception& e) {
    throw NasException("ERR_NAS_CHECKPOINT",
                       path + ": entry '" + key + "' cannot be read (" + e.what() + "); the file is damaged");
  }
  if (summed && sum.numel() == 1 && sum.item<int64_t>() != checksum(t)) {
    throw NasException("ERR_NAS_CHECKPOINT",
                       path + ": entry '" + key +
                           "' is damaged (its bytes do not match the checksum written with it); " +
                           "use an older copy of the file or start the run again");
  }
  return t;
}

void writeLoopState(torch::serialize::OutputArchive& ar, int64_t step, const EpochSampler& sampler, const Rng& rng) {
  std::vector<int64_t> state{step, sampler.epoch, sampler.cursor};
  for (auto w : rng.state()) state.push_back(static_cast<int64_t>(w));
  writeKey(ar, "trainer/state", torch::tensor(state, torch::kInt64));
  writeKey(ar, "trainer/perm", torch::tensor(sampler.perm, torch::kInt64));
}

LoopState readLoopState(torch::serialize::InputArchive& ar, const std::string& path) {
  LoopState s{readKey(ar, "trainer/state", path).contiguous(), readKey(ar, "trainer/perm", path).contiguous()};
  if (s.state.numel() != 7 || s.state.scalar_type() != torch::kInt64)
    throw NasException("ERR_NAS_CHECKPOINT", path + ": bad trainer/state");
  return s;
}

void applyLoopState(const LoopState& s, int64_t* step, EpochSampler* sampler, Rng* rng) {
  const int64_t* sp = s.state.data_ptr<int64_t>();
  *step = sp[0];
  sampler->epoch = sp[1];
  sampler->cursor = sp[2];
  std::array<uint64_t, 4> rs{};
  for (int i = 0; i < 4; ++i) rs[i] = static_cast<uint64_t>(sp[3 + i]);
  rng->setState(rs);
  sampler->perm.assign(s.perm.data_ptr<int64_t>(), s.perm.data_ptr<int64_t>() + s.perm.numel());
}

void saveArchive(torch::serialize::OutputArchive& ar, const std::string& path) {
  std::ostringstream os;
  ar.save_to(os);
  writeAtomically(path, os.str());
}

void Trainer::save(const std::string& path, const std::string& meta) {
  torch::NoGradGuard ng;
  torch::serialize::OutputArchive ar;
  writeKey(ar, "format", torch::tensor({kFormatVersion}, torch::kInt64));
  writeKey(ar, "meta", bytesTensor(meta));
  auto& params = net_.params();
  for (size_t k = 0; k < params.size(); ++k) {
    writeKey(ar, "param/" + params[k].name, params[k].tensor);
    writeKey(ar, "momentum/" + params[k].name, momentum_[k]);
  }
  writeLoopState(ar, step_, sampler_, rng_);
  saveArchive(ar, path);
}

std::string Trainer::load(const std::string& path) {
  auto ar = openArchive(path);
  const std::string meta = tensorBytes(readKey(ar, "meta", path));
  auto& params = net_.params();
  std::vector<torch::Tensor> values, moms;
  for (auto& p : params) {
    auto v = readKey(ar, "param/" + p.name, path);
    if (v.sizes() != p.tensor.sizes()) {
      throw NasException("ERR_NAS_CHECKPOINT", path + ": '" + p.name + "' has shape " + c10::str(v.sizes()) +
                                                   ", this model has " + c10::str(p.tensor.sizes()) +
                                                   " (another config?)");
    }
    values.push_back(v);
    moms.push_back(readKey(ar, "momentum/" + p.name, path));
    if (moms.back().sizes() != p.tensor.sizes()) {
      throw NasException("ERR_NAS_CHECKPOINT", path + ": 'momentum/" + p.name + "' has shape " +
                                                   c10::str(moms.back().sizes()) + ", this model has " +
                                                   c10::str(p.tensor.sizes()));
    }
  }
  auto loop = readLoopState(ar, path);
  // Everything read and checked: only now is the model touched, so a bad file leaves it as it was.
  torch::NoGradGuard ng;
  for (size_t k = 0; k < params.size(); ++k) {
    params[k].tensor.copy_(values[k]);
    momentum_[k].copy_(moms[k]);
  }
  applyLoopState(loop, &step_, &sampler_, &rng_);
  return meta;
}

std::string Trainer::readMeta(const std::string& path) {
  auto ar = openArchive(path);
  return tensorBytes(readKey(ar, "meta", path));
}

}  // namespace nas
