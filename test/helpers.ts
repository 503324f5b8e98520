import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Supernet, type SupernetConfig } from '../src/model/Supernet';
import { NativeData } from '../src/model/Supernet';
import { syntheticSet } from '../src/data/synthetic';
import { channelStats, type ImageSet } from '../src/data/types';
import { expect } from 'vitest';
import { Rng } from '../src/util/rng';

/** The tiny supernet of the tests: F=4, one cell per stack, 8x8 single-channel input. */
export const TINY: Partial<SupernetConfig> = {
  inChannels: 1,
  imageSize: 8,
  classes: 4,
  filters: 4,
  stacks: 3,
  cellsPerStack: 1,
  blocks: 4,
  ghostBatch: 8,
  // CI runs the native tests a second time with NAS_TEST_THREADS=2: other summation orders, the same bounds.
  threads: Number(process.env.NAS_TEST_THREADS) || 1,
  seed: 7,
};

export function tinyNet(over: Partial<SupernetConfig> = {}, optim: Parameters<typeof Supernet.create>[1] = {}): Supernet {
  return Supernet.create({ ...TINY, ...over }, { batchSize: 16, seed: 11, ...optim });
}

export function tinySet(n = 64, seed = 3): ImageSet {
  return syntheticSet({ n, size: 8, channels: 1, classes: 4, seed });
}

export function tinyData(n = 64, seed = 3): NativeData {
  const set = tinySet(n, seed);
  const { mean, std } = channelStats(set);
  return new NativeData(set, mean, std);
}

/** Random NCHW float images. */
export function randomImages(batch: number, c: number, size: number, seed = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: batch * c * size * size }, () => rng.uniform() * 2 - 1);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Parameters by name. */
export function snapshot(net: { parameterNames(): string[]; getParameter(n: string): Float32Array }): Map<string, Float32Array> {
  return new Map(net.parameterNames().map((n) => [n, net.getParameter(n)]));
}

/**
 * Runs that differ only in float summation order (thread counts, data-parallel workers, execution plans) cannot be
 * held to a fixed tolerance on this tiny model: it is chaotic. A one-ulp change flips a ReLU or max-pool tie, or
 * moves a BN channel that is constant within a ghost batch (downstream of a dropped path: 1/sqrt(eps) = 316x), and
 * within 4 steps that moves weights by up to 38% of their movement (`node scripts/float-spread.js`: learning rate
 * times 1 + k * 1e-7, 20 runs; median 1e-5..5e-2 depending on seed and drop rates; another machine of this kind
 * failed a fixed 1e-5 bound at 1.1e-4). So the tolerance is measured where the test runs: the same run with its
 * learning rate nudged by k * 1e-7 (k = 1..3) gives the float spread of this trajectory on this machine; the other
 * run may differ from the reference by at most SPREAD_MARGIN times that (floor: FLOOR_OF_MOVEMENT of the movement,
 * and LOSS_FLOOR for losses). A lost, doubled or misplaced gradient share moves weights by O(1) of their movement.
 */
export const SPREAD_MARGIN = 10;
export const FLOOR_OF_MOVEMENT = 1e-4;
export const LOSS_FLOOR = 1e-5;

export interface TrainedRun {
  losses: number[];
  start: Map<string, Float32Array>;
  params: Map<string, Float32Array>;
}

/** The bound for `other` against `ref`, from `nudged` runs (ref's configuration, learning rate times 1 + k * 1e-7). */
export function expectWithinFloatSpread(ref: TrainedRun, other: TrainedRun, nudged: TrainedRun[]): void {
  const spread = Math.max(...nudged.map((n) => spreadOfMovement(ref.start, ref.params, n.params)));
  const lossSpread = Math.max(...nudged.map((n) => maxAbsDiff(ref.losses, n.losses)));
  const diff = spreadOfMovement(ref.start, ref.params, other.params);
  const lossDiff = maxAbsDiff(ref.losses, other.losses);
  expect(diff, `parameter difference vs float spread ${spread}`).toBeLessThanOrEqual(Math.max(SPREAD_MARGIN * spread, FLOOR_OF_MOVEMENT));
  expect(lossDiff, `loss difference vs float spread ${lossSpread}`).toBeLessThanOrEqual(Math.max(SPREAD_MARGIN * lossSpread, LOSS_FLOOR));
}

/** Worst |a - b| over all parameters, relative to the largest movement from `start` to `a`. */
export function spreadOfMovement(start: Map<string, Float32Array>, a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let diff = 0;
  let moved = 0;
  for (const [name, p] of a) {
    diff = Math.max(diff, maxAbsDiff(p, b.get(name)!));
    moved = Math.max(moved, maxAbsDiff(p, start.get(name)!));
  }
  return diff / moved;
}

/** Worst over parameters of max |a - b| / max |a| (gradients); Infinity when one has a gradient and the other none. */
export function relativeGradientDiff(a: Map<string, Float32Array | null>, b: Map<string, Float32Array | null>): number {
  let worst = 0;
  for (const [name, g] of a) {
    const h = b.get(name) ?? null;
    if (!g || !h) {
      if (g !== h) return Infinity;
      continue;
    }
    let scale = 0;
    for (const v of g) scale = Math.max(scale, Math.abs(v));
    worst = Math.max(worst, maxAbsDiff(g, h) / (scale || 1));
  }
  return worst;
}

/** What a finished child process left: as spawnSync reports it. */
export interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node args..` (or `command args..`) to completion without blocking the test worker's event loop: a CLI run
 * that takes a minute on a busy machine would otherwise stall vitest's worker RPC until it times out ("Timeout
 * calling onTaskUpdate").
 */
export function runProcess(args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; command?: string } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(o.command ?? process.execPath, args, { env: o.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = o.timeoutMs ? setTimeout(() => child.kill('SIGTERM'), o.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/**
 * Whether a component that scripts/setup installs (Chromium, the Gloo build of the addon) is here. Under CI=true it
 * is required: a missing one throws, failing the test file, instead of letting its tests skip or cover less.
 */
export function requiredUnderCi(present: boolean, what: string): boolean {
  if (!present && process.env.CI === 'true') {
    throw new Error(`${what} is missing, and under CI=true every component scripts/setup installs is required`);
  }
  return present;
}

/** The compiled nasctl (`npm test` compiles it before vitest starts). */
export const NASCTL = path.resolve(__dirname, '../dist/cli/nasctl.js');

/** Chromium as scripts/setup installs it (Debian's package), or undefined. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

/**
 * Runs headless Chromium on `url` with `args` (e.g. `--dump-dom`) in a fresh profile, with nothing that reaches the
 * network on its own (no component updates, sync or QUIC).
 */
export function runChromium(url: string, args: string[], o: { timeoutMs?: number } = {}): Promise<Ran> {
  if (!CHROMIUM) throw new Error('Chromium is not installed (scripts/setup installs it)');
  return runProcess(chromiumArgs(url, args), { command: CHROMIUM, timeoutMs: o.timeoutMs ?? 60_000 });
}

/** Chromium's command line for runChromium (or a test that spawns it and stops it itself). */
export function chromiumArgs(url: string, args: string[]): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${fs.mkdtempSync(path.join(os.tmpdir(), 'nas-chromium-'))}`,
    ...args,
    url,
  ];
}
