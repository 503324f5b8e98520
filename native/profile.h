// Opt-in LibTorch profiling of native jobs: with NAS_PROFILE=<file> in the environment, a training or scoring job
// records every ATen op of its own thread (LibTorch's legacy profiler) and writes a chrome://tracing file when it
// ends. Use --threads 1 so that all ops run on the job's thread. scripts/profile.js summarises the file.
#pragma once
#include <cstdint>
#include <memory>

namespace nasjs {

// A guard: profiling until it is destroyed; null when NAS_PROFILE is not set.
std::shared_ptr<void> MaybeProfile(const char* job);

}  // namespace nasjs

namespace nasjs {

// ATen operations recorded on this thread while a counter lives (LibTorch's RecordFunction callbacks, the
// profiler's source): `total` counts nested ops too, `topLevel` the calls made by our code. On a GPU, kernel
// launches follow these counts, so they make GPU cost visible on the CPU.
class OpCounter {
 public:
  OpCounter();
  ~OpCounter();
  int64_t total() const;
  int64_t topLevel() const;

 private:
  uint64_t handle_;
};

}  // namespace nasjs

namespace nasjs {

// Tensor bytes allocated on this thread while a meter lives, as LibTorch's allocators report them to its memory
// profiler (the CPU allocator and CUDA's caching allocator both do): `peak` is the most that was allocated and not yet
// freed since the meter began. Frees of tensors allocated before the meter are not reported, so `peak` is the most
// this window needed on top of what already existed. Use one LibTorch thread (ops' helper threads are not observed).
class AllocationMeter {
 public:
  AllocationMeter();
  ~AllocationMeter();
  int64_t peak() const;

 private:
  std::shared_ptr<void> reporter_, guard_;
};

}  // namespace nasjs
