// Checkpoint file helpers shared by the one-shot trainer and the stand-alone model.
#pragma once
#include <torch/torch.h>

#include <string>

#include "rng.h"
#include "sampler.h"

namespace nas {

// Writes bytes to path atomically: temp file, fsync, rename. Throws ERR_NAS_IO.
void writeAtomically(const std::string& path, const std::string& bytes);
// Serialises an archive and writes it atomically.
void saveArchive(torch::serialize::OutputArchive& ar, const std::string& path);
// Opens a LibTorch archive on the CPU. Throws ERR_NAS_IO (unreadable) or ERR_NAS_CHECKPOINT (not an archive).
torch::serialize::InputArchive openArchive(const std::string& path);
// Writes one tensor (as a contiguous CPU tensor) and its checksum ("checksum/<key>", FNV-1a 64 of its bytes).
void writeKey(torch::serialize::OutputArchive& ar, const std::string& key, const torch::Tensor& t);
// Reads one tensor; ERR_NAS_CHECKPOINT names a missing key, or a tensor whose bytes do not match its checksum (a
// damaged file whose zip structure is intact). Checkpoints written before checksums existed load unchecked.
torch::Tensor readKey(torch::serialize::InputArchive& ar, const std::string& key, const std::string& path);
torch::Tensor bytesTensor(const std::string& s);
std::string tensorBytes(const torch::Tensor& t);

// The data loop's state (step, sampler, RNG): written as "trainer/state" and "trainer/perm".
void writeLoopState(torch::serialize::OutputArchive& ar, int64_t step, const EpochSampler& sampler, const Rng& rng);
// Reads what writeLoopState wrote (checked), to be applied by applyLoopState once everything else was read.
struct LoopState {
  torch::Tensor state, perm;
};
LoopState readLoopState(torch::serialize::InputArchive& ar, const std::string& path);
void applyLoopState(const LoopState& s, int64_t* step, EpochSampler* sampler, Rng* rng);

}  // namespace nas
