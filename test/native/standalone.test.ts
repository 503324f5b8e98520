// Stand-alone models: size agrees with `nasctl arch`, training learns, export then load predicts the same.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportModel, loadModel } from '../../src/retrain/exportModel';
import { decodeSafetensors, encodeSafetensors } from '../../src/retrain/safetensors';
import { StandaloneModel } from '../../src/model/StandaloneModel';
import { modelSize } from '../../src/space/modelSize';
import { sampleArchitectures } from '../../src/space/sampleArchitecture';
import { maxAbsDiff, randomImages, tinyData, TINY } from '../helpers';

describe('stand-alone model', () => {
  it('has the parameter count and multiply-adds that `nasctl arch` prints', () => {
    const shape = { inChannels: 3, imageSize: 32, classes: 10, filters: 16, stacks: 3, cellsPerStack: 2 };
    for (const arch of sampleArchitectures(4, 11)) {
      const m = StandaloneModel.create({ ...shape, threads: 1 }, arch);
      expect({ params: m.parameterCount(), madds: m.multiplyAdds() }).toEqual(modelSize(arch, shape));
      m.dispose();
    }
  });

  it('learns, and predicts the same after export and load', async () => {
    const arch = '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool';
    const m = StandaloneModel.create(TINY, arch, { batchSize: 16, seed: 2 });
    const data = tinyData(128);
    const before = await m.evaluate(data);
    const losses: number[] = [];
    await m.train(data, { steps: 40, lr: new Float64Array(40).fill(0.05), onProgress: (p) => losses.push(p.loss) });
    const after = await m.evaluate(data);
    expect(after.loss).toBeLessThan(before.loss);
    expect(losses.slice(-5).reduce((a, b) => a + b) / 5).toBeLessThan(losses.slice(0, 5).reduce((a, b) => a + b) / 5);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-export-'));
    exportModel(dir, m, { mean: [0.5], std: [0.25] });
    const x = randomImages(6, 1, 8, 3);
    const p1 = m.predict(x, 6);
    const { model, info } = loadModel(dir);
    expect(info.arch).toBe(arch);
    expect(Array.from(model.predict(x, 6))).toEqual(Array.from(p1));
    // Probabilities sum to one per image.
    for (let i = 0; i < 6; i++) expect(p1.subarray(i * 4, i * 4 + 4).reduce((a, b) => a + b)).toBeCloseTo(1, 5);
    model.dispose();
    m.dispose();
  });

  it('round-trips safetensors bytes and rejects a broken file', () => {
    const t = [
      { name: 'a', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) },
      { name: 'b', shape: [1], data: Float32Array.of(-1) },
    ];
    const buf = encodeSafetensors(t, { k: 'v' });
    expect(Number(buf.readBigUInt64LE(0)) % 8).toBe(0);
    const back = decodeSafetensors(buf);
    expect(back.metadata).toEqual({ k: 'v' });
    expect(back.tensors.map((x) => [x.name, x.shape, Array.from(x.data)])).toEqual([
      ['a', [2, 2], [1, 2, 3, 4]],
      ['b', [1], [-1]],
    ]);
    expect(() => decodeSafetensors(buf.subarray(0, 20))).toThrow(/not a valid safetensors file/);
  });

  it('refuses a damaged model folder with ERR_NAS_BAD_MODEL naming the file and the entry', async () => {
    const arch = '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool';
    const m = StandaloneModel.create(TINY, arch, { batchSize: 16, seed: 2 });
    const good = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-model-'));
    exportModel(good, m, { mean: [0.5], std: [0.25] });
    const tensors = m.stateDict();
    m.dispose();
    const json = JSON.parse(fs.readFileSync(path.join(good, 'model.json'), 'utf8'));
    // A safetensors file from a header object, with `data` bytes after it.
    const raw = (header: unknown, data = Buffer.alloc(64)): Buffer => {
      const text = JSON.stringify(header);
      const head = Buffer.alloc(8);
      head.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
      return Buffer.concat([head, Buffer.from(text), data]);
    };
    const first = tensors[0];
    const cases: [string, { json?: string; weights?: Buffer }, string][] = [
      ['not JSON', { json: '{"format": "oneshot-nas-model/1", ' }, 'model.json: the model description is not valid JSON'],
      [
        'no mean',
        { json: JSON.stringify({ ...json, mean: undefined }) },
        'model.json: mean: expected 1 finite numbers (one per channel), got nothing',
      ],
      ['std 0', { json: JSON.stringify({ ...json, std: [0] }) }, 'model.json: std: expected 1 finite numbers > 0'],
      ['null header', { weights: raw(null) }, 'model.safetensors: not a valid safetensors file: header: expected a JSON object, got null'],
      ['no tensors', { weights: raw({ __metadata__: {} }) }, 'no tensors in it'],
      [
        'shape vs bytes',
        { weights: raw({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }) },
        'x: shape [3] has 3 values, its data 2',
      ],
      [
        'fractional offsets',
        { weights: raw({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4.5] } }) },
        'x: data_offsets [0,4.5] are not two non-negative integers',
      ],
      [
        'offsets not x4',
        { weights: raw({ x: { dtype: 'F32', shape: [0], data_offsets: [2, 2] } }) },
        'x: data_offsets [2, 2] are not multiples of 4',
      ],
      ['missing tensor', { weights: encodeSafetensors(tensors.slice(1)) }, `model.safetensors: tensor ${first.name} is missing`],
      [
        'misshapen tensor',
        { weights: encodeSafetensors([{ ...first, shape: [first.data.length] }, ...tensors.slice(1)]) },
        `tensor ${first.name} has shape [${first.data.length}]`,
      ],
      [
        'extra tensor',
        { weights: encodeSafetensors([...tensors, { name: 'extra', shape: [1], data: Float32Array.of(1) }]) },
        "tensor extra is not one of the model's",
      ],
    ];
    for (const [what, files, message] of cases) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-model-'));
      fs.writeFileSync(path.join(dir, 'model.json'), files.json ?? fs.readFileSync(path.join(good, 'model.json')));
      fs.writeFileSync(path.join(dir, 'model.safetensors'), files.weights ?? fs.readFileSync(path.join(good, 'model.safetensors')));
      let e: { code?: string; message?: string } = {};
      try {
        loadModel(dir).model.dispose();
      } catch (err) {
        e = err as { code?: string; message?: string };
      }
      expect([what, e.code], e.message).toEqual([what, 'ERR_NAS_BAD_MODEL']);
      expect(e.message, what).toContain(message);
    }
    loadModel(good).model.dispose(); // the intact folder still loads
  });

  describe('on the fused plan (one forward and backward per step, ghost BN fused, running statistics in closed form)', () => {
    const ARCHS = ['01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool', '0:sep3/1:identity/2:maxpool/3:avgpool'];
    const afterOneStep = async (plan: 'per-ghost' | 'fused', arch: string, seed: number) => {
      const m = StandaloneModel.create({ ...TINY, plan }, arch, { batchSize: 32, seed, cropPad: 1, flip: true });
      const losses: number[] = [];
      await m.train(tinyData(128), { steps: 1, lr: Float64Array.of(0.05), onProgress: (p) => losses.push(p.loss) });
      const state = new Map(m.stateDict().map((t) => [t.name, t.data]));
      const probs = m.predict(randomImages(8, 1, 8, 5), 8); // eval mode: the running statistics
      m.dispose();
      return { losses, state, probs };
    };

    it('takes the per-ghost step: weights, momentum-free update, running statistics and predictions', async () => {
      for (const arch of ARCHS) {
        for (const seed of [2, 3]) {
          const [a, b] = [await afterOneStep('per-ghost', arch, seed), await afterOneStep('fused', arch, seed)];
          expect(Math.abs(a.losses[0] - b.losses[0])).toBeLessThan(1e-5);
          let worst = 0;
          for (const [name, x] of a.state) {
            const y = b.state.get(name)!;
            const scale = Math.max(1e-6, ...Array.from(x, Math.abs));
            worst = Math.max(worst, maxAbsDiff(x, y) / scale);
          }
          // Measured: at most 1.3e-5 of a tensor's largest entry after one step (float summation order: the fused
          // statistics and the closed-form running update). A ghost batch normalised with another's statistics, or
          // running statistics of one ghost batch only, differ by O(1).
          expect(worst, `${arch} seed ${seed}`).toBeLessThan(1e-3);
          expect(maxAbsDiff(a.probs, b.probs)).toBeLessThan(1e-4);
          // The running statistics moved (the comparison above is not between two untouched buffers).
          const rm = [...a.state].find(([n]) => n.endsWith('running_mean'))![1];
          expect(Math.max(...Array.from(rm, Math.abs))).toBeGreaterThan(1e-3);
        }
      }
    });

    it('reads the loss on the host at the first and last step of a call (and every 16 steps): the steps between report the last read', async () => {
      const run = async (plan: 'per-ghost' | 'fused') => {
        const m = StandaloneModel.create({ ...TINY, plan }, ARCHS[0], { batchSize: 32, seed: 2 });
        const seen: { loss: number; accuracy: number }[] = [];
        await m.train(tinyData(128), {
          steps: 4,
          lr: new Float64Array(4).fill(0.05),
          onProgress: (p) => seen.push({ loss: p.loss, accuracy: p.accuracy }),
        });
        m.dispose();
        return seen;
      };
      const [each, fused] = [await run('per-ghost'), await run('fused')];
      expect(fused).toHaveLength(4);
      // Step 1 is read; steps 2 and 3 repeat it (nothing read); step 4 reads the window of steps 2..4: their mean.
      expect(Math.abs(fused[0].loss - each[0].loss)).toBeLessThan(1e-5);
      expect(fused[1]).toEqual(fused[0]);
      expect(fused[2]).toEqual(fused[0]);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b) / xs.length;
      expect(Math.abs(fused[3].loss - mean(each.slice(1).map((e) => e.loss)))).toBeLessThan(1e-5);
      expect(fused[3].accuracy).toBeCloseTo(mean(each.slice(1).map((e) => e.accuracy)), 6);
    });

    it('runs as many ATen ops per step for 32 ghost batches as for 2; the per-ghost step grows with them', () => {
      const ops = (plan: 'per-ghost' | 'fused', batch: number) => {
        const m = StandaloneModel.create({ ...TINY, plan }, ARCHS[0], { batchSize: batch, seed: 2 });
        const data = tinyData(2048); // no epoch starts in the counted step (its permutation is extra ops)
        m.countStepOps(data, 0.05); // the first step allocates
        const n = m.countStepOps(data, 0.05);
        m.dispose();
        return n;
      };
      // The same top-level ops; a few more nested ones where LibTorch splits a large reduction (seen: 6938 -> 6942).
      expect(ops('fused', 256).topLevel).toBe(ops('fused', 16).topLevel);
      expect(ops('fused', 256).total).toBeLessThan(1.01 * ops('fused', 16).total);
      expect(ops('per-ghost', 256).total).toBeGreaterThan(5 * ops('per-ghost', 16).total);
    });

    it("measures what a training job holds: the fused step's peak grows with the batch, the per-ghost step's with the ghost batch", () => {
      const memory = (plan: 'per-ghost' | 'fused', batch: number) => {
        const m = StandaloneModel.create({ ...TINY, plan }, ARCHS[0], { batchSize: batch, seed: 2 });
        const data = tinyData(2048);
        const r = m.stepMemory(data);
        expect(r.parameterBytes).toBe(4 * m.parameterCount());
        // The fused plan keeps the set "on the device" (the CPU here): uint8 pixels and int64 labels per example.
        expect(r.residentDataBytes).toBe(plan === 'fused' ? data.size * (TINY.inChannels! * TINY.imageSize! ** 2 + 8) : 0);
        expect(r.totalBytes).toBe(2 * r.parameterBytes + r.stepPeakBytes + r.residentDataBytes);
        m.dispose();
        return r.stepPeakBytes;
      };
      // The fused step keeps the whole batch's activations for its one backward: linear in the batch. The per-ghost
      // step frees each ghost batch's before the next: flat. Allocator-reported bytes, so the same on every machine;
      // the slack covers the batch-independent part (gradients, the optimizer's temporaries).
      const fused = [32, 64, 128].map((b) => memory('fused', b));
      expect(fused[2] / fused[1]).toBeGreaterThan(1.8);
      expect(fused[2] / fused[1]).toBeLessThan(2.05);
      expect(fused[1] / fused[0]).toBeGreaterThan(1.7);
      const perGhost = [32, 128].map((b) => memory('per-ghost', b));
      expect(perGhost[1] / perGhost[0]).toBeLessThan(1.1);
      const oneGhost = memory('fused', TINY.ghostBatch!); // the fused step of one ghost batch: the per-ghost peak
      expect(perGhost[1] / oneGhost).toBeGreaterThan(0.9);
      expect(perGhost[1] / oneGhost).toBeLessThan(1.15);
    });
  });
});
