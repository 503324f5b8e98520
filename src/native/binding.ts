/**
 * The typed contract of the native addon (native/*_wrap.h), and its loader. This is the only module that loads it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NasError, invalidParameter } from '../util/errors';

/** Network configuration as the addon reads it (see native/core/config.h). */
/** Execution plans of the one-shot model: `per-ghost` (CPU-shaped), `fused` (GPU-shaped), `auto` (by device). */
export const EXECUTION_PLANS = ['auto', 'per-ghost', 'fused'] as const;
/** How the one-shot model runs ghost batches: see `SupernetConfig.plan`. */
export type ExecutionPlan = (typeof EXECUTION_PLANS)[number];

/** The model config as the addon reads it. */
export interface NativeNetConfig {
  inChannels: number;
  imageSize: number;
  classes: number;
  filters: number;
  stacks: number;
  cellsPerStack: number;
  blocks: number;
  ghostBatch: number;
  bnEps?: number;
  channelsLast?: boolean;
  device?: string;
  seed?: number;
  threads?: number;
  precision?: 'fp32' | 'bf16';
  /** Execution plan: 'fused' (GPU-shaped), 'per-ghost' (CPU-shaped) or 'auto' (fused on CUDA). */
  plan?: ExecutionPlan;
}

/** Optimizer and data-loop settings (see native/core/trainer.h). */
export interface NativeOptimConfig {
  batchSize: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  cropPad: number;
  flip: boolean;
  seed: number;
}

/** Per-step progress as the addon reports it. */
export interface NativeStepProgress {
  step: number;
  loss: number;
  correct: number;
  examples: number;
  activePaths: number;
}

/** Loss sum, correct predictions and examples of one evaluated architecture. */
export interface NativeEvalResult {
  lossSum: number;
  correct: number;
  examples: number;
}

/** A dataset held in native memory (normalised on the fly), shared by jobs. */
export interface NativeDataset {
  size(): number;
}

/** The addon's one-shot model (native/supernet_wrap.h lists its methods and errors). */
export interface NativeSupernet {
  parameterCount(): number;
  describe(arch: Uint32Array | null): { params: number; madds: number };
  train(
    ds: NativeDataset,
    opts: { steps: number; lr: Float64Array; dropIn: Float32Array; dropOp: Float32Array; threads?: number },
    onProgress?: (p: NativeStepProgress) => void,
  ): Promise<{ steps: number; aborted: boolean; step: number }>;
  evaluate(
    ds: NativeDataset,
    archs: Uint32Array,
    opts: { start?: number; count?: number; batchSize?: number; threads?: number; batched?: boolean },
    onProgress?: (done: number) => void,
  ): Promise<NativeEvalResult[]>;
  forward(
    images: Float32Array,
    batch: number,
    masks: Uint32Array,
    probe: boolean,
  ): { logits: Float32Array; probeMean?: Float32Array; probeVar?: Float32Array };
  forward(
    images: Float32Array,
    batch: number,
    masks: Uint32Array,
    probe: boolean,
    count: { backward: boolean },
  ): { opsTotal: number; opsTopLevel: number };
  standaloneForward(images: Float32Array, batch: number, arch: Uint32Array): Float32Array;
  lastMasks(): { ghosts: number; inputs: Uint32Array; ops: Uint32Array };
  parameterNames(): string[];
  getParameter(name: string): Float32Array;
  setParameter(name: string, value: Float32Array): void;
  getGradient(name: string): Float32Array | null;
  stepCount(): number;
  setOptim(optim: Partial<NativeOptimConfig>): void;
  setGroup(group: NativeProcessGroup | null): void;
  save(path: string, meta: string): Promise<void>;
  load(path: string): Promise<string>;
  abort(): void;
  dispose(): void;
}

