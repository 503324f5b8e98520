/** Options of a one-shot training run, presets, and their validation. */
import { invalidParameter } from '../util/errors';
import { type LoadDatasetOptions, DATASET_NAMES } from '../data/loadDataset';
import type { DropoutSchedule } from '../schedule/dropout';
import type { LearningRateSchedule } from '../schedule/learningRate';
import type { SupernetConfig } from '../model/Supernet';
import { stripUndefined } from '../util/objects';

/** Options of a one-shot training run (`nasctl train`); `PRESETS` holds named ones. */
export interface TrainOptions {
  /** Run directory: config.json, checkpoint.pt, metrics.jsonl, result.json. */
  out: string;
  dataset: LoadDatasetOptions;
  net: Partial<SupernetConfig>;
  /** Training length: `steps` wins over `epochs` when both are given. */
  epochs: number;
  steps?: number;
  batchSize: number;
  learningRate: LearningRateSchedule;
  dropout: DropoutSchedule;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  /** Random crop padding (0 = off) and horizontal flip. */
  cropPad: number;
  flip: boolean;
  /** Seed of masks, data order and augmentation (and of the evaluation architectures). */
  seed: number;
  /** Checkpoint every N steps (and at every evaluation and at the end). */
  checkpointEvery: number;
  /** Evaluate every N steps (default: once per epoch). */
  evalEvery?: number;
  /** Architectures sampled (seeded) whose mean one-shot validation accuracy is reported during training. */
  evalArchs: number;
  /** Validation examples used by the evaluations during training (the final evaluation uses all). */
  evalLimit?: number;
  evalBatchSize: number;
  /** Record, at every evaluation, the symmetrized KL of this many fixed architectures against a reference (Figure 7). */
  trackKl?: number;
  /** The class names in label order, as the run found them (recorded in config.json; not an input). */
  classNames?: string[];
}

/** Named starting points; every field can be overridden. */
export const PRESETS: Record<'quick' | 'paper', TrainOptions> = {
  // Fashion-MNIST, small F, a training subset: a few minutes on 2 CPU cores, well above chance.
  quick: {
    out: 'runs/quick',
    dataset: { name: 'fashion-mnist', trainLimit: 12000 },
    net: { inChannels: 1, imageSize: 28, filters: 8, ghostBatch: 32 },
    epochs: 2,
    batchSize: 64,
    learningRate: { kind: 'cosine', base: 0.1, warmupSteps: 20 },
    dropout: { kind: 'linear', rate: 0.1 },
    momentum: 0.9,
    weightDecay: 1e-4,
    nesterov: true,
    cropPad: 0,
    flip: false,
    seed: 1,
    checkpointEvery: 100,
    evalEvery: 47,
    evalArchs: 4,
    evalLimit: 500,
    evalBatchSize: 256,
  },
  // The paper's CIFAR-10 run (section 4): global batch 1024 = 32 ghost batches of 32, 10,000 steps, lr 0.1,
  // Nesterov 0.9, dropout rising linearly to r = 0.1. The paper does not give the one-shot model's F; 16 here.
  paper: {
    out: 'runs/paper',
    dataset: { name: 'cifar10' },
    net: { inChannels: 3, imageSize: 32, filters: 16, ghostBatch: 32 },
    epochs: 228,
    steps: 10000,
    batchSize: 1024,
    learningRate: { kind: 'cosine', base: 0.1, warmupSteps: 0 },
    dropout: { kind: 'linear', rate: 0.1 },
    momentum: 0.9,
    weightDecay: 1e-4,
    nesterov: true,
    cropPad: 4,
    flip: true,
    seed: 1,
    checkpointEvery: 100,
    evalArchs: 8,
    evalBatchSize: 512,
  },
};

