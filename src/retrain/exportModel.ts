/**
 * Export of a trained stand-alone model: `model.json` (canonical architecture, network config, normalisation,
 * class count) and `model.safetensors` (weights and BN running statistics, float32), readable by other tools.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NasError } from '../native/errors';
import { SupernetConfig } from '../Supernet';
import { writeFileAtomic, makeDir } from '../util/files';
import { readSafetensors, writeSafetensors } from './safetensors';
import { StandaloneModel } from './StandaloneModel';

/** model.json: the architecture, the model config, the input normalisation and the test accuracy. */
export interface ExportedModelInfo {
  format: 'oneshot-nas-model/1';
  arch: string;
  config: SupernetConfig;
  mean: number[];
  std: number[];
  params: number;
  testAccuracy?: number;
}

/** Writes `dir/model.json` and `dir/model.safetensors` (weights and BN statistics, float32) of a stand-alone model. */
export function exportModel(dir: string, model: StandaloneModel, extra: { mean: number[]; std: number[]; testAccuracy?: number }): ExportedModelInfo {
  makeDir(dir);
  const info: ExportedModelInfo = { format: 'oneshot-nas-model/1', arch: model.arch, config: model.config, mean: extra.mean, std: extra.std, params: model.parameterCount(), testAccuracy: extra.testAccuracy };
  writeSafetensors(path.join(dir, 'model.safetensors'), model.stateDict(), { arch: model.arch, format: info.format });
  writeFileAtomic(path.join(dir, 'model.json'), `${JSON.stringify(info, null, 2)}\n`);
  return info;
}

/** Loads an exported model for prediction. */
export function loadModel(dir: string, o: { threads?: number; device?: string } = {}): { model: StandaloneModel; info: ExportedModelInfo } {
  const file = path.join(dir, 'model.json');
  if (!fs.existsSync(file)) throw new NasError('ERR_NAS_IO', `${file}: no such file (export a model with \`nasctl retrain --export\`)`);
  const info = JSON.parse(fs.readFileSync(file, 'utf8')) as ExportedModelInfo;
  if (info.format !== 'oneshot-nas-model/1') throw new NasError('ERR_NAS_BAD_DATA', `${file}: unknown format ${String(info.format)}`);
  const model = StandaloneModel.create({ ...info.config, ...(o.threads ? { threads: o.threads } : {}), ...(o.device ? { device: o.device } : {}) }, info.arch);
  try {
    for (const t of readSafetensors(path.join(dir, 'model.safetensors')).tensors) model.setTensor(t.name, t.data);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, info };
}

/** Normalises uint8 NHWC images into the float NCHW batch a model takes. */
export function normaliseImages(images: Uint8Array, n: number, size: number, channels: number, mean: number[], std: number[]): Float32Array {
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