/** The addon's stand-alone model (native/standalone_model_wrap.h lists its methods and errors). */
export interface NativeStandaloneModel {
  train(
    ds: NativeDataset,
    opts: { steps: number; lr: Float64Array; threads?: number },
    onProgress?: (p: { step: number; loss: number; correct: number; examples: number }) => void,
  ): Promise<{ steps: number; aborted: boolean; step: number }>;
  evaluate(ds: NativeDataset, opts: { start?: number; count?: number; batchSize?: number; threads?: number }): Promise<NativeEvalResult>;
  predict(images: Float32Array, batch: number, logits?: boolean): Float32Array;
  stateDict(): { name: string; shape: number[]; data: Float32Array }[];
  setTensor(name: string, value: Float32Array): void;
  parameterCount(): number;
  multiplyAdds(): number;
  stepCount(): number;
  save(path: string, meta: string): Promise<void>;
  load(path: string): Promise<string>;
  abort(): void;
  /** One training step on the calling thread under an ATen op counter (native/standalone_model_wrap.h). */
  countStepOps(ds: NativeDataset, lr: number): { opsTotal: number; opsTopLevel: number };
  stepMemory(ds: NativeDataset): { peakBytes: number; residentBytes: number };
  dispose(): void;
}

/** The addon's c10d process group (native/dist_wrap.h). */
export interface NativeProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  connect(): Promise<void>;
  exchange(tag: string, value: string): Promise<string[]>;
  barrier(): Promise<void>;
  close(): Promise<void>;
}

/** How a native process group reaches its rendezvous. */
export interface NativeDistOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  deadAfterMs: number;
  storeFile?: string;
}

/** What the compiled addon exports. */
/** One case of `checkScoringKernels`: whether the kernel ran on it, and its worst error over its bound. */
export interface KernelCase {
  name: string;
  ran: boolean;
  worst: number;
}

export interface NativeAddon {
  Supernet: {
    new (config: NativeNetConfig, optim: Partial<NativeOptimConfig>): NativeSupernet;
    readCheckpointMeta(path: string): Promise<string>;
  };
  StandaloneModel: new (config: NativeNetConfig, arch: Uint32Array, optim: Partial<NativeOptimConfig>) => NativeStandaloneModel;
  Dataset: new (
    images: Uint8Array | { file: string; offset: number },
    labels: Uint8Array,
    shape: { n: number; h: number; w: number; c: number },
    mean: number[],
    std: number[],
  ) => NativeDataset;
  ProcessGroup: {
    new (options: NativeDistOptions): NativeProcessGroup;
    /** For tests: store operations against a fresh BoundStore or c10d's TCPStore (native/core/dist.h: runStoreScript). */
    storeScript(kind: 'bound' | 'tcp', o: { host?: string; port: number; timeoutMs?: number }, ops: string[][]): string[];
  };
  /** False when the addon was built without Gloo headers (no data-parallel workers). */
  distAvailable: boolean;
  torchVersion: string;
  /** The operation table (docs/model.md#choice-block) as the native code builds it (equal to OP_SPECS). */
  ops: { name: string; kind: string; kernel: number }[];
  /**
   * Stops this environment's running jobs and waits for their threads (each stops between steps or batches).
   * Called on process 'exit': process.exit() and an uncaught error tear LibTorch down under a running job otherwise.
   */
  shutdown(): void;
  /** Ends the process at once (std::_Exit): no destructors run under a native job thread that is still working. */
  exitNow(code: number): never;
  /** glibc only: mallopt's trim threshold, top pad and mmap threshold, in bytes (MALLOC_SETTINGS); false if refused. */
  retainFreedMemory(trimThreshold: number, topPad: number, mmapThreshold: number): boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  /**
   * For tests: the fused BN+ReLU+convolution scoring kernel (`cases`) and the 3x3 pooling kernel (`pool`) on seeded
   * random cases against exact references (native/core/kernel_check.h). `available`: this build and CPU run the
   * convolution kernel (x86-64 with AVX2 and FMA); `worst`: a case's largest error over its float rounding bound (at
   * most 1 when the kernel is right; a max pool must be exact, so any difference is Infinity).
   */
  checkScoringKernels(seed: number): {
    available: boolean;
    cases: KernelCase[];
    pool: KernelCase[];
  };
}

