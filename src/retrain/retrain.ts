/**
 * Retraining from scratch (the paper's step 4): each architecture's stand-alone model, scaled by F, trained with the
 * same optimizer family for several seeds; test accuracy reported as mean ± std like the paper's tables.
 * Resumable: finished runs are kept in retrain.jsonl, unfinished ones continue from their last epoch checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDataset, type LoadDatasetOptions } from '../data/loadDataset';
import type { ImageFolderEvent } from '../data/imageFolder';
import type { DatasetSplits } from '../data/types';
import { loadAddon } from '../native/binding';
import { invalidParameter } from '../util/errors';
import { type LearningRateSchedule, learningRateTable } from '../schedule/learningRate';
import { DEFAULT_SPACE, formatArchitecture, parseCandidate } from '../space/architecture';
import { DEFAULT_SUPERNET_CONFIG, NativeData, type SupernetConfig } from '../model/Supernet';
import { defaultThreads } from '../util/threads';
import { stripUndefined } from '../util/objects';
import type { TrainOptions } from '../train/trainOptions';
import { acquireLock, appendJsonLine, readJsonLinesStrict, repairTornLine, makeDir, removeStaleTemps, objectLine } from '../util/files';
import { meanStd } from '../util/stats';
import { runInChunks } from '../util/resumable';
import { exportModel } from './exportModel';
import { STANDALONE_BATCH_SIZE, StandaloneModel } from '../model/StandaloneModel';

/** Options of `retrain`: the data, the model shape, the stand-alone training protocol, runs and concurrency. */
export interface RetrainOptions {
  out: string;
  dataset: LoadDatasetOptions;
  /** Model shape and runtime: filters (F), stacks, cellsPerStack, threads, device. */
  net: Partial<SupernetConfig>;
  epochs: number;
  batchSize: number;
  learningRate: LearningRateSchedule;
  momentum: number;
  weightDecay: number;
  cropPad: number;
  flip: boolean;
  runs: number;
  seed: number;
  evalBatchSize: number;
  /** Write model.json + model.safetensors of each architecture's first run. */
  export: boolean;
  /**
   * Runs trained at once (default: one per core on the CPU, one on a GPU); `net.threads` (default: the cores) is
   * split between them. Results depend on the threads per run, so keep both when comparing runs.
   */
  jobs?: number;
}

/** What `retrain` takes: the folder and the data, and any of the protocol's settings (the rest from RETRAIN_DEFAULTS). */
export type RetrainInput = Pick<RetrainOptions, 'out' | 'dataset'> & Partial<Omit<RetrainOptions, 'out' | 'dataset'>>;

/**
 * The stand-alone training protocol's defaults, for every caller (nasctl retrain, the pipeline's retrain stage, the
 * correlation study), as options: `retrain(archs, { ...RETRAIN_DEFAULTS, out, dataset })` is a whole call. The paper
 * retrains at batch 64 with ghost batches of 32, Nesterov SGD, cosine learning rate; F = 8 and 2 epochs size it for a
 * CPU (the paper: F = 16, about 28 epochs).
 */
export const RETRAIN_DEFAULTS: Readonly<Omit<RetrainOptions, 'out' | 'dataset' | 'jobs'>> = Object.freeze({
  net: Object.freeze({ filters: 8, ghostBatch: 32 }),
  epochs: 2,
  batchSize: STANDALONE_BATCH_SIZE,
  learningRate: Object.freeze({ kind: 'cosine' as const, base: 0.1 }),
  momentum: 0.9,
  weightDecay: 1e-4,
  cropPad: 0,
  flip: false,
  runs: 1,
  seed: 0,
  evalBatchSize: 256,
  export: false,
});

/**
 * Whole options from what a caller gave: RETRAIN_DEFAULTS under it (`net` merged field by field), every field
 * checked, so that a JavaScript caller's mistake is a coded error naming the field.
 */
