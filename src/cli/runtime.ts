/** The runtime flags (--threads, --device, --precision, --plan): declared here once for every command that has them. */
import type { Command } from 'commander';
import { EXECUTION_PLANS, type ExecutionPlan } from '../native/binding';
import { oneOf, positiveInt } from './parse';
import { cores } from '../util/threads';

/** The runtime flags as commander parses them. */
export interface RuntimeFlags {
  threads?: number;
  device?: string;
  precision?: 'fp32' | 'bf16';
  plan?: ExecutionPlan;
}

type RuntimeFlag = keyof RuntimeFlags;

const HELP: Record<RuntimeFlag, [string, string]> = {
  threads: ['LibTorch threads', '$OMP_NUM_THREADS up to the cores, else all cores'],
  device: ['cpu, cuda, cuda:N or auto', 'cpu'],
  precision: ['fp32, or bf16 (autocast for forward passes; weights stay float32)', 'fp32'],
  plan: ['execution plan: auto (fused on CUDA, per-ghost on CPU), per-ghost or fused', 'auto'],
};

/** --threads: a positive integer; more than the cores is allowed, with a warning (every step slows down). */
function threadsArg(value: string): number {
  const n = positiveInt(value);
  if (n > cores())
    process.stderr.write(
      `nasctl: warning: --threads ${n} is more than the ${cores()} cores of this machine: the threads take turns on the cores and every step slows down\n`,
    );
  return n;
}

/**
 * Adds the runtime flags `which` (default: all four) to `cmd`, with one help text each; `defaults` says where a
 * command takes another default (e.g. a study's device: its one-shot model's).
 */
export function addRuntimeOptions(
  cmd: Command,
  which: RuntimeFlag[] = ['threads', 'device', 'precision', 'plan'],
  defaults: Partial<Record<RuntimeFlag, string>> = {},
): Command {
  const help = (k: RuntimeFlag): string => `${HELP[k][0]} (default: ${defaults[k] ?? HELP[k][1]})`;
  for (const k of which) {
    if (k === 'threads') cmd.option('--threads <n>', help(k), threadsArg);
    else if (k === 'device') cmd.option('--device <device>', help(k));
    else if (k === 'precision') cmd.option('--precision <p>', help(k), oneOf(['fp32', 'bf16'] as const));
    else cmd.option('--plan <plan>', help(k), oneOf(EXECUTION_PLANS));
  }
  return cmd;
}
