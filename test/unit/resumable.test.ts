// The resumable-job loop shared by one-shot training and the stand-alone runs: chunk boundaries, resume, stops.
import { describe, expect, it } from 'vitest';
import { runInChunks } from '../../src/util/resumable';

/** A job at `start` that records its chunks and the steps its `after` saw; `abortAt`: the step a signal stops it. */
function job(start: number, total: number, every: number[], abortAt?: number, stopAfter?: number) {
  let step = start;
  const chunks: [number, number][] = [];
  const afters: [number, boolean][] = [];
  return {
    chunks,
    afters,
    run: () =>
      runInChunks({
        at: () => step,
        total,
        every,
        chunk: async (from, count) => {
          chunks.push([from, count]);
          const end = abortAt !== undefined && abortAt > from && abortAt < from + count ? abortAt : from + count;
          step = end;
          return { aborted: end < from + count };
        },
        after: async (s, aborted) => {
          afters.push([s, aborted]);
        },
        stopped: () => stopAfter !== undefined && afters.length >= stopAfter,
      }),
  };
}

describe('runInChunks', () => {
  it('ends chunks at every multiple of each interval and at the end, and runs `after` at each', async () => {
    const j = job(0, 25, [10, 4]);
    expect(await j.run()).toEqual({ aborted: false });
    expect(j.chunks).toEqual([
      [0, 4],
      [4, 4],
      [8, 2],
      [10, 2],
      [12, 4],
      [16, 4],
      [20, 4],
      [24, 1],
    ]);
    expect(j.afters.map(([s]) => s)).toEqual([4, 8, 10, 12, 16, 20, 24, 25]);
  });

  it('resumes from where the job is (a checkpoint mid-chunk) and does nothing at the end', async () => {
    const j = job(7, 12, [5]);
    await j.run();
    expect(j.chunks).toEqual([
      [7, 3],
      [10, 2],
    ]);
    const done = job(12, 12, [5]);
    expect(await done.run()).toEqual({ aborted: false });
    expect(done.chunks).toEqual([]);
  });

  it('stops after a chunk a signal cut short, having run its `after` (the state at the stop is saved)', async () => {
    const j = job(0, 20, [8], 11);
    expect(await j.run()).toEqual({ aborted: true });
    expect(j.afters).toEqual([
      [8, false],
      [11, true],
    ]);
  });

  it('stops when told from outside, after the chunk in progress', async () => {
    const j = job(0, 20, [5], undefined, 2);
    expect(await j.run()).toEqual({ aborted: true });
    expect(j.chunks).toEqual([
      [0, 5],
      [5, 5],
    ]);
  });
});
