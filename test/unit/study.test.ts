import { describe, expect, it } from 'vitest';
import { CORRELATION_PRESETS, bucketSample } from '../../src/study/studies';
import { RETRAIN_DEFAULTS, retrainOptionsFrom } from '../../src/retrain/retrain';
import { PRESETS, validateTrainOptions, withOverrides } from '../../src/train/trainOptions';
import { sampleReference, symmetricKl } from '../../src/train/kl';
import { Rng } from '../../src/util/rng';
import { formatArchitecture, parseArchitecture, OPS } from '../../src/space/architecture';

describe('label-free analysis', () => {
  it('computes the symmetrized KL', () => {
    const p = Float64Array.of(0.5, 0.5, 0.9, 0.1);
    expect(symmetricKl(p, p, 2)).toBeCloseTo(0, 9);
    const q = Float64Array.of(0.9, 0.1, 0.9, 0.1);
    // Row 1: (0.5-0.9) ln(0.5/0.9) + (0.5-0.1) ln(0.5/0.1); row 2: 0. Mean over the 2 rows.
    expect(symmetricKl(p, q, 2)).toBeCloseTo(((0.5 - 0.9) * Math.log(0.5 / 0.9) + (0.5 - 0.1) * Math.log(0.5 / 0.1)) / 2, 6);
  });

  it('draws references with nearly every path on (r = 1e-8)', () => {
    const rng = new Rng(1);
    let paths = 0;
    for (let i = 0; i < 50; i++) {
      const a = sampleReference(rng, 4);
      parseArchitecture(formatArchitecture(a), { blocks: 4, maxOps: 7 });
      paths += a.blocks.reduce((s, b) => s + b.inputs.length + b.ops.length, 0);
    }
    // Per block i: 2 + i inputs kept with 1 - 1e-8^(1/(2+i)) and 7 ops with 1 - 1e-8^(1/7) = 0.93.
    const expected =
      50 * [0, 1, 2, 3].reduce((s, i) => s + (2 + i) * (1 - Math.pow(1e-8, 1 / (2 + i))) + OPS.length * (1 - Math.pow(1e-8, 1 / 7)), 0);
    expect(Math.abs(paths - expected)).toBeLessThan(0.05 * expected);
  });
});

describe('bucketed sample for the correlation study', () => {
  it('takes up to k per equal-width accuracy bucket', () => {
    const results = [0.1, 0.12, 0.5, 0.52, 0.55, 0.9].map((accuracy, index) => ({
      index,
      arch: `a${index}`,
      accuracy,
      loss: 0,
      params: 1,
      madds: 1,
      examples: 1,
    }));
    const picked = bucketSample(results, 3, 2, 0);
    expect(
      picked
        .filter((p) => p.bucket === 0)
        .map((p) => p.r.index)
        .sort(),
    ).toEqual([0, 1]);
    // Bucket 2 holds one: its second share comes from the lowest bucket with architectures left (bucket 1).
    expect(picked.filter((p) => p.bucket === 1)).toHaveLength(3);
    expect(picked.filter((p) => p.bucket === 2).map((p) => p.r.index)).toEqual([5]);
    expect(new Set(picked.map((p) => p.r.index)).size).toBe(6);
  });

  it('never picks more than the sample holds, nor one twice', () => {
    const results = [0.1, 0.9, 0.91].map((accuracy, index) => ({
      index,
      arch: `a${index}`,
      accuracy,
      loss: 0,
      params: 1,
      madds: 1,
      examples: 1,
    }));
    const picked = bucketSample(results, 4, 2, 3);
    expect(picked.map((p) => p.r.index).sort()).toEqual([0, 1, 2]);
  });
});

describe('stand-alone protocol of a one-shot run', () => {
  it("carries the run's data, shape, runtime and optimizer, with the caller's scale and length", () => {
    const train = withOverrides(PRESETS.quick, {
      out: 'runs/x',
      net: { ...PRESETS.quick.net, stacks: 2, threads: 3, device: 'cpu', precision: 'bf16' },
      cropPad: 2,
    });
    const o = retrainOptionsFrom(train, { out: 'runs/x/retrain', filters: 4, epochs: 3, runs: 2, testLimit: 100 });
    expect(o.net).toEqual({
      filters: 4,
      stacks: 2,
      cellsPerStack: train.net.cellsPerStack,
      blocks: train.net.blocks,
      ghostBatch: RETRAIN_DEFAULTS.net.ghostBatch,
      threads: 3,
      device: 'cpu',
      precision: 'bf16',
    });
    expect(o.dataset).toEqual({ ...train.dataset, testLimit: 100 });
    expect(o.learningRate).toEqual({ kind: 'cosine', base: train.learningRate.base });
    expect([o.momentum, o.weightDecay, o.cropPad, o.flip, o.seed, o.export, o.epochs, o.runs]).toEqual([
      train.momentum,
      train.weightDecay,
      2,
      train.flip,
      train.seed,
      false,
      3,
      2,
    ]);
    const study = retrainOptionsFrom(train, {
      out: 'o',
      filters: 8,
      epochs: 1,
      runs: 1,
      ghostBatch: 16,
      threads: 1,
      jobs: 2,
      seed: 9,
      trainLimit: 50,
    });
    expect([study.net.ghostBatch, study.net.threads, study.jobs, study.seed, study.dataset.trainLimit]).toEqual([16, 1, 2, 9, 50]);
  });
});

describe('correlation presets', () => {
  it('are valid runs, and the gpu preset is the one docs/gpu.md sizes', () => {
    for (const [name, p] of Object.entries(CORRELATION_PRESETS)) {
      expect(() => validateTrainOptions(p.oneShot), name).not.toThrow();
      expect(p.study.buckets * p.study.perBucket, name).toBeLessThanOrEqual(p.study.sample);
    }
    const gpu = CORRELATION_PRESETS.gpu;
    expect(gpu.oneShot.net).toMatchObject({ filters: 16, device: 'cuda' });
    expect(gpu.oneShot.dataset).toEqual({ name: 'fashion-mnist' }); // all 55,000 training images
    expect({ steps: gpu.oneShot.steps, batch: gpu.oneShot.batchSize, dropout: gpu.oneShot.dropout }).toEqual({
      steps: 1000,
      batch: 1024,
      dropout: { kind: 'constant', rate: 0.1 },
    });
    expect(gpu.study).toMatchObject({ sample: 1000, epochs: 6, runs: 2, filters: 16, jobs: 8 });
    expect(gpu.study.valLimit).toBeUndefined(); // the whole validation split
    expect(gpu.study.trainLimit).toBeUndefined();
  });
});
