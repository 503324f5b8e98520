import { Supernet, SupernetConfig } from '../src/Supernet';
import { NativeData } from '../src/Supernet';
import { syntheticSet } from '../src/data/synthetic';
import { channelStats, ImageSet } from '../src/data/types';
import { Rng } from '../src/util/rng';

/** The tiny supernet of STYLE.md: F=4, one cell per stack, 8x8 single-channel input. */
export const TINY: Partial<SupernetConfig> = {
  inChannels: 1,
  imageSize: 8,
  classes: 4,
  filters: 4,
  stacks: 3,
  cellsPerStack: 1,
  blocks: 4,
  ghostBatch: 8,
  threads: 1,
  seed: 7,
};

export function tinyNet(over: Partial<SupernetConfig> = {}, optim: Parameters<typeof Supernet.create>[1] = {}): Supernet {
  return Supernet.create({ ...TINY, ...over }, { batchSize: 16, seed: 11, ...optim });
}

export function tinySet(n = 64, seed = 3): ImageSet {
  return syntheticSet({ n, size: 8, channels: 1, classes: 4, seed });
}

export function tinyData(n = 64, seed = 3): NativeData {
  const set = tinySet(n, seed);
  const { mean, std } = channelStats(set);
  return new NativeData(set, mean, std);
}

/** Random NCHW float images. */
export function randomImages(batch: number, c: number, size: number, seed = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: batch * c * size * size }, () => rng.uniform() * 2 - 1);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
