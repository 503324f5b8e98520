/**
 * A one-shot training run: data, model, schedules, evaluation, checkpoints and metrics in a run directory,
 * resumable after a kill with the same result as an uninterrupted run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDataset } from '../data/loadDataset';
import type { ImageFolderEvent } from '../data/imageFolder';
import { type DatasetSplits, splitsDigest } from '../data/types';
import { loadAddon } from '../native/binding';
import { NasError, invalidParameter } from '../util/errors';
import { type ProcessGroup, agreeOnJob } from '../distributed/processGroup';
import { evaluateShared } from '../distributed/evaluateShared';
import { OPS, formatArchitecture, spaceWith } from '../space/architecture';
import { sampleArchitectures } from '../space/sampleArchitecture';
import { dropProbability, dropTables } from '../schedule/dropout';
import { learningRate, learningRateTable } from '../schedule/learningRate';
import { type EvaluationResult, NativeData, Supernet } from '../model/Supernet';
import { mean } from '../util/stats';
import {
  acquireLock,
  appendJsonLine,
  readJsonFile,
  readJsonLines,
  removeStaleTemps,
  writeFileAtomic,
  makeDir,
  objectLine,
} from '../util/files';
import { Rng } from '../util/rng';
import { runInChunks } from '../util/resumable';
import { klProbe, klScores, sampleReference } from './kl';
import { type TrainOptions, validateTrainOptions } from './trainOptions';

/**
 * Seeds of a run's side streams, as offsets from its seed: the architectures evaluated during training and the
 * tracked KL's reference, architectures and examples. Any distinct values would do; they are fixed because changing
 * one changes what every run records.
 */
const SEED_OFFSET = { evalArchs: 7919, klReference: 31, klArchs: 37, klProbe: 41 } as const;
/** Training examples of the tracked KL (the paper's section 5 uses 64). */
const KL_EXAMPLES = 64;

/** One line of metrics.jsonl (written at every evaluation). */
export interface MetricsLine {
  epoch: number;
  step: number;
  /** Mean training loss and batch accuracy since the previous line. */
  loss: number;
  trainAccuracy: number;
  /** Mean one-shot accuracy / loss of the evaluation architectures on the validation split. */
  valAccuracy: number;
  valLoss: number;
  lr: number;
  /** Per-path drop probability of block inputs (per block) and of operations at this step. */
  dropIn: number[];
  dropOp: number;
  imagesPerSec: number;
  /** With trackKl: KL of each tracked architecture against the reference on 64 training examples. */
  kl?: number[];
}

/** The line check of metrics.jsonl (files.ts: readJsonLinesStrict); a diverged loss is written as null. */
export function metricsLine(value: unknown): MetricsLine | string {
  const o = objectLine(value, ['epoch', 'step', 'dropOp'], [], ['loss', 'trainAccuracy', 'valAccuracy', 'valLoss', 'lr', 'imagesPerSec']);
  if (typeof o === 'string') return o;
  if (!Array.isArray(o.dropIn) || !o.dropIn.every((x) => typeof x === 'number' && Number.isFinite(x)))
    return '"dropIn": expected an array of numbers';
  return o as unknown as MetricsLine;
}

/** Progress of `trainOneShot`: start, steps, evaluations and checkpoints. */
export type TrainEvent =
  | {
      type: 'start';
      totalSteps: number;
      startStep: number;
      stepsPerEpoch: number;
      params: number;
      dataset: string;
      trainExamples: number;
      validationExamples: number;
    }
  | {
      type: 'step';
      step: number;
      totalSteps: number;
      epoch: number;
      loss: number;
      accuracy: number;
      lr: number;
      dropIn: number[];
      dropOp: number;
      imagesPerSec: number;
      etaSeconds: number;
    }
  | ({ type: 'eval' } & MetricsLine)
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'data'; event: ImageFolderEvent };

