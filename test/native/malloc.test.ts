// Freed memory stays mapped (docs/architecture.md#memory-on-the-cpu): once CPU training is warm, a step takes its
// activations from memory the process already holds instead of faulting fresh zeroed pages in from the kernel.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const fixture = path.resolve(__dirname, '../fixtures/mallocFaults.js');
const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const run = (retainMb?: string): { warmup: number; each: number[] } => {
  const env = { ...process.env };
  delete env.NAS_MALLOC_RETAIN_MB;
  if (retainMb !== undefined) env.NAS_MALLOC_RETAIN_MB = retainMb;
  return JSON.parse(execFileSync(process.execPath, [fixture, '5'], { encoding: 'utf8', env }));
};

describe('freed memory kept mapped', () => {
  it('trains a warm step without faulting its activations in again; with glibc left alone it does', () => {
    // F=8 at CIFAR size, batch 64 on 2 threads, about 1.7 GiB resident. Measured over 6 runs of 5 steps each, the
    // median faults of a step: 12 to 85 kept (a step whose helper thread lands on a cold arena faults ~128,000, so
    // the median), 12,423 to 54,105 with NAS_MALLOC_RETAIN_MB=0 (the warm-up: 260,000 to 540,000).
    const kept = run();
    expect(kept.warmup).toBeGreaterThan(100_000);
    expect(median(kept.each)).toBeLessThan(1_000);
    // The control: the same steps with glibc's defaults give the bound above something to catch.
    expect(median(run('0').each)).toBeGreaterThan(4_000);
  });
});
