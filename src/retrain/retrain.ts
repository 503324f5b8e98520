/**
 * Retraining from scratch (the paper's step 4): each architecture's stand-alone model, scaled by F, trained with the
 * same optimizer family for several seeds; test accuracy reported as mean ± std like the paper's tables.
 * Resumable: finished runs are kept in retrain.jsonl, unfinished ones continue from their last epoch checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadDataset, LoadDatasetOptions } from '../data/loadDataset';
import { invalidParameter } from '../native/errors';
import { LearningRateSchedule, learningRateTable } from '../schedule/learningRate';
import { formatArchitecture, parseArchitecture, OPS } from '../space/architecture';
import { NativeData, SupernetConfig } from '../Supernet';
import { appendJsonLine, readJsonLines, makeDir } from '../util/files';
import { exportModel } from './exportModel';
import { StandaloneModel } from './StandaloneModel';

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
}

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

export type RetrainEvent =
  | { type: 'run-start'; arch: string; archIndex: number; run: number; totalSteps: number; startStep: number }
  | { type: 'step'; arch: string; run: number; step: number; totalSteps: number; loss: number; accuracy: number }
  | { type: 'run'; result: RetrainRun };

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

export async function retrain(archTexts: string[], o: RetrainOptions, hooks: { signal?: AbortSignal; onEvent?: (e: RetrainEvent) => void } = {}): Promise<{ summaries: RetrainSummary[]; aborted: boolean }> {
  if (!archTexts.length) throw invalidParameter('arch', 'at least one architecture', archTexts);
  if (!(Number.isInteger(o.runs) && o.runs > 0)) throw invalidParameter('runs', 'a positive integer', o.runs);
  if (!(Number.isInteger(o.epochs) && o.epochs > 0)) throw invalidParameter('epochs', 'a positive integer', o.epochs);
  const blocks = o.net.blocks ?? 4;
  // The all-on model is accepted too (Table 1's "All On" row), so up to 7 ops per block.
  const archs = archTexts.map((a) => formatArchitecture(parseArchitecture(a, { blocks, maxOps: OPS.length })));
  const data = loadDataset(o.dataset);
  const train = new NativeData(data.train, data.mean, data.std);
  const val = new NativeData(data.validation, data.mean, data.std);
  const test = new NativeData(data.test, data.mean, data.std);
  makeDir(path.join(o.out, 'checkpoints'));
  const log = path.join(o.out, 'retrain.jsonl');
  const done = readJsonLines<RetrainRun>(log);
  const emit = hooks.onEvent ?? ((): void => undefined);
  const stepsPerEpoch = Math.floor(data.train.n / o.batchSize);
  const totalSteps = o.epochs * stepsPerEpoch;
  const lr = learningRateTable(o.learningRate, 0, totalSteps, totalSteps);
  let aborted = false;
  const summaries: RetrainSummary[] = [];
  for (const [k, arch] of archs.entries()) {
    let exportedTo: string | undefined;
    for (let run = 0; run < o.runs && !aborted; run++) {
      if (done.some((d) => d.arch === arch && d.run === run)) continue;
      const seed = o.seed + run;
      const model = StandaloneModel.create({ ...o.net, inChannels: data.train.channels, imageSize: data.train.height, classes: data.classes, seed }, arch, {
        batchSize: o.batchSize, momentum: o.momentum, weightDecay: o.weightDecay, nesterov: true, cropPad: o.cropPad, flip: o.flip, seed,
      });
      try {
        const ckpt = path.join(o.out, 'checkpoints', `${k}-${run}.pt`);
        if (fs.existsSync(ckpt)) await model.load(ckpt);
        emit({ type: 'run-start', arch, archIndex: k, run, totalSteps, startStep: model.step });
        const started = Date.now();
        while (model.step < totalSteps) {
          const s0 = model.step;
          const count = Math.min(totalSteps, (Math.floor(s0 / stepsPerEpoch) + 1) * stepsPerEpoch) - s0;
          const res = await model.train(train, {
            steps: count, lr: lr.subarray(s0, s0 + count), signal: hooks.signal,
            onProgress: (p) => emit({ type: 'step', arch, run, step: p.step, totalSteps, loss: p.loss, accuracy: p.accuracy }),
          });
          await model.save(ckpt, { arch, run, seed });
          if (res.aborted) {
            aborted = true;
            break;
          }
        }
        if (aborted) break;
        const v = await model.evaluate(val, { batchSize: o.evalBatchSize });
        const t = await model.evaluate(test, { batchSize: o.evalBatchSize });
        const result: RetrainRun = {
          arch, run, seed, params: model.parameterCount(), madds: model.multiplyAdds(), steps: model.step,
          validationAccuracy: v.accuracy, testAccuracy: t.accuracy, testLoss: t.loss, seconds: (Date.now() - started) / 1000,
        };
        appendJsonLine(log, result);
        done.push(result);
        emit({ type: 'run', result });
        if (o.export && run === 0) {
          exportedTo = path.join(o.out, 'models', String(k));
          exportModel(exportedTo, model, { mean: data.mean, std: data.std, testAccuracy: t.accuracy });
        }
        fs.rmSync(ckpt, { force: true });
      } finally {
        model.dispose();
      }
    }
    const runs = done.filter((d) => d.arch === arch).sort((a, b) => a.run - b.run);
    if (runs.length) {
      const t = meanStd(runs.map((r) => r.testAccuracy));
      const exported = path.join(o.out, 'models', String(k));
      summaries.push({
        arch, params: runs[0].params, madds: runs[0].madds, runs, testAccuracyMean: t.mean, testAccuracyStd: t.std,
        validationAccuracyMean: meanStd(runs.map((r) => r.validationAccuracy)).mean,
        exportedTo: exportedTo ?? (fs.existsSync(path.join(exported, 'model.json')) ? exported : undefined),
      });
    }
    if (aborted) break;
  }
  return { summaries, aborted };
}