/** The end of a run: final one-shot validation accuracy and loss, per evaluation architecture, and where things are. */
export interface TrainResult {
  out: string;
  steps: number;
  totalSteps: number;
  aborted: boolean;
  /** Mean one-shot validation accuracy of the evaluation architectures on the whole validation split. */
  valAccuracy: number;
  valLoss: number;
  perArch: EvaluationResult[];
  imagesPerSec: number;
  seconds: number;
  checkpoint: string;
}

/** Resume, cancellation, progress and, for data-parallel workers, the process group. */
export interface TrainHooks {
  resume?: boolean;
  /** Train as one worker of this data-parallel group: rank 0 writes the run directory, every worker computes. */
  group?: ProcessGroup;
  signal?: AbortSignal;
  onEvent?: (e: TrainEvent) => void;
  /**
   * Train on these splits (built in memory, or loaded with loadDataset / loadImageFolder) instead of loading
   * `options.dataset`; config.json then records `options.dataset` as given, so search and retrain need the same
   * `data` again.
   */
  data?: DatasetSplits;
}

interface CheckpointMeta {
  format: 1;
  options: TrainOptions;
  step: number;
  totalSteps: number;
  acc: { lossSum: number; correct: number; examples: number };
}

/** Files of a run directory. */
export function runFiles(out: string): { config: string; checkpoint: string; metrics: string; result: string } {
  return {
    config: path.join(out, 'config.json'),
    checkpoint: path.join(out, 'checkpoint.pt'),
    metrics: path.join(out, 'metrics.jsonl'),
    result: path.join(out, 'result.json'),
  };
}

/** Reads the options a run directory was started with. */
export function readRunOptions(out: string): TrainOptions {
  const file = runFiles(out).config;
  if (!fs.existsSync(file)) throw new NasError('ERR_NAS_CHECKPOINT', `${out}: no config.json, so there is no run to resume here`);
  const o = readJsonFile(file, 'ERR_NAS_BAD_CONFIG', 'run configuration');
  // JSON of another shape (`{}`, `[]`, a field of the wrong type) is named here, not met later as a TypeError.
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const where = (field: string): string => `${file}: ${field}`;
  if (!isObject(o)) throw invalidParameter(where('(the whole file)'), 'a run configuration (an object with net, dataset, ...)', o);
  for (const field of ['net', 'dataset', 'learningRate', 'dropout'])
    if (!isObject(o[field])) throw invalidParameter(where(field), 'an object', o[field] ?? null);
  try {
    validateTrainOptions({ ...(o as unknown as TrainOptions), out });
  } catch (err) {
    if (err instanceof NasError) throw new NasError(err.code, `${file}: ${err.message}`, err.details);
    throw err;
  }
  return o as unknown as TrainOptions;
}

/**
 * The options as a run on `data` uses them: the images' shape and the class count, the size of the training subset
 * (trainLimit capped by the split), the evaluation interval (default: an epoch) and size (capped by the split).
 */
export function effectiveOptions(o: TrainOptions, data: DatasetSplits): TrainOptions {
  return {
    ...o,
    dataset: { ...o.dataset, ...(o.dataset.trainLimit !== undefined ? { trainLimit: data.train.n } : {}) },
    net: { ...o.net, inChannels: data.train.channels, imageSize: data.train.height, classes: data.classes },
    evalEvery: o.evalEvery ?? Math.max(1, Math.floor(data.train.n / o.batchSize)),
    evalLimit: Math.min(o.evalLimit ?? data.validation.n, data.validation.n),
    ...(data.classNames ? { classNames: data.classNames } : {}),
  };
}

