import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseCifar, readCifar } from '../../src/data/cifar';
import { parseIdx, readIdx } from '../../src/data/idx';
import { loadDataset } from '../../src/data/loadDataset';
import { syntheticSet } from '../../src/data/synthetic';
import { NasError } from '../../src/util/errors';

function idx(dims: number[], data: number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => {
    header.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([header, Buffer.from(data)]);
}

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'nas-data-'));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NasError);
    return (e as NasError).code;
  }
  return undefined;
}

describe('IDX', () => {
  it('reads plain and gzip files', () => {
    const dir = tmp();
    const bytes = idx([2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    fs.writeFileSync(path.join(dir, 'a.idx'), bytes);
    fs.writeFileSync(path.join(dir, 'a.idx.gz'), zlib.gzipSync(bytes));
    for (const f of ['a.idx', 'a.idx.gz']) {
      const r = readIdx(path.join(dir, f));
      expect(r.dims).toEqual([2, 2, 3]);
      expect(Array.from(r.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }
  });

  it('rejects corrupt files with ERR_NAS_BAD_DATA and missing ones with ERR_NAS_DATASET_MISSING', () => {
    expect(codeOf(() => parseIdx(idx([2, 2], [1, 2, 3])))).toBe('ERR_NAS_BAD_DATA'); // truncated
    const wrongType = idx([1], [1]);
    wrongType[2] = 0x0d;
    expect(codeOf(() => parseIdx(wrongType))).toBe('ERR_NAS_BAD_DATA');
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'x.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    expect(codeOf(() => readIdx(path.join(dir, 'x.gz')))).toBe('ERR_NAS_BAD_DATA');
    expect(codeOf(() => readIdx(path.join(dir, 'none.gz')))).toBe('ERR_NAS_DATASET_MISSING');
    expect(codeOf(() => loadDataset({ name: 'fashion-mnist', dataDir: dir }))).toBe('ERR_NAS_DATASET_MISSING');
  });

  it('refuses a gzip bomb by its header before inflating it: data past the dimensions, or dimensions past the file', () => {
    const dir = tmp();
    // The header says 10x28x28 (7,840 bytes of data); the stream goes on with 64 MiB of zeros (64 KiB compressed).
    const bomb = zlib.gzipSync(Buffer.concat([idx([10, 28, 28], []), Buffer.alloc(64 << 20)]));
    fs.writeFileSync(path.join(dir, 'bomb.gz'), bomb);
    expect(() => readIdx(path.join(dir, 'bomb.gz'))).toThrow(/inflates to more than the 7856 bytes its header's dimensions 10x28x28 need/);
    // A header that claims more than the compressed bytes could ever inflate to.
    fs.writeFileSync(path.join(dir, 'liar.gz'), zlib.gzipSync(idx([60000, 280, 280], [1, 2, 3])));
    expect(() => readIdx(path.join(dir, 'liar.gz'))).toThrow(/need 4704000016 bytes, more than \d+ compressed bytes can hold/);
    expect(codeOf(() => readIdx(path.join(dir, 'liar.gz')))).toBe('ERR_NAS_BAD_DATA');
    // A header cut short is named as such.
    fs.writeFileSync(path.join(dir, 'short.gz'), zlib.gzipSync(Buffer.from([0, 0, 8, 3, 0, 0])));
    expect(() => readIdx(path.join(dir, 'short.gz'))).toThrow(/truncated header/);
  });

  it('refuses splits of different image shapes (a 14x56 test file next to 28x28 training images)', () => {
    const dir = tmp();
    const write = (name: string, dims: number[]): void => {
      const n = dims.reduce((a, b) => a * b, 1);
      fs.writeFileSync(
        path.join(dir, name),
        zlib.gzipSync(
          idx(
            dims,
            Array.from({ length: n }, (_, i) => i % 10),
          ),
        ),
      );
    };
    write('train-images-idx3-ubyte.gz', [12, 28, 28]);
    write('train-labels-idx1-ubyte.gz', [12]);
    write('t10k-images-idx3-ubyte.gz', [3, 14, 56]);
    write('t10k-labels-idx1-ubyte.gz', [3]);
    let err: NasError | undefined;
    try {
      loadDataset({ name: 'fashion-mnist', dataDir: dir, validationSize: 2 });
    } catch (e) {
      err = e as NasError;
    }
    expect(err?.code).toBe('ERR_NAS_BAD_DATA');
    expect(err?.message).toContain('the test images are 14x56x1 but the training images are 28x28x1');
    write('t10k-images-idx3-ubyte.gz', [3, 28, 28]);
    expect(loadDataset({ name: 'fashion-mnist', dataDir: dir, validationSize: 2 }).test.n).toBe(3);
  });
});

describe('CIFAR-10 binary', () => {
  function record(label: number, seed: number): Buffer {
    const r = Buffer.alloc(3073);
    r[0] = label;
    for (let i = 1; i < 3073; i++) r[i] = (i * 7 + seed) % 256;
    return r;
  }

  it('parses records into NHWC and splits 45,000-style train/validation from its batch files', () => {
    const dir = tmp();
    for (let b = 1; b <= 5; b++) fs.writeFileSync(path.join(dir, `data_batch_${b}.bin`), Buffer.concat([record(b, b), record(9, 100 + b)]));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), record(3, 0));
    const train = readCifar(dir, 'train');
    expect(train.n).toBe(10);
    expect(Array.from(train.labels)).toEqual([1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
    // Pixel (row 0, col 1): R at byte 1+1, G at 1+1024+1, B at 1+2048+1 of the record.
    const r = record(1, 1);
    expect(Array.from(train.images.subarray(3, 6))).toEqual([r[2], r[1026], r[2050]]);
    const splits = loadDataset({ name: 'cifar10', dataDir: dir, validationSize: 4 });
    expect([splits.train.n, splits.validation.n, splits.test.n]).toEqual([6, 4, 1]);
    expect(splits.train.channels).toBe(3);
    expect(splits.mean).toHaveLength(3);
  });

  it('rejects a torn file and a bad label', () => {
    expect(codeOf(() => parseCifar([{ file: 'x', bytes: new Uint8Array(3000) }]))).toBe('ERR_NAS_BAD_DATA');
    const bad = record(12, 0);
    expect(codeOf(() => parseCifar([{ file: 'x', bytes: bad }]))).toBe('ERR_NAS_BAD_DATA');
    expect(codeOf(() => readCifar(tmp(), 'test'))).toBe('ERR_NAS_DATASET_MISSING');
  });
});

describe('synthetic data and splits', () => {
  it('is deterministic per seed', () => {
    const a = syntheticSet({ n: 10, size: 8, channels: 1, classes: 4, seed: 1 });
    const b = syntheticSet({ n: 10, size: 8, channels: 1, classes: 4, seed: 1 });
    const c = syntheticSet({ n: 10, size: 8, channels: 1, classes: 4, seed: 2 });
    expect(a.images).toEqual(b.images);
    expect(a.images).not.toEqual(c.images);
  });

  it('holds out validation from train and honours trainLimit', () => {
    const s = loadDataset({ name: 'synthetic', synthetic: { n: 600 }, validationSize: 100, trainLimit: 300 });
    expect([s.train.n, s.validation.n, s.test.n]).toEqual([300, 100, 100]);
    expect(() => loadDataset({ name: 'synthetic', validationSize: 0 })).toThrow(/validationSize: expected/);
  });
});

const FASHION = '/usr/share/datasets/fashion-mnist';
describe.runIf(fs.existsSync(FASHION))('Fashion-MNIST from Debian', () => {
  it('splits 55,000 / 5,000 / 10,000 as the paper does', () => {
    const s = loadDataset({ name: 'fashion-mnist' });
    expect([s.train.n, s.validation.n, s.test.n]).toEqual([55000, 5000, 10000]);
    expect([s.train.height, s.train.width, s.train.channels]).toEqual([28, 28, 1]);
    expect(s.mean[0]).toBeGreaterThan(0.2);
    expect(s.mean[0]).toBeLessThan(0.4);
  });
});
