// A stream of its own for work on a GPU. Several stand-alone models trained at once in one process (`retrain
// --jobs N` on one GPU, docs/gpu.md#several-runs-on-one-gpu) each launch from their own job thread; on
// the default stream their kernels would still run one after another. Each model takes a stream from LibTorch's pool
// and runs everything it does on it, so the jobs' kernels overlap on the device. The CUDA context and the caching
// allocator stay shared (one process), which is what makes this cheaper in memory than one process per job.
//
// Device-generic (c10::Stream, no CUDA headers): the same source builds against CPU-only LibTorch, where the stream
// is absent and the guard does nothing.
#pragma once
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/torch.h>

namespace nas {

class OwnStream {
 public:
  explicit OwnStream(const torch::Device& device) {
    if (device.is_cuda()) stream_ = c10::impl::getDeviceGuardImpl(device.type())->getStreamFromGlobalPool(device);
  }
  // Makes the stream current on this thread until the guard goes (nothing on the CPU).
  c10::OptionalStreamGuard use() const { return c10::OptionalStreamGuard(stream_); }

 private:
  c10::optional<c10::Stream> stream_;
};

}  // namespace nas
