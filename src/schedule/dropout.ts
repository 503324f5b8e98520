/**
 * Path-dropout schedules (docs/model.md#path-dropout, the paper's section 3). For a node with fan-in k the drop probability of each
 * incoming path at the end of training is r^(1/k), so that all k paths are dropped together with probability r.
 */
import { DEFAULT_SPACE, OPS } from '../space/architecture';
import { invalidParameter } from '../util/errors';

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

/** Which steps a table covers: steps [from, from + count) of a run of `steps` steps. */
export interface StepRange {
  /** Length of the whole run, the T of the schedule. */
  steps: number;
  /** First step of the table (default 0). */
  from?: number;
  /** Steps in the table (default: the rest of the run, `steps - from`). */
  count?: number;
}

/** The steps of a table and their checks (shared by dropTables and learningRateTable). */
export function stepRange(r: StepRange): { steps: number; from: number; count: number } {
  const steps = r.steps;
  const from = r.from ?? 0;
  const count = r.count ?? steps - from;
  const check = (name: string, v: number): void => {
    if (!(Number.isInteger(v) && v >= 0)) throw invalidParameter(name, 'a non-negative integer', v);
  };
  check('steps', steps);
  check('from', from);
  check('count', count);
  return { steps, from, count };
}

/**
 * The probabilities the addon consumes (`net.train`'s `dropIn` and `dropOp`) for the steps of `range`: per step, per
 * block, the drop probability of each candidate input (fan-in 2 + i) and of each operation (fan-in `ops`, default the
 * space's operation count). `blocks` is the model's (default 4, the paper's).
 */
export function dropTables(
  schedule: DropoutSchedule,
  range: StepRange & { blocks?: number; ops?: number },
): { dropIn: Float32Array; dropOp: Float32Array } {
  const { steps, from, count } = stepRange(range);
  const blocks = range.blocks ?? DEFAULT_SPACE.blocks;
  const numOps = range.ops ?? OPS.length;
  const dropIn = new Float32Array(count * blocks);
  const dropOp = new Float32Array(count * blocks);
  for (let t = 0; t < count; t++) {
    for (let i = 0; i < blocks; i++) {
      dropIn[t * blocks + i] = dropProbability(schedule, 2 + i, from + t, steps);
      dropOp[t * blocks + i] = dropProbability(schedule, numOps, from + t, steps);
    }
  }
  return { dropIn, dropOp };
}
