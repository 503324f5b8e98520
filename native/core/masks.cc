#include "masks.h"

namespace nas {

Arch Arch::allOn(int64_t blocks) {
  Arch a;
  for (int64_t i = 0; i < blocks; ++i) {
    a.inputs.push_back((1u << (2 + i)) - 1);
    a.ops.push_back((1u << kNumOps) - 1);
  }
  return a;
}

void Arch::validate(int64_t blocks) const {
  if (static_cast<int64_t>(inputs.size()) != blocks || static_cast<int64_t>(ops.size()) != blocks) {
    throw NasException("ERR_NAS_BAD_ARCH", "architecture has " + std::to_string(inputs.size()) + " blocks, expected " +
                                               std::to_string(blocks));
  }
  for (int64_t i = 0; i < blocks; ++i) {
    const uint32_t inAll = (1u << (2 + i)) - 1;
    if (inputs[i] == 0 || (inputs[i] & ~inAll)) {
      throw NasException("ERR_NAS_BAD_ARCH", "block " + std::to_string(i) + ": input mask " + std::to_string(inputs[i]) +
                                                 " is empty or names a candidate that does not exist");
    }
    if (ops[i] == 0 || (ops[i] >> kNumOps)) {
      throw NasException("ERR_NAS_BAD_ARCH", "block " + std::to_string(i) + ": op mask " + std::to_string(ops[i]) + " is invalid");
    }
  }
}

StepMasks StepMasks::fixed(const Arch& arch, int64_t ghosts) {
  StepMasks sm;
  sm.ghosts = ghosts;
  sm.blocks = static_cast<int64_t>(arch.inputs.size());
  for (int64_t g = 0; g < ghosts; ++g) {
    sm.inputs.insert(sm.inputs.end(), arch.inputs.begin(), arch.inputs.end());
    sm.ops.insert(sm.ops.end(), arch.ops.begin(), arch.ops.end());
  }
  return sm;
}

StepMasks StepMasks::slice(int64_t first, int64_t count) const {
  StepMasks sm;
  sm.ghosts = count;
  sm.blocks = blocks;
  sm.inputs.assign(inputs.begin() + first * blocks, inputs.begin() + (first + count) * blocks);
  sm.ops.assign(ops.begin() + first * blocks, ops.begin() + (first + count) * blocks);
  return sm;
}

StepMasks StepMasks::draw(Rng& rng, int64_t ghosts, int64_t blocks, const float* dropIn, const float* dropOp) {
  StepMasks sm;
  sm.ghosts = ghosts;
  sm.blocks = blocks;
  sm.inputs.resize(ghosts * blocks);
  sm.ops.resize(ghosts * blocks);
  // Fixed draw order (ghost, block, inputs then ops) so that a run replays exactly from a saved RNG state.
  for (int64_t g = 0; g < ghosts; ++g) {
    for (int64_t b = 0; b < blocks; ++b) {
      uint32_t in = 0, op = 0;
      for (int64_t j = 0; j < 2 + b; ++j) {
        if (rng.uniform() >= dropIn[b]) in |= 1u << j;
      }
      for (int o = 0; o < kNumOps; ++o) {
        if (rng.uniform() >= dropOp[b]) op |= 1u << o;
      }
      sm.inputs[g * blocks + b] = in;
      sm.ops[g * blocks + b] = op;
    }
  }
  return sm;
}

StepMasks::Union StepMasks::activeAnywhere() const {
  Union u{std::vector<uint32_t>(blocks, 0), std::vector<uint32_t>(blocks, 0)};
  for (int64_t g = 0; g < ghosts; ++g) {
    for (int64_t b = 0; b < blocks; ++b) {
      u.inputs[b] |= in(g, b);
      if (in(g, b)) u.ops[b] |= op(g, b);
    }
  }
  return u;
}

static PathMask makePathMask(const std::vector<float>& per, const torch::Device& device) {
  PathMask pm;
  int64_t on = 0;
  for (float v : per) on += v != 0.f;
  pm.any = on > 0;
  pm.all = on == static_cast<int64_t>(per.size());
  if (pm.any && !pm.all) {
    pm.m = torch::from_blob(const_cast<float*>(per.data()), {static_cast<int64_t>(per.size())}, torch::kFloat32)
               .to(device, /*non_blocking=*/false, /*copy=*/true);
  }
  return pm;
}

std::vector<BlockMask> buildBlockMasks(const StepMasks& sm, const torch::Device& device) {
  std::vector<BlockMask> out(sm.blocks);
  std::vector<float> per(sm.ghosts);
  for (int64_t b = 0; b < sm.blocks; ++b) {
    for (int64_t j = 0; j < 2 + b; ++j) {
      for (int64_t g = 0; g < sm.ghosts; ++g) per[g] = (sm.in(g, b) >> j) & 1u ? 1.f : 0.f;
      out[b].in.push_back(makePathMask(per, device));
    }
    for (int o = 0; o < kNumOps; ++o) {
      // A block whose inputs are all dropped outputs zero (SPEC: the node's output is zero), so its ops are off too.
      for (int64_t g = 0; g < sm.ghosts; ++g) per[g] = ((sm.op(g, b) >> o) & 1u) && sm.in(g, b) != 0 ? 1.f : 0.f;
      out[b].op.push_back(makePathMask(per, device));
    }
  }
  return out;
}

torch::Tensor applyGhostMask(const torch::Tensor& y, const torch::Tensor& m) {
  const int64_t G = m.size(0);
  auto s = y.sizes();
  return (y.view({G, s[0] / G, s[1], s[2], s[3]}) * m.view({G, 1, 1, 1, 1}).to(y.scalar_type())).reshape(s);
}

}  // namespace nas
