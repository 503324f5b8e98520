import { describe, expect, it } from 'vitest';
import { dropProbability, dropTables } from '../../src/schedule/dropout';
import { learningRate, learningRateTable } from '../../src/schedule/learningRate';
import { PRESETS } from '../../src/train/trainOptions';

describe('dropout schedule', () => {
  it('rises linearly from 0 to r^(1/k)', () => {
    const s = { kind: 'linear' as const, rate: 0.1 };
    expect(dropProbability(s, 7, 0, 101)).toBe(0);
    expect(dropProbability(s, 7, 100, 101)).toBeCloseTo(Math.pow(0.1, 1 / 7), 12);
    expect(dropProbability(s, 2, 50, 101)).toBeCloseTo(0.5 * Math.pow(0.1, 1 / 2), 12);
    // All k paths of a node are dropped together with probability r at the end.
    expect(Math.pow(dropProbability(s, 5, 100, 101), 5)).toBeCloseTo(0.1, 12);
  });

  it('stays at r^(1/k) when constant, and is 0 for r = 0', () => {
    expect(dropProbability({ kind: 'constant', rate: 0.01 }, 4, 0, 10)).toBeCloseTo(Math.pow(0.01, 0.25), 12);
    expect(dropProbability({ kind: 'constant', rate: 0 }, 4, 5, 10)).toBe(0);
  });

  it('lays tables out step-major with per-block fan-in', () => {
    const { dropIn, dropOp } = dropTables({ kind: 'constant', rate: 0.1 }, { steps: 3, ops: 7 });
    expect(dropIn).toHaveLength(12);
    expect(dropIn[4 + 2]).toBeCloseTo(Math.pow(0.1, 1 / 4), 6); // step 1, block 2: fan-in 4
    expect(dropOp[11]).toBeCloseTo(Math.pow(0.1, 1 / 7), 6);
  });
});

describe('learning rate', () => {
  it('follows a cosine from base to 0', () => {
    const s = { kind: 'cosine' as const, base: 0.1 };
    expect(learningRate(s, 0, 100)).toBeCloseTo(0.1, 12);
    expect(learningRate(s, 50, 100)).toBeCloseTo(0.05, 12);
    expect(learningRate(s, 100, 100)).toBeCloseTo(0, 12);
  });

  it('warms up linearly and offers a constant schedule', () => {
    const s = { kind: 'cosine' as const, base: 0.1, warmupSteps: 10 };
    expect(learningRate(s, 0, 100)).toBeCloseTo(0.01, 12);
    expect(learningRate(s, 9, 100)).toBeCloseTo(0.1, 12);
    expect(Array.from(learningRateTable({ kind: 'constant', base: 0.3 }, { steps: 10, from: 5, count: 3 }))).toEqual([0.3, 0.3, 0.3]);
  });
});

describe('learning-rate warm-up (--warmup-steps)', () => {
  it('ramps linearly over the first steps with either schedule, then follows it', () => {
    for (const kind of ['cosine', 'constant'] as const) {
      const s = { kind, base: 0.1, warmupSteps: 4 };
      [0.025, 0.05, 0.075, 0.1].forEach((lr, t) => {
        expect(learningRate(s, t, 100)).toBeCloseTo(lr, 15);
      });
      expect(learningRate(s, 50, 100)).toBeCloseTo(kind === 'constant' ? 0.1 : 0.05, 12);
    }
    expect(learningRate({ kind: 'constant', base: 0.1, warmupSteps: 0 }, 0, 100)).toBe(0.1);
  });

  it('is explicit in the presets: 20 steps in quick, none in paper', () => {
    expect(PRESETS.quick.learningRate.warmupSteps).toBe(20);
    expect(PRESETS.paper.learningRate.warmupSteps).toBe(0);
  });
});
