/** The one place for means and standard deviations (runs over seeds, accuracies over architectures). */

/** Arithmetic mean; NaN for no values. */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Mean and sample standard deviation (n - 1); the deviation of one value is 0. */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const m = mean(xs);
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: m, std };
}
