// The default number of LibTorch threads.
import * as os from 'node:os';

/** The machine's cores (those this process may run on). */
export function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * OMP_NUM_THREADS read as libgomp reads it: a comma-separated list of positive decimal integers (one per nesting
 * level; the first is the outer level's), spaces around them allowed; anything else (`1e3`, `0`, `2x`) is invalid
 * and, as libgomp does, ignored: undefined.
 */
export function ompNumThreads(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*(,\s*\d+\s*)*$/.test(value)) return undefined;
  const first = Number(value.split(',')[0]);
  return Number.isSafeInteger(first) && first > 0 ? first : undefined;
}

/**
 * OMP_NUM_THREADS when set and valid (nasctl launch and torchrun set it per worker), else the machine's cores; never
 * more than the cores (more threads than cores take turns and slow every step down; --threads can still ask).
 */
export function defaultThreads(env: NodeJS.ProcessEnv = process.env): number {
  return Math.min(ompNumThreads(env.OMP_NUM_THREADS) ?? cores(), cores());
}
