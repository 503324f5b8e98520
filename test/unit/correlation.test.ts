import { describe, expect, it } from 'vitest';
import { kendall, spearman } from '../../src/report/correlation';

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
    expect(spearman(a, a.map((v) => v * 10 + 1))).toBeCloseTo(1, 12);
    expect(kendall(a, a.map((v) => -v))).toBeCloseTo(-1, 12);
  });
});
