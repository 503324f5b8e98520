/** Rank correlations (ties get average ranks). */
import { Rng } from '../util/rng';

function ranks(xs: number[]): number[] {
  const idx = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    num += (a[i] - ma) * (b[i] - mb);
    da += (a[i] - ma) ** 2;
    db += (b[i] - mb) ** 2;
  }
  return num / Math.sqrt(da * db);
}

/** Spearman's rho: Pearson's correlation of the ranks. */
export function spearman(a: number[], b: number[]): number {
  return pearson(ranks(a), ranks(b));
}

/** Kendall's tau-b. */
export function kendall(a: number[], b: number[]): number {
  let concordant = 0;
  let discordant = 0;
  let tiesA = 0;
  let tiesB = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const x = Math.sign(a[i] - a[j]);
      const y = Math.sign(b[i] - b[j]);
      if (x === 0 && y === 0) continue;
      if (x === 0) tiesA++;
      else if (y === 0) tiesB++;
      else if (x === y) concordant++;
      else discordant++;
    }
  }
  return (concordant - discordant) / Math.sqrt((concordant + discordant + tiesA) * (concordant + discordant + tiesB));
}

/** A statistic with its bootstrap interval. */
export interface Interval {
  value: number;
  low: number;
  high: number;
  /** Coverage of [low, high], e.g. 0.95. */
  level: number;
  /** Resamples drawn; those where the statistic is undefined (all x or all y tied) are left out. */
  resamples: number;
}

/**
 * Percentile bootstrap of a paired statistic: `resamples` draws of n pairs with replacement (seeded), the statistic
 * of each, and the (1 - level) / 2 and (1 + level) / 2 quantiles of those that are defined.
 */
export function bootstrapInterval(
  a: number[],
  b: number[],
  stat: (x: number[], y: number[]) => number,
  o: { resamples?: number; level?: number; seed?: number } = {},
): Interval {
  if (a.length !== b.length) throw new RangeError(`bootstrapInterval: ${a.length} values against ${b.length}`);
  const resamples = o.resamples ?? 2000;
  const level = o.level ?? 0.95;
  const rng = new Rng(o.seed ?? 0);
  const n = a.length;
  const values: number[] = [];
  const x = new Array<number>(n);
  const y = new Array<number>(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) {
      const k = rng.below(n);
      x[i] = a[k];
      y[i] = b[k];
    }
    const v = stat(x, y);
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((p, q) => p - q);
  const q = (p: number): number =>
    values.length ? values[Math.min(values.length - 1, Math.max(0, Math.round(p * (values.length - 1))))] : NaN;
  return { value: stat(a, b), low: q((1 - level) / 2), high: q((1 + level) / 2), level, resamples: values.length };
}

/** Mean Spearman's rho over every pair of columns (seeds): how repeatable a ranking is. NaN with fewer than 2. */
export function meanPairwiseSpearman(columns: number[][]): number {
  const rhos: number[] = [];
  for (let i = 0; i < columns.length; i++) for (let j = i + 1; j < columns.length; j++) rhos.push(spearman(columns[i], columns[j]));
  return rhos.length ? rhos.reduce((s, r) => s + r, 0) / rhos.length : NaN;
}
