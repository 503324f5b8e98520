// docs/model.md#removing-a-path: the masked one-shot model equals the pruned stand-alone model built from the same weights.
import { describe, expect, it } from 'vitest';
import { formatArchitecture } from '../../src/space/architecture';
import { sampleArchitectures } from '../../src/space/sampleArchitecture';
import { maxAbsDiff, randomImages, tinyData, tinyNet } from '../helpers';

describe('masked one-shot forward vs pruned stand-alone model', () => {
  const archs = sampleArchitectures(6, 42).map(formatArchitecture);
  archs.push('01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool');

  it('gives the same logits for one ghost batch', () => {
    const net = tinyNet();
    // Perturb BN shifts so that a wrongly placed mask (before BN instead of after the ReLU) would show.
    for (const name of net.parameterNames().filter((n) => n.endsWith('bn.bias'))) {
      const v = net.getParameter(name);
      net.setParameter(
        name,
        v.map((_, i) => 0.1 * Math.sin(i + name.length)),
      );
    }
    const x = randomImages(8, 1, 8, 5);
    for (const arch of archs) {
      const one = net.forward(x, 8, [arch]).logits;
      const alone = net.standaloneForward(x, 8, arch);
      expect(one.length).toBe(8 * 4);
      expect(maxAbsDiff(one, alone), arch).toBeLessThan(1e-4);
    }
    net.dispose();
  });

  it('trains the stand-alone model with BN statistics per ghost batch (docs/model.md#stand-alone-models: ghost batch 32 in retraining)', () => {
    const net = tinyNet(); // ghostBatch 8
    const arch = archs[2];
    const x = randomImages(16, 1, 8, 12);
    // train() mode: a batch of two ghost batches gives exactly what each ghost batch gives alone ...
    const both = net.standaloneForward(x, 16, arch);
    const halves = [net.standaloneForward(x.subarray(0, 8 * 64), 8, arch), net.standaloneForward(x.subarray(8 * 64), 8, arch)];
    // (Measured over 18 images/architecture draws: at most 2.9e-6, from the convolutions' kernels for 16 vs 8 images.)
    expect(maxAbsDiff(both.subarray(0, 32), halves[0])).toBeLessThan(1e-4);
    expect(maxAbsDiff(both.subarray(32), halves[1])).toBeLessThan(1e-4);
    // ... and not what BN over the whole batch of 16 gives (a ghost batch of 16): measured 0.28 to 0.56.
    const whole = tinyNet({ ghostBatch: 16 });
    for (const name of net.parameterNames()) whole.setParameter(name, net.getParameter(name));
    expect(maxAbsDiff(whole.standaloneForward(x, 16, arch), both)).toBeGreaterThan(0.05);
    [net, whole].forEach((n) => {
      n.dispose();
    });
  });

  it('applies each ghost batch its own architecture, in every cell, with its own BN statistics', () => {
    const net = tinyNet();
    const x = randomImages(16, 1, 8, 9);
    const [a, b] = [archs[0], archs[1]];
    const both = net.forward(x, 16, [a, b]).logits;
    const first = net.standaloneForward(x.subarray(0, 8 * 64), 8, a);
    const second = net.standaloneForward(x.subarray(8 * 64), 8, b);
    expect(maxAbsDiff(both.subarray(0, 32), first)).toBeLessThan(1e-4);
    expect(maxAbsDiff(both.subarray(32), second)).toBeLessThan(1e-4);
    // And the two halves really differ from what the other architecture would give.
    expect(maxAbsDiff(both.subarray(32), net.standaloneForward(x.subarray(8 * 64), 8, a))).toBeGreaterThan(1e-3);
    net.dispose();
  });

  it('computes BN statistics per ghost batch (hand computation on an identity stem)', () => {
    const net = tinyNet();
    // Stem: every filter copies the input pixel (centre tap 1), so the first cell's first BN sees the image itself.
    const stem = new Float32Array(4 * 1 * 3 * 3);
    for (let f = 0; f < 4; f++) stem[f * 9 + 4] = 1;
    net.setParameter('stem.weight', stem);
    const x = randomImages(16, 1, 8, 13);
    for (let i = 0; i < 8 * 64; i++) x[i] += 3; // ghost batch 0 has a different mean than ghost batch 1
    const { probeMean, probeVar } = net.forward(x, 16, ['0:identity/0:identity/0:identity/0:identity'], true);
    expect(probeMean).toBeDefined();
    for (let g = 0; g < 2; g++) {
      const part = Array.from(x.subarray(g * 8 * 64, (g + 1) * 8 * 64));
      const m = part.reduce((s, v) => s + v, 0) / part.length;
      const v = part.reduce((s, u) => s + (u - m) ** 2, 0) / part.length;
      for (let c = 0; c < 4; c++) {
        expect(probeMean![g * 4 + c]).toBeCloseTo(m, 4);
        expect(probeVar![g * 4 + c]).toBeCloseTo(v, 4);
      }
    }
    expect(Math.abs(probeMean![0] - probeMean![4])).toBeGreaterThan(2.5);
    net.dispose();
  });
});

describe('batched multi-architecture scoring', () => {
  it('equals scoring each architecture alone', async () => {
    const net = tinyNet();
    const data = tinyData(70); // 70 = 8 full ghost batches of 8 and a tail of 6
    const archs = sampleArchitectures(5, 77).map(formatArchitecture);
    const alone = await net.evaluate(data, archs, { batchSize: 32 });
    const together = await net.evaluate(data, archs, { batched: true });
    for (let i = 0; i < archs.length; i++) {
      expect(together[i].arch).toBe(alone[i].arch);
      expect(together[i].examples).toBe(70);
      expect(together[i].accuracy).toBe(alone[i].accuracy);
      expect(together[i].loss).toBeCloseTo(alone[i].loss, 4);
    }
    net.dispose();
  });
});
