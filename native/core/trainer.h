// Training of the one-shot model (masks per ghost batch, masked weight decay, SGD with Nesterov momentum),
// evaluation of fixed architectures, and checkpoints. Runs on whatever thread calls it.
#pragma once
#include <torch/torch.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data.h"
#include "dist.h"
#include "masks.h"
#include "rng.h"
#include "sampler.h"
#include "supernet.h"

namespace nas {

struct OptimConfig {
  int64_t batchSize = 64;  // a multiple of the ghost batch
  double momentum = 0.9;
  double weightDecay = 1e-4;
  bool nesterov = true;
  int64_t cropPad = 0;  // random crop padding (0 = off)
  bool flip = false;    // random horizontal flip
  uint64_t seed = 0;    // masks, data order, augmentation
};

struct StepStats {
  double loss = 0;
  int64_t correct = 0;
  int64_t examples = 0;
  int64_t activePaths = 0;  // paths active in at least one ghost batch (diagnostic)
  bool stop = false;        // some worker asked to stop: every worker stops after this same step
};

struct EvalStats {
  double lossSum = 0;
  int64_t correct = 0;
  int64_t examples = 0;
};

class Trainer {
 public:
  Trainer(Supernet& net, const OptimConfig& opt);

  // One step: draws a mask per ghost batch (dropIn/dropOp: per-block drop probabilities), forward, backward,
  // masked weight decay, Nesterov SGD with learning rate lr. With a process group, this worker runs its share of the
  // global batch (whole ghost batches, the masks a single process would draw for them), gradients are summed over
  // workers, and stats are global; wantStop is shared so that all workers stop after the same step.
  StepStats step(const Dataset& data, double lr, const float* dropIn, const float* dropOp, bool wantStop = false);

  // Joins a data-parallel group (nullptr leaves it). Every worker must hold the same weights and trainer state.
  void setGroup(std::shared_ptr<ProcessGroup> group);
  ProcessGroup* group() const { return group_.get(); }

  // Loss and accuracy of one architecture on examples [start, start + count) of `data`, with BN statistics per
  // ghost batch of the one-shot model's ghost size; batchSize is rounded down to a multiple of it. Per-ghost plan:
  // one ghost batch per forward, batches dealt to CPU threads. Fused plan: batchSize examples per forward from the
  // device-resident set, loss and accuracy summed on the device and read once. When the abort flag is raised it
  // returns early with examples < count.
  EvalStats evaluate(const Dataset& data, const Arch& arch, int64_t start, int64_t count, int64_t batchSize);

  // The same scores for several architectures in one masked pass per chunk of images: the chunk is repeated once
  // per architecture and the ghost batches of copy k run architecture k's mask (the training machinery). Computes
  // the union of the architectures' paths, so it pays off where big kernels are cheap (GPUs). Architectures go in
  // groups of at most maxExamples / ghostBatch per forward (fused plan: chunks of several ghost batches, results
  // summed on the device). Returns the results of the architectures finished before an abort (checked before each
  // chunk). `done`, if given, hears the number of architectures finished after each group.
  std::vector<EvalStats> evaluateBatched(const Dataset& data, const std::vector<Arch>& archs, int64_t start,
                                         int64_t count, int64_t maxExamples = 4096,
                                         const std::function<void(int64_t)>& done = {});

  // Long jobs poll this flag between batches (the wrapper's abort()).
  void setAbortFlag(const std::atomic<bool>* flag) { abort_ = flag; }

  // Atomic (temp file, fsync, rename). `meta` is stored verbatim (the TypeScript side's JSON).
  void save(const std::string& path, const std::string& meta);
  // Restores everything save wrote; returns meta. Throws ERR_NAS_CHECKPOINT on a bad or mismatching file.
  std::string load(const std::string& path);
  static std::string readMeta(const std::string& path);

  int64_t stepCount() const { return step_; }
  const OptimConfig& options() const { return opt_; }
  void setOptions(const OptimConfig& opt);
  // The masks of the last step (for tests of the schedule and of mask sharing).
  const StepMasks& lastMasks() const { return lastMasks_; }

 private:
  // counts: the step's StepMasks::activeCounts() over all ghost batches (of all workers), G of them.
  void applyUpdate(double lr, const StepMasks::Counts& counts, int64_t G);
  void checkBatch(const OptimConfig& opt) const;
  int innerThreads(int64_t ghosts) const;  // threads that split ghost batches (1 on GPUs)
  bool aborted() const { return abort_ && abort_->load(); }
  // Appends one result per architecture unless aborted first (see evaluateBatched); the caller sets inference mode.
  void evaluateGroup(const Dataset& data, const std::vector<Arch>& archs, int64_t start, int64_t count, int64_t chunk,
                     std::vector<EvalStats>& out);
  std::pair<double, int64_t> forwardBackward(const torch::Tensor& x, const torch::Tensor& y, const StepMasks& masks);
  // Sums gradients over the group (parameters without a gradient anywhere stay without one) and returns the global
  // {loss sum, correct, stop votes} from this worker's.
  std::array<double, 3> syncGradients(double lossSum, double correct, bool wantStop);

  Supernet& net_;
  OptimConfig opt_;
  Rng rng_;
  int64_t step_ = 0;
  EpochSampler sampler_;
  std::vector<torch::Tensor> momentum_;
  StepMasks lastMasks_;
  std::shared_ptr<ProcessGroup> group_;
  const std::atomic<bool>* abort_ = nullptr;
  std::unique_ptr<DeviceData> trainData_, evalData_;
};

}  // namespace nas
