// ONNX export checked against a real runtime (docs/deploy.md): for 10 architectures that together use every
// operation and every input choice, onnxruntime-node's logits on 256 Fashion-MNIST test images equal the native
// model's (`nasctl predict`'s model.predict) within a measured bound, with the same top-1 on every image.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_DIR, loadDataset } from '../../src/data/loadDataset';
import type { DatasetSplits } from '../../src/data/types';
import { NativeData } from '../../src/model/Supernet';
import { syntheticSet } from '../../src/data/synthetic';
import { channelStats } from '../../src/data/types';
import { StandaloneModel } from '../../src/model/StandaloneModel';
import { exportModel, loadModel, normaliseImages } from '../../src/retrain/exportModel';
import { exportOnnx, ONNX_OPSET } from '../../src/export/onnx';
import { type Architecture, OPS, formatArchitecture, parseCandidate, ALL_ON } from '../../src/space/architecture';
import { sampleArchitectureStream } from '../../src/space/sampleArchitecture';
import { CHROMIUM, chromiumArgs, requiredUnderCi, runProcess, NASCTL } from '../helpers';
import { spawn } from 'node:child_process';
import type { NasError } from '../../src/util/errors';

const EXAMPLE = path.resolve(__dirname, '../../examples/browser');

const HAVE_DATA = requiredUnderCi(fs.existsSync(path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')), 'Fashion-MNIST');
const IMAGES = 256;
const STEPS = 12; // enough SGD steps (batch 64) to move every weight and the BN running statistics off their initial values

/**
 * The bound on |logit(onnxruntime) - logit(LibTorch)|, relative to the largest |logit| of the image (at least 1):
 * both run float32 kernels that sum in different orders (MLAS vs. LibTorch's oneDNN/ATen). Measured with this test:
 * largest relative difference 4.8e-6 over the 10 architectures x 256 images (2-core machine, both at 1 thread); the
 * bound is 20x that.
 */
const RELATIVE_BOUND = 1e-4;

/** The 10 architectures: the one-shot model with every path on, and 9 from the search distribution (seed 5). */
function architectures(): Architecture[] {
  return [parseCandidate(ALL_ON), ...sampleArchitectureStream(9, 5)];
}

/** Every operation and every (block, input) choice that at least one architecture uses, as strings. */
function coverage(archs: Architecture[]): Set<string> {
  const used = new Set<string>();
  for (const a of archs.slice(1)) {
    for (const [i, b] of a.blocks.entries()) {
      for (const o of b.ops) used.add(o);
      for (const j of b.inputs) used.add(`block ${i} input ${j}`);
    }
  }
  return used;
}

describe.runIf(HAVE_DATA)('ONNX export', () => {
  let data: DatasetSplits;
  let train: NativeData;
  let dir: string;
  const archs = architectures();
  const text = (k: number): string => (k === 0 ? ALL_ON : formatArchitecture(archs[k]));
  // Trains each architecture for a few steps and writes it as `retrain --export` does (m<k>/) and as ONNX (m<k>.onnx).
  beforeAll(async () => {
    data = loadDataset({ name: 'fashion-mnist', trainLimit: 2048, testLimit: IMAGES });
    train = new NativeData(data.train, data.mean, data.std);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-onnx-'));
    for (const k of archs.keys()) {
      const model = StandaloneModel.create(
        { inChannels: 1, imageSize: 28, classes: 10, filters: 8, stacks: 3, cellsPerStack: 2, blocks: 4, threads: 1, seed: k },
        text(k),
        { batchSize: 64, seed: k },
      );
      await model.train(train, { steps: STEPS, lr: new Float64Array(STEPS).fill(0.05) });
      exportModel(path.join(dir, `m${k}`), model, { mean: data.mean, std: data.std, dataset: 'fashion-mnist' });
      model.dispose();
      const result = await exportOnnx(path.join(dir, `m${k}`), path.join(dir, `m${k}.onnx`));
      expect(result?.opset).toBe(ONNX_OPSET);
    }
  }, 600_000);

  it('loads the CPU binary of onnxruntime-node that its npm package ships', () => {
    expect(ort.listSupportedBackends().map((b) => b.name)).toContain('cpu');
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const lib = maps.split('\n').find((l) => l.includes('libonnxruntime.so'));
    expect(lib).toContain(path.join('onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64'));
  });

  it('the sampled architectures together use every operation and every input choice, beyond the all-on model', () => {
    const used = coverage(archs);
    for (const o of OPS) expect(used, o).toContain(o);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 2 + i; j++) expect(used).toContain(`block ${i} input ${j}`);
  });

  it('gives the same logits and top-1 in onnxruntime-node as the native model, for 10 architectures', async () => {
    const pixels = Float32Array.from(data.test.images); // uint8 NHWC = NCHW for one channel: the raw pixel values
    const normalised = normaliseImages(data.test.images, { count: IMAGES, size: 28, channels: 1, mean: data.mean, std: data.std });
    let worst = 0;
    for (const k of archs.keys()) {
      const modelDir = path.join(dir, `m${k}`);
      const file = path.join(dir, `m${k}.onnx`);
      const { model: loaded } = loadModel(modelDir, { threads: 1 });
      const want = loaded.predict(normalised, IMAGES, { logits: true });
      loaded.dispose();
      const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
      const out = await session.run({ pixels: new ort.Tensor('float32', pixels, [IMAGES, 1, 28, 28]) });
      const got = out.logits.data as Float32Array;
      const probs = out.probabilities.data as Float32Array;
      await session.release();
      expect(got.length).toBe(IMAGES * 10);
      worst = Math.max(worst, expectSameLogits(want, got, text(k)));
      for (let i = 0; i < IMAGES; i++) expect(probs.subarray(i * 10, i * 10 + 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    console.log(`largest relative logit difference over 10 architectures x ${IMAGES} images: ${worst.toExponential(2)}`);
  }, 600_000);

  it('exports a 3-channel 32x32 model (the shape of CIFAR-10): channels-first input, per-channel normalisation', async () => {
    const set = syntheticSet({ n: 320, size: 32, channels: 3, classes: 10, seed: 4 });
    const { mean, std } = channelStats(set);
    const model = StandaloneModel.create(
      { inChannels: 3, imageSize: 32, classes: 10, filters: 8, stacks: 3, cellsPerStack: 2, blocks: 4, threads: 1, seed: 1 },
      text(2),
      { batchSize: 64, seed: 1 },
    );
    await model.train(new NativeData(set, mean, std), { steps: STEPS, lr: new Float64Array(STEPS).fill(0.05) });
    exportModel(path.join(dir, 'rgb'), model, { mean, std, dataset: 'cifar10' });
    model.dispose();
    await exportOnnx(path.join(dir, 'rgb'), path.join(dir, 'rgb.onnx'));
    const n = 64;
    const { model: loaded } = loadModel(path.join(dir, 'rgb'), { threads: 1 });
    const want = loaded.predict(normaliseImages(set.images, { count: n, size: 32, channels: 3, mean, std }), n, { logits: true });
    loaded.dispose();
    // The images are NHWC bytes; the model takes NCHW raw values.
    const nchw = new Float32Array(n * 3 * 1024);
    for (let i = 0; i < n; i++)
      for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) nchw[i * 3072 + c * 1024 + p] = set.images[(i * 1024 + p) * 3 + c];
    const session = await ort.InferenceSession.create(path.join(dir, 'rgb.onnx'), { intraOpNumThreads: 1 });
    const got = (await session.run({ pixels: new ort.Tensor('float32', nchw, [n, 3, 32, 32]) })).logits.data as Float32Array;
    await session.release();
    expectSameLogits(want, got, 'the 3-channel model');
  }, 120_000);

  it('writes opset 17, a dynamic batch, and the architecture and class names in the metadata', () => {
    const bytes = fs.readFileSync(path.join(dir, 'm1.onnx'));
    const m = onnx.ModelProto.decode(bytes);
    expect(Number(m.opsetImport[0].version)).toBe(ONNX_OPSET);
    const dims = m.graph!.input![0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(dims).toEqual(['batch', 1, 28, 28]);
    const meta = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
    expect(meta.arch).toBe(text(1));
    expect(JSON.parse(meta.classes)).toEqual([
      'T-shirt/top',
      'Trouser',
      'Pullover',
      'Dress',
      'Coat',
      'Sandal',
      'Shirt',
      'Sneaker',
      'Bag',
      'Ankle boot',
    ]);
    expect(JSON.parse(meta.mean)).toEqual(data.mean);
    const ops = new Set(m.graph!.node!.map((n) => n.opType));
    // all-on uses every operation's node types
    const all = new Set(onnx.ModelProto.decode(fs.readFileSync(path.join(dir, 'm0.onnx'))).graph!.node!.map((n) => n.opType));
    for (const op of [
      'Conv',
      'BatchNormalization',
      'Relu',
      'Concat',
      'Sum',
      'MaxPool',
      'AveragePool',
      'GlobalAveragePool',
      'Gemm',
      'Softmax',
    ])
      expect(all, op).toContain(op);
    expect(ops.has('Conv')).toBe(true);
  });

  it('runs in headless Chromium with onnxruntime-web (examples/browser): the same logits and top-1 as onnxruntime-node', async () => {
    requiredUnderCi(CHROMIUM !== undefined, 'Chromium (/usr/bin/chromium)');
    if (!CHROMIUM) return;
    const file = path.join(dir, 'm1.onnx');
    const images = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'images.json'), 'utf8')) as {
      shape: number[];
      labels: number[];
      pixels: string;
    };
    const pixels = Float32Array.from(Buffer.from(images.pixels, 'base64'));
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
    const want = (await session.run({ pixels: new ort.Tensor('float32', pixels, images.shape) })).logits.data as Float32Array;
    await session.release();

    const { serve } = require(path.join(EXAMPLE, 'serve.js')) as {
      serve: (o: {
        model: string;
        port: number;
        onResult: (r: PageResult) => void;
      }) => Promise<{ server: import('node:http').Server; url: string }>;
    };
    let got!: (r: PageResult) => void;
    const posted = new Promise<PageResult>((resolve) => {
      got = resolve;
    });
    const { server, url } = await serve({ model: file, port: 0, onResult: (r: PageResult) => got(r) });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const browser = spawn(CHROMIUM, chromiumArgs(`${url}?report`, []), { stdio: 'ignore' });
    try {
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the page posted no result in 90 s')), 90_000));
      const r = await Promise.race([posted, timeout]);
      expect(r.error).toBeUndefined();
      const n = images.shape[0];
      expect(r.logits).toHaveLength(n * 10);
      expectSameLogits(want, r.logits!, 'the page', r.predicted);
    } finally {
      browser.kill('SIGKILL');
      server.close();
    }
  }, 180_000);

  it('refuses a damaged or foreign model folder with the errors predict gives, and a foreign output file', async () => {
    const bad = path.join(dir, 'bad');
    fs.cpSync(path.join(dir, 'm1'), bad, { recursive: true });
    const cases: [string, () => void][] = [
      [
        'another format version',
        () =>
          fs.writeFileSync(
            path.join(bad, 'model.json'),
            fs.readFileSync(path.join(dir, 'm1', 'model.json'), 'utf8').replace('oneshot-nas-model/1', 'oneshot-nas-model/9'),
          ),
      ],
      [
        'truncated weights',
        () => {
          fs.cpSync(path.join(dir, 'm1', 'model.json'), path.join(bad, 'model.json'));
          fs.writeFileSync(
            path.join(bad, 'model.safetensors'),
            fs.readFileSync(path.join(dir, 'm1', 'model.safetensors')).subarray(0, 1000),
          );
        },
      ],
      ['weights of another architecture', () => fs.cpSync(path.join(dir, 'm2', 'model.safetensors'), path.join(bad, 'model.safetensors'))],
    ];
    for (const [what, damage] of cases) {
      damage();
      const predictError = errorOf(() => loadModel(bad));
      expect(predictError.code, what).toBe('ERR_NAS_BAD_MODEL');
      const exportError = await rejectionOf(exportOnnx(bad, path.join(dir, 'bad.onnx')));
      expect(exportError.message, what).toBe(predictError.message);
      expect(fs.existsSync(path.join(dir, 'bad.onnx')), what).toBe(false);
    }
    expect((await rejectionOf(exportOnnx(path.join(dir, 'none'), path.join(dir, 'bad.onnx')))).code).toBe('ERR_NAS_IO');
    // --model given the model.json file instead of its folder: named, with the folder to give instead
    const file = path.join(dir, 'm1', 'model.json');
    const asFile = await rejectionOf(exportOnnx(file, path.join(dir, 'bad.onnx')));
    expect(asFile.code).toBe('ERR_NAS_BAD_ARG');
    expect(asFile.message).toContain(`(give ${path.join(dir, 'm1')})`);
    expect(errorOf(() => loadModel(file)).message).toBe(asFile.message);
    // The NASCTL: the coded error and exit status 2 (input the user can correct, docs/errors.md); an existing file that is not an export of ours is left as it was.
    const readme = path.join(dir, 'notes.txt');
    fs.writeFileSync(readme, 'my notes');
    const r = await runProcess([NASCTL, 'export', '--model', path.join(dir, 'm1'), '--format', 'onnx', '--out', readme]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('ERR_NAS_BAD_OUTPUT');
    expect(fs.readFileSync(readme, 'utf8')).toBe('my notes');
    const v = await runProcess([NASCTL, 'export', '--model', bad, '--out', path.join(dir, 'bad.onnx')]);
    expect(v.status).toBe(2);
    expect(v.stderr).toContain('ERR_NAS_BAD_MODEL');
  });

  it('nasctl export writes the file nasctl predict agrees with, and replaces its own earlier export', async () => {
    const out = path.join(dir, 'cli.onnx');
    for (let i = 0; i < 2; i++) {
      const r = await runProcess([NASCTL, 'export', '--model', path.join(dir, 'm3'), '--format', 'onnx', '--out', out, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ file: out, opset: ONNX_OPSET, arch: text(3) });
    }
    // A temp file a killed export left (its pid gone) is removed by the next export of the same file; a stopped
    // export returns undefined and leaves the earlier file as it was, with no temp file.
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    fs.writeFileSync(`${out}.tmp-${dead}`, 'left by a killed export');
    const before = fs.readFileSync(out);
    const ac = new AbortController();
    const stopped = exportOnnx(path.join(dir, 'm2'), out, { signal: ac.signal });
    ac.abort();
    expect(await stopped).toBeUndefined();
    expect(fs.readFileSync(out).equals(before)).toBe(true);
    expect((await exportOnnx(path.join(dir, 'm3'), out))?.file).toBe(out);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('cli.onnx.tmp-'))).toEqual([]);
    const p = await runProcess([NASCTL, 'predict', '--model', path.join(dir, 'm3'), '--limit', '64', '--threads', '1', '--json']);
    expect(p.status, p.stderr).toBe(0);
    const rows = p.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { predicted: number; probability: number });
    const session = await ort.InferenceSession.create(out, { intraOpNumThreads: 1 });
    const probs = (
      await session.run({ pixels: new ort.Tensor('float32', Float32Array.from(data.test.images.subarray(0, 64 * 784)), [64, 1, 28, 28]) })
    ).probabilities.data as Float32Array;
    await session.release();
    for (const [i, row] of rows.entries()) {
      const q = Array.from(probs.subarray(i * 10, i * 10 + 10));
      expect(q.indexOf(Math.max(...q)), `image ${i}`).toBe(row.predicted);
      expect(Math.abs(q[row.predicted] - row.probability), `image ${i}`).toBeLessThanOrEqual(RELATIVE_BOUND);
    }
  }, 120_000);
});

