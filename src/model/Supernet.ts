/**
 * The one-shot model as a TypeScript object: a thin, validated, typed layer over the native Supernet.
 */
import {
  EXECUTION_PLANS,
  type ExecutionPlan,
  type NativeDataset,
  type NativeOptimConfig,
  type NativeSupernet,
  checkAddressSpace,
  loadAddon,
} from '../native/binding';
import { NasError, invalidParameter } from '../util/errors';
import { awaitNative, callNative } from '../native/errors';
import { type Architecture, OPS, encodeArchitecture, formatArchitecture, parseArchitecture } from '../space/architecture';
import type { ModelShape, ModelSize } from '../space/modelSize';
import type { ImageSet } from '../data/types';
import { stripUndefined } from '../util/objects';
import { defaultThreads } from '../util/threads';
import type { ProcessGroup } from '../distributed/processGroup';

/** Configuration of the one-shot model (docs/model.md). Every field has a default. */
export interface SupernetConfig extends ModelShape {
  /** Choice blocks per cell (N_choice). */
  blocks: number;
  /** Examples that share a mask and BN statistics. */
  ghostBatch: number;
  /** `cpu`, `cuda`, `cuda:N`, or `auto` (CUDA when available; GPU `LOCAL_RANK` for a data-parallel worker). */
  device: string;
  /** Seed of the weight initialisation. */
  seed: number;
  /** LibTorch threads per worker thread (default: the machine's cores). */
  threads: number;
  /** NHWC activations (faster on CPU for this model). */
  channelsLast: boolean;
  /** `bf16`: bf16 autocast for forward passes in training and scoring (weights and optimizer stay float32). */
  precision: 'fp32' | 'bf16';
  /**
   * Execution plan; both give the same numbers up to float summation order. `per-ghost`: BN per ghost batch, one
   * ghost batch per scoring forward, ghost batches on CPU threads (fastest on CPU). `fused`: all ghost batches of a
   * batch in one forward with ghost BN as one kernel per layer, one mask upload per step, data resident on the
   * device, sums read once per scoring pass (built for GPUs). `auto`: fused on CUDA, per-ghost on CPU.
   */
  plan: ExecutionPlan;
  /** BatchNorm epsilon (added to the variance). */
  bnEps: number;
}

/** The paper's CIFAR-10 model at F = 16. */
export const DEFAULT_SUPERNET_CONFIG: SupernetConfig = {
  inChannels: 3,
  imageSize: 32,
  classes: 10,
  filters: 16,
  stacks: 3,
  cellsPerStack: 2,
  blocks: 4,
  ghostBatch: 32,
  device: 'cpu',
  seed: 0,
  threads: defaultThreads(),
  channelsLast: true,
  precision: 'fp32',
  plan: 'auto',
  bnEps: 1e-5,
};

function positiveInt(field: string, v: unknown, max = 1 << 30): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw invalidParameter(field, `an integer in 1..${max}`, v);
  return v;
}

/** Fills defaults and validates; errors name the field, what was expected and what came. */
export function resolveSupernetConfig(partial: Partial<SupernetConfig> = {}): SupernetConfig {
  for (const key of Object.keys(partial)) {
    if (!(key in DEFAULT_SUPERNET_CONFIG))
      throw invalidParameter('config', `known keys (${Object.keys(DEFAULT_SUPERNET_CONFIG).join(', ')})`, key);
  }
  const c: SupernetConfig = { ...DEFAULT_SUPERNET_CONFIG, ...stripUndefined(partial) };
  // `auto`: the GPU when this build and machine have one; a data-parallel worker takes GPU LOCAL_RANK (one per GPU).
  if (c.device === 'auto') {
    const addon = loadAddon();
    const local = Number(process.env.LOCAL_RANK);
    c.device = !addon.cudaAvailable
      ? 'cpu'
      : Number.isInteger(local) && local > 0 && addon.cudaDeviceCount > 1
        ? `cuda:${local % addon.cudaDeviceCount}`
        : 'cuda';
  }
  positiveInt('inChannels', c.inChannels, 64);
  positiveInt('imageSize', c.imageSize, 4096);
  positiveInt('filters', c.filters, 4096);
  positiveInt('stacks', c.stacks, 8);
  positiveInt('cellsPerStack', c.cellsPerStack, 64);
  positiveInt('blocks', c.blocks, 8);
  positiveInt('ghostBatch', c.ghostBatch, 1 << 16);
  positiveInt('threads', c.threads, 1024);
  if (positiveInt('classes', c.classes, 1 << 20) < 2) throw invalidParameter('classes', 'an integer >= 2', c.classes);
  if (c.imageSize < 2 ** (c.stacks - 1)) throw invalidParameter('imageSize', `at least 2^(stacks-1) = ${2 ** (c.stacks - 1)}`, c.imageSize);
  if (typeof c.device !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(c.device))
    throw invalidParameter('device', "'cpu', 'cuda' or 'cuda:N'", c.device);
  if (!Number.isInteger(c.seed) || c.seed < 0) throw invalidParameter('seed', 'a non-negative integer', c.seed);
  if (typeof c.channelsLast !== 'boolean') throw invalidParameter('channelsLast', 'a boolean', c.channelsLast);
  if (c.precision !== 'fp32' && c.precision !== 'bf16') throw invalidParameter('precision', "'fp32' or 'bf16'", c.precision);
  if (typeof c.bnEps !== 'number' || !(c.bnEps > 0 && c.bnEps <= 1)) throw invalidParameter('bnEps', 'a number in (0, 1]', c.bnEps);
  if (!EXECUTION_PLANS.includes(c.plan)) throw invalidParameter('plan', "'auto', 'per-ghost' or 'fused'", c.plan);
  return c;
}

