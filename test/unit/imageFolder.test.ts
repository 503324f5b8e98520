import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ImageFolderEvent,
  type ImageFolderOptions,
  decodeImageFile,
  imageFolderCache,
  listImageFiles,
  prepareImageFolder,
  readImageFolderCache,
} from '../../src/data/imageFolder';
import { FASHION_MNIST_DIR, loadDataset, loadImageFolder } from '../../src/data/loadDataset';
import { requiredUnderCi } from '../helpers';
import { readImages } from '../../src/data/types';
import { NasError } from '../../src/util/errors';
import { encode, fashionImages, pngHeaderOnly, tmpDir, writeFolder } from '../imageFolderHelpers';

const HAVE_DATA = requiredUnderCi(fs.existsSync(path.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')), 'Fashion-MNIST');
const fashion = HAVE_DATA ? fashionImages(300) : (undefined as never);
const PER = 28 * 28;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(NasError);
    return (e as NasError).code;
  }
  return undefined;
}

async function prepare(root: string, o: ImageFolderOptions = {}, events: ImageFolderEvent[] = []) {
  const r = await prepareImageFolder(
    root,
    { imageSize: 28, cacheDir: path.join(root, '..', 'cache'), ...o },
    { onEvent: (e) => events.push(e) },
  );
  if (r.aborted) throw new Error('aborted');
  return r;
}

/** A folder of `n` Fashion-MNIST images as PNG in class folders c0..c9, under a fresh temp folder. */
async function folder(n = 120): Promise<{ root: string; rels: string[] }> {
  const root = path.join(tmpDir(), 'images');
  const rels = await writeFolder(root, fashion, n);
  return { root, rels };
}