/**
 * Checks logits `got` against `want` ([images, 10]) image by image: the largest difference at most RELATIVE_BOUND of
 * the image's largest |logit| (at least 1), and the same top-1 (`predicted`: the other side's own top-1, when it
 * reports one). Returns the largest relative difference.
 */
function expectSameLogits(want: ArrayLike<number>, got: ArrayLike<number>, what: string, predicted?: number[]): number {
  let worst = 0;
  for (let i = 0; i < want.length / 10; i++) {
    const w = Array.from({ length: 10 }, (_, c) => want[i * 10 + c]);
    const g = Array.from({ length: 10 }, (_, c) => got[i * 10 + c]);
    const diff = Math.max(...w.map((v, c) => Math.abs(v - g[c]))) / Math.max(1, ...w.map(Math.abs));
    worst = Math.max(worst, diff);
    expect(diff, `${what}, image ${i}`).toBeLessThanOrEqual(RELATIVE_BOUND);
    expect(predicted ? predicted[i] : g.indexOf(Math.max(...g)), `${what}, image ${i}: top-1`).toBe(w.indexOf(Math.max(...w)));
  }
  return worst;
}

interface PageResult {
  logits?: number[];
  predicted?: number[];
  error?: string;
}

async function rejectionOf(p: Promise<unknown>): Promise<NasError> {
  try {
    await p;
  } catch (err) {
    return err as NasError;
  }
  throw new Error('expected an error');
}

function errorOf(f: () => unknown): NasError {
  try {
    f();
  } catch (err) {
    return err as NasError;
  }
  throw new Error('expected an error');
}