/** Loss and accuracy of one architecture on a range of a dataset. */
export interface EvaluationResult {
  arch: string;
  accuracy: number;
  loss: number;
  examples: number;
  /** Correctly classified examples (accuracy = correct / examples). */
  correct: number;
  /** Summed cross-entropy loss (loss = lossSum / examples). */
  lossSum: number;
}

/** Per-step progress of `train`. */
export interface StepProgress {
  step: number;
  loss: number;
  /** Accuracy on the training batch (with that step's dropped paths). */
  accuracy: number;
  examples: number;
  activePaths: number;
}

/**
 * A dataset handed to native code once: its pixels and labels (Uint8Array) are copied into memory the addon owns
 * (43 MB of Fashion-MNIST training images in about 20 ms), so the caller may reuse, transfer or drop its buffers.
 * A set whose pixels are in a file (`set.file`, an image folder's cache) is not loaded: each batch reads its rows from
 * the file, so the process holds one batch of it, whatever the file's size (docs/data.md#memory).
 */
export class NativeData {
  /** @internal */
  readonly handle: NativeDataset;
  readonly size: number;

  constructor(set: ImageSet, mean: number[], std: number[]) {
    for (const [field, v, ok, what] of [
      ['mean', mean, (x: number) => Number.isFinite(x), 'finite numbers'],
      ['std', std, (x: number) => Number.isFinite(x) && x > 0, 'finite numbers > 0'],
    ] as const) {
      if (!Array.isArray(v) || v.length !== set.channels || !v.every(ok)) {
        throw invalidParameter(field, `${set.channels} ${what} (one per channel)`, v, 'ERR_NAS_BAD_DATA');
      }
    }
    const addon = loadAddon();
    this.handle = callNative(
      () =>
        new addon.Dataset(
          set.file ? { file: set.file.path, offset: set.file.offset } : set.images,
          set.labels,
          { n: set.n, h: set.height, w: set.width, c: set.channels },
          mean,
          std,
        ),
    );
    this.size = set.n;
  }
}

/** An architecture object or its canonical text. */
export type ArchLike = Architecture | string;
function toArch(a: ArchLike, field = 'arch'): Architecture {
  if (typeof a === 'string') return parseArchitecture(a, { blocks: a.split('/').length, maxOps: OPS.length });
  if (a === null || typeof a !== 'object' || !Array.isArray((a as Architecture).blocks)) {
    throw invalidParameter(field, 'an architecture string or {blocks: [...]}', a, 'ERR_NAS_BAD_ARCH');
  }
  // An object from JavaScript: its blocks' shape is checked before anything reads them, then its content by the
  // notation's own rules.
  for (const [i, b] of a.blocks.entries()) {
    for (const k of ['inputs', 'ops'] as const) {
      const v = (b as Partial<Architecture['blocks'][number]> | null)?.[k];
      if (!Array.isArray(v))
        throw invalidParameter(
          `${field}.blocks[${i}].${k}`,
          k === 'inputs' ? 'an array of input indices' : 'an array of operation names',
          v,
          'ERR_NAS_BAD_ARCH',
        );
    }
  }
  return parseArchitecture(formatArchitecture(a), { blocks: a.blocks.length, maxOps: OPS.length });
}