describe.runIf(HAVE_DATA)('image folders', () => {
  let base: { root: string; rels: string[] };
  beforeAll(async () => {
    base = await folder(120);
  });

  it('reads class folders as sorted labels, splits each class by the fractions, and decodes PNG bit for bit', async () => {
    const r = await prepare(base.root);
    const m = r.manifest;
    expect(m.classNames).toEqual(
      ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9'].filter((c) => base.rels.some((x) => x.startsWith(`${c}/`))),
    );
    expect(m.channels).toBe(1); // every image grey: grey stays grey
    expect(m.splits.train.n + m.splits.validation.n + m.splits.test.n).toBe(120);
    const sets = readImageFolderCache(r.dir, m);
    for (const split of ['train', 'validation', 'test'] as const) {
      const set = sets[split];
      // Per class: round(k * fraction), at least one.
      const files = m.splits[split].files.map((i) => m.sources[i].rel);
      for (const [k, rel] of files.entries()) {
        const i = Number(path.basename(rel, '.png'));
        expect(set.labels[k]).toBe(m.classNames.indexOf(`c${fashion.labels[i]}`));
        expect(Buffer.from(readImages(set, k, 1)).equals(Buffer.from(fashion.images.subarray(i * PER, (i + 1) * PER)))).toBe(true);
      }
    }
    for (let c = 0; c < m.classNames.length; c++) {
      const k = base.rels.filter((x) => x.startsWith(`${m.classNames[c]}/`)).length;
      const count = (split: 'validation' | 'test') =>
        m.splits[split].files.filter((i) => m.sources[i].rel.startsWith(`${m.classNames[c]}/`)).length;
      expect(count('test')).toBe(Math.max(1, Math.round(k * 0.2)));
      expect(count('validation')).toBe(Math.max(1, Math.round(k * 0.1)));
    }
    // Each split in a seeded order, classes interleaved (not class after class): the first images are a fair sample.
    const firstTen = new Set(Array.from(sets.train.labels.subarray(0, 10)));
    expect(firstTen.size).toBeGreaterThan(3);
  });

  it('is used again while the folder is unchanged, rebuilt when a file changes, and keyed by the options', async () => {
    const { root } = await folder(60);
    const events: ImageFolderEvent[] = [];
    const a = await prepare(root, {}, events);
    expect(a.cached).toBe(false);
    const b = await prepare(root);
    expect(b.cached).toBe(true);
    expect(b.dir).toBe(a.dir);
    // Another split seed: another cache, another order.
    const c = await prepare(root, { seed: 5 });
    expect(c.dir).not.toBe(a.dir);
    expect(c.manifest.splits.train.files).not.toEqual(a.manifest.splits.train.files);
    // A file added: the cache is rebuilt.
    fs.copyFileSync(
      path.join(root, fs.readdirSync(root)[0], fs.readdirSync(path.join(root, fs.readdirSync(root)[0]))[0]),
      path.join(root, 'c0', 'extra.png'),
    );
    const d = await prepare(root);
    expect(d.cached).toBe(false);
    expect(d.manifest.sources.length).toBe(a.manifest.sources.length + 1);
    // loadDataset reads the current cache, and refuses a folder changed since it was decoded.
    expect(
      loadDataset({ name: 'folder', dataDir: root, folder: { imageSize: 28, cacheDir: path.join(root, '..', 'cache') } }).train.n,
    ).toBe(d.manifest.splits.train.n);
    fs.rmSync(path.join(root, 'c0', 'extra.png'));
    expect(() =>
      loadDataset({ name: 'folder', dataDir: root, folder: { imageSize: 28, cacheDir: path.join(root, '..', 'cache') } }),
    ).toThrow(expect.objectContaining({ code: 'ERR_NAS_DATASET_MISSING' }));
  });

  it("takes the user's own splits (train/ val/ test/), and carves only the missing one out of train", async () => {
    const root = path.join(tmpDir(), 'splits');
    await writeFolder(root, fashion, 150, { prefix: (i) => (i < 100 ? 'train' : i < 125 ? 'val' : 'test') });
    const r = await prepare(root);
    expect(r.manifest.layout).toBe('splits');
    expect(r.manifest.splits.validation.n).toBe(25);
    expect(r.manifest.splits.test.n).toBe(25);
    expect(r.manifest.splits.train.n).toBe(100);
    fs.rmSync(path.join(root, 'test'), { recursive: true });
    const noTest = await prepare(root);
    expect(noTest.manifest.splits.validation.n).toBe(25);
    expect(noTest.manifest.splits.test.n).toBeGreaterThan(0);
    expect(noTest.manifest.splits.train.n + noTest.manifest.splits.test.n).toBe(100);
    expect(noTest.manifest.splits.test.files.every((i) => noTest.manifest.sources[i].rel.startsWith('train/'))).toBe(true);
  });

  it('reads JPEG, PNG, WebP, GIF, TIFF and AVIF, resizes the shorter side and crops the centre, in 1 or 3 channels', async () => {
    const root = path.join(tmpDir(), 'formats');
    const rgb = new Uint8Array(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) rgb.set(x < 5 || x >= 35 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    for (const [i, fmt] of (['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const).entries()) {
      fs.mkdirSync(path.join(root, `k${i % 2}`), { recursive: true });
      fs.writeFileSync(path.join(root, `k${i % 2}`, `a.${fmt === 'jpeg' ? 'jpg' : fmt}`), await encode(rgb, 20, 40, 3, fmt));
    }
    // 40x20 -> shorter side 8 -> 16x8 -> centre crop 8x8 (columns 4..11 of 16): blue only, the red edges (columns
    // 0..1 and 14..15 after the resize) are cropped away; Lanczos rings by a few levels near the edges.
    const px = await decodeImageFile(path.join(root, 'k1', 'a.png'), 8, 3);
    expect(px.length).toBe(8 * 8 * 3);
    for (let k = 0; k < 64; k++) {
      expect(px[3 * k]).toBeLessThan(8);
      expect(px[3 * k + 2]).toBeGreaterThan(247);
    }
    const grey = await decodeImageFile(path.join(root, 'k1', 'a.png'), 8, 1);
    expect(grey.length).toBe(64);
    const r = await prepare(root, { imageSize: 8, testFraction: 0.3, validationFraction: 0.3 });
    expect(r.manifest.skipped).toEqual([]);
    expect(r.manifest.channels).toBe(3);
    expect(r.manifest.sources.length).toBe(6);
  });

  it('skips broken, truncated, empty and bomb files with their reasons, and follows links without looping', async () => {
    const { root } = await folder(80);
    const jpg = await encode(fashion.images.subarray(0, PER), 28, 28, 1, 'jpeg');
    fs.writeFileSync(path.join(root, 'c0', 'truncated.jpg'), jpg.subarray(0, jpg.length >> 1));
    fs.writeFileSync(path.join(root, 'c0', 'text.png'), 'this is not an image');
    fs.writeFileSync(path.join(root, 'c0', 'empty.jpg'), '');
    fs.writeFileSync(path.join(root, 'c0', 'bomb.png'), pngHeaderOnly(200_000, 200_000));
    fs.writeFileSync(path.join(root, 'c0', 'notes.txt'), 'ignored: not an image by name');
    fs.writeFileSync(path.join(root, 'c0', '.hidden.png'), 'ignored: hidden');
    fs.symlinkSync('loop.png', path.join(root, 'c0', 'loop.png')); // a link to itself
    fs.symlinkSync('..', path.join(root, 'c1', 'up')); // a folder link back to the root: read once
    fs.symlinkSync('missing.png', path.join(root, 'c1', 'dangling.png'));
    // A file name that is not UTF-8: read by its bytes.
    fs.writeFileSync(Buffer.from(`${root}/c2/caf\xe9.png`, 'latin1'), await encode(fashion.images.subarray(0, PER), 28, 28, 1, 'png'));
    const r = await prepare(root);
    const reasons = Object.fromEntries(r.manifest.skipped.map((s) => [s.file, s.reason]));
    expect(reasons['c0/truncated.jpg']).toMatch(/not a readable image/);
    expect(reasons['c0/text.png']).toMatch(/not a readable image/);
    expect(reasons['c0/empty.jpg']).toBe('an empty file');
    expect(reasons['c0/bomb.png']).toMatch(/200000x200000 pixels, more than the limit/);
    expect(reasons['c0/loop.png']).toBe('a symbolic link loop');
    expect(reasons['c1/dangling.png']).toBe('a broken symbolic link');
    expect(reasons['c1/up']).toMatch(/already read/);
    expect(Object.keys(reasons)).toHaveLength(7);
    expect(r.manifest.sources.some((s) => s.rel === 'c2/caf\\xe9.png')).toBe(true);
    expect(r.manifest.splits.train.n + r.manifest.splits.validation.n + r.manifest.splits.test.n).toBe(81);
  });

  it('converts mixed modes to one channel count and counts the conversions', async () => {
    const { root } = await folder(100);
    const rgb = new Uint8Array(28 * 28 * 3).fill(200);
    fs.writeFileSync(path.join(root, 'c0', 'colour.png'), await encode(rgb, 28, 28, 3, 'png'));
    const r = await prepare(root);
    expect(r.manifest.channels).toBe(3);
    expect(r.manifest.converted).toBe(100); // the grey ones
    const g = await prepare(root, { channels: 1 });
    expect(g.manifest.channels).toBe(1);
    expect(g.manifest.converted).toBe(1);
  });

  it('refuses what cannot be a classification dataset, naming the folder', async () => {
    const one = path.join(tmpDir(), 'one');
    await writeFolder(one, fashion, 20, { names: Array(10).fill('only') });
    expect(await codeOf(prepare(one))).toBe('ERR_NAS_BAD_DATA');
    await expect(prepare(one)).rejects.toThrow(/at least 2 class folders/);

    const { root } = await folder(60);
    fs.mkdirSync(path.join(root, 'empty'));
    await expect(prepare(root)).rejects.toThrow(/class folder "empty" has no image files/);
    fs.rmSync(path.join(root, 'empty'), { recursive: true });
    fs.mkdirSync(path.join(root, 'lonely'));
    fs.copyFileSync(path.join(root, 'c0', fs.readdirSync(path.join(root, 'c0'))[0]), path.join(root, 'lonely', 'x.png'));
    await expect(prepare(root)).rejects.toThrow(/class "lonely" has 1 readable training image; it needs at least 3/);
    fs.rmSync(path.join(root, 'lonely'), { recursive: true });
    fs.mkdirSync(Buffer.from(`${root}/caf\xe9`, 'latin1'));
    await expect(prepare(root)).rejects.toThrow(/caf\\xe9: a class folder's name must be UTF-8/);
    fs.rmSync(Buffer.from(`${root}/caf\xe9`, 'latin1'), { recursive: true });

    expect(await codeOf(prepare(path.join(root, 'nope')))).toBe('ERR_NAS_DATASET_MISSING');
    expect(await codeOf(prepare(root, { imageSize: 3 }))).toBe('ERR_NAS_BAD_ARG');
    expect(await codeOf(prepare(root, { testFraction: 0.7 }))).toBe('ERR_NAS_BAD_ARG');
    expect(await codeOf(loadImageFolder(''))).toBe('ERR_NAS_BAD_ARG');
  });

  it('resumes an interrupted decode without decoding anything twice, to the same bytes', async () => {
    const { root } = await folder(300);
    const cacheA = path.join(root, '..', 'a');
    const controller = new AbortController();
    const first: ImageFolderEvent[] = [];
    const stopped = await prepareImageFolder(
      root,
      { imageSize: 28, cacheDir: cacheA },
      {
        concurrency: 4,
        signal: controller.signal,
        onEvent: (e) => {
          first.push(e);
          if (e.type === 'decode') controller.abort(); // after the first chunk
        },
      },
    );
    expect(stopped.aborted).toBe(true);
    const doneBefore = first.filter((e) => e.type === 'decode').at(-1) as Extract<ImageFolderEvent, { type: 'decode' }>;
    expect(doneBefore.done).toBeGreaterThan(0);
    expect(doneBefore.done).toBeLessThan(300);
    const second: ImageFolderEvent[] = [];
    const resumed = await prepareImageFolder(root, { imageSize: 28, cacheDir: cacheA }, { concurrency: 4, onEvent: (e) => second.push(e) });
    const decodes = second.filter((e) => e.type === 'decode') as Extract<ImageFolderEvent, { type: 'decode' }>[];
    expect(second.some((e) => e.type === 'probe')).toBe(false); // the headers were checked before
    expect(decodes[0].resumedAt).toBe(doneBefore.done);
    expect(decodes.at(-1)!.done).toBe(300);
    // The same bytes as one uninterrupted decode.
    const whole = await prepareImageFolder(root, { imageSize: 28, cacheDir: path.join(root, '..', 'b') });
    for (const f of ['train.pixels', 'train.labels', 'validation.pixels', 'test.pixels', 'test.labels']) {
      expect(fs.readFileSync(path.join(resumed.dir, f)).equals(fs.readFileSync(path.join(whole.dir, f)))).toBe(true);
    }
    expect(resumed.manifest!.splits).toEqual(whole.manifest!.splits);
  });

  it("lists predict's image files: nested, sorted, without hidden or other files, through a link loop", () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'a', 'b'), { recursive: true });
    for (const f of ['a/2.png', 'a/1.JPG', 'a/b/3.webp', 'a/notes.txt', 'a/.hidden.png', 'x.gif']) fs.writeFileSync(path.join(root, f), '');
    fs.symlinkSync('..', path.join(root, 'a', 'b', 'up'));
    fs.symlinkSync('nowhere.png', path.join(root, 'a', 'broken.png'));
    expect(listImageFiles([path.join(root, 'a'), path.join(root, 'x.gif')]).map((f) => path.relative(root, f))).toEqual([
      'a/1.JPG',
      'a/2.png',
      'a/b/3.webp',
      'x.gif',
    ]);
    expect(() => listImageFiles([path.join(root, 'missing.png')])).toThrow(expect.objectContaining({ code: 'ERR_NAS_IO' }));
  });

  it('two processes decoding the same folder at once publish one cache', async () => {
    const { root } = await folder(200);
    const cache = path.join(root, '..', 'shared');
    const script = `require(${JSON.stringify(path.resolve('dist/data/imageFolder.js'))}).prepareImageFolder(process.argv[1], { imageSize: 28, cacheDir: process.argv[2] }).then((r) => console.log(JSON.stringify({ cached: r.cached, n: r.manifest.splits.train.n })))`;
    const { spawn } = await import('node:child_process');
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ['-e', script, root, cache], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout.on('data', (d) => {
          out += d;
        });
        p.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}`))));
      });
    const [a, b] = (await Promise.all([run(), run()])).map((s) => JSON.parse(s));
    expect([a.cached, b.cached].sort()).toEqual([false, true]); // one decoded, the other waited and used it
    expect(a.n).toBe(b.n);
    const { dir } = imageFolderCache(root, { imageSize: 28, cacheDir: cache });
    expect(fs.readdirSync(path.dirname(dir)).filter((n) => !n.endsWith('.lock'))).toEqual([path.basename(dir)]);
  });
});
