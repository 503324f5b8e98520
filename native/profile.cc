#include "profile.h"

#include <ATen/record_function.h>
#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
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
  handle_ =
      at::addThreadLocalCallback(at::RecordFunctionCallback(&onEnter, &onExit).scopes({at::RecordScope::FUNCTION}));
}
OpCounter::~OpCounter() { at::removeCallback(handle_); }
int64_t OpCounter::total() const { return tTotal; }
int64_t OpCounter::topLevel() const { return tTop; }

}  // namespace nasjs

namespace nasjs {

namespace {
// The type of reportMemoryUsage's running totals: int64_t in LibTorch 1.x, size_t in 2.x. Taken from the pure
// virtual itself, so that the override below matches whichever LibTorch this builds against.
template <typename F>
struct TotalType;
template <typename C, typename R, typename P, typename S, typename T, typename U, typename D>
struct TotalType<R (C::*)(P, S, T, U, D)> {
  using type = T;
};
using Total = TotalType<decltype(&c10::MemoryReportingInfoBase::reportMemoryUsage)>::type;

struct Reporter final : c10::MemoryReportingInfoBase {
  int64_t live = 0, peak = 0;
  void reportMemoryUsage(void*, int64_t bytes, Total, Total, c10::Device) override {
    live += bytes;
    peak = std::max(peak, live);
  }
  bool memoryProfilingEnabled() const override { return true; }
};
}  // namespace

AllocationMeter::AllocationMeter() {
  auto r = std::make_shared<Reporter>();
  reporter_ = r;
  guard_ = std::make_shared<c10::DebugInfoGuard>(c10::DebugInfoKind::PROFILER_STATE, r);
}
AllocationMeter::~AllocationMeter() { guard_.reset(); }
int64_t AllocationMeter::peak() const { return static_cast<Reporter*>(reporter_.get())->peak; }

}  // namespace nasjs
