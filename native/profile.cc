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

#include <ATen/record_function.h>

namespace nasjs {

namespace {
thread_local int64_t tTotal = 0, tTop = 0, tDepth = 0;

std::unique_ptr<at::ObserverContext> onEnter(const at::RecordFunction&) {
  ++tTotal;
  if (tDepth++ == 0) ++tTop;
  return nullptr;
}
void onExit(const at::RecordFunction&, at::ObserverContext*) { --tDepth; }
}  // namespace

OpCounter::OpCounter() {
  tTotal = tTop = tDepth = 0;
  handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(&onEnter, &onExit).scopes({at::RecordScope::FUNCTION}));
}
OpCounter::~OpCounter() { at::removeCallback(handle_); }
int64_t OpCounter::total() const { return tTotal; }
int64_t OpCounter::topLevel() const { return tTop; }

}  // namespace nasjs
