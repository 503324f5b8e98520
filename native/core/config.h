// Network configuration and the error type of the core. LibTorch only; never includes napi.h.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace nas {

// Error with a stable code (ERR_NAS_*), turned into a NasError by the wrapper.
class NasException : public std::runtime_error {
 public:
  NasException(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// The one-shot model of docs/model.md. Defaults reproduce the paper's CIFAR-10 model at F = 16.
struct NetConfig {
  int64_t inChannels = 3;
  int64_t imageSize = 32;
  int64_t classes = 10;
  int64_t filters = 16;  // F: channels of the stem
  int64_t stacks = 3;    // stack s has F * 2^s channels
  int64_t cellsPerStack = 2;
  int64_t blocks = 4;       // N_choice: choice blocks per cell
  int64_t ghostBatch = 32;  // examples that share a mask and BN statistics
  double bnEps = 1e-5;
  bool channelsLast = true;    // NHWC activations: faster for this model on CPU (docs/results.md#where-the-time-goes)
  std::string device = "cpu";  // "cpu" or "cuda[:n]"
  bool bf16 = false;           // bf16 autocast for forward passes (training and scoring); weights stay float32
  // Execution plan. "per-ghost": BN per ghost batch by LibTorch's fused kernel, one ghost batch per scoring forward,
  // ghost batches on CPU threads (fastest on CPU). "fused": every ghost batch of a batch in one forward, ghost BN as
  // one kernel for all ghost batches, one mask upload per step, data resident on the device, results accumulated
  // on the device (for GPUs, where launches and host synchronisation dominate). "auto": fused on CUDA, per-ghost on
  // CPU.
  std::string plan = "auto";
  uint64_t seed = 0;  // weight initialisation

  void validate() const;
  // The plan in force: true for "fused", or "auto" on a non-CPU device.
  bool fused() const { return plan == "fused" || (plan == "auto" && device != "cpu"); }
};

constexpr int kNumOps = 7;  // identity, sep3, sep5, sep7, conv7x1, maxpool, avgpool

}  // namespace nas
