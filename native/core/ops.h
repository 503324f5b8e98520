// The operation table of docs/model.md#choice-block, the one place in C++ that says what each op id is. Code
// dispatches on `kind` (never on an id); the TypeScript side has the same table (OP_SPECS in
// src/space/architecture.ts) and a test checks that the addon's export of this one (`addon.ops`) equals it.
#pragma once
#include <cstdint>
#include <vector>

#include "config.h"

namespace nas {

enum class OpKind { Identity, SepConv, Conv7x1, MaxPool, AvgPool };

struct OpSpec {
  const char* name;
  OpKind kind;
  int kernel;  // SepConv: the depthwise kernel; Conv7x1: 7 (1x7 then 7x1); pools: 3; identity: 0
};

constexpr OpSpec kOps[kNumOps] = {
    {"identity", OpKind::Identity, 0}, {"sep3", OpKind::SepConv, 3},    {"sep5", OpKind::SepConv, 5},
    {"sep7", OpKind::SepConv, 7},      {"conv7x1", OpKind::Conv7x1, 7}, {"maxpool", OpKind::MaxPool, 3},
    {"avgpool", OpKind::AvgPool, 3},
};

inline const OpSpec& opSpec(int o) { return kOps[o]; }

// OpKind::Conv7x1 factorizes a kxk convolution into layer 0, 1xk, then layer 1, kx1: the kernel (height, width)
// and the padding that keeps the resolution, for both models.
inline std::vector<int64_t> factorizedKernel(int k, int layer) {
  return layer == 0 ? std::vector<int64_t>{1, k} : std::vector<int64_t>{k, 1};
}
inline std::vector<int64_t> factorizedPadding(int k, int layer) {
  return layer == 0 ? std::vector<int64_t>{0, k / 2} : std::vector<int64_t>{k / 2, 0};
}

inline const char* opKindName(OpKind k) {
  switch (k) {
    case OpKind::Identity: return "identity";
    case OpKind::SepConv: return "sepconv";
    case OpKind::Conv7x1: return "conv7x1";
    case OpKind::MaxPool: return "maxpool";
    case OpKind::AvgPool: return "avgpool";
  }
  return "?";
}

}  // namespace nas
