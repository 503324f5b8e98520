// Supernet: the one-shot model, its trainer (optimizer state, RNG, data order) and checkpoints, owned by JS.
//
// Methods (all throw or reject with an Error carrying `code`, see errors.h):
//   [sync]  parameterCount(): number                        all-on parameter count of the model
//   [sync]  describe(arch: Uint32Array | null): {params, madds}   stand-alone model of arch (null: all paths on)
//   [async] train(ds, {steps, lr, dropIn, dropOp, threads}, onProgress): {steps, aborted, step}
//           lr: Float64Array(steps); dropIn/dropOp: Float32Array(steps * blocks). Stops between steps on abort().
//   [async] evaluate(ds, archs: Uint32Array(n * 2 * blocks), {start, count, batchSize, threads}, onProgress)
//           -> [{lossSum, correct, examples}] per architecture
//   [sync]  forward(images: Float32Array NCHW, batch, masks: Uint32Array(G * 2 * blocks), probe: boolean,
//           count?: {backward: boolean}) -> {logits, probeMean?, probeVar?}  one-shot forward without gradient,
//           ghost batch q uses masks q; with `count`, instead {opsTotal, opsTopLevel}: the ATen ops of one forward
//           (and backward) on this thread
//   [sync]  standaloneForward(images, batch, arch: Uint32Array(2 * blocks)) -> Float32Array logits of the pruned
//           stand-alone model built from this model's weights (BN on batch statistics)
//   [sync]  lastMasks(): {ghosts, inputs: Uint32Array, ops: Uint32Array}   masks drawn by the last train step
//   [sync]  parameterNames(): string[]; getParameter(name): Float32Array; setParameter(name, Float32Array);
//           getGradient(name): Float32Array | null
//   [sync]  stepCount(): number; setOptim(optim); abort(); dispose()
//   [sync]  setGroup(group: ProcessGroup | null)   train as one data-parallel worker of a connected group
//   [async] save(path, meta: string); load(path): string (meta); Supernet.readCheckpointMeta(path): string
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "core/supernet.h"
#include "core/trainer.h"
#include "job.h"

namespace nasjs {

class SupernetWrap : public Napi::ObjectWrap<SupernetWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new Supernet(config, optim) [sync]; throws ERR_NAS_BAD_CONFIG, ERR_NAS_CUDA_UNAVAILABLE.
  explicit SupernetWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value ParameterCount(const Napi::CallbackInfo& info);
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value Train(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value StandaloneForward(const Napi::CallbackInfo& info);
  Napi::Value LastMasks(const Napi::CallbackInfo& info);
  Napi::Value ParameterNames(const Napi::CallbackInfo& info);
  Napi::Value GetParameter(const Napi::CallbackInfo& info);
  Napi::Value SetParameter(const Napi::CallbackInfo& info);
  Napi::Value GetGradient(const Napi::CallbackInfo& info);
  Napi::Value StepCount(const Napi::CallbackInfo& info);
  Napi::Value SetOptim(const Napi::CallbackInfo& info);
  Napi::Value SetGroup(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  static Napi::Value ReadCheckpointMeta(const Napi::CallbackInfo& info);

  void CheckUsable(bool allowBusy = false) const;  // ERR_NAS_DISPOSED / ERR_NAS_BUSY
  // Marks the net busy and runs `work` on its own thread; keepAlive objects are referenced until it ends.
  Napi::Promise StartJob(const Napi::CallbackInfo& info, std::vector<Napi::Object> keepAlive, Napi::Function fn,
                         Work work);
  nas::ParamInfo& FindParam(const std::string& name);
  nas::Arch ArchAt(const Napi::Uint32Array& a, size_t index) const;

  std::unique_ptr<nas::Supernet> net_;
  std::unique_ptr<nas::Trainer> trainer_;
  int threads_ = 0;
  JobGate gate_;
};

}  // namespace nasjs
