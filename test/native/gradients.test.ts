// SPEC conformance: dropped paths get exactly zero gradient and no weight decay; active paths get both.
import { describe, expect, it } from 'vitest';
import { OPS } from '../../src/space/architecture';
import { tinyData, tinyNet } from '../helpers';

const BLOCKS = 4;

describe('masked weight decay and gradients', () => {
  // threads 2: the two ghost batches run on their own threads and their gradients are summed.
  it.each([1, 2])('leaves dropped paths untouched and decays active ones exactly (%i threads)', async (threads) => {
    const lr = 0.1;
    const wd = 0.05;
    const net = tinyNet({ threads }, { batchSize: 16, momentum: 0, weightDecay: wd, seed: 5 });
    const data = tinyData();
    const names = net.parameterNames();
    const before = new Map(names.map((n) => [n, net.getParameter(n)]));
    await net.train(data, {
      steps: 1,
      lr: Float64Array.of(lr),
      dropIn: new Float32Array(BLOCKS).fill(0.5),
      dropOp: new Float32Array(BLOCKS).fill(0.5),
    });
    const m = net.lastMasks();
    expect(m.ghosts).toBe(2);
    const anyIn = new Array(BLOCKS).fill(0);
    const anyOp = new Array(BLOCKS).fill(0);
    for (let g = 0; g < m.ghosts; g++) {
      for (let b = 0; b < BLOCKS; b++) {
        anyIn[b] |= m.inputs[g * BLOCKS + b];
        if (m.inputs[g * BLOCKS + b]) anyOp[b] |= m.ops[g * BLOCKS + b];
      }
    }
    let dropped = 0;
    let active = 0;
    let droppedColumns = 0;
    for (const name of names) {
      const p0 = before.get(name)!;
      const p1 = net.getParameter(name);
      const grad = net.getGradient(name);
      const op = /blocks\.(\d+)\.ops\.(\w+)\./.exec(name);
      const input = /blocks\.(\d+)\.in\.conv\.weight$/.exec(name);
      const decays = name.endsWith('.weight') && !name.includes('bn.');
      if (op) {
        const b = Number(op[1]);
        const on = (anyOp[b] >> OPS.indexOf(op[2] as (typeof OPS)[number])) & 1;
        if (!on) {
          dropped++;
          expect(grad, name).toBeNull();
          expect(Array.from(p1), name).toEqual(Array.from(p0));
          continue;
        }
        active++;
      }
      expect(grad, name).not.toBeNull();
      if (input) {
        // Columns j*C..(j+1)*C of the block's 1x1 conv read candidate j: zero gradient and no decay when j was off.
        const b = Number(input[1]);
        const C = Math.round(Math.sqrt(p0.length / (2 + b))); // weight is [C, (2 + b) * C, 1, 1]
        const cols = (2 + b) * C;
        for (let k = 0; k < p0.length; k++) {
          const j = Math.floor((k % cols) / C);
          if (!((anyIn[b] >> j) & 1)) {
            droppedColumns++;
            expect(grad![k]).toBe(0);
            expect(p1[k]).toBe(p0[k]);
          } else {
            expect(p1[k]).toBeCloseTo(p0[k] - lr * (grad![k] + wd * p0[k]), 5);
          }
        }
        continue;
      }
      for (let k = 0; k < p0.length; k++) {
        const expected = p0[k] - lr * (grad![k] + (decays ? wd * p0[k] : 0));
        expect(Math.abs(p1[k] - expected), name).toBeLessThan(1e-5);
      }
    }
    // The seed was chosen so that the step exercises every case.
    expect(dropped).toBeGreaterThan(0);
    expect(active).toBeGreaterThan(0);
    expect(droppedColumns).toBeGreaterThan(0);
    net.dispose();
  });

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
});
