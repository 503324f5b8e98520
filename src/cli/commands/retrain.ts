/** `nasctl retrain` and `nasctl predict`. */
import { addRuntimeOptions } from '../runtime';
import type { ExecutionPlan } from '../../native/binding';
import { Command } from 'commander';
import * as fs from 'node:fs';
import { DATASET_NAMES, type DatasetName, cropPadOf, openDataset } from '../../data/loadDataset';
import { type DatasetFlags, addDatasetOptions, datasetFromFlags } from '../dataset';
import { NasError } from '../../util/errors';
import { ioError } from '../../util/files';
import { decodeImageFile, listImageFiles } from '../../data/imageFolder';
import { readImages } from '../../data/types';
import { loadModel, normaliseImages } from '../../retrain/exportModel';
import { RETRAIN_DEFAULTS, type RetrainEvent, retrain } from '../../retrain/retrain';
import { SELECTION_RULES, SELECT_DEFAULTS, type SelectionRule, readSearchResults, selectArchitectures } from '../../search/select';
import { DEFAULT_SUPERNET_CONFIG } from '../../model/Supernet';
import { num, nonNegativeInt, oneOf, positiveInt } from '../parse';
import { DataProgress, RetrainProgress, formatDuration, outputMode } from '../progress';
import { withAbortOnSignal } from '../lifecycle';

interface RetrainFlags extends DatasetFlags {
  ghostBatch?: number;
  from?: string;
  select: SelectionRule;
  count: number;
  percentile: number;
  dataset: DatasetName;
  trainLimit?: number;
  filters: number;
  stacks: number;
  cellsPerStack: number;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  augment?: boolean;
  runs: number;
  seed: number;
  threads?: number;
  jobs?: number;
  device?: string;
  precision?: 'fp32' | 'bf16';
  plan?: ExecutionPlan;
  out: string;
  export?: boolean;
  json?: boolean;
}

function renderer(json: boolean): (e: RetrainEvent) => void {
  const mode = outputMode(json);
  const progress = new RetrainProgress(mode);
  const data = new DataProgress(mode);
  return (e) => {
    if (e.type === 'step') return progress.step(e);
    if (e.type === 'data') {
      data.handle(e.event);
      return;
    }
    if (mode === 'json') {
      if (e.type === 'run') process.stdout.write(`${JSON.stringify(e.result)}\n`);
      return;
    }
    if (e.type === 'run-start') {
      process.stderr.write(
        `${mode === 'tty' ? '\r\x1b[2K' : ''}retraining #${e.archIndex + 1} run ${e.run + 1}: ${e.arch} (${e.totalSteps} steps${e.startStep ? `, resuming at ${e.startStep}` : ''})\n`,
      );
    } else {
      const r = e.result;
      process.stderr.write(
        `${mode === 'tty' ? '\r\x1b[2K' : ''}  test accuracy ${r.testAccuracy.toFixed(4)} (validation ${r.validationAccuracy.toFixed(4)}), ${r.params.toLocaleString('en-US')} params, ${formatDuration(r.seconds)}\n`,
      );
    }
  };
}

/** Fashion-MNIST's retraining subset by default: the quick preset's, so that a retrain of its winners takes minutes. */
const FASHION_MNIST_RETRAIN_LIMIT = 12000;

