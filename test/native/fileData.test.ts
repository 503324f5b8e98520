// A set whose pixels are in a file (an image folder's cache) is read a batch at a time: the same numbers as the set in
// memory, and a process that holds a batch of it, not the file.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropTables } from '../../src/schedule/dropout';
import { NativeData } from '../../src/model/Supernet';
import { channelStats, type ImageSet } from '../../src/data/types';
import { NasError } from '../../src/util/errors';
import { tinyNet, tinySet } from '../helpers';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'nas-mapped-'));

/** `set` written to a file after `offset` bytes of something else, as a file-backed set. */
function toFile(set: ImageSet, offset: number): ImageSet {
  const file = path.join(tmp(), 'train.pixels');
  fs.writeFileSync(file, Buffer.concat([Buffer.alloc(offset, 7), Buffer.from(set.images)]));
  return { ...set, images: new Uint8Array(0), file: { path: file, offset } };
}

describe('file-backed datasets', () => {
  it('train and evaluate exactly as the same set in memory', async () => {
    const set = tinySet(256, 5);
    const { mean, std } = channelStats(set);
    const mapped = toFile(set, 100);
    expect(channelStats(mapped)).toEqual({ mean, std });
    const steps = 12;
    const { dropIn, dropOp } = dropTables({ kind: 'linear', rate: 0.1 }, { steps });
    const lr = new Float64Array(steps).fill(0.05);
    const run = async (s: ImageSet) => {
      const net = tinyNet({}, { cropPad: 1, flip: true });
      const data = new NativeData(s, mean, std);
      const losses: number[] = [];
      try {
        await net.train(data, { steps, lr, dropIn, dropOp, onProgress: (p) => losses.push(p.loss) });
        const scores = await net.evaluate(data, ['0:identity/01:sep3/2:maxpool/3:conv7x1', '1:sep5/0:avgpool/12:identity/0:sep3'], {
          count: 200,
        });
        return { losses, scores };
      } finally {
        net.dispose();
      }
    };
    const inMemory = await run(set);
    expect(await run(mapped)).toEqual(inMemory);
    // The fused plan keeps a set in memory on the device; a set in a file is read a batch at a time there too.
    const fused = async (s: ImageSet) => {
      const net = tinyNet({ plan: 'fused' });
      try {
        return await net.evaluate(new NativeData(s, mean, std), ['0:identity/01:sep3/2:maxpool/3:conv7x1'], { count: 200 });
      } finally {
        net.dispose();
      }
    };
    expect(await fused(mapped)).toEqual(await fused(set));
  });

  it('names a missing or short file', () => {
    const set = tinySet(32);
    const { mean, std } = channelStats(set);
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(NasError);
        return `${(e as NasError).code} ${(e as NasError).message}`;
      }
      return undefined;
    };
    const missing = path.join(tmp(), 'nope.pixels');
    expect(code(() => new NativeData({ ...set, file: { path: missing, offset: 0 } }, mean, std))).toMatch(
      new RegExp(`^ERR_NAS_IO ${missing}: cannot open`),
    );
    const short = toFile(tinySet(16), 0);
    expect(code(() => new NativeData({ ...set, file: short.file }, mean, std))).toMatch(/^ERR_NAS_BAD_DATA .*expected at least 2048 bytes/);
  });

  it('trains on a file 3x larger than the memory it may take, holding a batch of it', () => {
    // 131,072 images of 16x16x3 (96 MiB); the process may grow by a third of that. One evaluation reads every byte,
    // then 50 training steps read random rows.
    const file = path.join(tmp(), 'big.pixels');
    const n = 131072;
    const fd = fs.openSync(file, 'w');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < (n * 768) / chunk.length; i++) fs.writeSync(fd, chunk.fill(i % 251));
    fs.closeSync(fd);
    const limit = (n * 768) / 3;
    const fixture = path.resolve(__dirname, '../fixtures/fileDataRss.js');
    const run = (how: string) =>
      JSON.parse(execFileSync(process.execPath, [fixture, file, String(n), '16', '50', how], { encoding: 'utf8' }));
    const streamed = run('file');
    expect(streamed.examples).toBe(n);
    // Measured: 20 MiB of growth (the model's batches and LibTorch's allocator).
    expect(streamed.peak - streamed.before).toBeLessThan(limit);
    // The control: the same set loaded into memory grows the process by more than the file, so the bound above is
    // the file reading's doing.
    const loaded = run('memory');
    expect(loaded.peak - loaded.before).toBeGreaterThan(n * 768);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
});