export function resolveRetrainOptions(input: RetrainInput): RetrainOptions {
  if (input === null || typeof input !== 'object') throw invalidParameter('options', 'an object', input);
  const given = stripUndefined({ ...input }) as RetrainInput;
  const o: RetrainOptions = {
    ...RETRAIN_DEFAULTS,
    ...given,
    net: { ...RETRAIN_DEFAULTS.net, ...stripUndefined({ ...(given.net ?? {}) }) },
  } as RetrainOptions;
  if (typeof o.out !== 'string' || !o.out) throw invalidParameter('out', 'a folder path', o.out);
  if (o.dataset === null || typeof o.dataset !== 'object') throw invalidParameter('dataset', 'dataset options ({ name, ... })', o.dataset);
  const positive = ['epochs', 'runs', 'batchSize', 'evalBatchSize'] as const;
  for (const k of positive) if (!(Number.isInteger(o[k]) && o[k] > 0)) throw invalidParameter(k, 'a positive integer', o[k]);
  if (o.jobs !== undefined && !(Number.isInteger(o.jobs) && o.jobs > 0)) throw invalidParameter('jobs', 'a positive integer', o.jobs);
  if (!(Number.isInteger(o.seed) && o.seed >= 0)) throw invalidParameter('seed', 'a non-negative integer', o.seed);
  if (!(Number.isInteger(o.cropPad) && o.cropPad >= 0)) throw invalidParameter('cropPad', 'a non-negative integer', o.cropPad);
  for (const k of ['momentum', 'weightDecay'] as const)
    if (!(typeof o[k] === 'number' && Number.isFinite(o[k]) && o[k] >= 0)) throw invalidParameter(k, 'a finite number >= 0', o[k]);
  const lr = o.learningRate as unknown;
  const isSchedule =
    lr !== null &&
    typeof lr === 'object' &&
    ['cosine', 'constant'].includes((lr as LearningRateSchedule).kind) &&
    typeof (lr as LearningRateSchedule).base === 'number' &&
    (lr as LearningRateSchedule).base > 0;
  if (!isSchedule) throw invalidParameter('learningRate', "a schedule { kind: 'cosine' | 'constant', base > 0 }", lr);
  if (typeof o.flip !== 'boolean') throw invalidParameter('flip', 'true or false', o.flip);
  if (typeof o.export !== 'boolean') throw invalidParameter('export', 'true or false', o.export);
  return o;
}

/**
 * The stand-alone protocol for the architectures of a one-shot run (the retrain stage of `nasctl run`, the correlation
 * study): the run's dataset, model shape, runtime (threads, device, precision), optimizer, augmentation and base
 * learning rate (cosine, no warm-up), at the caller's scale (F), length, runs and ghost batch; the caller's `threads`
 * and `device` override the run's.
 */
export function retrainOptionsFrom(
  train: TrainOptions,
  o: {
    out: string;
    filters: number;
    epochs: number;
    runs: number;
    trainLimit?: number;
    testLimit?: number;
    ghostBatch?: number;
    threads?: number;
    device?: string;
    jobs?: number;
    seed?: number;
    export?: boolean;
  },
): RetrainOptions {
  const n = train.net;
  return {
    out: o.out,
    dataset: { ...train.dataset, ...stripUndefined({ trainLimit: o.trainLimit, testLimit: o.testLimit }) },
    net: {
      filters: o.filters,
      stacks: n.stacks,
      cellsPerStack: n.cellsPerStack,
      blocks: n.blocks,
      ghostBatch: o.ghostBatch ?? RETRAIN_DEFAULTS.net.ghostBatch,
      threads: o.threads ?? n.threads,
      device: o.device ?? n.device,
      precision: n.precision,
    },
    epochs: o.epochs,
    batchSize: RETRAIN_DEFAULTS.batchSize,
    learningRate: { kind: 'cosine', base: train.learningRate.base },
    momentum: train.momentum,
    weightDecay: train.weightDecay,
    cropPad: train.cropPad,
    flip: train.flip,
    runs: o.runs,
    seed: o.seed ?? train.seed,
    evalBatchSize: RETRAIN_DEFAULTS.evalBatchSize,
    export: o.export ?? false,
    jobs: o.jobs,
  };
}

