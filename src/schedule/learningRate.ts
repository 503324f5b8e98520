/** Learning-rate schedules, pure functions of the step. */
import { type StepRange, stepRange } from './dropout';
export interface LearningRateSchedule {
  /** `cosine`: base * (1 + cos(pi * t / T)) / 2 (the paper's default); `constant`: base. */
  kind: 'cosine' | 'constant';
  base: number;
  /** Linear warm-up over this many steps (0 = none). */
  warmupSteps?: number;
}

/** Learning rate at `step` of `totalSteps`. */
export function learningRate(schedule: LearningRateSchedule, step: number, totalSteps: number): number {
  const warm = schedule.warmupSteps ?? 0;
  if (warm > 0 && step < warm) return (schedule.base * (step + 1)) / warm;
  if (schedule.kind === 'constant' || totalSteps <= 0) return schedule.base;
  const t = Math.min(1, Math.max(0, step / totalSteps));
  return (schedule.base * (1 + Math.cos(Math.PI * t))) / 2;
}

/** Learning rates (`net.train`'s `lr`) for the steps of `range` (dropout.ts: StepRange). */
export function learningRateTable(schedule: LearningRateSchedule, range: StepRange): Float64Array {
  const { steps, from, count } = stepRange(range);
  const out = new Float64Array(count);
  for (let t = 0; t < count; t++) out[t] = learningRate(schedule, from + t, steps);
  return out;
}