/** Throws ERR_NAS_BAD_ARG unless `images` holds `batch` images of this model's shape (NCHW floats). */
function checkImages(images: Float32Array, batch: number, c: { inChannels: number; imageSize: number }): void {
  const per = c.inChannels * c.imageSize * c.imageSize;
  if (!Number.isInteger(batch) || batch < 1 || batch > 2 ** 31 - 1)
    throw invalidParameter('batch', 'a positive integer', batch, 'ERR_NAS_BAD_ARG');
  if (!(images instanceof Float32Array) || images.length !== batch * per)
    throw invalidParameter(
      'images',
      `batch x ${per} floats (NCHW: ${batch} x ${c.inChannels} x ${c.imageSize} x ${c.imageSize})`,
      images instanceof Float32Array ? `${images.length} floats` : images,
      'ERR_NAS_BAD_ARG',
    );
}

/** Throws ERR_NAS_BAD_ARG unless every value of `v` is a finite number in [lo, hi]. */
function checkValues(field: string, v: ArrayLike<number>, need: number, lo: number, hi: number): void {
  if (v.length < need) throw invalidParameter(field, `at least ${need} values`, `${v.length} values`, 'ERR_NAS_BAD_ARG');
  for (let i = 0; i < need; i++) {
    if (!(v[i] >= lo && v[i] <= hi)) throw invalidParameter(`${field}[${i}]`, `a number in [${lo}, ${hi}]`, v[i], 'ERR_NAS_BAD_ARG');
  }
}

/**
 * The one-shot model with its optimizer state. Create with `Supernet.create`, free with `dispose()` (native memory is
 * otherwise released only when the object is garbage-collected).
 */
export class Supernet {
  readonly config: SupernetConfig;
  private native: NativeSupernet | null;
  private grouped = false;

  private constructor(config: SupernetConfig, native: NativeSupernet) {
    this.config = config;
    this.native = native;
  }

  /** Builds a freshly initialised model. Throws NasError (ERR_NAS_BAD_CONFIG, ERR_NAS_CUDA_UNAVAILABLE). */
  static create(config: Partial<SupernetConfig> = {}, optim: Partial<NativeOptimConfig> = {}): Supernet {
    const c = resolveSupernetConfig(config);
    const addon = loadAddon();
    checkAddressSpace(c.threads);
    const opt = { batchSize: 2 * c.ghostBatch, ...stripUndefined(optim) };
    if (opt.batchSize % c.ghostBatch !== 0)
      throw invalidParameter('batchSize', `a multiple of ghostBatch (${c.ghostBatch})`, opt.batchSize);
    return new Supernet(
      c,
      callNative(() => new addon.Supernet(c, opt)),
    );
  }

  /** Reads the JSON meta stored in a checkpoint without building a model. */
  static async readCheckpointMeta(path: string): Promise<unknown> {
    const addon = loadAddon();
    const text = await awaitNative(() => addon.Supernet.readCheckpointMeta(path));
    try {
      return JSON.parse(text);
    } catch {
      throw new NasError('ERR_NAS_CHECKPOINT', `${path}: its meta is not JSON`);
    }
  }

  private get n(): NativeSupernet {
    if (!this.native) throw new NasError('ERR_NAS_DISPOSED', 'this Supernet was disposed');
    return this.native;
  }

  /** Parameters of the one-shot model (every path on). */
  parameterCount(): number {
    return callNative(() => this.n.parameterCount());
  }

  /** Parameters and multiply-adds of the stand-alone model of `arch`, or of the all-on model when omitted. */
  describe(arch?: ArchLike): ModelSize {
    const enc = arch === undefined ? null : encodeArchitecture(toArch(arch));
    return callNative(() => this.n.describe(enc));
  }

