/** `nasctl train`: trains the one-shot model. */
import * as fs from 'node:fs';
import type { ExecutionPlan } from '../../native/binding';
import * as path from 'node:path';
import { addRuntimeOptions } from '../runtime';
import { Command } from 'commander';
import { invalidParameter } from '../../util/errors';
import { cropPadOf } from '../../data/loadDataset';
import { type DatasetFlags, addDatasetOptions, datasetFromFlags } from '../dataset';
import { PRESETS, type TrainOptions, withOverrides } from '../../train/trainOptions';
import { readRunOptions, trainOneShot } from '../../train/trainOneShot';
import { num, nonNegativeInt, oneOf, positiveInt, presetDefault } from '../parse';
import { DEFAULT_SUPERNET_CONFIG, type SupernetConfig } from '../../model/Supernet';
import { TrainProgress, outputMode, formatDuration } from '../progress';
import { withAbortOnSignal } from '../lifecycle';
import { type DistFlags, addDistOptions, withGroup } from '../dist';

/** The flags of `nasctl train` as commander parses them. */
export interface TrainFlags extends DistFlags, DatasetFlags {
  preset: 'quick' | 'paper';
  trainLimit?: number;
  filters?: number;
  stacks?: number;
  cellsPerStack?: number;
  blocks?: number;
  ghostBatch?: number;
  batchSize?: number;
  epochs?: number;
  steps?: number;
  lr?: number;
  lrSchedule?: 'cosine' | 'constant';
  warmupSteps?: number;
  momentum?: number;
  weightDecay?: number;
  dropRate?: number;
  dropSchedule?: 'linear' | 'constant';
  augment?: boolean;
  seed?: number;
  checkpointEvery?: number;
  evalEvery?: number;
  evalArchs?: number;
  evalLimit?: number;
  trackKl?: number;
  threads?: number;
  device?: string;
  precision?: 'fp32' | 'bf16';
  plan?: ExecutionPlan;
  out?: string;
  resume?: boolean;
  json?: boolean;
}

/** Builds the run's options from a preset (or a saved run's options) and the flags (flags win). */
export function trainOptionsFromFlags(f: TrainFlags, base: TrainOptions = PRESETS[f.preset]): TrainOptions {
  const augment =
    f.augment === undefined
      ? {}
      : f.augment
        ? { cropPad: cropPadOf(datasetFromFlags(f, f.dataset ?? base.dataset.name)), flip: true }
        : { cropPad: 0, flip: false };
  const datasetChanged = f.dataset !== undefined && f.dataset !== base.dataset.name;
  // Another dataset than the base's: its dataset-bound values (the training subset, the evaluation interval set for
  // its epoch length) do not carry over; the run then records its own (trainOneShot: effectiveOptions).
  if (datasetChanged) base = { ...base, dataset: { name: f.dataset! }, evalEvery: undefined };
  return withOverrides(base, {
    out: f.out,
    dataset: { ...datasetFromFlags(f, datasetChanged ? f.dataset! : base.dataset.name), trainLimit: f.trainLimit },
    net: {
      filters: f.filters,
      stacks: f.stacks,
      cellsPerStack: f.cellsPerStack,
      blocks: f.blocks,
      ghostBatch: f.ghostBatch,
      threads: f.threads,
      device: f.device,
      precision: f.precision,
      plan: f.plan,
      seed: f.seed,
    },
    epochs: f.epochs,
    steps: f.steps,
    batchSize: f.batchSize,
    learningRate: { kind: f.lrSchedule!, base: f.lr!, warmupSteps: f.warmupSteps },
    dropout: { kind: f.dropSchedule!, rate: f.dropRate! },
    momentum: f.momentum,
    weightDecay: f.weightDecay,
    seed: f.seed,
    checkpointEvery: f.checkpointEvery,
    evalEvery: f.evalEvery,
    evalArchs: f.evalArchs,
    evalLimit: f.evalLimit,
    trackKl: f.trackKl,
    ...augment,
  });
}