let cached: NativeAddon | undefined;

/**
 * A binary from `npm run prebuild` (prebuilds/<platform>-<arch>/) wins over build/Release; one that does not load
 * here (another LibTorch, another libc) is skipped and the local build is used.
 */
function loadPrebuild(root: string): NativeAddon | undefined {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return undefined;
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.node'))) {
    try {
      return require(path.join(dir, file)) as NativeAddon;
    } catch {
      // fall through to the next candidate, then to node-gyp-build
    }
  }
  return undefined;
}

/** Loads the addon once: a prebuild from prebuilds/ if one fits, else build/Release. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  // OpenMP reads this when LibTorch loads: spinning threads collapse throughput when another process shares a core.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  // ...but spin ~0.1 ms before sleeping: with no spin at all, waking the pool for each small op costs scoring throughput
  // (docs/architecture.md#how-it-is-built).
  process.env.GOMP_SPINCOUNT ??= '200000';
  const root = path.resolve(__dirname, '..', '..');
  checkAddressSpace(1); // below the least any run needs, LibTorch loads and then crashes or hangs
  const retain = mallocRetainBytes(process.env);
  try {
    cached = loadPrebuild(root) ?? (require('node-gyp-build') as (dir: string) => NativeAddon)(root);
  } catch (err) {
    const msg = (err as Error).message;
    // Under an address-space limit (ulimit -v), the loader runs out of room mapping LibTorch's libraries: that is
    // not a missing build, and rebuilding would not help.
    const limit = addressSpaceLimit();
    if (limit !== undefined && /failed to map segment|cannot allocate memory|out of memory/i.test(msg)) {
      throw new NasError(
        'ERR_NAS_OUT_OF_MEMORY',
        `LibTorch could not be loaded within this process's address-space limit (ulimit -v: ${Math.round(limit / 2 ** 20)} MiB): ` +
          `it needs about 1.6 GiB of address space to load and a small run about 2 GiB; raise the limit (${msg})`,
        { limit },
      );
    }
    if (/libtorch|libc10|libtorch_cpu|libgomp/i.test(msg)) {
      throw new NasError(
        'ERR_NAS_ADDON_MISSING',
        `the oneshot-nas addon was found but LibTorch's libraries could not be loaded (${msg}). ${buildAdvice(root)}`,
      );
    }
    if (/No native build was found/.test(msg)) {
      throw new NasError('ERR_NAS_ADDON_MISSING', `the oneshot-nas addon is not built. ${buildAdvice(root)}`);
    }
    throw new NasError('ERR_NAS_ADDON_MISSING', `the oneshot-nas addon could not be loaded: ${msg}. ${buildAdvice(root)}`);
  }
  const addon = cached;
  if (retain > 0) addon.retainFreedMemory(retain, MALLOC_TOP_PAD, MALLOC_MMAP_THRESHOLD);
  // process.exit() and an uncaught error run exit handlers and static destructors, not N-API cleanup hooks: stop the
  // jobs first. (A worker's own 'exit' and its environment teardown stop that worker's jobs the same way.)
  process.on('exit', () => addon.shutdown());
  return cached;
}

/** Freed memory glibc's malloc keeps mapped by default (MiB; `NAS_MALLOC_RETAIN_MB` overrides, 0 keeps glibc's own). */
export const MALLOC_RETAIN_MB = 1024;
/** The top pad that goes with it: a thread arena's emptied 64 MiB heap stays mapped. */
export const MALLOC_TOP_PAD = 64 * 2 ** 20;
/** Blocks up to 32 MiB (glibc's most) come from the arenas, not from mmap and munmap. */
export const MALLOC_MMAP_THRESHOLD = 32 * 2 ** 20;

