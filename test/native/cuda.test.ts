// CUDA: the same code on the GPU. Skipped, with the reason, where this build or machine has no CUDA.
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native/binding';
import { formatArchitecture } from '../../src/space/architecture';
import { sampleArchitectures } from '../../src/space/sampleArchitecture';
import { maxAbsDiff, randomImages, tinyData, tinyNet } from '../helpers';

const cuda = loadAddon().cudaAvailable;

describe.skipIf(!cuda)('CUDA (skipped: this LibTorch build has no CUDA or no GPU is visible)', () => {
  it('gives the CPU forward on the GPU, and the stand-alone equivalence holds there', () => {
    const cpu = tinyNet();
    const gpu = tinyNet({ device: 'cuda' });
    const x = randomImages(16, 1, 8, 4);
    for (const arch of sampleArchitectures(3, 9).map(formatArchitecture)) {
      const a = cpu.forward(x, 16, [arch]).logits;
      const b = gpu.forward(x, 16, [arch]).logits;
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-3);
      expect(maxAbsDiff(gpu.forward(x.subarray(0, 8 * 64), 8, [arch]).logits, gpu.standaloneForward(x.subarray(0, 8 * 64), 8, arch))).toBeLessThan(1e-3);
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
        expect(Math.abs(run[i].loss - ref[i].loss)).toBeLessThan(1e-3); // cuDNN vs CPU kernels, TF32 off by default
      }
    }
    cpu.dispose();
    gpu.dispose();
  });

  it('trains and scores on the GPU', async () => {
    const net = tinyNet({ device: 'cuda' });
    const data = tinyData(64);
    const losses: number[] = [];
    await net.train(data, { steps: 20, lr: new Float64Array(20).fill(0.05), dropIn: new Float32Array(80).fill(0.2), dropOp: new Float32Array(80).fill(0.2), onProgress: (p) => losses.push(p.loss) });
    expect(losses.slice(-5).reduce((a, b) => a + b)).toBeLessThan(losses.slice(0, 5).reduce((a, b) => a + b));
    const archs = sampleArchitectures(4, 2).map(formatArchitecture);
    const single = await net.evaluate(data, archs);
    const batched = await net.evaluate(data, archs, { batched: true });
    for (let i = 0; i < 4; i++) expect(batched[i].loss).toBeCloseTo(single[i].loss, 3);
    net.dispose();
  });
});
