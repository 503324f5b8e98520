// CUDA: the same code on the GPU. Skipped, with the reason, where this build or machine has no CUDA.
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native/binding';
import { formatArchitecture } from '../../src/space/architecture';
import { sampleArchitectures } from '../../src/space/sampleArchitecture';
import { StandaloneModel } from '../../src/model/StandaloneModel';
import { TINY, maxAbsDiff, randomImages, tinyData, tinyNet } from '../helpers';

const cuda = loadAddon().cudaAvailable;

describe.skipIf(!cuda)(cuda ? 'CUDA' : 'CUDA (skipped: this LibTorch build has no CUDA or no GPU is visible)', () => {
  it('gives the CPU forward on the GPU, and the stand-alone equivalence holds there', () => {
    const cpu = tinyNet();
    const gpu = tinyNet({ device: 'cuda' });
    const x = randomImages(16, 1, 8, 4);
    for (const arch of sampleArchitectures(3, 9).map(formatArchitecture)) {
      const a = cpu.forward(x, 16, [arch]).logits;
      const b = gpu.forward(x, 16, [arch]).logits;
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-3);
      expect(
        maxAbsDiff(gpu.forward(x.subarray(0, 8 * 64), 8, [arch]).logits, gpu.standaloneForward(x.subarray(0, 8 * 64), 8, arch)),
      ).toBeLessThan(1e-3);
    }
    cpu.dispose();
    gpu.dispose();
  });

  it('scores on the GPU (fused plan, the default there) what the CPU per-ghost plan scores, 32 architectures batched', async () => {
    const cpu = tinyNet({ plan: 'per-ghost' });
    const gpu = tinyNet({ device: 'cuda' });
    const data = tinyData(100);
    const archs = sampleArchitectures(32, 3).map(formatArchitecture);
    const ref = await cpu.evaluate(data, archs);
    for (const run of [await gpu.evaluate(data, archs), await gpu.evaluate(data, archs, { batched: true })]) {
      for (let i = 0; i < archs.length; i++) {
        expect(run[i].examples).toBe(100);
        expect(Math.abs(run[i].loss - ref[i].loss)).toBeLessThan(1e-3); // cuDNN vs CPU kernels; the addon turns TF32 off
      }
    }
    cpu.dispose();
    gpu.dispose();
  });

  it('trains and scores on the GPU', async () => {
    const net = tinyNet({ device: 'cuda' });
    const data = tinyData(64);
    const losses: number[] = [];
    await net.train(data, {
      steps: 20,
      lr: new Float64Array(20).fill(0.05),
      dropIn: new Float32Array(80).fill(0.2),
      dropOp: new Float32Array(80).fill(0.2),
      onProgress: (p) => losses.push(p.loss),
    });
    expect(losses.slice(-5).reduce((a, b) => a + b)).toBeLessThan(losses.slice(0, 5).reduce((a, b) => a + b));
    const archs = sampleArchitectures(4, 2).map(formatArchitecture);
    const single = await net.evaluate(data, archs);
    const batched = await net.evaluate(data, archs, { batched: true });
    for (let i = 0; i < 4; i++) expect(batched[i].loss).toBeCloseTo(single[i].loss, 3);
    net.dispose();
  });

  it('trains stand-alone models at once, each on its own stream, as one after the other (retrain --jobs N)', async () => {
    const data = tinyData(256);
    const archs = sampleArchitectures(3, 5).map(formatArchitecture);
    const lr = new Float64Array(6).fill(0.05);
    const make = (): StandaloneModel[] =>
      archs.map((a) => StandaloneModel.create({ ...TINY, device: 'cuda' }, a, { batchSize: 32, seed: 4 }));
    const alone = make();
    for (const m of alone) await m.train(data, { steps: 6, lr });
    const together = make();
    await Promise.all(together.map((m) => m.train(data, { steps: 6, lr })));
    const x = randomImages(16, 1, 8, 6);
    for (let k = 0; k < archs.length; k++) expect(maxAbsDiff(alone[k].predict(x, 16), together[k].predict(x, 16))).toBeLessThan(1e-4);
    for (const m of [...alone, ...together]) m.dispose();
  });

  it('holds on the GPU about what the CPU measurement of a training job says (StandaloneModel.stepMemory)', () => {
    const data = tinyData(2048);
    const peak = (device: string): number => {
      const m = StandaloneModel.create({ ...TINY, device, plan: 'fused' }, sampleArchitectures(1, 7).map(formatArchitecture)[0], {
        batchSize: 128,
        seed: 2,
      });
      const r = m.stepMemory(data).stepPeakBytes;
      m.dispose();
      return r;
    };
    const cpu = peak('cpu');
    const gpu = peak('cuda');
    console.log(`stand-alone step peak, fused, batch 128: CPU ${cpu} B, GPU ${gpu} B`);
    expect(gpu / cpu).toBeGreaterThan(0.5); // cuDNN saves other intermediates than the CPU kernels; same order
    expect(gpu / cpu).toBeLessThan(2);
  });
});
