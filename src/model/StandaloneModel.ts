/** A stand-alone model of one architecture: trained from scratch, evaluated, exported and loaded again. */
import { type NativeOptimConfig, type NativeStandaloneModel, checkAddressSpace, loadAddon } from '../native/binding';
import { NasError } from '../util/errors';
import { awaitNative, callNative } from '../native/errors';
import { type Architecture, DEFAULT_SPACE, encodeArchitecture, formatArchitecture, parseCandidate } from '../space/architecture';
import { type NativeData, type SupernetConfig, resolveSupernetConfig } from './Supernet';
import { stripUndefined } from '../util/objects';

/** Device memory of one stand-alone training job (StandaloneModel.stepMemory), in bytes. */
export interface StepMemory {
  parameterBytes: number;
  momentumBytes: number;
  stepPeakBytes: number;
  residentDataBytes: number;
  totalBytes: number;
}

/** Accuracy, mean loss and the number of examples of an evaluation. */
export interface StandaloneEvaluation {
  accuracy: number;
  loss: number;
  examples: number;
}

/** The stand-alone models' batch: the paper retrains "with a batch size of 64 and a ghost batch size of 32". */
export const STANDALONE_BATCH_SIZE = 64;

/** A stand-alone model of one architecture (only its layers) with its optimizer state, in native memory until `dispose()`. */
export class StandaloneModel {
  readonly config: SupernetConfig;
  readonly arch: string;
  private native: NativeStandaloneModel | null;

  private constructor(config: SupernetConfig, arch: string, native: NativeStandaloneModel) {
    this.config = config;
    this.arch = arch;
    this.native = native;
  }

  /** A freshly initialised model of `arch` (weights from `config.seed`). */
  static create(config: Partial<SupernetConfig>, arch: Architecture | string, optim: Partial<NativeOptimConfig> = {}): StandaloneModel {
    const c = resolveSupernetConfig(config);
    const a = typeof arch === 'string' ? parseCandidate(arch, { ...DEFAULT_SPACE, blocks: c.blocks }) : arch;
    if (a.blocks.length !== c.blocks) throw new NasError('ERR_NAS_BAD_ARCH', `arch: expected ${c.blocks} blocks, got ${a.blocks.length}`);
    const addon = loadAddon();
    checkAddressSpace(c.threads);
    const native = callNative(
      () => new addon.StandaloneModel(c, encodeArchitecture(a), { batchSize: STANDALONE_BATCH_SIZE, ...stripUndefined(optim) }),
    );
    return new StandaloneModel(c, formatArchitecture(a), native);
  }

  private get n(): NativeStandaloneModel {
    if (!this.native) throw new NasError('ERR_NAS_DISPOSED', 'this StandaloneModel was disposed');
    return this.native;
  }

  async train(
    data: NativeData,
    o: {
      steps: number;
      lr: Float64Array;
      signal?: AbortSignal;
      onProgress?: (p: { step: number; loss: number; accuracy: number }) => void;
    },
  ): Promise<{ steps: number; aborted: boolean; step: number }> {
    const n = this.n;
    if (o.signal?.aborted) return { steps: 0, aborted: true, step: n.stepCount() };
    return awaitNative(
      () =>
        n.train(data.handle, { steps: o.steps, lr: o.lr, threads: this.config.threads }, (p) =>
          o.onProgress?.({ step: p.step, loss: p.loss, accuracy: p.correct / p.examples }),
        ),
      { signal: o.signal, abort: () => n.abort() },
    );
  }

  /** Accuracy and loss with BatchNorm on its running statistics. */
  async evaluate(data: NativeData, o: { start?: number; count?: number; batchSize?: number } = {}): Promise<StandaloneEvaluation> {
    const n = this.n;
    const r = await awaitNative(() => n.evaluate(data.handle, { ...o, threads: this.config.threads }));
    return { accuracy: r.correct / r.examples, loss: r.lossSum / r.examples, examples: r.examples };
  }

  /**
   * Runs one training step (it changes the model) on the calling thread and counts the ATen ops it ran, nested ones
   * included: on a GPU each is a kernel launch, so this is the GPU cost of a step made visible on the CPU.
   */
  countStepOps(data: NativeData, lr = 0): { total: number; topLevel: number } {
    const r = callNative(() => this.n.countStepOps(data.handle, lr));
    return { total: r.opsTotal, topLevel: r.opsTopLevel };
  }

  /**
   * What one training job holds on its device, in bytes, for `retrain --jobs N` on one GPU: parameters and momentum
   * (float32, always there), the peak of a step on top of them (gradients, activations kept for the backward,
   * temporaries: LibTorch's allocator reports, on the calling thread, two steps run, which change the model), and on
   * the fused plan the training set kept resident. cuDNN workspaces and, once per process, the CUDA context come on
   * top on a GPU.
   */
  stepMemory(data: NativeData): StepMemory {
    const r = callNative(() => this.n.stepMemory(data.handle));
    const parameterBytes = 4 * this.parameterCount();
    return {
      parameterBytes,
      momentumBytes: parameterBytes,
      stepPeakBytes: r.peakBytes,
      residentDataBytes: r.residentBytes,
      totalBytes: 2 * parameterBytes + r.peakBytes + r.residentBytes,
    };
  }

  /** Class probabilities [batch * classes] for normalised NCHW images; with `logits`, the logits before the softmax. */
  predict(images: Float32Array, batch: number, o: { logits?: boolean } = {}): Float32Array {
    return callNative(() => this.n.predict(images, batch, o.logits === true));
  }

  stateDict(): { name: string; shape: number[]; data: Float32Array }[] {
    return callNative(() => this.n.stateDict());
  }
  setTensor(name: string, value: Float32Array): void {
    callNative(() => this.n.setTensor(name, value));
  }
  parameterCount(): number {
    return callNative(() => this.n.parameterCount());
  }
  multiplyAdds(): number {
    return callNative(() => this.n.multiplyAdds());
  }
  get step(): number {
    return callNative(() => this.n.stepCount());
  }
  async save(path: string, meta: unknown = {}): Promise<void> {
    const n = this.n;
    await awaitNative(() => n.save(path, JSON.stringify(meta)));
  }
  async load(path: string): Promise<unknown> {
    const n = this.n;
    return JSON.parse(await awaitNative(() => n.load(path)));
  }
  dispose(): void {
    if (!this.native) return;
    callNative(() => this.native!.dispose());
    this.native = null;
  }
}
