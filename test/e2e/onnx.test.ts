// ONNX export checked against a real runtime (docs/deploy.md): for 10 architectures that together use every
// operation and every input choice, onnxruntime-node's logits on 256 Fashion-MNIST test images equal the native
// model's (`nasctl predict`'s model.predict) within a measured bound, with the same top-1 on every image.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_DIR, loadDataset } from '../../src/data/loadDataset';
import type { DatasetSplits } from '../../src/data/types';
import { NativeData } from '../../src/model/Supernet';
import { StandaloneModel } from '../../src/model/StandaloneModel';
import { exportModel, loadModel, normaliseImages } from '../../src/retrain/exportModel';
import { exportOnnx, ONNX_OPSET } from '../../src/export/onnx';
import { type Architecture, OPS, formatArchitecture, parseCandidate, ALL_ON } from '../../src/space/architecture';
import { sampleArchitectureStream } from '../../src/space/sampleArchitecture';
import { requiredUnderCi } from '../helpers';

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
  beforeAll(() => {
    data = loadDataset({ name: 'fashion-mnist', trainLimit: 2048, testLimit: IMAGES });
    train = new NativeData(data.train, data.mean, data.std);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-onnx-'));
  });

  it('loads the CPU binary of onnxruntime-node that its npm package ships', () => {
    expect(ort.listSupportedBackends().map((b) => b.name)).toContain('cpu');
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const lib = maps.split('\n').find((l) => l.includes('libonnxruntime.so'));
    expect(lib).toContain(path.join('onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64'));
  });

  it('the sampled architectures together use every operation and every input choice, beyond the all-on model', () => {
    const used = coverage(architectures());
    for (const o of OPS) expect(used, o).toContain(o);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 2 + i; j++) expect(used).toContain(`block ${i} input ${j}`);
  });

  it('gives the same logits and top-1 in onnxruntime-node as the native model, for 10 architectures', async () => {
    const pixels = Float32Array.from(data.test.images); // uint8 NHWC = NCHW for one channel: the raw pixel values
    const normalised = normaliseImages(data.test.images, IMAGES, 28, 1, data.mean, data.std);
    let worst = 0;
    for (const [k, arch] of architectures().entries()) {
      const text = k === 0 ? ALL_ON : formatArchitecture(arch);
      const modelDir = path.join(dir, `m${k}`);
      const model = StandaloneModel.create(
        { inChannels: 1, imageSize: 28, classes: 10, filters: 8, stacks: 3, cellsPerStack: 2, blocks: 4, threads: 1, seed: k },
        text,
        { batchSize: 64, seed: k },
      );
      await model.train(train, { steps: STEPS, lr: new Float64Array(STEPS).fill(0.05) });
      exportModel(modelDir, model, { mean: data.mean, std: data.std, dataset: 'fashion-mnist' });
      model.dispose();

      const file = path.join(dir, `m${k}.onnx`);
      const result = exportOnnx(modelDir, file);
      expect(result.opset).toBe(ONNX_OPSET);

      const { model: loaded } = loadModel(modelDir, { threads: 1 });
      const want = loaded.predict(normalised, IMAGES, { logits: true });
      loaded.dispose();
      const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
      const out = await session.run({ pixels: new ort.Tensor('float32', pixels, [IMAGES, 1, 28, 28]) });
      const got = out.logits.data as Float32Array;
      const probs = out.probabilities.data as Float32Array;
      await session.release();
      expect(got.length).toBe(IMAGES * 10);
      for (let i = 0; i < IMAGES; i++) {
        const row = (a: Float32Array): number[] => Array.from(a.subarray(i * 10, i * 10 + 10));
        const w = row(want);
        const g = row(got);
        const scale = Math.max(1, ...w.map(Math.abs));
        const diff = Math.max(...w.map((v, c) => Math.abs(v - g[c]))) / scale;
        worst = Math.max(worst, diff);
        expect(diff, `${text}, image ${i}`).toBeLessThanOrEqual(RELATIVE_BOUND);
        expect(g.indexOf(Math.max(...g)), `${text}, image ${i}: top-1`).toBe(w.indexOf(Math.max(...w)));
        expect(row(probs).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
    }
    console.log(`largest relative logit difference over 10 architectures x ${IMAGES} images: ${worst.toExponential(2)}`);
  }, 600_000);

  it('writes opset 17, a dynamic batch, and the architecture and class names in the metadata', () => {
    const bytes = fs.readFileSync(path.join(dir, 'm1.onnx'));
    const m = onnx.ModelProto.decode(bytes);
    expect(Number(m.opsetImport[0].version)).toBe(ONNX_OPSET);
    const dims = m.graph!.input[0].type!.tensorType!.shape!.dim.map((d) => d.dimParam || Number(d.dimValue));
    expect(dims).toEqual(['batch', 1, 28, 28]);
    const meta = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
    expect(meta.arch).toBe(formatArchitecture(architectures()[1]));
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
    const ops = new Set(m.graph!.node.map((n) => n.opType));
    // all-on uses every operation's node types
    const all = new Set(onnx.ModelProto.decode(fs.readFileSync(path.join(dir, 'm0.onnx'))).graph!.node.map((n) => n.opType));
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
});