/** `nasctl retrain`: trains stand-alone models of architectures from scratch. */
export function retrainCommand(): Command {
  return addDatasetOptions(
    addRuntimeOptions(new Command('retrain'), ['threads', 'device', 'precision', 'plan'], {
      threads: 'all cores, split between the jobs',
    }),
    'fashion-mnist',
  )
    .description('train stand-alone models of architectures from scratch and report test accuracy (mean ± std over runs)')
    .argument('[arch...]', 'architectures in the canonical notation')
    .option('--from <file>', 'take architectures from search results (search.jsonl) (default: none: the arguments)')
    .option('--select <rule>', `with --from: ${SELECTION_RULES.join(', ')}`, oneOf(SELECTION_RULES), 'top')
    .option('--count <k>', 'with --from: how many', positiveInt, 2)
    .option('--percentile <p>', 'with --select small: accuracy percentile', num, SELECT_DEFAULTS.percentile)
    .option(
      '--train-limit <n>',
      `use only the first n training examples (default: fashion-mnist: ${FASHION_MNIST_RETRAIN_LIMIT}, else all)`,
      positiveInt,
    )
    .option(
      '--filters <F>',
      "scale: filters of the stem (default sized for a CPU; the paper's model has 16)",
      positiveInt,
      RETRAIN_DEFAULTS.net.filters,
    )
    .option('--stacks <n>', 'stacks of cells', positiveInt, DEFAULT_SUPERNET_CONFIG.stacks)
    .option('--cells-per-stack <n>', 'cells per stack', positiveInt, DEFAULT_SUPERNET_CONFIG.cellsPerStack)
    .option('--epochs <n>', 'training epochs', positiveInt, RETRAIN_DEFAULTS.epochs)
    .option('--batch-size <n>', 'examples per step', positiveInt, RETRAIN_DEFAULTS.batchSize)
    .option(
      '--ghost-batch <n>',
      'examples per BatchNorm ghost batch while training (the paper retrains with 32)',
      positiveInt,
      RETRAIN_DEFAULTS.net.ghostBatch,
    )
    .option('--lr <x>', 'base learning rate (cosine decay)', num, RETRAIN_DEFAULTS.learningRate.base)
    .option('--momentum <x>', 'Nesterov momentum', num, RETRAIN_DEFAULTS.momentum)
    .option('--weight-decay <x>', 'L2 weight decay', num, RETRAIN_DEFAULTS.weightDecay)
    .option('--augment', 'random crop and horizontal flip')
    .option('--runs <r>', 'repeats with seeds seed..seed+r-1', positiveInt, RETRAIN_DEFAULTS.runs)
    .option('--seed <n>', 'first seed', nonNegativeInt, RETRAIN_DEFAULTS.seed)
    .option(
      '--jobs <n>',
      'runs trained at once (default: one per core on the CPU, each with one thread; one on a GPU; more share it, each on its own stream)',
      positiveInt,
    )
    .option('--out <dir>', 'output directory (retrain.jsonl, checkpoints, models)', 'runs/retrain')
    .option('--export', 'write model.json + model.safetensors of each architecture (first run)')
    .option('--json', 'one JSON line per finished run, then {"summaries":..}')
    .action(async (archs: string[], f: RetrainFlags) => {
      let list = [...archs];
      if (f.from) {
        if (!fs.existsSync(f.from)) throw new NasError('ERR_NAS_IO', `${f.from}: no such results file`);
        list.push(
          ...selectArchitectures(readSearchResults(f.from), { rule: f.select, count: f.count, percentile: f.percentile }).map(
            (r) => r.arch,
          ),
        );
      }
      list = [...new Set(list)];
      if (!list.length) throw new NasError('ERR_NAS_BAD_ARG', 'give architectures or --from <search results>');
      const { summaries, aborted } = await withAbortOnSignal((signal) =>
        retrain(
          list,
          {
            out: f.out,
            dataset: {
              ...datasetFromFlags(f, f.dataset),
              trainLimit: f.trainLimit ?? (f.dataset === 'fashion-mnist' ? FASHION_MNIST_RETRAIN_LIMIT : undefined),
            },
            net: {
              filters: f.filters,
              stacks: f.stacks,
              cellsPerStack: f.cellsPerStack,
              ghostBatch: f.ghostBatch,
              threads: f.threads,
              device: f.device,
              precision: f.precision,
              plan: f.plan,
            },
            epochs: f.epochs,
            batchSize: f.batchSize,
            learningRate: { kind: 'cosine', base: f.lr },
            momentum: f.momentum,
            weightDecay: f.weightDecay,
            cropPad: f.augment ? cropPadOf(datasetFromFlags(f, f.dataset)) : 0,
            flip: f.augment === true,
            runs: f.runs,
            seed: f.seed,
            evalBatchSize: RETRAIN_DEFAULTS.evalBatchSize,
            export: f.export === true,
            jobs: f.jobs,
          },
          { signal, onEvent: renderer(f.json === true) },
        ),
      );
      if (f.json) {
        process.stdout.write(`${JSON.stringify({ summaries, aborted })}\n`);
      } else {
        process.stdout.write(
          `test accuracy after retraining from scratch (F=${f.filters}, ${f.epochs} epochs, ${f.runs} run${f.runs > 1 ? 's' : ''}):\n`,
        );
        for (const s of summaries) {
          process.stdout.write(
            `  ${(100 * s.testAccuracyMean).toFixed(2)} ± ${(100 * s.testAccuracyStd).toFixed(2)}%  ${s.params.toLocaleString('en-US').padStart(9)} params  ${s.arch}${s.exportedTo ? `  -> ${s.exportedTo}` : ''}\n`,
          );
        }
      }
      if (aborted) process.exitCode = 130;
    });
}

interface PredictFlags extends DatasetFlags {
  model: string;
  images?: string[];
  split: 'test' | 'validation';
  limit: number;
  threads?: number;
  json?: boolean;
}

/** Images per forward of `nasctl predict` (BN uses running statistics: any batch gives the same answers). */
const PREDICT_BATCH = 256;

/** The predicted class of each row of `probs` (`classes` per row): index, name and probability. */
function topClasses(
  probs: Float32Array,
  classes: number,
  names: readonly string[] | undefined,
): { cls: number; name: string; p: number }[] {
  const out = [];
  for (let j = 0; j < probs.length / classes; j++) {
    const p = probs.subarray(j * classes, (j + 1) * classes);
    let cls = 0;
    for (let k = 1; k < classes; k++) if (p[k] > p[cls]) cls = k;
    out.push({ cls, name: names?.[cls] ?? String(cls), p: p[cls] });
  }
  return out;
}

