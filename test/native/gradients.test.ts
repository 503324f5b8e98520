// docs/model.md#weight-decay and docs/model.md#optimizer: a path dropped in every ghost batch of a step gets exactly
// zero gradient and no decay but keeps its momentum; a weight used by c of the step's G ghost batches is decayed with
// strength wd * c / G (the L2 term is part of each ghost batch's loss); BN parameters and biases are never decayed.
import { describe, expect, it } from 'vitest';
import { OPS } from '../../src/space/architecture';
import { snapshot, tinyData, tinyNet } from '../helpers';

const BLOCKS = 4;

/** Per block: in how many ghost batches each input j and each op o ran (an op only where its block had an input). */
function activeCounts(m: { ghosts: number; inputs: Uint32Array; ops: Uint32Array }): { inputs: number[][]; ops: number[][] } {
  const inputs = Array.from({ length: BLOCKS }, (_, b) => new Array(2 + b).fill(0));
  const ops = Array.from({ length: BLOCKS }, () => new Array(OPS.length).fill(0));
  for (let g = 0; g < m.ghosts; g++) {
    for (let b = 0; b < BLOCKS; b++) {
      const inp = m.inputs[g * BLOCKS + b];
      for (let j = 0; j < 2 + b; j++) inputs[b][j] += (inp >> j) & 1;
      if (inp) for (let o = 0; o < OPS.length; o++) ops[b][o] += (m.ops[g * BLOCKS + b] >> o) & 1;
    }
  }
  return { inputs, ops };
}

