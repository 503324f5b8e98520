// bf16 mixed precision (autocast) on the current thread, for CPU or CUDA. Autocast state is thread-local, so every
// worker enables it around its own forward passes. The API changed in LibTorch 2.4: both are handled here.
#pragma once
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

namespace nas {

class AutocastGuard {
 public:
  AutocastGuard(bool enabled, const torch::Device& device) : enabled_(enabled), type_(device.type()) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    prevEnabled_ = at::autocast::is_autocast_enabled(type_);
    prevDtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_dtype(type_, at::kBFloat16);
    at::autocast::set_autocast_enabled(type_, true);
#else
    if (type_ == torch::kCUDA) {
      prevEnabled_ = at::autocast::is_enabled();
      prevDtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      prevEnabled_ = at::autocast::is_cpu_enabled();
      prevDtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    // Leaving the outermost autocast region drops its cast cache, as torch.autocast's __exit__ does.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(type_, prevEnabled_);
    at::autocast::set_autocast_dtype(type_, prevDtype_);
#else
    if (type_ == torch::kCUDA) {
      at::autocast::set_enabled(prevEnabled_);
      at::autocast::set_autocast_gpu_dtype(prevDtype_);
    } else {
      at::autocast::set_cpu_enabled(prevEnabled_);
      at::autocast::set_autocast_cpu_dtype(prevDtype_);
    }
#endif
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  torch::DeviceType type_;
  bool prevEnabled_ = false;
  at::ScalarType prevDtype_ = at::kBFloat16;
};

}  // namespace nas
