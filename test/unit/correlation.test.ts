import { describe, expect, it } from 'vitest';
import { bootstrapInterval, kendall, meanPairwiseSpearman, spearman } from '../../src/report/correlation';
import { Rng } from '../../src/util/rng';

describe('rank correlations', () => {
  it("match hand-computed Spearman's rho and Kendall's tau-b (with a tie)", () => {
    const x = [1, 2, 3, 4, 5];
    const y = [5, 6, 7, 8, 7];
    // Ranks of y: 1, 2, 3.5, 5, 3.5 -> rho = 8 / sqrt(10 * 9.5); pairs: 8 concordant, 1 discordant, 1 tied in y.
    expect(spearman(x, y)).toBeCloseTo(8 / Math.sqrt(95), 12);
    expect(kendall(x, y)).toBeCloseTo(7 / Math.sqrt(90), 12);
  });

  it('are 1 for the same order and -1 for the reverse', () => {
    const a = [0.1, 0.5, 0.3, 0.9];
    expect(
      spearman(
        a,
        a.map((v) => v * 10 + 1),
      ),
    ).toBeCloseTo(1, 12);
    expect(
      kendall(
        a,
        a.map((v) => -v),
      ),
    ).toBeCloseTo(-1, 12);
  });
});

describe('bootstrap intervals', () => {
  it('are a point for a perfect ranking and repeat with the seed', () => {
    const x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    const y = x.map((v) => 2 * v + 0.7);
    const iv = bootstrapInterval(x, y, spearman, { seed: 3 });
    expect([iv.value, iv.low, iv.high]).toEqual([1, 1, 1]);
    // Resamples that draw one pair only (all x tied) have no rank correlation and are left out: with 2 pairs, half.
    const two = bootstrapInterval([1, 2], [3, 4], spearman, { seed: 1 });
    expect(two.resamples).toBeGreaterThan(850);
    expect(two.resamples).toBeLessThan(1150);
    const z = [0.3, 0.1, 0.6, 0.2, 0.5, 0.4];
    expect(bootstrapInterval(x, z, kendall, { seed: 5 })).toEqual(bootstrapInterval(x, z, kendall, { seed: 5 }));
  });

  it("have the textbook width for independent samples (Spearman's standard error 1/sqrt(n-1))", () => {
    const rng = new Rng(11);
    const n = 200;
    const x = Array.from({ length: n }, () => rng.uniform());
    const y = Array.from({ length: n }, () => rng.uniform());
    const iv = bootstrapInterval(x, y, spearman, { seed: 1 });
    expect(iv.low).toBeLessThan(iv.value);
    expect(iv.high).toBeGreaterThan(iv.value);
    // 2 * 1.96 / sqrt(199) = 0.278; a bootstrap estimate of it from one sample of 200 is within about 15%.
    expect(iv.high - iv.low).toBeGreaterThan(0.278 * 0.75);
    expect(iv.high - iv.low).toBeLessThan(0.278 * 1.25);
  });

  it('averages Spearman over pairs of seeds', () => {
    const a = [1, 2, 3, 4];
    const b = [1, 2, 4, 3];
    const c = [4, 3, 2, 1];
    // rho(a,b) = 1 - 6*2/(4*15) = 0.8, rho(a,c) = -1, rho(b,c) = -0.8.
    expect(meanPairwiseSpearman([a, b, c])).toBeCloseTo((0.8 - 1 - 0.8) / 3, 12);
    expect(meanPairwiseSpearman([a])).toBeNaN();
  });
});