/** One finished run (one architecture, one seed): a line of `retrain.jsonl`. */
export interface RetrainRun {
  arch: string;
  run: number;
  seed: number;
  params: number;
  madds: number;
  steps: number;
  validationAccuracy: number;
  testAccuracy: number;
  testLoss: number;
  seconds: number;
}

/** The line check of retrain.jsonl (files.ts: readJsonLinesStrict). */
export function retrainRunLine(value: unknown): RetrainRun | string {
  const o = objectLine(
    value,
    ['run', 'seed', 'params', 'madds', 'steps', 'validationAccuracy', 'testAccuracy', 'testLoss', 'seconds'],
    ['arch'],
  );
  return typeof o === 'string' ? o : (o as unknown as RetrainRun);
}

/** An architecture's runs with the mean and standard deviation of their test accuracy. */
export interface RetrainSummary {
  arch: string;
  params: number;
  madds: number;
  runs: RetrainRun[];
  testAccuracyMean: number;
  testAccuracyStd: number;
  validationAccuracyMean: number;
  exportedTo?: string;
}

/** Progress of `retrain`: a run starts, a step is done, a run finished. */
export type RetrainEvent =
  | { type: 'data'; event: ImageFolderEvent }
  | { type: 'run-start'; arch: string; archIndex: number; run: number; totalSteps: number; startStep: number }
  | RetrainStepEvent
  | { type: 'run'; result: RetrainRun };

/** Cancellation, progress, and splits given in memory instead of `options.dataset`. */
export interface RetrainHooks {
  signal?: AbortSignal;
  onEvent?: (e: RetrainEvent) => void;
  /** Retrain on these splits (built in memory, or loaded with loadDataset / loadImageFolder). */
  data?: DatasetSplits;
}

/** One step of one run, with the progress of the whole call (all runs, all jobs) for rates and ETAs. */
export interface RetrainStepEvent {
  type: 'step';
  arch: string;
  run: number;
  step: number;
  totalSteps: number;
  loss: number;
  accuracy: number;
  /** Steps done over every run of this call (finished runs count in full) and their total. */
  doneSteps: number;
  allSteps: number;
  /** Runs finished and runs in all. */
  doneRuns: number;
  allRuns: number;
}

export { meanStd } from '../util/stats';

/**
 * How many runs train at once, and the LibTorch threads of each. On the CPU the default is one job per core (up to
 * the number of runs), each with ONE intra-op thread, also when there is a single run: this model's small
 * convolutions gain little from a second OpenMP thread, and OpenMP threads that wait on each other's barriers
 * collapse when another process takes a core (docs/results.md#when-another-process-shares-the-cores). Explicit `threads` are split between the jobs. On a GPU, one job unless `jobs`
 * says more: each job then trains on a CUDA stream of its own (docs/gpu.md#several-runs-on-one-gpu).
 * Depends on the call's total number of runs, not on what is left, so a resumed call splits its threads as before.
 */
export function retrainJobs(o: { jobs?: number; threads?: number; device?: string }, runs: number): { jobs: number; threads: number } {
  const gpu = o.device !== undefined && o.device !== 'cpu';
  const jobs = Math.max(1, Math.min(runs, o.jobs ?? (gpu ? 1 : (o.threads ?? defaultThreads()))));
  const threads = o.threads !== undefined ? Math.max(1, Math.floor(o.threads / jobs)) : gpu ? defaultThreads() : 1;
  return { jobs, threads };
}

/**
 * Trains each architecture's stand-alone model `o.runs` times (seeds o.seed, o.seed + 1, ..) into `o.out`, several
 * runs at once (see retrainJobs), and reports test and validation accuracy per run and as mean +- std. Resumes: finished
 * runs are read from retrain.jsonl, unfinished ones continue from their epoch checkpoints.
 */
