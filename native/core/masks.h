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

// Masks of one step: ghosts x blocks bitmasks. Every cell uses the same masks (docs/model.md#path-dropout: per cell
// template).
struct StepMasks {
  int64_t ghosts = 1;
  int64_t blocks = 0;
  std::vector<uint32_t> inputs;  // [ghost * blocks + block]
  std::vector<uint32_t> ops;
  static StepMasks fixed(const Arch& arch, int64_t ghosts);
  // dropIn[i] / dropOp[i]: drop probability of each input / op path of block i for this step.
  static StepMasks draw(Rng& rng, int64_t ghosts, int64_t blocks, const float* dropIn, const float* dropOp);
  // Per block, in how many ghost batches each input j ([block][j]) and each op o ([block][o]) is active (an op only
  // where its block has an input: a block with no input outputs zero). Weight decay of a path is wd * count / ghosts
  // (docs/model.md#weight-decay: per ghost batch); a path with count 0 ran nowhere.
  struct Counts {
    std::vector<std::vector<int64_t>> inputs, ops;
    int64_t activePaths() const;  // paths with a nonzero count
  };
  Counts activeCounts() const;
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
  torch::Tensor inAll;       // [G, 2 + i]: every input's mask (the fused plan masks the concatenated inputs at
                             // once); undefined when no path of the step is partial
};

// Builds per-block path masks from StepMasks: every mask of the step lives in one [G, paths] tensor on `device`,
// uploaded with one (asynchronous, pinned) copy, and only when some path is on in some ghost batches only; the
// per-path masks are views of it. Shared by every cell.
std::vector<BlockMask> buildBlockMasks(const StepMasks& sm, const torch::Device& device);

// y * m broadcast per ghost batch (y has G * g rows).
torch::Tensor applyGhostMask(const torch::Tensor& y, const torch::Tensor& m);

}  // namespace nas