  /**
   * Runs `steps` training steps on a dedicated thread. lr has one value per step; dropIn/dropOp one probability per
   * step and block. An aborted signal stops between steps; the promise then resolves with `aborted: true`.
   */
  async train(
    data: NativeData,
    o: {
      steps: number;
      lr: Float64Array;
      dropIn: Float32Array;
      dropOp: Float32Array;
      signal?: AbortSignal;
      onProgress?: (p: StepProgress) => void;
    },
  ): Promise<{ steps: number; aborted: boolean; step: number }> {
    const net = this.n;
    if (!Number.isInteger(o.steps) || o.steps < 0) throw invalidParameter('steps', 'a non-negative integer', o.steps, 'ERR_NAS_BAD_ARG');
    checkValues('lr', o.lr, o.steps, 0, Number.MAX_VALUE);
    checkValues('dropIn', o.dropIn, o.steps * this.config.blocks, 0, 1);
    checkValues('dropOp', o.dropOp, o.steps * this.config.blocks, 0, 1);
    // Alone, an aborted signal ends here. A data-parallel worker must not decide alone (the others would wait for it
    // in their next all-reduce): the native loop votes the stop in its first step, so every worker stops after it.
    if (o.signal?.aborted && !this.grouped) return { steps: 0, aborted: true, step: net.stepCount() };
    return awaitNative(
      () =>
        net.train(data.handle, { steps: o.steps, lr: o.lr, dropIn: o.dropIn, dropOp: o.dropOp, threads: this.config.threads }, (p) =>
          o.onProgress?.({
            step: p.step,
            loss: p.loss,
            accuracy: p.correct / p.examples,
            examples: p.examples,
            activePaths: p.activePaths,
          }),
        ),
      { signal: o.signal, abort: () => net.abort() },
    );
  }

