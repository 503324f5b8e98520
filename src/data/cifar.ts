/** Reader of CIFAR-10's binary format: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B). */
import * as path from 'node:path';
import { NasError } from '../util/errors';
import { readInputFile } from '../util/files';
import type { ImageSet } from './types';

const RECORD = 1 + 3 * 32 * 32;

/** Parses the records of one or more batch files into one NHWC set (pixels are transposed from CHW). */
export function parseCifar(buffers: { file: string; bytes: Uint8Array }[]): ImageSet {
  let n = 0;
  for (const { file, bytes } of buffers) {
    if (bytes.length === 0 || bytes.length % RECORD !== 0) {
      throw new NasError('ERR_NAS_BAD_DATA', `${file}: ${bytes.length} bytes is not a whole number of ${RECORD}-byte CIFAR-10 records`, {
        file,
      });
    }
    n += bytes.length / RECORD;
  }
  const images = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  let k = 0;
  for (const { file, bytes } of buffers) {
    for (let r = 0; r < bytes.length / RECORD; r++, k++) {
      const off = r * RECORD;
      const label = bytes[off];
      if (label > 9) throw new NasError('ERR_NAS_BAD_DATA', `${file}: record ${r} has label ${label}, expected 0..9`, { file, record: r });
      labels[k] = label;
      const dst = k * 3072;
      for (let p = 0; p < 1024; p++) {
        images[dst + 3 * p] = bytes[off + 1 + p];
        images[dst + 3 * p + 1] = bytes[off + 1 + 1024 + p];
        images[dst + 3 * p + 2] = bytes[off + 1 + 2048 + p];
      }
    }
  }
  return { images, labels, n, height: 32, width: 32, channels: 3 };
}

/** Reads `data_batch_1.bin` .. `data_batch_5.bin` (train) or `test_batch.bin` from `dir` (cifar-10-batches-bin). */
export function readCifar(dir: string, which: 'train' | 'test'): ImageSet {
  const names = which === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
  return parseCifar(
    names.map((name) => {
      const file = path.join(dir, name);
      const missing = (): NasError =>
        new NasError('ERR_NAS_DATASET_MISSING', `${file}: no such file. Point --data-dir at the extracted cifar-10-batches-bin folder.`, {
          file,
        });
      return { file, bytes: readInputFile(file, 'read the data set file', missing) };
    }),
  );
}
