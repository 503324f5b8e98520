// The end of a one-shot run: a stop signal during the final evaluation is honoured (between batches), and resuming a
// finished run returns its result without evaluating again (issue 11 probe, item 2).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TrainEvent, trainOneShot } from '../../src/train/trainOneShot';
import { PRESETS, type TrainOptions } from '../../src/train/trainOptions';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-final-'));
const base = (out: string): TrainOptions => ({
  ...PRESETS.quick,
  out,
  dataset: { name: 'synthetic' },
  net: { filters: 4, stacks: 2, cellsPerStack: 1, ghostBatch: 16, threads: 1 },
  batchSize: 32,
  steps: 10,
  evalEvery: 10,
  evalArchs: 16,
  evalLimit: 32,
  checkpointEvery: 10,
});

describe('the end of a one-shot run', () => {
  it('stops the final evaluation on a signal, and a resumed finished run returns its result without evaluating', async () => {
    const out = path.join(root, 'run');
    const ac = new AbortController();
    // Abort right after the last checkpoint, i.e. when the final evaluation (16 architectures) starts.
    const stopped = await trainOneShot(base(out), {
      signal: ac.signal,
      onEvent: (e: TrainEvent) => e.type === 'checkpoint' && e.step === 10 && ac.abort(),
    });
    expect(stopped.steps).toBe(10);
    expect(stopped.aborted).toBe(true);
    expect(fs.existsSync(path.join(out, 'result.json'))).toBe(false);

    const finished = await trainOneShot(base(out), { resume: true });
    expect(finished.aborted).toBe(false);
    expect(finished.perArch).toHaveLength(16);
    expect(fs.existsSync(path.join(out, 'result.json'))).toBe(true);

    const events: string[] = [];
    const again = await trainOneShot(base(out), { resume: true, onEvent: (e: TrainEvent) => events.push(e.type) });
    expect(again).toEqual(JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8')));
    expect(again.seconds).toBe(finished.seconds); // the saved result, not a new evaluation
    expect(events).toEqual([]);
  });
});
