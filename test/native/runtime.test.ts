// Native behaviour: determinism, the event loop, errors with codes and caller stacks, dispose, checkpoints.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatArchitecture } from '../../src/space/architecture';
import { sampleArchitectures } from '../../src/space/sampleArchitecture';
import { loadAddon } from '../../src/native/binding';
import { NasError } from '../../src/util/errors';
import { callNative } from '../../src/native/errors';
import { NativeData, Supernet } from '../../src/model/Supernet';
import { TINY, tinyData, tinyNet, tinySet } from '../helpers';

const BLOCKS = 4;
const sched = (steps: number, p = 0.2): { steps: number; lr: Float64Array; dropIn: Float32Array; dropOp: Float32Array } => ({
  steps,
  lr: new Float64Array(steps).fill(0.05),
  dropIn: new Float32Array(steps * BLOCKS).fill(p),
  dropOp: new Float32Array(steps * BLOCKS).fill(p),
});

async function losses(seed: number, steps = 6): Promise<number[]> {
  const net = tinyNet({}, { seed });
  const out: number[] = [];
  await net.train(tinyData(), { ...sched(steps), onProgress: (p) => out.push(p.loss) });
  net.dispose();
  return out;
}

describe('determinism', () => {
  it('gives bit-identical losses for the same seed and different ones for another', async () => {
    const a = await losses(3);
    const b = await losses(3);
    const c = await losses(4);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe('the event loop', () => {
  it('keeps ticking while training runs on its own thread', async () => {
    const net = tinyNet({ filters: 8 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    const started = Date.now();
    await net.train(tinyData(), sched(40));
    const elapsed = Date.now() - started;
    clearInterval(timer);
    // A blocked loop would deliver at most one tick; a free one about elapsed / 2.
    expect(ticks).toBeGreaterThan(Math.min(20, elapsed / 8));
    net.dispose();
  });

  it('stops between steps when the signal aborts', async () => {
    const net = tinyNet();
    const ac = new AbortController();
    const res = await net.train(tinyData(), { ...sched(1000), signal: ac.signal, onProgress: (p) => p.step === 3 && ac.abort() });
    expect(res.aborted).toBe(true);
    expect(res.steps).toBeGreaterThanOrEqual(3);
    expect(res.steps).toBeLessThan(1000);
    net.dispose();
  });
});

describe('aborting a scoring job', () => {
  it.each([
    ['per-ghost', false],
    ['fused', false],
    ['fused', true],
  ] as const)('stops between batches when the signal aborts (%s plan, batched: %s) and the model stays usable', async (plan, batched) => {
    const net = tinyNet({ plan });
    const data = tinyData(4000);
    const archs = sampleArchitectures(64, 1).map(formatArchitecture);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const t0 = Date.now();
    const res = await net.evaluate(data, archs, { signal: ac.signal, batched, batchSize: 64 });
    // Scoring all 64 takes tens of seconds here; an abort is honoured at the next batch (a hang would time out).
    expect(res.length).toBeLessThan(archs.length);
    expect(Date.now() - t0).toBeLessThan(10_000);
    res.forEach((r, i) => {
      expect(r.arch).toBe(archs[i]);
    });
    const again = await net.evaluate(data, archs.slice(0, 1), { count: 64 });
    expect(again[0].examples).toBe(64);
    net.dispose();
  });
});

describe('progress of a scoring job', () => {
  it('reports finished architectures one by one, and with batched after each group of batchSize / ghostBatch', async () => {
    const net = tinyNet({ plan: 'fused' });
    const data = tinyData(64);
    const archs = sampleArchitectures(10, 2).map(formatArchitecture);
    const seen: number[] = [];
    const batched = await net.evaluate(data, archs, { batched: true, batchSize: 32, onProgress: (k) => seen.push(k) });
    expect(seen).toEqual([4, 8, 10]); // ghost batch 8: 4 architectures per forward of 32 examples
    const single: number[] = [];
    const one = await net.evaluate(data, archs, { onProgress: (k) => single.push(k) });
    expect(single).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const [i, r] of batched.entries()) expect(r.loss).toBeCloseTo(one[i].loss, 5);
    net.dispose();
  });
});

describe('bad input to the module API (issue 11 probe, item 12)', () => {
  const codeOf = async (f: () => unknown): Promise<{ code?: string; message?: string }> => {
    try {
      await f();
    } catch (e) {
      return e as NasError;
    }
    return {};
  };

  it('names the field of a bad architecture, range or schedule with a coded error', async () => {
    const net = tinyNet();
    const data = tinyData(32);
    for (const bad of [{}, null, 7]) {
      const e = await codeOf(() => net.evaluate(data, [bad as never]));
      expect(e.code).toBe('ERR_NAS_BAD_ARCH');
      expect(e.message).toMatch(/^archs\[0\]: expected an architecture/);
    }
    // An object whose blocks are not blocks: named by field, not a TypeError from deep inside.
    const blocks = { blocks: [{}, {}, {}, {}] } as never;
    expect(await codeOf(() => net.describe(blocks))).toMatchObject({
      code: 'ERR_NAS_BAD_ARCH',
      message: expect.stringMatching(/^arch\.blocks\[0\]\.inputs: expected an array of input indices/),
    });
    expect((await codeOf(() => net.evaluate(data, [{ blocks: [{ inputs: [0], ops: ['nope'] }] } as never]))).code).toBe('ERR_NAS_BAD_ARCH');
    // A batch that does not match the images is refused before anything is built for it (2**31 used to hang).
    const images = new Float32Array(256);
    for (const batch of [2 ** 31, 100, 0, 1.5]) {
      const e = await codeOf(() => net.forward(images, batch, ['0:identity/0:identity/0:identity/0:identity']));
      expect(e.code, String(batch)).toBe('ERR_NAS_BAD_ARG');
    }
    expect((await codeOf(() => net.standaloneForward(images, 3, '0:identity/0:identity/0:identity/0:identity'))).message).toMatch(
      /^images: expected batch x 64 floats \(NCHW: 3 x 1 x 8 x 8\), got "256 floats"/,
    );
    for (const [o, field] of [
      [{ count: Number.NaN }, 'count'],
      [{ count: 0 }, 'count'],
      [{ start: 40 }, 'start'],
      [{ count: 33 }, 'count'],
      [{ batchSize: 0 }, 'batchSize'],
    ] as const) {
      const e = await codeOf(() => net.evaluate(data, ['0:sep3/1:identity/2:maxpool/3:avgpool'], o));
      expect([e.code, e.message?.split(':')[0]]).toEqual(['ERR_NAS_BAD_ARG', field]);
    }
    const sched = { steps: 2, lr: new Float64Array(2).fill(0.1), dropIn: new Float32Array(8), dropOp: new Float32Array(8) };
    for (const [o, field] of [
      [{ lr: Float64Array.of(0.1, Number.NaN) }, 'lr[1]'],
      [{ dropOp: new Float32Array(8).fill(1.5) }, 'dropOp[0]'],
      [{ dropIn: new Float32Array(3) }, 'dropIn'],
    ] as const) {
      const e = await codeOf(() => net.train(data, { ...sched, ...o }));
      expect([e.code, e.message?.split(':')[0]]).toEqual(['ERR_NAS_BAD_ARG', field]);
    }
    expect(net.step).toBe(0); // nothing ran
    net.dispose();
  });

  it('refuses a dataset normalisation with std 0 or NaN, or the wrong number of channels', async () => {
    const set = tinySet(16);
    for (const [mean, std, field] of [
      [[0], [0], 'std'],
      [[0], [Number.NaN], 'std'],
      [[Number.NaN], [1], 'mean'],
      [[0, 0], [1, 1], 'mean'],
    ] as const) {
      const e = await codeOf(() => new NativeData(set, [...mean], [...std]));
      expect([e.code, e.message?.split(':')[0]]).toEqual(['ERR_NAS_BAD_DATA', field]);
    }
  });

  it('takes pixels and labels as bytes only: a Float32Array of the same byte length is refused by its type', () => {
    const set = tinySet(16);
    const addon = loadAddon();
    const shape = { n: set.n, h: set.height, w: set.width, c: set.channels };
    const floats = new Float32Array(set.images.buffer, set.images.byteOffset, set.images.byteLength / 4);
    for (const [images, labels, field] of [
      [floats, set.labels, 'images'],
      [set.images, new Int8Array(set.labels.buffer, set.labels.byteOffset, set.labels.length), 'labels'],
      [[...set.images], set.labels, 'images'],
    ] as const) {
      let e: { code?: string; message?: string } = {};
      try {
        callNative(
          () =>
            new addon.Dataset(
              images as never,
              labels as never,
              { ...shape, n: field === 'images' && images === floats ? set.n / 4 : set.n },
              [0],
              [1],
            ),
        );
      } catch (err) {
        e = err as NasError;
      }
      expect(e.code).toBe('ERR_NAS_BAD_ARG');
      expect(e.message).toMatch(new RegExp(`^${field}: expected a Uint8Array`));
    }
    // Typed schedules of the wrong element type are refused too (As<T> would reinterpret their bytes).
    const raw = new addon.Supernet(TINY as never, {});
    expect(() => callNative(() => raw.describe(new Int32Array(8) as never))).toThrow(/arch: expected a Uint32Array, got Int32Array/);
    raw.dispose();
  });
});

describe('errors', () => {
  async function callerFunctionForStack(net: Supernet): Promise<void> {
    await net.load('/nonexistent/dir/checkpoint.pt');
  }

  it('rejects with a NasError that carries a code and the caller stack', async () => {
    const net = tinyNet();
    const err = await callerFunctionForStack(net).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NasError);
    expect((err as NasError).code).toBe('ERR_NAS_IO');
    expect((err as Error).stack).toContain('callerFunctionForStack');
    net.dispose();
  });

  it('reports a bad architecture, a bad config and a corrupt checkpoint by code', async () => {
    const net = tinyNet();
    const data = tinyData();
    await expect(net.evaluate(data, ['01:sep3/2:nope/013:sep5/24:conv7x1'])).rejects.toMatchObject({ code: 'ERR_NAS_BAD_ARCH' });
    expect(() => tinyNet({ filters: 0 })).toThrow(/filters: expected an integer/);
    expect(() => Supernet.create({ ghostBatch: 8 }, { batchSize: 12 })).toThrow(NasError);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-')), 'bad.pt');
    fs.writeFileSync(file, 'not a checkpoint');
    await expect(net.load(file)).rejects.toMatchObject({ code: 'ERR_NAS_CHECKPOINT' });
    net.dispose();
  });

  it('turns a LibTorch failure into an error, not a crash', () => {
    const addon = loadAddon();
    // 2^31 filters: LibTorch's allocator refuses (the TypeScript layer would have refused earlier).
    let err: unknown;
    try {
      callNative(
        () =>
          new addon.Supernet(
            { inChannels: 3, imageSize: 32, classes: 10, filters: 2 ** 31, stacks: 1, cellsPerStack: 1, blocks: 1, ghostBatch: 32 },
            {},
          ),
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NasError);
    expect(['ERR_NAS_TORCH', 'ERR_NAS_OUT_OF_MEMORY']).toContain((err as NasError).code);
  });

  it.skipIf(loadAddon().cudaAvailable)(
    'reports a CUDA device on a build or machine without CUDA by code (skipped where CUDA works)',
    () => {
      expect(() => tinyNet({ device: 'cuda' })).toThrow(expect.objectContaining({ code: 'ERR_NAS_CUDA_UNAVAILABLE' }));
      expect(() => tinyNet({ device: 'tpu' })).toThrow(/device: expected 'cpu', 'cuda' or 'cuda:N'/);
    },
  );

  it('refuses a second job while one runs, and any use after dispose()', async () => {
    const net = tinyNet();
    const data = tinyData();
    const first = net.train(data, sched(5));
    await expect(net.train(data, sched(1))).rejects.toMatchObject({ code: 'ERR_NAS_BUSY' });
    await first;
    net.dispose();
    expect(() => net.parameterCount()).toThrow(expect.objectContaining({ code: 'ERR_NAS_DISPOSED' }));
    await expect(net.train(data, sched(1))).rejects.toMatchObject({ code: 'ERR_NAS_DISPOSED' });
  });
});

describe('checkpoints', () => {
  it('restore weights, optimizer, data order and RNG so that training continues identically', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-'));
    const file = path.join(dir, 'ck.pt');
    const data = tinyData();
    const a = tinyNet();
    await a.train(data, sched(4));
    await a.save(file, { note: 'x' });
    const tailA: number[] = [];
    await a.train(data, { ...sched(5), onProgress: (p) => tailA.push(p.loss) });
    const b = tinyNet({ seed: 999 }); // other initial weights: load must overwrite them all
    expect(await b.load(file)).toEqual({ note: 'x' });
    expect(b.step).toBe(4);
    const tailB: number[] = [];
    await b.train(data, { ...sched(5), onProgress: (p) => tailB.push(p.loss) });
    expect(tailB).toEqual(tailA);
    expect(Array.from(b.getParameter('head.fc.weight'))).toEqual(Array.from(a.getParameter('head.fc.weight')));
    expect(await Supernet.readCheckpointMeta(file)).toEqual({ note: 'x' });
    expect(fs.readdirSync(dir)).toEqual(['ck.pt']); // no temp file left behind
    a.dispose();
    b.dispose();
  });

  it('refuses a checkpoint of another configuration and leaves the model as it was', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-')), 'ck.pt');
    const a = tinyNet({ filters: 8 });
    await a.save(file);
    const b = tinyNet();
    const w = b.getParameter('stem.weight');
    await expect(b.load(file)).rejects.toMatchObject({ code: 'ERR_NAS_CHECKPOINT' });
    expect(Array.from(b.getParameter('stem.weight'))).toEqual(Array.from(w));
    a.dispose();
    b.dispose();
  });

  it('refuses a checkpoint whose tensor bytes were damaged inside an intact zip, naming the entry', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-')), 'ck.pt');
    const a = tinyNet();
    await a.save(file);
    // Overwrite one weight of the head with NaN where its bytes are stored (entries are stored uncompressed).
    const w = a.getParameter('head.fc.weight');
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(Buffer.from(w.buffer, w.byteOffset, 16));
    expect(at).toBeGreaterThan(0);
    Buffer.from(Float32Array.of(NaN).buffer).copy(bytes, at + 4);
    fs.writeFileSync(file, bytes);
    const b = tinyNet();
    await expect(b.load(file)).rejects.toMatchObject({
      code: 'ERR_NAS_CHECKPOINT',
      message: expect.stringContaining("entry 'param/head.fc.weight' is damaged"),
    });
    a.dispose();
    b.dispose();
  });

  it('refuses a checkpoint whose entry names were damaged, naming the file (LibTorch fails outside c10::Error there)', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-')), 'ck.pt');
    const a = tinyNet();
    await a.save(file);
    const w = a.getParameter('stem.weight');
    for (const key of ['param/head.fc.weight', 'momentum/stem.weight', 'trainer/perm']) {
      const bytes = fs.readFileSync(file);
      const at = bytes.indexOf(Buffer.from(key));
      expect(at, key).toBeGreaterThan(0);
      bytes[at + key.length - 1] ^= 1;
      const damaged = `${file}.${key.replace('/', '-')}`;
      fs.writeFileSync(damaged, bytes);
      await expect(a.load(damaged)).rejects.toMatchObject({ code: 'ERR_NAS_CHECKPOINT', message: expect.stringContaining(`${damaged} `) });
      await expect(Supernet.readCheckpointMeta(damaged)).rejects.toMatchObject({ code: 'ERR_NAS_CHECKPOINT' });
    }
    expect(Array.from(a.getParameter('stem.weight'))).toEqual(Array.from(w));
    a.dispose();
  });
});

describe('bf16 mixed precision', () => {
  it('trains and scores under autocast with results close to float32', async () => {
    const data = tinyData();
    const fp32 = tinyNet();
    const bf16 = tinyNet({ precision: 'bf16' });
    const losses: number[] = [];
    await bf16.train(data, { ...sched(5), onProgress: (p) => losses.push(p.loss) });
    await fp32.train(data, sched(5));
    expect(losses.every(Number.isFinite)).toBe(true);
    const arch = '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool';
    const [a] = await fp32.evaluate(data, [arch]);
    const [b] = await bf16.evaluate(data, [arch]);
    // bf16 keeps ~3 significant digits; after 5 steps both models are close but not equal.
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(0.25);
    expect(() => tinyNet({ precision: 'fp16' as never })).toThrow(/precision: expected 'fp32' or 'bf16'/);
    fp32.dispose();
    bf16.dispose();
  });
});
