// A stand-alone model (the paper's step 4): the network of one architecture (StandaloneNet: only the selected
// layers; BatchNorm per ghost batch while training, running statistics for inference) with its optimizer state,
// trained from scratch by SGD with Nesterov momentum and L2 weight decay on conv and linear weights. The addon's
// and TypeScript's StandaloneModel wrap it.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "data.h"
#include "masks.h"
#include "own_stream.h"
#include "rng.h"
#include "sampler.h"
#include "standalone.h"
#include "trainer.h"

namespace nas {

class StandaloneModel {
 public:
  StandaloneModel(const NetConfig& cfg, const Arch& arch, const OptimConfig& opt);

  // One SGD step on a batch drawn from `data` (BN on ghost-batch statistics, running statistics updated). The
  // per-ghost plan reads the step's loss and accuracy every step. On the fused plan they stay on the device, summed
  // over a window of steps, until a step with `read` reads the window (one host synchronisation) and returns its
  // means; a step without `read` returns the last window read (zero examples before the first).
  StepStats step(const Dataset& data, double lr, bool read = true);
  // Loss and accuracy on [start, start + count) with BN on its running statistics (inference).
  EvalStats evaluate(const Dataset& data, int64_t start, int64_t count, int64_t batchSize);
  // Predicted class probabilities (or, with `logits`, the logits before the softmax) for NCHW float images (already
  // normalised).
  torch::Tensor predict(const torch::Tensor& images, bool logits = false);

  // Every parameter and buffer (running statistics) by name, on the CPU, contiguous.
  std::vector<std::pair<std::string, torch::Tensor>> stateDict();
  void setTensor(const std::string& name, const torch::Tensor& value);  // throws ERR_NAS_BAD_ARG

  void save(const std::string& path, const std::string& meta);
  std::string load(const std::string& path);

  int64_t parameterCount() { return net_->parameterCount(); }
  int64_t multiplyAdds() { return net_->multiplyAdds(); }
  int64_t stepCount() const { return step_; }
  // Bytes of the training set the fused plan keeps on the device (pixels and labels; 0 before the first step and on
  // the per-ghost plan).
  int64_t residentDataBytes() const {
    return trainData_ ? static_cast<int64_t>(trainData_->pixels.nbytes() + trainData_->targets.nbytes()) : 0;
  }

 private:
  void sgdStep(double lr);

  NetConfig cfg_;
  OptimConfig opt_;
  StandaloneNet net_;
  torch::Device device_;
  OwnStream stream_;  // every method runs on it (own_stream.h); it ends each call with a host read, so no work is
                      // left queued when the model is freed, except after an abort, which the stream still orders
  std::vector<torch::Tensor> params_, momentum_;
  std::vector<bool> decay_;
  Rng rng_;
  EpochSampler sampler_;
  int64_t step_ = 0;
  std::unique_ptr<DeviceData> trainData_;     // fused plan: the training set resident on the device
  torch::Tensor windowLoss_, windowCorrect_;  // fused plan: sums since the last read, on the device
  int64_t windowExamples_ = 0;
  StepStats lastRead_;
};

}  // namespace nas