/** Trains the one-shot model as `opts` says, writing the run directory. */
export async function trainOneShot(given: TrainOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  const files = runFiles(given.out);
  const resuming = hooks.resume === true && fs.existsSync(files.checkpoint);
  if (hooks.group) {
    // One job: the same options on every worker, but for how each runs (threads, device, plan).
    const { net, ...rest } = given;
    const { threads: _t, device: _d, plan: _p, ...shape } = net;
    await agreeOnJob(hooks.group, 'train', { ...rest, net: shape, resume: hooks.resume === true });
    // Every worker reads the run directory (a shared filesystem when workers are on several machines).
    const seen = await hooks.group.exchange('resume', resuming);
    if (seen.some((r) => r !== resuming)) {
      throw new NasError(
        'ERR_NAS_CHECKPOINT',
        `workers disagree on resuming ${given.out}: ${seen.map((r, i) => `worker ${i} ${r ? 'sees' : 'does not see'} ${files.checkpoint}`).join(', ')}; put the run directory on a filesystem every worker shares`,
      );
    }
  }
  let opts: TrainOptions = resuming ? { ...readRunOptions(given.out), out: given.out } : given;
  if (resuming && given.net.threads !== undefined) opts.net = { ...opts.net, threads: given.net.threads };
  validateTrainOptions(opts);
  if (!resuming && fs.existsSync(files.checkpoint)) {
    throw new NasError(
      'ERR_NAS_IO',
      `${opts.out} already holds a run (checkpoint.pt); pass --resume to continue it or choose another --out`,
    );
  }
  // An image folder is decoded into its cache first (resumable; the files must not change during the run).
  const opened =
    hooks.data ?? (await openDataset(opts.dataset, { signal: hooks.signal, onEvent: (event) => hooks.onEvent?.({ type: 'data', event }) }));
  if (!opened)
    return {
      out: opts.out,
      steps: 0,
      totalSteps: 0,
      aborted: true,
      valAccuracy: Number.NaN,
      valLoss: Number.NaN,
      perArch: [],
      imagesPerSec: 0,
      seconds: 0,
      checkpoint: files.checkpoint,
    };
  const data: DatasetSplits = opened;
  if (hooks.group) await agreeOnJob(hooks.group, 'train', { data: splitsDigest(data) });
  // A new run records what it uses (config.json, the checkpoint's meta), not the preset's dataset-bound values.
  if (!resuming) opts = effectiveOptions(opts, data);
  const t = data.train;
  // One writer per run directory: a second train into it is refused by name; temp files of killed runs are removed.
  const writes = !hooks.group || hooks.group.isWriter;
  // LibTorch loads before the lock: a process that dies loading it (too little address space) leaves no lock.
  loadAddon();
  const release = writes ? acquireLock(opts.out, 'dir', `training ${opts.out}`) : (): void => undefined;
  if (writes) removeStaleTemps(opts.out);
  let net: Supernet;
  try {
    net = Supernet.create(
      { ...opts.net, inChannels: t.channels, imageSize: t.height, classes: data.classes },
      {
        batchSize: opts.batchSize,
        momentum: opts.momentum,
        weightDecay: opts.weightDecay,
        nesterov: opts.nesterov,
        cropPad: opts.cropPad,
        flip: opts.flip,
        seed: opts.seed,
      },
    );
  } catch (err) {
    release();
    throw err;
  }
  try {
    if (hooks.group) net.setGroup(hooks.group);
    return await runLoop(net, opts, data, files, resuming, hooks);
  } finally {
    net.dispose();
    release();
  }
}

/** ERR_NAS_DIVERGED for a non-finite training loss, saying where and at which learning rate, and what was kept. */
function divergedError(d: { step: number; loss: number }, opts: TrainOptions, totalSteps: number, checkpoint: string): NasError {
  const kept = fs.existsSync(checkpoint) ? `the last checkpoint (${checkpoint}) is kept` : 'no checkpoint was written';
  return new NasError(
    'ERR_NAS_DIVERGED',
    `the training loss became ${d.loss} at step ${d.step} (learning rate ${learningRate(opts.learningRate, d.step - 1, totalSteps)}); ${kept}. Lower --lr or add --warmup-steps`,
    d,
  );
}

