// Inter-op parallelism for this model's many small ops: T OS threads with one intra-op (OpenMP) thread each beat
// one thread driving a T-thread pool op by op (docs/results.md#where-the-time-goes). Thread-local state (grad mode,
// inference mode, autocast) is NOT carried over: the function sets what it needs.
#pragma once
#include <ATen/Parallel.h>

#include <exception>
#include <thread>
#include <vector>

namespace nas {

// Runs fn(t) for t in [0, T): t = 0 on the calling thread, the others on their own threads; rethrows the first error
// (by t) after all finished.
template <typename F>
void ParallelFor(int T, F&& fn) {
  std::vector<std::exception_ptr> errs(T);
  std::vector<std::thread> threads;
  threads.reserve(T > 1 ? T - 1 : 0);
  for (int t = 1; t < T; ++t) {
    threads.emplace_back([&errs, &fn, t]() {
      try {
        at::set_num_threads(1);
        fn(t);
      } catch (...) {
        errs[t] = std::current_exception();
      }
    });
  }
  const int before = at::get_num_threads();
  if (T > 1) at::set_num_threads(1);
  try {
    fn(0);
  } catch (...) {
    errs[0] = std::current_exception();
  }
  if (T > 1) at::set_num_threads(before);
  for (auto& th : threads) th.join();
  for (auto& e : errs) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace nas
