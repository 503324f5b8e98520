// The user's own images through the whole method: an image folder written from Fashion-MNIST trains, searches and
// retrains exactly as the same images given in memory (PNG is lossless); `nasctl run` on a folder with JPEGs and
// broken files, then predict on image files, export to ONNX and onnxruntime on the folder's images.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImageFile, imageFolderCache, type ImageFolderManifest } from '../../src/data/imageFolder';
import { FASHION_MNIST_DIR, loadDataset } from '../../src/data/loadDataset';
import { channelStats, type DatasetSplits, type ImageSet } from '../../src/data/types';
import { readModelInfo } from '../../src/retrain/exportModel';
import { retrain } from '../../src/retrain/retrain';
import { runSearch } from '../../src/search/runSearch';
import { trainOneShot } from '../../src/train/trainOneShot';
import { PRESETS, type TrainOptions } from '../../src/train/trainOptions';
import { CHROMIUM, NASCTL, chromiumArgs, requiredUnderCi, runProcess } from '../helpers';
import { fashionImages, tmpDir, writeFolder } from '../imageFolderHelpers';

const HAVE_DATA = requiredUnderCi(fs.existsSync(path.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')), 'Fashion-MNIST');
const PER = 28 * 28;
const EXAMPLE = path.resolve(__dirname, '../../examples/browser');

/** Indices of the first `per` images of each class among Fashion-MNIST's first 2,000 training images. */
function balanced(set: ImageSet, per: number): number[] {
  const taken = new Array(10).fill(0);
  const out: number[] = [];
  for (let i = 0; i < set.n && out.length < 10 * per; i++) if (taken[set.labels[i]]++ < per) out.push(i);
  return out;
}

/** `set` reordered to `order` (a view of the chosen images, in memory). */
function pick(set: ImageSet, order: number[]): ImageSet {
  const images = new Uint8Array(order.length * PER);
  const labels = new Uint8Array(order.length);
  order.forEach((i, k) => {
    images.set(set.images.subarray(i * PER, (i + 1) * PER), k * PER);
    labels[k] = set.labels[i];
  });
  return { images, labels, n: order.length, height: 28, width: 28, channels: 1 };
}

describe.runIf(HAVE_DATA)('image folders through the whole method', () => {
  let fashion: ReturnType<typeof fashionImages>;
  beforeAll(() => {
    fashion = fashionImages(2000);
  });

  it('train -> search -> retrain on a folder equal the same images given in memory', async () => {
    const root = tmpDir();
    const folder = path.join(root, 'images');
    const chosen = balanced(fashion, 60);
    // The user's own splits: per class 40 train, 8 val, 12 test.
    const splitOf = new Map(chosen.map((i, k) => [i, k % 60 < 40 ? 'train' : k % 60 < 48 ? 'val' : 'test']));
    const sub = pick(fashion, chosen);
    await writeFolder(folder, sub, sub.n, {
      prefix: (k) => splitOf.get(chosen[k])!,
      names: fashion.classNames.map((c) => c.replace('/', '-')),
    });
    const cacheDir = path.join(root, 'cache');
    const base: TrainOptions = {
      ...PRESETS.quick,
      out: path.join(root, 'from-folder'),
      dataset: { name: 'folder', dataDir: folder, folder: { imageSize: 28, cacheDir } },
      steps: 16,
      evalEvery: 8,
      evalLimit: undefined,
      net: { ...PRESETS.quick.net, threads: 1 },
    };
    const fromFolder = await trainOneShot(base);

    // The same images in memory, in the order of the cache's manifest (file names carry their index in `sub`).
    const m = JSON.parse(
      fs.readFileSync(path.join(imageFolderCache(folder, base.dataset.folder).dir, 'manifest.json'), 'utf8'),
    ) as ImageFolderManifest;
    const splitSet = (s: 'train' | 'validation' | 'test'): ImageSet =>
      pick(
        sub,
        m.splits[s].files.map((f) => Number(path.basename(m.sources[f].rel, '.png'))),
      );
    const train = splitSet('train');
    const data: DatasetSplits = {
      name: 'in-memory',
      classes: 10,
      classNames: m.classNames,
      train,
      validation: splitSet('validation'),
      test: splitSet('test'),
      ...channelStats(train),
    };
    // Class folders are named after Fashion-MNIST's classes; sorted, they are another label order: relabel.
    const relabel = fashion.classNames.map((c) => m.classNames.indexOf(c.replace('/', '-')));
    for (const s of [data.train, data.validation, data.test]) s.labels = s.labels.map((l) => relabel[l]);
    expect([data.train.n, data.validation.n, data.test.n]).toEqual([400, 80, 120]);
    const fromMemory = await trainOneShot({ ...base, out: path.join(root, 'from-memory'), dataset: { name: 'fashion-mnist' } }, { data });
    expect(fromMemory.valAccuracy).toBe(fromFolder.valAccuracy);
    expect(fromMemory.perArch).toEqual(fromFolder.perArch);

    const search = (out: string, withData?: DatasetSplits) =>
      runSearch({ supernet: out, count: 6, seed: 3, threads: 1 }, withData ? { data: withData } : {});
    const s1 = await search(base.out);
    const s2 = await search(path.join(root, 'from-memory'), data);
    expect(s2.top).toEqual(s1.top);

    const retrainOptions = (out: string) => ({
      out,
      dataset: base.dataset,
      net: { filters: 4, stacks: 3, cellsPerStack: 1, threads: 1 },
      epochs: 1,
      batchSize: 32,
      learningRate: { kind: 'cosine' as const, base: 0.05 },
      momentum: 0.9,
      weightDecay: 1e-4,
      cropPad: 0,
      flip: false,
      runs: 1,
      seed: 0,
      evalBatchSize: 128,
      export: true,
      jobs: 1,
    });
    const r1 = await retrain([s1.top[0].arch], retrainOptions(path.join(root, 'retrain-folder')));
    const r2 = await retrain([s1.top[0].arch], retrainOptions(path.join(root, 'retrain-memory')), { data });
    expect(r2.summaries[0].testAccuracyMean).toBe(r1.summaries[0].testAccuracyMean);
    // The folder's class names reach the exported model.
    expect(readModelInfo(path.join(root, 'retrain-folder', 'models', '0', 'model.json')).classNames).toEqual(m.classNames);
  });

  it('nasctl run on a folder with JPEGs and broken files, then predict --images, export and onnxruntime', async () => {
    const root = tmpDir();
    const folder = path.join(root, 'photos');
    const chosen = balanced(fashion, 30);
    const sub = pick(fashion, chosen);
    await writeFolder(folder, sub, sub.n, {
      format: (k) => (k % 3 === 0 ? 'jpeg' : 'png'),
      names: fashion.classNames.map((c) => c.replace('/', '-')),
    });
    fs.writeFileSync(path.join(folder, 'Bag', 'broken.jpg'), 'not a jpeg');
    fs.writeFileSync(
      path.join(folder, 'Coat', 'half.png'),
      fs.readFileSync(path.join(folder, 'Coat', fs.readdirSync(path.join(folder, 'Coat'))[1])).subarray(0, 60),
    );
    const cache = path.join(root, 'cache');
    const out = path.join(root, 'run');
    const run = await runProcess(
      [
        NASCTL,
        'run',
        '--dataset',
        'folder',
        '--data-dir',
        folder,
        '--image-size',
        '28',
        '--cache-dir',
        cache,
        '--out',
        out,
        '--search-count',
        '8',
        '--retrain-count',
        '1',
      ],
      { env: { ...process.env, CI: 'true' } },
    );
    expect(run.stderr).toMatch(/image folder decoded in .*: 210 train \/ 30 validation \/ 60 test; 2 files skipped/);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/retrained from scratch/);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config.dataset).toMatchObject({ name: 'folder', dataDir: folder, folder: { imageSize: 28, cacheDir: cache } });
    expect(config.net).toMatchObject({ inChannels: 1, imageSize: 28, classes: 10 });
    expect(config.classNames).toEqual([...fashion.classNames.map((c) => c.replace('/', '-'))].sort());
    const modelDir = path.join(out, 'retrain', 'models', '0');
    const info = readModelInfo(path.join(modelDir, 'model.json'));
    const names = [...fashion.classNames.map((c) => c.replace('/', '-'))].sort();
    expect(info.classNames).toEqual(names);
    expect(info.dataset).toBe('folder');

    // predict on image files: a folder, a file, and a file that is not an image.
    const files = [
      path.join(folder, 'Sandal'),
      path.join(folder, 'Trouser', fs.readdirSync(path.join(folder, 'Trouser'))[0]),
      path.join(folder, 'Bag', 'broken.jpg'),
    ];
    const p = await runProcess([NASCTL, 'predict', '--model', modelDir, '--images', ...files, '--json']);
    expect(p.status).toBe(1); // one file could not be read
    const lines = p.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(32);
    expect(lines.at(-1)).toMatchObject({ file: files[2], error: { code: 'ERR_NAS_BAD_DATA' } });
    for (const l of lines.slice(0, 31)) {
      expect(names).toContain(l.className);
      expect(l.probability).toBeGreaterThan(0);
    }
    // predict on the folder's test split (the run's cache, same split options).
    const t = await runProcess([
      NASCTL,
      'predict',
      '--model',
      modelDir,
      '--dataset',
      'folder',
      '--data-dir',
      folder,
      '--cache-dir',
      cache,
      '--limit',
      '60',
    ]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/accuracy \d\.\d{4} on 60 test images/);

    // ONNX: input shape and class names from the folder run; onnxruntime agrees with predict on the same files.
    const onnxFile = path.join(root, 'model.onnx');
    const e = await runProcess([NASCTL, 'export', '--model', modelDir, '--format', 'onnx', '--out', onnxFile]);
    expect(e.status, e.stderr).toBe(0);
    const session = await ort.InferenceSession.create(onnxFile, { intraOpNumThreads: 1 });
    const sandals = lines.slice(0, 30);
    const pixels = await Promise.all(sandals.map((l) => decodeImageFile(l.file, 28, 1)));
    const input = new ort.Tensor('float32', Float32Array.from(Buffer.concat(pixels)), [sandals.length, 1, 28, 28]);
    const probs = (await session.run({ pixels: input })).probabilities.data as Float32Array;
    for (const [k, l] of sandals.entries()) {
      const row = Array.from(probs.subarray(k * 10, (k + 1) * 10));
      const top = row.indexOf(Math.max(...row));
      expect(names[top]).toBe(l.className);
      // Both are float32 runs of the same graph; 1e-4 is the bound the ONNX test measured (test/e2e/onnx.test.ts).
      expect(Math.abs(row[top] - l.probability)).toBeLessThan(1e-4);
    }
    // The browser example with this model: its shape and class names from the model, a picture classified as a
    // dropped file is, the same probabilities as onnxruntime-node (the picture has the model's size: no resampling).
    if (requiredUnderCi(CHROMIUM !== undefined, 'Chromium (/usr/bin/chromium)')) {
      const picture = sandals[0].file;
      const { serve, describeModel } = require(path.join(EXAMPLE, 'serve.js'));
      expect(describeModel(onnxFile)).toMatchObject({ channels: 1, height: 28, width: 28, classes: names, dataset: 'folder' });
      let got!: (r: { picture?: number[]; predicted?: number[]; error?: string }) => void;
      const posted = new Promise<{ picture?: number[]; predicted?: number[]; error?: string }>((resolve) => {
        got = resolve;
      });
      const { server, url } = await serve({ model: onnxFile, port: 0, picture, onResult: got });
      const browser = spawn(CHROMIUM!, chromiumArgs(`${url}?report&picture`, []), { stdio: 'ignore' });
      try {
        const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the page posted no result in 90 s')), 90_000));
        const r = await Promise.race([posted, timeout]);
        expect(r.error).toBeUndefined();
        const want = Array.from(probs.subarray(0, 10));
        expect(r.picture).toHaveLength(10);
        expect(r.picture!.indexOf(Math.max(...r.picture!))).toBe(want.indexOf(Math.max(...want)));
        for (let k = 0; k < 10; k++) expect(Math.abs(r.picture![k] - want[k])).toBeLessThan(1e-4);
        expect(r.predicted).toHaveLength(32); // the bundled Fashion-MNIST examples have this model's shape
      } finally {
        browser.kill('SIGKILL');
        server.close();
      }
    }

    // An image folder decoded once is reused: the run's stages after training found the cache.
    expect(loadDataset({ name: 'folder', dataDir: folder, folder: { imageSize: 28, cacheDir: cache } }).classNames).toEqual(names);
  });
});
