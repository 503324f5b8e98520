// The step loop both trainers run on their worker thread: one step per learning rate, a progress object per step,
// a stop between steps when aborted. Resolves to {steps, aborted, step}.
#pragma once
#include <napi.h>

#include <atomic>

#include "core/trainer.h"
#include "job.h"

namespace nasjs {

// step(i, wantStop) runs step i of this call and returns its stats; count() is the trainer's total step count
// afterwards. With sharedStop (data-parallel workers) an abort is not acted on alone: it is voted in the next step
// (StepStats::stop), so that every worker stops after the same step.
template <typename StepFn, typename CountFn>
ToJs RunSteps(int64_t steps, const std::atomic<bool>* abort, const Emit& emit, StepFn step, CountFn count,
              bool sharedStop = false) {
  int64_t done = 0;
  bool stopped = false;
  while (done < steps) {
    if (*abort && !sharedStop) break;
    const nas::StepStats st = step(done, abort->load());
    ++done;
    const int64_t at = count();
    emit([st, at](Napi::Env env) -> Napi::Value {
      auto p = Napi::Object::New(env);
      p.Set("step", static_cast<double>(at));
      p.Set("loss", st.loss);
      p.Set("correct", static_cast<double>(st.correct));
      p.Set("examples", static_cast<double>(st.examples));
      p.Set("activePaths", static_cast<double>(st.activePaths));
      return p;
    });
    if ((stopped = st.stop)) break;
  }
  const bool aborted = done < steps || stopped;
  const int64_t at = count();
  return [done, aborted, at](Napi::Env env) -> Napi::Value {
    auto r = Napi::Object::New(env);
    r.Set("steps", static_cast<double>(done));
    r.Set("aborted", aborted);
    r.Set("step", static_cast<double>(at));
    return r;
  };
}

}  // namespace nasjs
