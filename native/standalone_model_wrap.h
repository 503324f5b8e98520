// StandaloneModel: a stand-alone model of one architecture trained from scratch (ghost BN while training, running
// statistics for inference). One name in C++ (nas::StandaloneModel), the addon and TypeScript (StandaloneModel).
//
//   new StandaloneModel(config, arch: Uint32Array(2 * blocks), optim)        [sync] ERR_NAS_BAD_ARCH,
//   ERR_NAS_BAD_CONFIG [async] train(ds, {steps, lr: Float64Array, threads}, onProgress): {steps, aborted, step}
//   [async] evaluate(ds, {start, count, batchSize, threads}): {lossSum, correct, examples}
//   [sync]  predict(images: Float32Array NCHW normalised, batch): Float32Array probabilities [batch * classes]
//   [sync]  stateDict(): [{name, shape, data: Float32Array}]; setTensor(name, Float32Array)
//   [sync]  parameterCount(), multiplyAdds(), stepCount(), abort(), dispose()
//   [sync]  countStepOps(ds, lr): one training step on this thread, returning {opsTotal, opsTopLevel}: the ATen ops
//           it ran (profile.h: OpCounter), what a GPU launches, visible on the CPU
//   [async] save(path, meta); load(path): meta
#pragma once
#include <napi.h>

#include <memory>

#include "core/standalone_model.h"
#include "job.h"

namespace nasjs {

class StandaloneModelWrap : public Napi::ObjectWrap<StandaloneModelWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit StandaloneModelWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Train(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value SetTensor(const Napi::CallbackInfo& info);
  Napi::Value ParameterCount(const Napi::CallbackInfo& info);
  Napi::Value MultiplyAdds(const Napi::CallbackInfo& info);
  Napi::Value StepCount(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value CountStepOps(const Napi::CallbackInfo& info);
  Napi::Value StepMemory(const Napi::CallbackInfo& info);
  void CheckUsable() const;

  std::unique_ptr<nas::StandaloneModel> model_;
  nas::NetConfig cfg_;
  int threads_ = 0;
  JobGate gate_;
};

}  // namespace nasjs
