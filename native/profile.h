// Opt-in LibTorch profiling of native jobs: with NAS_PROFILE=<file> in the environment, a training or scoring job
// records every ATen op of its own thread (LibTorch's legacy profiler) and writes a chrome://tracing file when it
// ends. Use --threads 1 so that all ops run on the job's thread. scripts/profile.js summarises the file.
#pragma once
#include <memory>

namespace nasjs {

// A guard: profiling until it is destroyed; null when NAS_PROFILE is not set.
std::shared_ptr<void> MaybeProfile(const char* job);

}  // namespace nasjs