export async function retrain(
  archTexts: string[],
  input: RetrainInput,
  hooks: RetrainHooks = {},
): Promise<{ summaries: RetrainSummary[]; aborted: boolean }> {
  if (!Array.isArray(archTexts) || !archTexts.length) throw invalidParameter('arch', 'at least one architecture', archTexts);
  const o = resolveRetrainOptions(input);
  const blocks = o.net.blocks ?? DEFAULT_SUPERNET_CONFIG.blocks;
  // Architectures of the space, or the all-on model (Table 1's "All On" row): the parser of every command.
  const archs = archTexts.map((a) => formatArchitecture(parseCandidate(a, { ...DEFAULT_SPACE, blocks })));
  // LibTorch loads before anything is written: a process that dies loading it (too little address space) leaves
  // no folder and no lock behind.
  loadAddon();
  makeDir(path.join(o.out, 'checkpoints'));
  // One writer per retraining folder; temp files of killed runs are removed.
  const release = acquireLock(o.out, 'dir', `retraining into ${o.out}`);
  try {
    removeStaleTemps(o.out);
    removeStaleTemps(path.join(o.out, 'checkpoints'));
    return await retrainLocked(archs, o, hooks);
  } finally {
    release();
  }
}

async function retrainLocked(
  archs: string[],
  o: RetrainOptions,
  hooks: RetrainHooks,
): Promise<{ summaries: RetrainSummary[]; aborted: boolean }> {
  const data =
    hooks.data ?? (await openDataset(o.dataset, { signal: hooks.signal, onEvent: (event) => hooks.onEvent?.({ type: 'data', event }) }));
  if (!data) return { summaries: [], aborted: true };
  const train = new NativeData(data.train, data.mean, data.std);
  const val = new NativeData(data.validation, data.mean, data.std);
  const test = new NativeData(data.test, data.mean, data.std);
  const log = path.join(o.out, 'retrain.jsonl');
  const read = readJsonLinesStrict(log, retrainRunLine);
  repairTornLine(log, read);
  const done = read.rows;
  const emit = hooks.onEvent ?? ((): void => undefined);
  const stepsPerEpoch = Math.floor(data.train.n / o.batchSize);
  const totalSteps = o.epochs * stepsPerEpoch;
  const lr = learningRateTable(o.learningRate, { steps: totalSteps });
  const allRuns = archs.length * o.runs;
  const { jobs, threads } = retrainJobs({ jobs: o.jobs, threads: o.net.threads, device: o.net.device }, allRuns);
  // Every (architecture, run) not in the log, in order; `jobs` workers take them one by one.
  const queue = archs
    .flatMap((arch, k) => Array.from({ length: o.runs }, (_, run) => ({ arch, k, run })))
    .filter((j) => !done.some((d) => d.arch === j.arch && d.run === j.run));
  const progress = { steps: (allRuns - queue.length) * totalSteps, runs: allRuns - queue.length };
  let aborted = false;
  let failure: unknown;

  const runOne = async (arch: string, k: number, run: number): Promise<void> => {
    const seed = o.seed + run;
    const model = createRunModel(o, data, threads, arch, seed);
    try {
      const ckpt = path.join(o.out, 'checkpoints', `${k}-${run}.pt`);
      if (fs.existsSync(ckpt)) await model.load(ckpt);
      progress.steps += model.step;
      emit({ type: 'run-start', arch, archIndex: k, run, totalSteps, startStep: model.step });
      const started = Date.now();
      let last = 0;
      const trained = await runInChunks({
        at: () => model.step,
        total: totalSteps,
        every: [stepsPerEpoch], // a checkpoint per epoch
        chunk: (s0, count) => {
          last = s0;
          return model.train(train, {
            steps: count,
            lr: lr.subarray(s0, s0 + count),
            signal: hooks.signal,
            onProgress: (p) => {
              progress.steps += p.step - last;
              last = p.step;
              emit({
                type: 'step',
                arch,
                run,
                step: p.step,
                totalSteps,
                loss: p.loss,
                accuracy: p.accuracy,
                doneSteps: progress.steps,
                allSteps: allRuns * totalSteps,
                doneRuns: progress.runs,
                allRuns,
              });
            },
          });
        },
        after: async (step) => {
          progress.steps += step - last;
          await model.save(ckpt, { arch, run, seed });
        },
        stopped: () => aborted,
      });
      if (trained.aborted) {
        aborted = true;
        return;
      }
      const result = await evaluateRun(model, { val, test, batchSize: o.evalBatchSize }, { arch, run, seed, started });
      appendJsonLine(log, result);
      done.push(result);
      progress.runs++;
      emit({ type: 'run', result });
      if (o.export && run === 0)
        exportModel(path.join(o.out, 'models', String(k)), model, {
          mean: data.mean,
          std: data.std,
          testAccuracy: result.testAccuracy,
          dataset: o.dataset.name,
          classNames: data.classNames,
        });
      fs.rmSync(ckpt, { force: true });
    } finally {
      model.dispose();
    }
  };

  const worker = async (): Promise<void> => {
    for (let j = queue.shift(); j && !aborted && failure === undefined; j = queue.shift()) {
      try {
        await runOne(j.arch, j.k, j.run);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  if (failure !== undefined) throw failure;

  return { summaries: summarize(archs, done, o.out), aborted };
}

/** A fresh stand-alone model of `arch` for one run (weights, data order and augmentation from `seed`). */
function createRunModel(o: RetrainOptions, data: DatasetSplits, threads: number, arch: string, seed: number): StandaloneModel {
  const net = { ...o.net, threads, inChannels: data.train.channels, imageSize: data.train.height, classes: data.classes, seed };
  const optim = {
    batchSize: o.batchSize,
    momentum: o.momentum,
    weightDecay: o.weightDecay,
    nesterov: true,
    cropPad: o.cropPad,
    flip: o.flip,
    seed,
  };
  return StandaloneModel.create(net, arch, optim);
}

/** A trained run's line of retrain.jsonl: its size and its accuracy on the validation and test splits. */
async function evaluateRun(
  model: StandaloneModel,
  on: { val: NativeData; test: NativeData; batchSize: number },
  r: { arch: string; run: number; seed: number; started: number },
): Promise<RetrainRun> {
  const v = await model.evaluate(on.val, { batchSize: on.batchSize });
  const t = await model.evaluate(on.test, { batchSize: on.batchSize });
  return {
    arch: r.arch,
    run: r.run,
    seed: r.seed,
    params: model.parameterCount(),
    madds: model.multiplyAdds(),
    steps: model.step,
    validationAccuracy: v.accuracy,
    testAccuracy: t.accuracy,
    testLoss: t.loss,
    seconds: (Date.now() - r.started) / 1000,
  };
}

/** Each architecture's finished runs: mean and std of test accuracy, mean validation accuracy, its exported model. */
function summarize(archs: string[], done: RetrainRun[], out: string): RetrainSummary[] {
  return archs.flatMap((arch, k) => {
    const runs = done.filter((d) => d.arch === arch).sort((a, b) => a.run - b.run);
    if (!runs.length) return [];
    const t = meanStd(runs.map((r) => r.testAccuracy));
    const exported = path.join(out, 'models', String(k));
    return [
      {
        arch,
        params: runs[0].params,
        madds: runs[0].madds,
        runs,
        testAccuracyMean: t.mean,
        testAccuracyStd: t.std,
        validationAccuracyMean: meanStd(runs.map((r) => r.validationAccuracy)).mean,
        exportedTo: fs.existsSync(path.join(exported, 'model.json')) ? exported : undefined,
      },
    ];
  });
}