  /**
   * One-shot accuracy and loss of each architecture on examples [start, start + count) of `data`: only the selected
   * paths run, BN statistics per ghost batch (docs/model.md#ghost-batch-normalization). `batchSize` is the number of examples per forward (default:
   * 2048 on the fused plan, 256 on the per-ghost plan; any value gives the same scores). With `batched`, architectures
   * share masked passes: a chunk of images is repeated once per architecture and each copy's ghost batches run its
   * architecture (the same scores, faster where large kernels are cheap); then `batchSize` (default 4096) caps the
   * examples of all copies in one forward. `onProgress` hears how many architectures are finished: after each one,
   * or with `batched` after each group of at most batchSize / ghostBatch of them. An aborted signal stops between
   * batches; architectures not finished by then are left out of the result.
   */
  async evaluate(
    data: NativeData,
    archs: ArchLike[],
    o: {
      start?: number;
      count?: number;
      batchSize?: number;
      batched?: boolean;
      signal?: AbortSignal;
      onProgress?: (done: number) => void;
    } = {},
  ): Promise<EvaluationResult[]> {
    const net = this.n;
    if (!Array.isArray(archs)) throw invalidParameter('archs', 'an array of architectures', archs, 'ERR_NAS_BAD_ARCH');
    if (archs.length === 0) return []; // a data-parallel worker's empty share
    const parsed = archs.map((a, i) => toArch(a, `archs[${i}]`));
    const start = o.start ?? 0;
    if (!Number.isInteger(start) || start < 0 || start >= data.size)
      throw invalidParameter('start', `an integer in [0, ${data.size - 1}]`, start, 'ERR_NAS_BAD_ARG');
    const count = o.count ?? data.size - start;
    if (!Number.isInteger(count) || count < 1 || start + count > data.size)
      throw invalidParameter('count', `an integer in [1, ${data.size - start}]`, count, 'ERR_NAS_BAD_ARG');
    if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize > 0))
      throw invalidParameter('batchSize', 'a positive integer', o.batchSize, 'ERR_NAS_BAD_ARG');
    const words = new Uint32Array(parsed.length * 2 * this.config.blocks);
    parsed.forEach((a, i) => {
      if (a.blocks.length !== this.config.blocks)
        throw invalidParameter('arch', `${this.config.blocks} blocks`, formatArchitecture(a), 'ERR_NAS_BAD_ARCH');
      words.set(encodeArchitecture(a), i * 2 * this.config.blocks);
    });
    const res = await awaitNative(
      () =>
        net.evaluate(
          data.handle,
          words,
          { start, count, batchSize: o.batchSize, batched: o.batched, threads: this.config.threads },
          o.onProgress,
        ),
      { signal: o.signal, abort: () => net.abort() },
    );
    return res.map((r, i) => ({
      arch: formatArchitecture(parsed[i]),
      accuracy: r.correct / r.examples,
      loss: r.lossSum / r.examples,
      examples: r.examples,
      correct: r.correct,
      lossSum: r.lossSum,
    }));
  }

  /**
   * Logits of one forward without gradient; ghost batch q uses `archs[q]` as its mask. One architecture for a batch
   * of several ghost batches is used for each of them (BN statistics still per ghost batch).
   * With `probe`, also the per-ghost-batch mean/variance seen by the first BN of the first cell ([G * C]).
   */
  forward(
    images: Float32Array,
    batch: number,
    archs: ArchLike[],
    probe = false,
  ): { logits: Float32Array; probeMean?: Float32Array; probeVar?: Float32Array } {
    // Checked first: a batch that does not match the images must not be expanded into per-ghost copies.
    checkImages(images, batch, this.config);
    const list = this.perGhost(batch, archs);
    const words = new Uint32Array(list.length * 2 * this.config.blocks);
    list.forEach((a, i) => {
      words.set(encodeArchitecture(toArch(a)), i * 2 * this.config.blocks);
    });
    return callNative(() => this.n.forward(images, batch, words, probe));
  }

  /** One architecture for a batch of several ghost batches: the same mask in each, BN still per ghost batch. */
  private perGhost(batch: number, archs: ArchLike[]): ArchLike[] {
    const g = this.config.ghostBatch;
    return archs.length === 1 && batch > g && batch % g === 0 ? Array.from({ length: batch / g }, () => archs[0]) : archs;
  }

  /**
   * ATen operations of one forward (with `backward`, also its backward) of a batch whose ghost batch q runs
   * `archs[q]`, counted with LibTorch's RecordFunction callbacks on this thread. Kernel launches on a GPU follow
   * these counts: the fused plan's count does not grow with the number of ghost batches.
   */
  countOps(batch: number, archs: ArchLike[], o: { backward?: boolean } = {}): { total: number; topLevel: number } {
    const c = this.config;
    const images = new Float32Array(batch * c.inChannels * c.imageSize * c.imageSize);
    for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 12.9898) * 0.5; // any non-constant input
    const list = this.perGhost(batch, archs);
    const words = new Uint32Array(list.length * 2 * c.blocks);
    list.forEach((a, i) => {
      words.set(encodeArchitecture(toArch(a)), i * 2 * c.blocks);
    });
    const r = callNative(() => this.n.forward(images, batch, words, false, { backward: !!o.backward }));
    return { total: r.opsTotal, topLevel: r.opsTopLevel };
  }

  /** Logits of the pruned stand-alone model of `arch` built from this model's weights (BN on batch statistics). */
  standaloneForward(images: Float32Array, batch: number, arch: ArchLike): Float32Array {
    checkImages(images, batch, this.config);
    return callNative(() => this.n.standaloneForward(images, batch, encodeArchitecture(toArch(arch))));
  }

  /** The masks drawn by the last training step: per ghost batch and block, input and op bitmasks. */
  lastMasks(): { ghosts: number; inputs: Uint32Array; ops: Uint32Array } {
    return callNative(() => this.n.lastMasks());
  }

  parameterNames(): string[] {
    return callNative(() => this.n.parameterNames());
  }
  getParameter(name: string): Float32Array {
    return callNative(() => this.n.getParameter(name));
  }
  setParameter(name: string, value: Float32Array): void {
    callNative(() => this.n.setParameter(name, value));
  }
  /** Gradient left by the last step, or null when the parameter's path did not run (no gradient at all). */
  getGradient(name: string): Float32Array | null {
    return callNative(() => this.n.getGradient(name));
  }
  /** Training steps taken so far (restored by `load`). */
  get step(): number {
    return callNative(() => this.n.stepCount());
  }
  setOptimizer(optim: Partial<NativeOptimConfig>): void {
    callNative(() => this.n.setOptim(stripUndefined(optim)));
  }

  /**
   * Trains as one data-parallel worker of `group` from now on (null: alone again). Every worker must hold the same
   * weights and trainer state (same seed, or the same checkpoint loaded); the batch size is the global one and must
   * split into whole ghost batches per worker.
   */
  setGroup(group: ProcessGroup | null): void {
    callNative(() => this.n.setGroup(group ? group.native : null));
    this.grouped = group !== null;
  }

  /** Writes a checkpoint atomically (temp file + fsync + rename); `meta` is stored as JSON. */
  async save(path: string, meta: unknown = {}): Promise<void> {
    const net = this.n;
    await awaitNative(() => net.save(path, JSON.stringify(meta)));
  }

  /** Restores parameters, optimizer state, step, data order and RNG state; returns the stored meta. */
  async load(path: string): Promise<unknown> {
    const net = this.n;
    return JSON.parse(await awaitNative(() => net.load(path)));
  }

  /** Frees native memory now. Any later call throws ERR_NAS_DISPOSED. Throws ERR_NAS_BUSY while a job runs. */
  dispose(): void {
    if (!this.native) return;
    callNative(() => this.native!.dispose());
    this.native = null;
  }
}
