/**
 * Export of a trained stand-alone model: `model.json` (canonical architecture, network config, normalisation,
 * class count) and `model.safetensors` (weights and BN running statistics, float32), readable by other tools.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NasError, invalidParameter } from '../util/errors';
import { DATASETS, type DatasetName } from '../data/loadDataset';
import type { SupernetConfig } from '../model/Supernet';
import { readJsonFile, writeFileAtomic, makeDir } from '../util/files';
import { readSafetensors, writeSafetensors } from './safetensors';
import { StandaloneModel } from '../model/StandaloneModel';

/** model.json: the architecture, the model config, the input normalisation and the test accuracy. */
export interface ExportedModelInfo {
  format: 'oneshot-nas-model/1';
  arch: string;
  config: SupernetConfig;
  mean: number[];
  std: number[];
  params: number;
  testAccuracy?: number;
  /** The dataset it was trained on and its class names in label order (models exported before 0.1.0's ONNX export lack them). */
  dataset?: string;
  classNames?: string[];
}

/** Writes `dir/model.json` and `dir/model.safetensors` (weights and BN statistics, float32) of a stand-alone model. */
export function exportModel(
  dir: string,
  model: StandaloneModel,
  extra: { mean: number[]; std: number[]; testAccuracy?: number; dataset?: DatasetName; classNames?: readonly string[] },
): ExportedModelInfo {
  makeDir(dir);
  const info: ExportedModelInfo = {
    format: 'oneshot-nas-model/1',
    arch: model.arch,
    config: model.config,
    mean: extra.mean,
    std: extra.std,
    params: model.parameterCount(),
    testAccuracy: extra.testAccuracy,
    dataset: extra.dataset,
    classNames: extra.classNames?.slice() ?? (extra.dataset ? DATASETS[extra.dataset].classNames?.slice() : undefined),
  };
  writeSafetensors(path.join(dir, 'model.safetensors'), model.stateDict(), { arch: model.arch, format: info.format });
  writeFileAtomic(path.join(dir, 'model.json'), `${JSON.stringify(info, null, 2)}\n`);
  return info;
}

/** model.json, checked: every field a loader uses, with ERR_NAS_BAD_MODEL naming the file and the field. */
export function readModelInfo(file: string): ExportedModelInfo {
  if (!fs.existsSync(file))
    throw new NasError('ERR_NAS_IO', `${file}: no such file (export a model with \`nasctl retrain --export\`)`, {
      path: file,
      code: 'ENOENT',
    });
  const info = readJsonFile(file, 'ERR_NAS_BAD_MODEL', 'model description') as Partial<ExportedModelInfo> | null;
  const bad = (field: string, expected: string, got: unknown): NasError =>
    new NasError('ERR_NAS_BAD_MODEL', `${file}: ${field}: expected ${expected}, got ${JSON.stringify(got) ?? 'nothing'}`, {
      path: file,
      field,
    });
  if (info === null || typeof info !== 'object' || Array.isArray(info)) throw bad('(top level)', 'a JSON object', info);
  if (info.format !== 'oneshot-nas-model/1') throw bad('format', '"oneshot-nas-model/1"', info.format);
  if (typeof info.arch !== 'string') throw bad('arch', 'an architecture string', info.arch);
  const c = info.config as Partial<SupernetConfig> | undefined;
  if (c === null || typeof c !== 'object') throw bad('config', 'an object', c);
  for (const k of ['inChannels', 'imageSize', 'classes', 'filters', 'stacks', 'cellsPerStack', 'blocks'] as const) {
    if (!Number.isInteger(c[k]) || (c[k] as number) < 1) throw bad(`config.${k}`, 'a positive integer', c[k]);
  }
  for (const [k, positive] of [
    ['mean', false],
    ['std', true],
  ] as const) {
    const v = info[k];
    if (
      !Array.isArray(v) ||
      v.length !== c.inChannels ||
      !v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0))
    ) {
      throw bad(k, `${c.inChannels} finite numbers${positive ? ' > 0' : ''} (one per channel)`, v);
    }
  }
  if (
    info.classNames !== undefined &&
    !(Array.isArray(info.classNames) && info.classNames.length === c.classes && info.classNames.every((x) => typeof x === 'string'))
  )
    throw bad('classNames', `${c.classes} strings (one per class)`, info.classNames);
  return info as ExportedModelInfo;
}

/**
 * Loads an exported model for prediction. The weights file must hold exactly the model's tensors with their shapes:
 * a missing, extra or misshapen tensor is ERR_NAS_BAD_MODEL naming the file and the tensor (a missing one would
 * otherwise stay at its random initial value).
 */
export function loadModel(dir: string, o: { threads?: number; device?: string } = {}): { model: StandaloneModel; info: ExportedModelInfo } {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
    throw new NasError(
      'ERR_NAS_BAD_ARG',
      `model: expected the folder that holds model.json and model.safetensors, got the file ${dir}${/model\.(json|safetensors)$/.test(dir) ? ` (give ${path.dirname(dir)})` : ''}`,
      { field: 'model', path: dir },
    );
  }
  const info = readModelInfo(path.join(dir, 'model.json'));
  const weights = path.join(dir, 'model.safetensors');
  const { tensors } = readSafetensors(weights);
  const model = StandaloneModel.create(
    { ...info.config, ...(o.threads ? { threads: o.threads } : {}), ...(o.device ? { device: o.device } : {}) },
    info.arch,
  );
  try {
    const bad = (why: string): NasError => new NasError('ERR_NAS_BAD_MODEL', `${weights}: ${why} (for ${info.arch})`, { path: weights });
    const given = new Map(tensors.map((t) => [t.name, t]));
    for (const want of model.stateDict()) {
      const t = given.get(want.name);
      if (!t) throw bad(`tensor ${want.name} is missing`);
      if (t.shape.join('x') !== want.shape.join('x'))
        throw bad(`tensor ${want.name} has shape [${t.shape.join(', ')}], the model's is [${want.shape.join(', ')}]`);
      given.delete(want.name);
      model.setTensor(t.name, t.data);
    }
    if (given.size) throw bad(`tensor ${[...given.keys()][0]} is not one of the model's`);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, info };
}

/**
 * Normalises `count` uint8 NHWC images (`size` x `size`, `channels` each) into the float NCHW batch a model takes:
 * (pixel / 255 - mean[c]) / std[c], with the mean and std of the model's training data (model.json).
 */
export function normaliseImages(
  images: Uint8Array,
  o: { count: number; size: number; channels: number; mean: number[]; std: number[] },
): Float32Array {
  const { count: n, size, channels, mean, std } = o;
  for (const [k, v] of [
    ['count', n],
    ['size', size],
    ['channels', channels],
  ] as const)
    if (!(Number.isInteger(v) && v > 0)) throw invalidParameter(k, 'a positive integer', v);
  if (!(mean?.length >= channels && std?.length >= channels))
    throw invalidParameter('mean, std', `a value per channel (${channels})`, { mean, std });
  if (images.length < n * size * size * channels)
    throw invalidParameter(
      'images',
      `${n} x ${size} x ${size} x ${channels} = ${n * size * size * channels} bytes`,
      `${images.length} bytes`,
    );
  const out = new Float32Array(n * channels * size * size);
  const hw = size * size;
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < hw; p++) {
      for (let c = 0; c < channels; c++) {
        out[i * channels * hw + c * hw + p] = (images[(i * hw + p) * channels + c] / 255 - mean[c]) / std[c];
      }
    }
  }
  return out;
}
