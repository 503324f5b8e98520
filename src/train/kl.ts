/**
 * The paper's label-free analysis (section 5, Figures 6 and 7): the symmetrized KL divergence between the predictions
 * of reference architectures (nearly all paths on: masks drawn with r = 1e-8) and of candidate architectures, on a
 * few random training examples whose labels are not used. Lower KL is expected to mean higher one-shot accuracy.
 */
import { normaliseImages } from '../retrain/exportModel';
import { type DatasetSplits, readImages } from '../data/types';
import { dropProbability } from '../schedule/dropout';
import { type Architecture, OPS, formatArchitecture } from '../space/architecture';
import type { Supernet } from '../model/Supernet';
import { Rng } from '../util/rng';

/** A reference architecture: each path kept with probability 1 - r^(1/k) (all inputs/ops when r is tiny). */
export function sampleReference(rng: Rng, blocks: number, rate = 1e-8): Architecture {
  const drop = (k: number): number => dropProbability({ kind: 'constant', rate }, k, 0, 1);
  const out: Architecture = { blocks: [] };
  for (let i = 0; i < blocks; i++) {
    let inputs: number[] = [];
    let ops: (typeof OPS)[number][] = [];
    // An empty node would not be an architecture: draw again (probability r per node, negligible for r = 1e-8).
    while (!inputs.length) inputs = Array.from({ length: 2 + i }, (_, j) => j).filter(() => rng.uniform() >= drop(2 + i));
    while (!ops.length) ops = OPS.filter(() => rng.uniform() >= drop(OPS.length));
    out.blocks.push({ inputs, ops });
  }
  return out;
}

function softmaxRows(logits: Float32Array, classes: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r < logits.length / classes; r++) {
    let m = -Infinity;
    for (let c = 0; c < classes; c++) m = Math.max(m, logits[r * classes + c]);
    let z = 0;
    for (let c = 0; c < classes; c++) z += out[r * classes + c] = Math.exp(logits[r * classes + c] - m);
    for (let c = 0; c < classes; c++) out[r * classes + c] /= z;
  }
  return out;
}

/** Mean over examples of KL(p||q) + KL(q||p). */
export function symmetricKl(p: Float64Array, q: Float64Array, classes: number): number {
  const eps = 1e-12;
  let total = 0;
  const n = p.length / classes;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < classes; c++) {
      const a = p[r * classes + c] + eps;
      const b = q[r * classes + c] + eps;
      total += (a - b) * Math.log(a / b);
    }
  }
  return total / n;
}

/** Fixed probe images for KL: `count` random training examples (seeded), normalised, NCHW. */
export function klProbe(data: DatasetSplits, count: number, seed: number): { images: Float32Array; count: number } {
  const rng = new Rng(seed);
  const t = data.train;
  const per = t.height * t.width * t.channels;
  const pick = new Uint8Array(count * per);
  for (let i = 0; i < count; i++) {
    const k = rng.below(t.n);
    pick.set(readImages(t, k, 1), i * per);
  }
  return { images: normaliseImages(pick, { count, size: t.height, channels: t.channels, mean: data.mean, std: data.std }), count };
}

/** Symmetrized KL of each candidate against the references (averaged over references), on the probe images. */
export function klScores(
  net: Supernet,
  probe: { images: Float32Array; count: number },
  references: Architecture[],
  candidates: Architecture[],
  onProgress?: (done: number) => void,
): number[] {
  const classes = net.config.classes;
  let done = 0;
  const predict = (a: Architecture): Float64Array => {
    const p = softmaxRows(net.forward(probe.images, probe.count, [formatArchitecture(a)]).logits, classes);
    onProgress?.(++done);
    return p;
  };
  const refs = references.map(predict);
  return candidates.map((c) => {
    const q = predict(c);
    return refs.reduce((s, p) => s + symmetricKl(p, q, classes), 0) / refs.length;
  });
}
