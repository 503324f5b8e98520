import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { NasError } from '../util/errors';

/**
 * A labelled image set: uint8 pixels in NHWC order and uint8 labels, typically views into one Buffer. A set whose
 * pixels live in a file (the decoded cache of an image folder, which may be larger than memory) has `file` and an
 * empty `images`: the native side reads the rows each batch needs from the file. `readImages` reads either kind.
 */
export interface ImageSet {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: number;
  /** Pixels in a file instead of `images`: n*height*width*channels bytes from byte `offset`. */
  file?: { path: string; offset: number };
}

/** Pixels of examples [start, start + count) of a set, in memory or in a file. */
export function readImages(set: ImageSet, start: number, count: number): Uint8Array {
  const per = set.height * set.width * set.channels;
  if (!set.file) return set.images.subarray(start * per, (start + count) * per);
  const out = Buffer.alloc(count * per);
  const fd = fs.openSync(set.file.path, 'r');
  try {
    let done = 0;
    while (done < out.length) {
      const got = fs.readSync(fd, out, done, out.length - done, set.file.offset + start * per + done);
      if (got === 0) throw new NasError('ERR_NAS_BAD_DATA', `${set.file.path}: ends before image ${start + count - 1}`);
      done += got;
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/** The three splits the paper uses, plus what normalises them. */
export interface DatasetSplits {
  name: string;
  classes: number;
  /** The class names in label order, when the dataset has them (an image folder: its class folders, sorted). */
  classNames?: string[];
  train: ImageSet;
  validation: ImageSet;
  test: ImageSet;
  /** Per-channel mean and standard deviation of the training split, in [0, 1] pixel units. */
  mean: number[];
  std: number[];
}

/** A contiguous range of a set, without copying. */
export function sliceSet(set: ImageSet, start: number, end: number): ImageSet {
  const per = set.height * set.width * set.channels;
  return {
    images: set.file ? set.images : set.images.subarray(start * per, end * per),
    labels: set.labels.subarray(start, end),
    n: end - start,
    height: set.height,
    width: set.width,
    channels: set.channels,
    ...(set.file ? { file: { path: set.file.path, offset: set.file.offset + start * per } } : {}),
  };
}

/** Per-channel mean and std of a set in [0, 1] units (over at most `limit` images, for speed). */
export function channelStats(set: ImageSet, limit = 10000): { mean: number[]; std: number[] } {
  const c = set.channels;
  const n = Math.min(set.n, limit);
  const count = n * set.height * set.width;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  const total = count * c;
  const images = readImages(set, 0, n);
  for (let i = 0; i < total; i++) {
    const v = images[i] / 255;
    sum[i % c] += v;
    sq[i % c] += v * v;
  }
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / count - mean[k] * mean[k], 1e-12)));
  return { mean, std };
}

/**
 * A digest of what training reads (sizes, every label, every 64th image, the normalisation), 16 hex digits:
 * data-parallel workers compare it before training, so a worker reading another copy or version of the data set is
 * refused. Sampled images keep it to milliseconds for a set in a file.
 */
export function splitsDigest(d: DatasetSplits): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ name: d.name, classes: d.classes, mean: d.mean, std: d.std }));
  for (const set of [d.train, d.validation]) {
    h.update(JSON.stringify([set.n, set.height, set.width, set.channels]));
    h.update(set.labels);
    for (let i = 0; i < set.n; i += 64) h.update(readImages(set, i, 1));
  }
  return h.digest('hex').slice(0, 16);
}
