// Architectures and per-ghost-batch path masks.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "config.h"
#include "rng.h"

namespace nas {

// One cell template: per block a bitmask of candidate inputs (bit j = candidate j) and of operations (bit o = op o).
struct Arch {
  std::vector<uint32_t> inputs;
  std::vector<uint32_t> ops;
  static Arch allOn(int64_t blocks);
  void validate(int64_t blocks) const;  // throws ERR_NAS_BAD_ARCH
};

// Masks of one step: ghosts x blocks bitmasks. Every cell uses the same masks (SPEC: per cell template).
struct StepMasks {
  int64_t ghosts = 1;
  int64_t blocks = 0;
  std::vector<uint32_t> inputs;  // [ghost * blocks + block]
  std::vector<uint32_t> ops;
  static StepMasks fixed(const Arch& arch, int64_t ghosts);
  // dropIn[i] / dropOp[i]: drop probability of each input / op path of block i for this step.
  static StepMasks draw(Rng& rng, int64_t ghosts, int64_t blocks, const float* dropIn, const float* dropOp);
  // Per block, the inputs and the ops active in at least one ghost batch; an op counts only in ghost batches where
  // some input of its block is active (a block with no input outputs zero). Decides masked decay and skipped paths.
  struct Union {
    std::vector<uint32_t> inputs, ops;
  };
  Union activeAnywhere() const;
  // Ghost batches [first, first + count) (a data-parallel worker's share of a global batch).
  StepMasks slice(int64_t first, int64_t count) const;
  uint32_t in(int64_t g, int64_t b) const { return inputs[g * blocks + b]; }
  uint32_t op(int64_t g, int64_t b) const { return ops[g * blocks + b]; }
};

// One path's mask over the ghost batches of a forward: skipped when `any` is false, applied as is when `all`,
// multiplied by m ([G] floats) otherwise.
struct PathMask {
  bool any = false;
  bool all = false;
  torch::Tensor m;
};

struct BlockMask {
  std::vector<PathMask> in;  // 2 + i entries
  std::vector<PathMask> op;  // kNumOps entries; an op counts as off in a ghost batch whose inputs are all off
};

// Builds per-block path masks (tensors on `device`) from StepMasks. Shared by every cell of one forward.
std::vector<BlockMask> buildBlockMasks(const StepMasks& sm, const torch::Device& device);

// y * m broadcast per ghost batch (y has G * g rows).
torch::Tensor applyGhostMask(const torch::Tensor& y, const torch::Tensor& m);

}  // namespace nas