describe('masked weight decay per ghost batch, and gradients', () => {
  // G = 1: the rule of one ghost batch (decay exactly where the path ran). G = 2, 4: partial strengths c / G.
  // threads 2: ghost batches on their own threads with gradients summed; plan 'fused': all ghost batches in one pass.
  const cases = [
    { ghosts: 1, threads: 1, plan: 'per-ghost', seed: 5 },
    { ghosts: 2, threads: 1, plan: 'per-ghost', seed: 5 },
    { ghosts: 2, threads: 2, plan: 'per-ghost', seed: 5 },
    { ghosts: 4, threads: 2, plan: 'per-ghost', seed: 5 },
    { ghosts: 2, threads: 1, plan: 'fused', seed: 5 },
    { ghosts: 4, threads: 1, plan: 'fused', seed: 5 },
  ] as const;
  it.each(cases)(
    'decays each weight by wd * c / G and leaves dropped paths untouched (G=$ghosts, $threads threads, $plan)',
    async ({ ghosts, threads, plan, seed }) => {
      const lr = 0.1;
      const wd = 0.05;
      const net = tinyNet({ threads, plan }, { batchSize: 8 * ghosts, momentum: 0, weightDecay: wd, seed });
      const before = snapshot(net);
      await net.train(tinyData(), {
        steps: 1,
        lr: Float64Array.of(lr),
        dropIn: new Float32Array(BLOCKS).fill(0.5),
        dropOp: new Float32Array(BLOCKS).fill(0.5),
      });
      const m = net.lastMasks();
      expect(m.ghosts).toBe(ghosts);
      const counts = activeCounts(m);
      const seen = { dropped: 0, partial: 0, full: 0, droppedColumns: 0, unreadOp: 0 };
      for (const name of net.parameterNames()) {
        const p0 = before.get(name)!;
        const p1 = net.getParameter(name);
        const grad = net.getGradient(name);
        const op = /blocks\.(\d+)\.ops\.(\w+)\./.exec(name);
        const inputStage = /blocks\.(\d+)\.in\./.exec(name);
        if (inputStage && counts.inputs[Number(inputStage[1])].every((c) => c === 0)) {
          // A block with no input in any ghost batch computes nothing: no gradient, no decay.
          expect(grad, name).toBeNull();
          expect(Array.from(p1), name).toEqual(Array.from(p0));
          continue;
        }
        const input = /blocks\.(\d+)\.in\.conv\.weight$/.exec(name);
        const decays = name.endsWith('.weight') && !name.includes('bn.');
        // Decay strength per element (as a fraction of wd).
        let share: (k: number) => number = () => (decays ? 1 : 0);
        if (op) {
          const c = counts.ops[Number(op[1])][OPS.indexOf(op[2] as (typeof OPS)[number])];
          if (c === 0) {
            seen.dropped++;
            expect(grad, name).toBeNull();
            expect(Array.from(p1), name).toEqual(Array.from(p0)); // zero gradient, no decay, no momentum (0 here)
            continue;
          }
          if (decays) seen[c < ghosts ? 'partial' : 'full']++;
          share = () => (decays ? c / ghosts : 0);
        } else if (input) {
          // Columns j*C..(j+1)*C of the block's 1x1 conv read candidate j: decayed by c_j / G, zero gradient when c_j = 0.
          const b = Number(input[1]);
          const C = Math.round(Math.sqrt(p0.length / (2 + b))); // weight is [C, (2 + b) * C, 1, 1]
          const cols = (2 + b) * C;
          const col = (k: number) => Math.floor((k % cols) / C);
          for (let k = 0; k < p0.length; k++) {
            if (counts.inputs[b][col(k)] === 0) {
              seen.droppedColumns++;
              expect(grad![k]).toBe(0);
            }
          }
          share = (k) => counts.inputs[b][col(k)] / ghosts;
        }
        // A weight whose result nothing downstream read in this step's ghost batches (a reduction of a state that no
        // block read; on CPU, where ghost batches run one per pass, a cell whose output no later cell read) has no
        // gradient (zero) but still decays as counted.
        if (grad === null && op && decays) seen.unreadOp++;
        for (let k = 0; k < p0.length; k++) {
          const expected = p0[k] - lr * ((grad ? grad[k] : 0) + wd * share(k) * p0[k]);
          expect(Math.abs(p1[k] - expected), name).toBeLessThan(1e-6);
        }
      }
      // The seed was chosen so that the step exercises every case its G allows (at G = 4 and drop 0.5 an op is rarely
      // dropped in all four ghost batches or kept in all four).
      if (ghosts <= 2) expect(seen.dropped).toBeGreaterThan(0);
      if (ghosts <= 2) expect(seen.full).toBeGreaterThan(0);
      if (ghosts > 1) expect(seen.partial).toBeGreaterThan(0);
      expect(seen.droppedColumns + seen.dropped).toBeGreaterThan(0);
      // At G = 4 on the per-ghost plan an op runs in a ghost batch whose cell output no later cell reads: decay, no gradient.
      if (ghosts === 4 && plan === 'per-ghost') expect(seen.unreadOp).toBeGreaterThan(0);
      net.dispose();
    },
  );

  it('decays an active parameter even when its gradient is zero', async () => {
    const net = tinyNet({}, { batchSize: 16, momentum: 0, weightDecay: 0.5, seed: 1 });
    const data = tinyData();
    const p0 = net.getParameter('head.fc.weight');
    // lr tiny so that the gradient's share is negligible next to a decay of 0.5 * p.
    await net.train(data, { steps: 1, lr: Float64Array.of(1e-3), dropIn: new Float32Array(BLOCKS), dropOp: new Float32Array(BLOCKS) });
    const g = net.getGradient('head.fc.weight')!;
    const p1 = net.getParameter('head.fc.weight');
    for (let k = 0; k < p0.length; k++) expect(p1[k]).toBeCloseTo(p0[k] - 1e-3 * (g[k] + 0.5 * p0[k]), 6);
    net.dispose();
  });

  it.each(['per-ghost', 'fused'] as const)('moves a path dropped in a whole step by exactly its momentum term (%s)', async (plan) => {
    // Step 1: every path on, so the buffer is buf1 = d1 = g1 + wd * p0 and Nesterov moves p by lr1 * (1 + m) * d1.
    // Step 2: every op dropped in every ghost batch: zero gradient, no decay, so buf2 = m * buf1 and p moves by
    // lr2 * m * buf2 = lr2 * m^2 * d1 (docs/model.md#optimizer: momentum still applies, as in a framework that multiplies by masks).
    const m = 0.9;
    const [lr1, lr2] = [0.05, 0.2];
    const net = tinyNet({ plan }, { batchSize: 16, momentum: m, weightDecay: 1e-2, seed: 3 });
    const data = tinyData();
    const p0 = snapshot(net);
    await net.train(data, { steps: 1, lr: Float64Array.of(lr1), dropIn: new Float32Array(BLOCKS), dropOp: new Float32Array(BLOCKS) });
    const p1 = snapshot(net);
    await net.train(data, {
      steps: 1,
      lr: Float64Array.of(lr2),
      dropIn: new Float32Array(BLOCKS),
      dropOp: new Float32Array(BLOCKS).fill(1),
    });
    const p2 = snapshot(net);
    let checked = 0;
    for (const name of net.parameterNames().filter((n) => /\.ops\.(sep3|conv7x1)\./.test(n))) {
      expect(net.getGradient(name), name).toBeNull();
      const [a, b, c] = [p0.get(name)!, p1.get(name)!, p2.get(name)!];
      for (let k = 0; k < a.length; k++) {
        const d1 = (a[k] - b[k]) / (lr1 * (1 + m));
        expect(Math.abs(c[k] - (b[k] - lr2 * m * m * d1)), name).toBeLessThan(1e-6);
      }
      // It really moved (the rule is not "skip").
      expect(Math.max(...Array.from(b, (v, k) => Math.abs(v - c[k])))).toBeGreaterThan(1e-5);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    net.dispose();
  });
});