/** The step's part of a metrics line: position, the training loss and accuracy since the last line, the evaluation. */
function metricsAt(
  step: number,
  stepsPerEpoch: number,
  totalSteps: number,
  opts: TrainOptions,
  acc: { lossSum: number; correct: number; examples: number },
  ev: { accuracy: number; loss: number }[],
): Pick<MetricsLine, 'epoch' | 'step' | 'loss' | 'trainAccuracy' | 'valAccuracy' | 'valLoss' | 'lr'> {
  return {
    epoch: Math.round((step / stepsPerEpoch) * 1000) / 1000,
    step,
    loss: acc.lossSum / Math.max(1, acc.examples),
    trainAccuracy: acc.correct / Math.max(1, acc.examples),
    valAccuracy: mean(ev.map((e) => e.accuracy)),
    valLoss: mean(ev.map((e) => e.loss)),
    lr: learningRate(opts.learningRate, step - 1, totalSteps),
  };
}

/**
 * Opens the run directory for the loop: a resumed run restores the model, optimizer and running sums from the
 * checkpoint (a finished one returns its saved result: the final evaluation is not repeated) and drops metrics lines
 * written after it; a new run writes its config and an empty metrics file.
 */
async function openRun(
  net: Supernet,
  opts: TrainOptions,
  files: ReturnType<typeof runFiles>,
  resuming: boolean,
  writer: boolean,
  totalSteps: number,
): Promise<{ acc: CheckpointMeta['acc']; finished?: TrainResult }> {
  if (!resuming) {
    if (writer) {
      makeDir(opts.out);
      writeFileAtomic(files.config, `${JSON.stringify(opts, null, 2)}\n`);
      writeFileAtomic(files.metrics, '');
    }
    return { acc: { lossSum: 0, correct: 0, examples: 0 } };
  }
  const meta = (await net.load(files.checkpoint)) as CheckpointMeta;
  if (net.step >= totalSteps && fs.existsSync(files.result))
    return { acc: meta.acc, finished: readJsonFile(files.result, 'ERR_NAS_CHECKPOINT', 'run result') as TrainResult };
  // Metrics written after the checkpoint are replayed by the resumed run: drop them so no line appears twice.
  if (writer) {
    const kept = readJsonLines(files.metrics, metricsLine).filter((l) => l.step <= net.step);
    writeFileAtomic(files.metrics, kept.map((l) => `${JSON.stringify(l)}\n`).join(''));
  }
  return { acc: meta.acc };
}

/**
 * Per-step bookkeeping of the loop: the running loss and accuracy sums since the last metrics line, the images/s
 * (exponential moving average), the step events, and the first non-finite loss (which stops the job).
 */
class StepMeter {
  acc: CheckpointMeta['acc'];
  rate = 0;
  diverged?: { step: number; loss: number };
  private last = Date.now();

  constructor(
    acc: CheckpointMeta['acc'],
    private readonly onDiverged: () => void,
  ) {
    this.acc = acc;
  }

  /** Accounts one step's progress; returns the images/s so far. */
  step(p: { step: number; loss: number; accuracy: number; examples: number }): number {
    if (!Number.isFinite(p.loss) && !this.diverged) {
      this.diverged = { step: p.step, loss: p.loss };
      this.onDiverged();
    }
    this.acc.lossSum += p.loss * p.examples;
    this.acc.correct += p.accuracy * p.examples;
    this.acc.examples += p.examples;
    const now = Date.now();
    const inst = (p.examples * 1000) / Math.max(1, now - this.last);
    this.last = now;
    this.rate = this.rate === 0 ? inst : 0.9 * this.rate + 0.1 * inst;
    return this.rate;
  }

  /** Starts the sums of the next metrics line. */
  reset(): void {
    this.acc = { lossSum: 0, correct: 0, examples: 0 };
  }
}