/** Deep-enough merge of overrides onto a preset (nested objects merge, undefined keeps the preset's value). */
export function withOverrides(base: TrainOptions, o: Partial<TrainOptions>): TrainOptions {
  const s = stripUndefined(o);
  return {
    ...base,
    ...s,
    dataset: { ...base.dataset, ...stripUndefined(o.dataset ?? {}) },
    net: { ...base.net, ...stripUndefined(o.net ?? {}) },
    learningRate: { ...base.learningRate, ...stripUndefined(o.learningRate ?? {}) },
    dropout: { ...base.dropout, ...stripUndefined(o.dropout ?? {}) },
  };
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Throws a NasError naming the first bad field. */
export function validateTrainOptions(o: TrainOptions): void {
  if (!DATASET_NAMES.includes(o.dataset.name)) throw invalidParameter('dataset', `one of ${DATASET_NAMES.join(', ')}`, o.dataset.name);
  if (!(Number.isInteger(o.epochs) && o.epochs > 0)) throw invalidParameter('epochs', 'a positive integer', o.epochs);
  if (o.steps !== undefined && !(Number.isInteger(o.steps) && o.steps > 0)) throw invalidParameter('steps', 'a positive integer', o.steps);
  if (!(Number.isInteger(o.batchSize) && o.batchSize > 0)) throw invalidParameter('batchSize', 'a positive integer', o.batchSize);
  const g = o.net.ghostBatch ?? 32;
  if (o.batchSize % g !== 0) throw invalidParameter('batchSize', `a multiple of ghostBatch (${g})`, o.batchSize);
  // LibTorch computes in float32: 3.4e38 is the largest learning rate it can represent (and far past any useful one).
  if (!isNum(o.learningRate.base) || o.learningRate.base <= 0 || o.learningRate.base > 3.4e38)
    throw invalidParameter('lr', 'a positive number (at most 3.4e38, float32)', o.learningRate.base);
  const warm = o.learningRate.warmupSteps ?? 0;
  if (!(Number.isInteger(warm) && warm >= 0)) throw invalidParameter('warmupSteps', 'a non-negative integer', warm);
  if (!['cosine', 'constant'].includes(o.learningRate.kind))
    throw invalidParameter('lrSchedule', "'cosine' or 'constant'", o.learningRate.kind);
  if (!isNum(o.dropout.rate) || o.dropout.rate < 0 || o.dropout.rate >= 1)
    throw invalidParameter('dropRate', 'a number in [0, 1)', o.dropout.rate);
  if (!['linear', 'constant'].includes(o.dropout.kind)) throw invalidParameter('dropSchedule', "'linear' or 'constant'", o.dropout.kind);
  if (!isNum(o.momentum) || o.momentum < 0 || o.momentum >= 1) throw invalidParameter('momentum', 'a number in [0, 1)', o.momentum);
  if (!isNum(o.weightDecay) || o.weightDecay < 0) throw invalidParameter('weightDecay', 'a non-negative number', o.weightDecay);
  if (!(Number.isInteger(o.cropPad) && o.cropPad >= 0)) throw invalidParameter('cropPad', 'a non-negative integer', o.cropPad);
  if (!(Number.isInteger(o.seed) && o.seed >= 0)) throw invalidParameter('seed', 'a non-negative integer', o.seed);
  if (!(Number.isInteger(o.checkpointEvery) && o.checkpointEvery > 0))
    throw invalidParameter('checkpointEvery', 'a positive integer', o.checkpointEvery);
  if (o.evalEvery !== undefined && !(Number.isInteger(o.evalEvery) && o.evalEvery > 0))
    throw invalidParameter('evalEvery', 'a positive integer', o.evalEvery);
  if (!(Number.isInteger(o.evalArchs) && o.evalArchs > 0)) throw invalidParameter('evalArchs', 'a positive integer', o.evalArchs);
  if (o.evalLimit !== undefined && !(Number.isInteger(o.evalLimit) && o.evalLimit > 0))
    throw invalidParameter('evalLimit', 'a positive integer', o.evalLimit);
  if (typeof o.out !== 'string' || !o.out) throw invalidParameter('out', 'a directory path', o.out);
}
