#include "profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <cstdlib>
#include <string>

namespace nasjs {

std::shared_ptr<void> MaybeProfile(const char* job) {
  const char* path = std::getenv("NAS_PROFILE");
  if (!path || !*path) return nullptr;
  const std::string file = std::string(path) + "." + job + ".json";
  return std::make_shared<torch::autograd::profiler::RecordProfile>(file);
}

}  // namespace nasjs
