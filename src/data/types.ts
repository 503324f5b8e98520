/** A labelled image set: uint8 pixels in NHWC order and uint8 labels, typically views into one Buffer. */
export interface ImageSet {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: number;
}

/** The three splits the paper uses, plus what normalises them. */
export interface DatasetSplits {
  name: string;
  classes: number;
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
    images: set.images.subarray(start * per, end * per),
    labels: set.labels.subarray(start, end),
    n: end - start,
    height: set.height,
    width: set.width,
    channels: set.channels,
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
  for (let i = 0; i < total; i++) {
    const v = set.images[i] / 255;
    sum[i % c] += v;
    sq[i % c] += v * v;
  }
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / count - mean[k] * mean[k], 1e-12)));
  return { mean, std };
}