// Option paths as the flags that set them, for messages.
const FLAG_OF: Record<string, string> = {
  'net.filters': '--filters',
  'net.stacks': '--stacks',
  'net.cellsPerStack': '--cells-per-stack',
  'net.blocks': '--blocks',
  'net.ghostBatch': '--ghost-batch',
  'net.precision': '--precision',
  'net.seed': '--seed',
  seed: '--seed',
  batchSize: '--batch-size',
  epochs: '--epochs',
  steps: '--steps',
  'learningRate.base': '--lr',
  'learningRate.kind': '--lr-schedule',
  'learningRate.warmupSteps': '--warmup-steps',
  momentum: '--momentum',
  weightDecay: '--weight-decay',
  'dropout.rate': '--drop-rate',
  'dropout.kind': '--drop-schedule',
  'dataset.name': '--dataset',
  'dataset.trainLimit': '--train-limit',
  'dataset.dataDir': '--data-dir',
  'dataset.folder.imageSize': '--image-size',
  'dataset.folder.channels': '--channels',
  'dataset.folder.validationFraction': '--validation-fraction',
  'dataset.folder.testFraction': '--test-fraction',
  'dataset.folder.seed': '--split-seed',
  'dataset.folder.cacheDir': '--cache-dir',
  cropPad: '--augment',
  flip: '--augment',
  checkpointEvery: '--checkpoint-every',
  evalEvery: '--eval-every',
  evalArchs: '--eval-archs',
  evalLimit: '--eval-limit',
  trackKl: '--track-kl',
};
// What may change when a run resumes: how it executes, not what it computes. (--seed sets net.seed too, which a run
// started without --seed never saved: it is compared as the top-level seed.)
const RUNTIME = new Set(['out', 'net.threads', 'net.device', 'net.plan', 'net.seed']);

/**
 * With --resume, a flag that contradicts the run's saved options is refused by name (ERR_NAS_BAD_CONFIG) instead of
 * being silently ignored; threads, device and plan may change.
 */
export function checkResumeFlags(f: TrainFlags, saved: TrainOptions): void {
  const wanted = trainOptionsFromFlags(f, saved);
  const walk = (a: unknown, b: unknown, at: string): void => {
    if (RUNTIME.has(at)) return;
    if (a && b && typeof a === 'object' && typeof b === 'object') {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
        walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      throw invalidParameter(
        FLAG_OF[at] ?? at,
        `${JSON.stringify(a)} (what the run in ${saved.out} was started with: drop the flag to resume it, or choose another --out)`,
        b,
      );
    }
  };
  walk(saved, wanted, '');
}

/** "(default: ...)" of a flag from PRESETS (`none` shown as `absent` where undefined means something else). */
const preset = (get: (o: TrainOptions) => unknown, show: (v: unknown) => string = String, absent?: string): string =>
  presetDefault(PRESETS, (o) => get(o) ?? absent, show);
const net = (o: TrainOptions): SupernetConfig => ({ ...DEFAULT_SUPERNET_CONFIG, ...o.net });

