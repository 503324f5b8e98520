// Inter-op threads on CPU: training splits a step's ghost batches into groups that run on their own threads (one
// intra-op thread each) and sums their gradients in a fixed order; scoring deals batches to threads. Both must give
// what one pass gives (up to float summation order) and be deterministic for a thread count.
import { describe, expect, it } from 'vitest';
import { type TrainedRun, expectWithinFloatSpread, maxAbsDiff, snapshot, tinyData, tinyNet } from '../helpers';

const BLOCKS = 4;
const OPTIM = { batchSize: 32, momentum: 0.9, weightDecay: 1e-3, seed: 9 }; // 4 ghost batches of 8
const schedule = (steps: number, drop: number, lrScale = 1) => ({
  steps,
  lr: new Float64Array(steps).fill(0.05 * lrScale),
  dropIn: new Float32Array(steps * BLOCKS).fill(drop),
  dropOp: new Float32Array(steps * BLOCKS).fill(drop),
});

async function run(threads: number, steps = 4, lrScale = 1): Promise<TrainedRun> {
  const net = tinyNet({ threads }, OPTIM);
  const start = snapshot(net);
  const losses: number[] = [];
  await net.train(tinyData(96), { ...schedule(steps, 0.3, lrScale), onProgress: (p) => losses.push(p.loss) });
  const params = snapshot(net);
  net.dispose();
  return { losses, start, params };
}

describe('ghost batches on threads', () => {
  it.each([2, 3])('trains with %i threads to the parameters of one thread, within the float spread', async (threads) => {
    const one = await run(1);
    const nudged = [await run(1, 4, 1 + 1e-7), await run(1, 4, 1 + 2e-7), await run(1, 4, 1 + 3e-7)];
    expectWithinFloatSpread(one, await run(threads), nudged);
  });

  it('is bit-identical between runs with the same thread count', async () => {
    const a = await run(2, 3);
    const b = await run(2, 3);
    expect(a.losses).toEqual(b.losses);
    for (const [name, p] of a.params) expect(maxAbsDiff(p, b.params.get(name)!), name).toBe(0);
  });

  it('scores with threads as with one thread', async () => {
    const data = tinyData(100); // 12 ghost batches of 8 and a tail of 4
    const archs = ['0:sep3/1:identity/2:maxpool/3:avgpool', '01:sep5+conv7x1/0:avgpool/23:sep7/14:identity+sep3'];
    const single = tinyNet({ threads: 1 });
    const multi = tinyNet({ threads: 2 });
    const a = await single.evaluate(data, archs, { batchSize: 16 });
    const b = await multi.evaluate(data, archs, { batchSize: 16 });
    for (let i = 0; i < archs.length; i++) {
      expect(b[i].examples).toBe(100);
      expect(b[i].accuracy).toBe(a[i].accuracy);
      expect(b[i].loss).toBeCloseTo(a[i].loss, 6);
    }
    single.dispose();
    multi.dispose();
  });
});
