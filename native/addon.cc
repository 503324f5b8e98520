// Registers the addon's exports; everything else lives in the *_wrap files.
#include <ATen/Context.h>
#include <napi.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/dist.h"
#include "core/kernel_check.h"
#include "core/ops.h"
#include "dataset_wrap.h"
#include "dist_wrap.h"
#include "env_state.h"
#include "errors.h"
#include "standalone_model_wrap.h"
#include "supernet_wrap.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nasjs::InitEnvState(env);  // before the classes: they keep their constructors there
  exports.Set("Supernet", nasjs::SupernetWrap::Init(env));
  exports.Set("Dataset", nasjs::DatasetWrap::Init(env));
  exports.Set("StandaloneModel", nasjs::StandaloneModelWrap::Init(env));
  exports.Set("ProcessGroup", nasjs::ProcessGroupWrap::Init(env));
  exports.Set("distAvailable", Napi::Boolean::New(env, nas::distAvailable()));
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  // The operation table (docs/model.md#choice-block) as the native code builds it (a test compares it with the
  // TypeScript table).
  Napi::Array ops = Napi::Array::New(env, nas::kNumOps);
  for (int o = 0; o < nas::kNumOps; ++o) {
    Napi::Object op = Napi::Object::New(env);
    op.Set("name", nas::opSpec(o).name);
    op.Set("kind", nas::opKindName(nas::opSpec(o).kind));
    op.Set("kernel", nas::opSpec(o).kernel);
    ops.Set(o, op);
  }
  exports.Set("ops", ops);
  const bool cuda = torch::cuda::is_available();
  if (cuda) {
    // On a GPU, fp32 is IEEE fp32 and cuDNN picks deterministic kernels (docs/gpu.md#numerics). LibTorch's defaults,
    // TF32 convolutions and backward kernels that sum with atomics, put a GPU run 1e-3 from the CPU's and from
    // itself run to run. Process-wide settings of this process's LibTorch; set before any model exists.
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setDeterministicCuDNN(true);
  }
  // [sync] checkScoringKernels(seed): the fused BN+ReLU+convolution and the 3x3 pooling scoring kernels against
  // exact references (core/kernel_check.h), for test/native/scoringKernels.test.ts:
  // { available, cases: [{ name, ran, worst }], pool: [{ name, ran, worst }] }.
  exports.Set("checkScoringKernels", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return nasjs::Guard(info.Env(), [&]() -> Napi::Value {
                  const auto seed = info.Length() > 0 && info[0].IsNumber()
                                        ? static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value())
                                        : 0;
                  const auto toArray = [&](const std::vector<nas::KernelCheck>& found) {
                    Napi::Array out = Napi::Array::New(info.Env(), found.size());
                    for (uint32_t i = 0; i < found.size(); ++i) {
                      Napi::Object o = Napi::Object::New(info.Env());
                      o.Set("name", found[i].name);
                      o.Set("ran", found[i].ran);
                      o.Set("worst", found[i].worst);
                      out.Set(i, o);
                    }
                    return out;
                  };
                  Napi::Object result = Napi::Object::New(info.Env());
                  result.Set("available", nas::convKernelsAvailable());
                  result.Set("cases", toArray(nas::checkBnReluConvKernel(seed)));
                  result.Set("pool", toArray(nas::checkPoolKernel(seed)));
                  return result;
                });
              }));
  // [sync] retainFreedMemory(trimThreshold, topPad, mmapThreshold): glibc's malloc settings that keep freed memory
  // mapped (the values come from src/native/binding.ts). A CPU training step frees and allocates its activations
  // again (about 3 GiB a step at F=16, batch 64): returned to the kernel, every page of them faults back in zeroed the
  // next step (docs/architecture.md#memory-on-the-cpu). A thread's arena is a chain of 64 MiB heaps, and one that
  // empties is unmapped unless the top pad covers a whole heap, whatever the trim threshold (glibc's heap_trim).
  // Process-wide; false where the C library is not glibc or mallopt refuses a value.
  exports.Set("retainFreedMemory", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                bool ok = info.Length() == 3;
                int values[3] = {0, 0, 0};
                for (uint32_t i = 0; ok && i < 3; ++i) {
                  const double v = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
                  ok = v >= 0 && v <= 2147483647.0;
                  values[i] = ok ? static_cast<int>(v) : 0;
                }
#if defined(__GLIBC__)
                if (ok) {
                  ok = mallopt(M_TRIM_THRESHOLD, values[0]) == 1;
                  ok = mallopt(M_TOP_PAD, values[1]) == 1 && ok;
                  ok = mallopt(M_MMAP_THRESHOLD, values[2]) == 1 && ok;
                  return Napi::Boolean::New(info.Env(), ok);
                }
#endif
                (void)values;
                return Napi::Boolean::New(info.Env(), false);
              }));
  exports.Set("cudaAvailable", Napi::Boolean::New(env, cuda));
  exports.Set("cudaDeviceCount", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
  // [sync] shutdown(): stops this environment's running jobs and waits for them (env_state.h: StopJobs).
  exports.Set("shutdown", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return nasjs::Guard(info.Env(), [&]() -> Napi::Value {
                  nasjs::StopJobs(nasjs::State(info.Env()));
                  return info.Env().Undefined();
                });
              }));
  // [sync] exitNow(code): ends the process at once, without static destructors or exit handlers. process.exit()
  // while a native job thread still runs LibTorch tears LibTorch down under it (a segfault): a second Ctrl-C uses this.
  exports.Set("exitNow", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
                std::fflush(nullptr);
                std::_Exit(code);
              }));
  return exports;
}

NODE_API_MODULE(oneshot_nas, Init)
