/**
 * Path-dropout schedules (docs/model.md#path-dropout, the paper's section 3). For a node with fan-in k the drop probability of each
 * incoming path at the end of training is r^(1/k), so that all k paths are dropped together with probability r.
 */

/** How the drop probability evolves over training. */
export interface DropoutSchedule {
  /** `linear`: 0 at step 0 rising to r^(1/k) at the last step (the paper's). `constant`: r^(1/k) throughout. */
  kind: 'linear' | 'constant';
  /** The base rate r (default 0.1). */
  rate: number;
}

/** Per-path drop probability for fan-in k at `step` of `totalSteps`. Pure. */
export function dropProbability(schedule: DropoutSchedule, k: number, step: number, totalSteps: number): number {
  const end = schedule.rate <= 0 ? 0 : Math.pow(schedule.rate, 1 / k);
  if (schedule.kind === 'constant') return end;
  if (totalSteps <= 1) return end;
  return end * Math.min(1, Math.max(0, step / (totalSteps - 1)));
}

/**
 * The probabilities the addon consumes for steps [from, from + count): per step, per block, the drop probability
 * of each candidate input (fan-in 2 + i) and of each operation (fan-in `numOps`).
 */
export function dropTables(
  schedule: DropoutSchedule,
  blocks: number,
  numOps: number,
  from: number,
  count: number,
  totalSteps: number,
): { dropIn: Float32Array; dropOp: Float32Array } {
  const dropIn = new Float32Array(count * blocks);
  const dropOp = new Float32Array(count * blocks);
  for (let t = 0; t < count; t++) {
    for (let i = 0; i < blocks; i++) {
      dropIn[t * blocks + i] = dropProbability(schedule, 2 + i, from + t, totalSteps);
      dropOp[t * blocks + i] = dropProbability(schedule, numOps, from + t, totalSteps);
    }
  }
  return { dropIn, dropOp };
}