async function runLoop(
  net: Supernet,
  opts: TrainOptions,
  data: DatasetSplits,
  files: ReturnType<typeof runFiles>,
  resuming: boolean,
  hooks: TrainHooks,
): Promise<TrainResult> {
  const train = new NativeData(data.train, data.mean, data.std);
  const val = new NativeData(data.validation, data.mean, data.std);
  const stepsPerEpoch = Math.floor(data.train.n / opts.batchSize);
  if (stepsPerEpoch < 1)
    throw new NasError('ERR_NAS_BAD_DATA', `training split has ${data.train.n} examples, fewer than one batch of ${opts.batchSize}`);
  const totalSteps = opts.steps ?? opts.epochs * stepsPerEpoch;
  const evalEvery = opts.evalEvery ?? stepsPerEpoch;
  const blocks = net.config.blocks;
  const group = hooks.group;
  // Data-parallel workers: rank 0 writes; the others compute the same steps on their shares.
  const writer = !group || group.isWriter;
  const opened = await openRun(net, opts, files, resuming, writer, totalSteps);
  if (opened.finished) return opened.finished;
  const evalArchs = sampleArchitectures(opts.evalArchs, opts.seed + SEED_OFFSET.evalArchs, spaceWith(blocks)).map(formatArchitecture);
  const tracking = opts.trackKl ? klTracking(opts.trackKl, opts.seed, blocks, data) : undefined;
  const emit = hooks.onEvent ?? ((): void => undefined);
  const startStep = net.step;
  emit({
    type: 'start',
    totalSteps,
    startStep,
    stepsPerEpoch,
    params: net.parameterCount(),
    dataset: data.name,
    trainExamples: data.train.n,
    validationExamples: data.validation.n,
  });

  const dropsAt = (s: number): DropRates => dropRatesAt(opts, blocks, s, totalSteps);
  const started = Date.now();
  let aborted = false;
  // A non-finite loss stops the job between steps (its weights are not checkpointed) and fails the run by name.
  const stop = new AbortController();
  const meter = new StepMeter(opened.acc, () => stop.abort());
  const saveCheckpoint = async (): Promise<void> => {
    if (!writer) return;
    const meta: CheckpointMeta = { format: 1, options: opts, step: net.step, totalSteps, acc: meter.acc };
    await net.save(files.checkpoint, meta);
    emit({ type: 'checkpoint', step: net.step, path: files.checkpoint });
  };
  const onOuterAbort = (): void => stop.abort();
  hooks.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (hooks.signal?.aborted) stop.abort();
  try {
    ({ aborted } = await runInChunks({
      at: () => net.step,
      total: totalSteps,
      every: [evalEvery, opts.checkpointEvery],
      chunk: (s0, count) => {
        const { dropIn, dropOp } = dropTables(opts.dropout, { steps: totalSteps, from: s0, count, blocks });
        return net.train(train, {
          steps: count,
          lr: learningRateTable(opts.learningRate, { steps: totalSteps, from: s0, count }),
          dropIn,
          dropOp,
          signal: stop.signal,
          onProgress: (p) => emit(stepEvent(p, meter.step(p), opts, { blocks, totalSteps, stepsPerEpoch })),
        });
      },
      after: async (step, stopped) => {
        if (meter.diverged) throw divergedError(meter.diverged, opts, totalSteps, files.checkpoint);
        if (!stopped && (step % evalEvery === 0 || step === totalSteps)) {
          const ev = await evaluateShared(net, group, val, evalArchs, {
            count: Math.min(opts.evalLimit ?? data.validation.n, data.validation.n),
            batchSize: opts.evalBatchSize,
          });
          const line: MetricsLine = {
            ...metricsAt(step, stepsPerEpoch, totalSteps, opts, meter.acc, ev),
            ...dropsAt(step - 1),
            imagesPerSec: Math.round(meter.rate * 10) / 10,
            ...(tracking ? { kl: klScores(net, tracking.probe, tracking.refs, tracking.archs) } : {}),
          };
          if (writer) appendJsonLine(files.metrics, line);
          emit({ type: 'eval', ...line });
          meter.reset();
        }
        if (stopped || step % opts.checkpointEvery === 0 || step % evalEvery === 0 || step === totalSteps) await saveCheckpoint();
      },
    }));
    // The final evaluation listens to the signal too.
    return await finish(net, opts, files, { group, val, evalArchs, aborted, writer, totalSteps, startStep, started, signal: stop.signal });
  } finally {
    hooks.signal?.removeEventListener('abort', onOuterAbort);
  }
}

