// Path dropout: frequencies follow the schedule; one mask per ghost batch.
import { describe, expect, it } from 'vitest';
import { OPS } from '../../src/space/architecture';
import { dropTables } from '../../src/schedule/dropout';
import { tinyData, tinyNet } from '../helpers';

const BLOCKS = 4;

describe('per-ghost-batch path masks', () => {
  it('drops paths as often as the linear schedule says, and differently per ghost batch', async () => {
    const steps = 240;
    const net = tinyNet({ filters: 2, stacks: 1 }, { batchSize: 32, seed: 99 }); // 4 ghost batches of 8; masks do not depend on size
    const data = tinyData(64);
    const schedule = { kind: 'linear' as const, rate: 0.1 };
    const { dropIn, dropOp } = dropTables(schedule, { steps, blocks: BLOCKS });
    const observedIn = new Array(BLOCKS).fill(0);
    const expectedIn = new Array(BLOCKS).fill(0);
    let observedOp = 0;
    let expectedOp = 0;
    let differing = 0;
    for (let s = 0; s < steps; s++) {
      // lr 0: masks are drawn and applied but the weights stay put, so 240 steps take little time.
      await net.train(data, { steps: 1, lr: Float64Array.of(0), dropIn: dropIn.subarray(s * BLOCKS), dropOp: dropOp.subarray(s * BLOCKS) });
      const m = net.lastMasks();
      const seen = new Set<string>();
      for (let g = 0; g < m.ghosts; g++) {
        seen.add(`${m.inputs.subarray(g * BLOCKS, (g + 1) * BLOCKS)}|${m.ops.subarray(g * BLOCKS, (g + 1) * BLOCKS)}`);
        for (let b = 0; b < BLOCKS; b++) {
          for (let j = 0; j < 2 + b; j++) observedIn[b] += (m.inputs[g * BLOCKS + b] >> j) & 1 ? 0 : 1;
          for (let o = 0; o < OPS.length; o++) observedOp += (m.ops[g * BLOCKS + b] >> o) & 1 ? 0 : 1;
          expectedIn[b] += (2 + b) * dropIn[s * BLOCKS + b];
          expectedOp += OPS.length * dropOp[s * BLOCKS + b];
        }
      }
      if (seen.size > 1) differing++;
    }
    for (let b = 0; b < BLOCKS; b++) {
      const n = 4 * steps * (2 + b);
      // Binomial: a tolerance of 5 standard deviations (p <= 0.32 here, so sd <= sqrt(0.25 * n)).
      expect(Math.abs(observedIn[b] - expectedIn[b]), `block ${b} inputs`).toBeLessThan(5 * Math.sqrt(0.25 * n));
    }
    expect(Math.abs(observedOp - expectedOp)).toBeLessThan(5 * Math.sqrt(0.25 * 4 * steps * BLOCKS * OPS.length));
    // End of the schedule: the whole node (all k paths) is dropped with probability r = 0.1.
    expect(Math.pow(dropOp[(steps - 1) * BLOCKS], OPS.length)).toBeCloseTo(0.1, 6);
    // Early steps drop nothing, so only later steps can differ; most of those must.
    expect(differing).toBeGreaterThan(steps * 0.6);
    net.dispose();
  });
});