/** `nasctl train`: trains the one-shot model into a run directory (resumable). */
export function trainCommand(): Command {
  return addDatasetOptions(
    addRuntimeOptions(addDistOptions(new Command('train'))),
    undefined,
    preset((o) => o.dataset.name),
  )
    .description(
      'train the one-shot model (docs/model.md) and write a run directory: config.json, checkpoint.pt, metrics.jsonl, result.json',
    )
    .option(
      '--preset <name>',
      "starting configuration: quick (Fashion-MNIST, F=8, minutes on CPU) or paper (CIFAR-10, the paper's run)",
      oneOf(['quick', 'paper'] as const),
      'quick',
    )
    .option(
      '--train-limit <n>',
      `use only the first n training examples ${preset((o) => o.dataset.trainLimit, String, 'all')}`,
      positiveInt,
    )
    .option('--filters <F>', `filters of the stem (the paper's F) ${preset((o) => net(o).filters)}`, positiveInt)
    .option('--stacks <n>', `stacks of cells ${preset((o) => net(o).stacks)}`, positiveInt)
    .option('--cells-per-stack <n>', `cells per stack ${preset((o) => net(o).cellsPerStack)}`, positiveInt)
    .option('--blocks <n>', `choice blocks per cell ${preset((o) => net(o).blocks)}`, positiveInt)
    .option('--ghost-batch <n>', `examples sharing one mask and BN statistics ${preset((o) => net(o).ghostBatch)}`, positiveInt)
    .option('--batch-size <n>', `examples per step (a multiple of the ghost batch) ${preset((o) => o.batchSize)}`, positiveInt)
    .option('--epochs <n>', `training epochs ${preset((o) => o.epochs)}`, positiveInt)
    .option('--steps <n>', `training steps (overrides --epochs) ${preset((o) => o.steps, String, 'from --epochs')}`, positiveInt)
    .option('--lr <x>', `base learning rate ${preset((o) => o.learningRate.base)}`, num)
    .option('--lr-schedule <kind>', `cosine or constant ${preset((o) => o.learningRate.kind)}`, oneOf(['cosine', 'constant'] as const))
    .option(
      '--warmup-steps <n>',
      `linear learning-rate warm-up over the first n steps, with either schedule ${preset((o) => o.learningRate.warmupSteps ?? 0)}`,
      nonNegativeInt,
    )
    .option('--momentum <x>', `Nesterov momentum ${preset((o) => o.momentum)}`, num)
    .option('--weight-decay <x>', `L2 weight decay on active paths ${preset((o) => o.weightDecay)}`, num)
    .option('--drop-rate <r>', `path dropout base rate r (per-path probability r^(1/k) at the end) ${preset((o) => o.dropout.rate)}`, num)
    .option(
      '--drop-schedule <kind>',
      `linear (0 to r^(1/k)) or constant ${preset((o) => o.dropout.kind)}`,
      oneOf(['linear', 'constant'] as const),
    )
    .option('--augment', `random crop and horizontal flip ${preset((o) => (o.cropPad > 0 || o.flip ? 'on' : 'off'))}`)
    .option('--no-augment', 'no augmentation')
    .option('--seed <n>', `seed of weights, masks, data order and evaluation architectures ${preset((o) => o.seed)}`, nonNegativeInt)
    .option('--checkpoint-every <n>', `steps between checkpoints ${preset((o) => o.checkpointEvery)}`, positiveInt)
    .option('--eval-every <n>', `steps between validation evaluations ${preset((o) => o.evalEvery, String, 'one epoch')}`, positiveInt)
    .option(
      '--eval-archs <n>',
      `sampled architectures whose mean one-shot validation accuracy is reported ${preset((o) => o.evalArchs)}`,
      positiveInt,
    )
    .option(
      '--eval-limit <n>',
      `validation examples used during training (the final evaluation uses all) ${preset((o) => o.evalLimit, String, 'all')}`,
      positiveInt,
    )
    .option(
      '--track-kl <n>',
      `record the KL of n fixed architectures against a reference at every evaluation (Figure 7) ${preset((o) => o.trackKl, String, 'off')}`,
      positiveInt,
    )
    .option('--out <dir>', `run directory ${preset((o) => o.out)}`)
    .option('--resume', 'continue the run in --out from its checkpoint')
    .option('--json', 'JSON lines on stdout (metrics, then the result)')
    .action(async (f: TrainFlags) => {
      const opts = trainOptionsFromFlags(f);
      if (f.resume && fs.existsSync(path.join(opts.out, 'config.json')))
        checkResumeFlags({ ...f, out: opts.out }, readRunOptions(opts.out));
      const progress = new TrainProgress(outputMode(f.json === true));
      let writer = true;
      const result = await withGroup(f, `train:${path.resolve(opts.out)}`, (group) => {
        writer = !group || group.isWriter;
        // Only rank 0 reports; the other workers print errors only.
        return withAbortOnSignal((signal) =>
          trainOneShot(opts, { resume: f.resume, group, signal, onEvent: writer ? (e) => progress.handle(e) : undefined }),
        );
      });
      if (!writer) {
        if (result.aborted) process.exitCode = 130;
        return;
      }
      progress.finish();
      if (f.json) {
        process.stdout.write(`${JSON.stringify({ result })}\n`);
      } else if (result.aborted) {
        process.stderr.write(
          `stopped at step ${result.steps}/${result.totalSteps}; checkpoint ${result.checkpoint}. Continue with: nasctl train --out ${result.out} --resume\n`,
        );
      } else {
        process.stderr.write(
          `done: ${result.steps} steps in ${formatDuration(result.seconds)} (${result.imagesPerSec.toFixed(1)} img/s including evaluation)\n`,
        );
        process.stdout.write(
          `one-shot validation accuracy (mean of ${result.perArch.length} sampled architectures, ${result.perArch[0]?.examples ?? 0} held-out images): ${result.valAccuracy.toFixed(4)}\n`,
        );
        for (const a of result.perArch) process.stdout.write(`  ${a.accuracy.toFixed(4)}  ${a.arch}\n`);
        process.stdout.write(`run directory: ${result.out}\n`);
      }
      if (result.aborted) process.exitCode = 130;
    });
}