/** `nasctl predict`: classifies images with an exported stand-alone model. */
export function predictCommand(): Command {
  return addDatasetOptions(addRuntimeOptions(new Command('predict'), ['threads']), undefined, "(default: the model's)")
    .description('classify image files (--images), or the images of a dataset split, with an exported stand-alone model')
    .requiredOption('--model <dir>', 'folder with model.json and model.safetensors (from `nasctl retrain --export`)')
    .option(
      '--images <paths...>',
      "image files or folders of them (JPEG, PNG, WebP, GIF, TIFF, AVIF), resized as the model's training images were (default: none: a dataset split)",
    )
    .option('--split <name>', 'without --images: test or validation', oneOf(['test', 'validation'] as const), 'test')
    .option('--limit <n>', 'without --images: images of the split to classify', positiveInt, 10)
    .option('--json', 'one JSON line per image')
    .action(async (f: PredictFlags) => {
      const { model, info } = loadModel(f.model, { threads: f.threads });
      try {
        if (f.images) await predictFiles(f, model, info);
        else await predictSplit(f, model, info);
      } finally {
        model.dispose();
      }
    });
}

type Loaded = ReturnType<typeof loadModel>;

/** --images: every file decoded as the training images were, in batches; a file that does not decode is reported. */
async function predictFiles(f: PredictFlags, model: Loaded['model'], info: Loaded['info']): Promise<void> {
  const files = listImageFiles(f.images!);
  const { imageSize: size, inChannels: channels, classes } = info.config;
  let failed = 0;
  for (let first = 0; first < files.length; first += PREDICT_BATCH) {
    const part = files.slice(first, first + PREDICT_BATCH);
    const decoded = await Promise.all(
      part.map((file) =>
        decodeImageFile(file, size, channels).catch((err: unknown) => (err instanceof NasError ? err : ioError(err, file, 'read'))),
      ),
    );
    const ok = decoded.filter((d): d is Buffer => !(d instanceof NasError));
    const top = ok.length
      ? topClasses(
          model.predict(
            normaliseImages(Buffer.concat(ok), { count: ok.length, size, channels, mean: info.mean, std: info.std }),
            ok.length,
          ),
          classes,
          info.classNames,
        )
      : [];
    let k = 0;
    part.forEach((file, i) => {
      const d = decoded[i];
      if (d instanceof NasError) {
        failed++;
        if (f.json) process.stdout.write(`${JSON.stringify({ file, error: { code: d.code, message: d.message } })}\n`);
        else process.stderr.write(`${file}: ${d.message} (${d.code})\n`);
        return;
      }
      const t = top[k++];
      if (f.json) process.stdout.write(`${JSON.stringify({ file, predicted: t.cls, className: t.name, probability: t.p })}\n`);
      else process.stdout.write(`${t.name} (${(100 * t.p).toFixed(1)}%)  ${file}\n`);
    });
  }
  if (failed) {
    process.stderr.write(`${failed} of ${files.length} files could not be read as images\n`);
    process.exitCode = 1;
  }
}

/** A dataset split (the model's own dataset unless --dataset says otherwise), with the accuracy at the end. */
async function predictSplit(f: PredictFlags, model: Loaded['model'], info: Loaded['info']): Promise<void> {
  const name = f.dataset ?? (DATASET_NAMES.includes(info.dataset as DatasetName) ? (info.dataset as DatasetName) : 'fashion-mnist');
  const options = datasetFromFlags(f, name);
  if (name === 'folder') {
    // The folder decoded as the model's training images were: its size and channels.
    options.folder = { imageSize: info.config.imageSize, channels: info.config.inChannels as 1 | 3, ...options.folder };
  }
  const data = (await openDataset(options))!; // no signal: never stopped
  const set = data[f.split];
  const n = Math.min(f.limit, set.n);
  const classes = info.config.classes;
  let correct = 0;
  // In batches: memory stays flat in the number of images (one batch of inputs and probabilities at a time).
  for (let first = 0; first < n; first += PREDICT_BATCH) {
    const b = Math.min(PREDICT_BATCH, n - first);
    const x = normaliseImages(readImages(set, first, b), {
      count: b,
      size: set.height,
      channels: set.channels,
      mean: info.mean,
      std: info.std,
    });
    const top = topClasses(model.predict(x, b), classes, info.classNames);
    for (let j = 0; j < b; j++) {
      const i = first + j;
      const { cls, p } = top[j];
      correct += cls === set.labels[i] ? 1 : 0;
      if (f.json) process.stdout.write(`${JSON.stringify({ index: i, predicted: cls, probability: p, label: set.labels[i] })}\n`);
      else process.stdout.write(`${String(i).padStart(5)}  predicted ${cls} (${(100 * p).toFixed(1)}%)  label ${set.labels[i]}\n`);
    }
  }
  if (!f.json) process.stdout.write(`accuracy ${(correct / n).toFixed(4)} on ${n} ${f.split} images (${info.arch})\n`);
}
