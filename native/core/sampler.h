// Epoch-wise shuffled batches: a Fisher-Yates permutation per epoch from the caller's RNG, the incomplete tail batch
// dropped. Its whole state (permutation, cursor, epoch) goes into checkpoints.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "config.h"
#include "rng.h"

namespace nas {

struct EpochSampler {
  std::vector<int64_t> perm;
  int64_t cursor = 0;
  int64_t epoch = 0;

  // Indices of the next batch of `batch` examples out of n.
  torch::Tensor next(Rng& rng, int64_t n, int64_t batch) {
    if (batch > n) {
      throw NasException("ERR_NAS_BAD_DATA", "training set has " + std::to_string(n) +
                                                 " examples, fewer than one batch of " + std::to_string(batch));
    }
    if (static_cast<int64_t>(perm.size()) != n || cursor + batch > n) {
      if (static_cast<int64_t>(perm.size()) == n) ++epoch;
      perm.resize(n);
      for (int64_t i = 0; i < n; ++i) perm[i] = i;
      for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
      cursor = 0;
    }
    auto idx = torch::from_blob(perm.data() + cursor, {batch}, torch::kInt64).clone();
    cursor += batch;
    return idx;
  }

  // The examples of the batch after the one `next` gave last, when it is in this epoch's permutation (count 0 when the
  // epoch ends there: the next permutation is not drawn yet).
  const int64_t* upcoming(int64_t batch, int64_t* count) const {
    const auto n = static_cast<int64_t>(perm.size());
    *count = cursor + batch <= n ? batch : 0;
    return perm.data() + cursor;
  }
};

}  // namespace nas