/** Path-dropout probabilities of every block's inputs and of the operations at a step. */
type DropRates = { dropIn: number[]; dropOp: number };

function dropRatesAt(opts: TrainOptions, blocks: number, step: number, totalSteps: number): DropRates {
  return {
    dropIn: Array.from({ length: blocks }, (_, i) => dropProbability(opts.dropout, 2 + i, step, totalSteps)),
    dropOp: dropProbability(opts.dropout, OPS.length, step, totalSteps),
  };
}

/** The progress event of a finished step: loss, accuracy, the schedules' values at it, images/s and the ETA. */
function stepEvent(
  p: { step: number; loss: number; accuracy: number },
  rate: number,
  opts: TrainOptions,
  run: { blocks: number; totalSteps: number; stepsPerEpoch: number },
): TrainEvent {
  return {
    type: 'step',
    step: p.step,
    totalSteps: run.totalSteps,
    epoch: p.step / run.stepsPerEpoch,
    loss: p.loss,
    accuracy: p.accuracy,
    lr: learningRate(opts.learningRate, p.step - 1, run.totalSteps),
    ...dropRatesAt(opts, run.blocks, p.step - 1, run.totalSteps),
    imagesPerSec: rate,
    etaSeconds: ((run.totalSteps - p.step) * opts.batchSize) / Math.max(rate, 1e-9),
  };
}

/** The fixed reference, architectures and examples of the KL tracked during training (Figure 7), from the run's seed. */
function klTracking(count: number, seed: number, blocks: number, data: DatasetSplits) {
  return {
    refs: [sampleReference(new Rng(seed + SEED_OFFSET.klReference), blocks)],
    archs: sampleArchitectures(count, seed + SEED_OFFSET.klArchs, spaceWith(blocks)),
    probe: klProbe(data, KL_EXAMPLES, seed + SEED_OFFSET.klProbe),
  };
}

/**
 * The run's end: the final evaluation of the evaluation architectures on the whole validation split and result.json.
 * An aborted run stops quickly (its checkpoint is saved; the final evaluation is left to the resumed run), and the
 * final evaluation stops on a signal too (between batches); the resumed run then evaluates again.
 */
async function finish(
  net: Supernet,
  opts: TrainOptions,
  files: ReturnType<typeof runFiles>,
  o: {
    group?: ProcessGroup;
    val: NativeData;
    evalArchs: string[];
    aborted: boolean;
    writer: boolean;
    totalSteps: number;
    startStep: number;
    started: number;
    signal: AbortSignal;
  },
): Promise<TrainResult> {
  const ev = o.aborted ? [] : await evaluateShared(net, o.group, o.val, o.evalArchs, { batchSize: opts.evalBatchSize, signal: o.signal });
  const aborted = o.aborted || ev.length < o.evalArchs.length;
  const seconds = (Date.now() - o.started) / 1000;
  const result: TrainResult = {
    out: opts.out,
    steps: net.step,
    totalSteps: o.totalSteps,
    aborted,
    valAccuracy: mean(ev.map((e) => e.accuracy)),
    valLoss: mean(ev.map((e) => e.loss)),
    perArch: ev,
    imagesPerSec: seconds > 0 ? ((net.step - o.startStep) * opts.batchSize) / seconds : 0,
    seconds,
    checkpoint: files.checkpoint,
  };
  if (!aborted && o.writer) writeFileAtomic(files.result, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}