/**
 * Bytes of freed memory glibc's malloc keeps mapped (docs/architecture.md#memory-on-the-cpu): a CPU training step
 * frees its activations and allocates them again, and with glibc's defaults the pages go back to the kernel and fault
 * in again, zeroed, each step. 0 (glibc's own behaviour) when `NAS_MALLOC_RETAIN_MB=0` or when the environment
 * already tunes glibc's malloc (glibc reads that only at process start, so a user's setting there wins).
 */
export function mallocRetainBytes(env: NodeJS.ProcessEnv): number {
  if (env.MALLOC_TRIM_THRESHOLD_ || env.MALLOC_MMAP_THRESHOLD_ || /glibc\.malloc\.(trim|mmap)_threshold/.test(env.GLIBC_TUNABLES ?? ''))
    return 0;
  const raw = env.NAS_MALLOC_RETAIN_MB;
  const mb = raw === undefined || raw === '' ? MALLOC_RETAIN_MB : Number(raw);
  if (!Number.isInteger(mb) || mb < 0 || mb > 2047)
    throw invalidParameter('NAS_MALLOC_RETAIN_MB', 'an integer number of MiB in 0..2047', raw);
  return mb * 2 ** 20;
}

/**
 * The least address space (bytes) a small run with `threads` LibTorch threads needs on the CPU: measured with
 * `ulimit -v` and `nasctl train --dataset synthetic --steps 2` (LibTorch 1.13, x86-64): 1.8, 1.9, 2.2 and 2.6 million
 * KiB at 1, 2, 4 and 8 threads (each thread reserves a malloc arena and a stack). Below it LibTorch loads and then
 * hangs in its thread pool, aborts or crashes (SIGSEGV); bigger models need more, which LibTorch reports as an
 * allocation failure (ERR_NAS_OUT_OF_MEMORY).
 */
export function addressSpaceNeeded(threads: number): number {
  return (1_680_000 + 140_000 * Math.max(1, threads)) * 1024;
}

/**
 * Refuses, with ERR_NAS_OUT_OF_MEMORY naming both figures, an address-space limit (ulimit -v) below what a run with
 * `threads` threads needs (addressSpaceNeeded): a coded error instead of a crash or a hang after LibTorch loads.
 */
export function checkAddressSpace(threads: number): void {
  const limit = addressSpaceLimit();
  const need = addressSpaceNeeded(threads);
  if (limit === undefined || limit >= need) return;
  const mib = (b: number): number => Math.round(b / 2 ** 20);
  throw new NasError(
    'ERR_NAS_OUT_OF_MEMORY',
    `this process's address-space limit (ulimit -v) is ${mib(limit)} MiB; LibTorch with ${threads} thread${threads === 1 ? '' : 's'} needs at least ` +
      `${mib(need)} MiB (about 1.6 GiB to load, 140 MiB more per thread): raise the limit${threads > 1 ? ' or use fewer --threads' : ''}`,
    { limit, need, threads },
  );
}

/** The soft address-space limit of this process in bytes (ulimit -v), or undefined when there is none (or no /proc). */
export function addressSpaceLimit(): number | undefined {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max address space'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How to build the addon where this package sits: in a clone, scripts/setup; installed as a dependency, a rebuild
 * of the package (npm 11 asks before running a dependency's install script, pnpm 10 skips it unless allowed).
 */
export function buildAdvice(root: string): string {
  if (fs.existsSync(path.join(root, 'scripts', 'setup'))) {
    return 'Run `scripts/setup` (installs LibTorch and builds), or `npm run build:native` when LibTorch is installed.';
  }
  return (
    'Install LibTorch (`apt-get install -y libtorch-dev`), then build the addon: `npm rebuild oneshot-nas` ' +
    '(under pnpm, allow its build script first: `pnpm approve-builds`, or list it in `onlyBuiltDependencies`).'
  );
}
