/** A seeded synthetic image set: each class is a bar at its own position and angle, with noise. Learnable in a few steps. */
import { Rng } from '../util/rng';
import type { ImageSet } from './types';

/** Size, shape, classes and seed of a synthetic image set. */
export interface SyntheticOptions {
  n: number;
  size: number;
  channels: number;
  classes: number;
  seed: number;
  /** Pixel noise amplitude in 0..255 (default 40). */
  noise?: number;
}

/** A seeded synthetic image set whose classes are learnable (tests, examples and benchmarks). */
export function syntheticSet(o: SyntheticOptions): ImageSet {
  const rng = new Rng(o.seed);
  const per = o.size * o.size * o.channels;
  const images = new Uint8Array(o.n * per);
  const labels = new Uint8Array(o.n);
  const noise = o.noise ?? 40;
  for (let i = 0; i < o.n; i++) {
    const label = rng.below(o.classes);
    labels[i] = label;
    const angle = (Math.PI * label) / o.classes;
    const cx = o.size / 2 + (rng.uniform() - 0.5) * 2;
    const cy = o.size / 2 + (rng.uniform() - 0.5) * 2;
    const dx = Math.cos(angle);
    const dy = Math.sin(angle);
    for (let y = 0; y < o.size; y++) {
      for (let x = 0; x < o.size; x++) {
        // Distance from the line through the centre at this class's angle.
        const d = Math.abs((x - cx) * dy - (y - cy) * dx);
        const base = d < 1.5 ? 200 : 30;
        for (let c = 0; c < o.channels; c++) {
          const v = base + ((c * 15 * label) % 40) + (rng.uniform() - 0.5) * 2 * noise;
          images[i * per + (y * o.size + x) * o.channels + c] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
    }
  }
  return { images, labels, n: o.n, height: o.size, width: o.size, channels: o.channels };
}
