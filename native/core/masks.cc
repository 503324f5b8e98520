#include "masks.h"

#include <algorithm>

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
      throw NasException("ERR_NAS_BAD_ARCH", "block " + std::to_string(i) + ": input mask " +
                                                 std::to_string(inputs[i]) +
                                                 " is empty or names a candidate that does not exist");
    }
    if (ops[i] == 0 || (ops[i] >> kNumOps)) {
      throw NasException("ERR_NAS_BAD_ARCH",
                         "block " + std::to_string(i) + ": op mask " + std::to_string(ops[i]) + " is invalid");
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

int64_t StepMasks::Counts::activePaths() const {
  int64_t n = 0;
  for (const auto* table : {&inputs, &ops}) {
    for (const auto& block : *table) n += std::count_if(block.begin(), block.end(), [](int64_t c) { return c > 0; });
  }
  return n;
}

StepMasks::Counts StepMasks::activeCounts() const {
  Counts c;
  for (int64_t b = 0; b < blocks; ++b) {
    c.inputs.emplace_back(2 + b, 0);
    c.ops.emplace_back(kNumOps, 0);
    for (int64_t g = 0; g < ghosts; ++g) {
      for (int64_t j = 0; j < 2 + b; ++j) c.inputs[b][j] += (in(g, b) >> j) & 1u;
      if (in(g, b) == 0) continue;
      for (int o = 0; o < kNumOps; ++o) c.ops[b][o] += (op(g, b) >> o) & 1u;
    }
  }
  return c;
}

std::vector<BlockMask> buildBlockMasks(const StepMasks& sm, const torch::Device& device) {
  const int64_t G = sm.ghosts;
  int64_t P = 0;
  for (int64_t b = 0; b < sm.blocks; ++b) P += 2 + b + kNumOps;
  // Table [G, P]: per block its 2 + b input columns, then its kNumOps op columns.
  std::vector<float> h(static_cast<size_t>(G * P));
  std::vector<BlockMask> out(sm.blocks);
  std::vector<int64_t> first(sm.blocks);
  bool partial = false;  // some path on in some ghost batches only: the table is needed on the device
  int64_t col = 0;
  for (int64_t b = 0; b < sm.blocks; ++b) {
    first[b] = col;
    for (int64_t j = 0; j < 2 + b + kNumOps; ++j, ++col) {
      int64_t on = 0;
      for (int64_t g = 0; g < G; ++g) {
        // A block whose inputs are all dropped outputs zero (docs/model.md#removing-a-path), so its ops are off too.
        const bool bit = j < 2 + b ? (sm.in(g, b) >> j) & 1u : ((sm.op(g, b) >> (j - 2 - b)) & 1u) && sm.in(g, b) != 0;
        on += h[g * P + col] = bit ? 1.f : 0.f;
      }
      (j < 2 + b ? out[b].in : out[b].op).push_back(PathMask{on > 0, on == G, {}});
      partial = partial || (on > 0 && on < G);
    }
  }
  if (!partial) return out;  // a fixed architecture, or one ghost batch: nothing to multiply, nothing to upload
  auto host = torch::empty({G, P}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(device.is_cuda()));
  std::copy(h.begin(), h.end(), host.data_ptr<float>());
  auto dev = device.is_cpu() ? host : host.to(device, /*non_blocking=*/true);
  for (int64_t b = 0; b < sm.blocks; ++b) {
    out[b].inAll = dev.narrow(1, first[b], 2 + b);
    for (int64_t j = 0; j < 2 + b; ++j) {
      if (out[b].in[j].any && !out[b].in[j].all) out[b].in[j].m = dev.select(1, first[b] + j);
    }
    for (int o = 0; o < kNumOps; ++o) {
      if (out[b].op[o].any && !out[b].op[o].all) out[b].op[o].m = dev.select(1, first[b] + 2 + b + o);
    }
  }
  return out;
}

torch::Tensor applyGhostMask(const torch::Tensor& y, const torch::Tensor& m) {
  const int64_t G = m.size(0);
  auto s = y.sizes();
  auto mv = m.as_strided({G, 1, 1, 1, 1}, {m.stride(0), 0, 0, 0, 0});  // m may be a column of the step's mask table
  return (y.view({G, s[0] / G, s[1], s[2], s[3]}) * mv.to(y.scalar_type())).reshape(s);
}

}  // namespace nas
