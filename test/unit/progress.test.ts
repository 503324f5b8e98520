// Progress of long stages (retraining): a line at least every interval outside a terminal, JSON lines with --json,
// rates and ETAs over all runs of a call (several train at once).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CountProgress, RetrainProgress, ScoringProgress, TrainProgress } from '../../src/cli/progress';

function sink(): { stream: NodeJS.WriteStream; text: () => string } {
  const parts: string[] = [];
  return { stream: { write: (s: string) => parts.push(s) > 0 } as unknown as NodeJS.WriteStream, text: () => parts.join('') };
}

// Run 2 of 3 (the first finished: n steps done before), one step every 100 ms.
const events = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    arch: '0:sep3/1:identity/2:maxpool/3:avgpool',
    run: 1,
    step: i + 1,
    totalSteps: n,
    loss: 1 / (i + 1),
    accuracy: 0.5,
    doneSteps: n + i + 1,
    allSteps: 3 * n,
    doneRuns: 1,
    allRuns: 3,
  }));

describe('retraining progress', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-28T12:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  const feed = (p: RetrainProgress, list: ReturnType<typeof events>): void => {
    for (const e of list) {
      p.step(e);
      vi.advanceTimersByTime(100);
    }
  };

  it('prints plain lines no more often than the interval, and always the last step, with the rate over all runs', () => {
    const quiet = sink();
    feed(new RetrainProgress('plain', quiet.stream, 1e9), events(50));
    // 49 steps in 4.9 s since the first one: 10 steps/s; 50 steps of the third run left: 5 s.
    expect(quiet.text().trim().split('\n')).toEqual(['runs 1/3, step 50/50 loss 0.020 acc 0.500 | 10.0 steps/s ETA 5s']);
    const every = sink();
    feed(new RetrainProgress('plain', every.stream, 0), events(5));
    const lines = every.text().trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toContain('| - steps/s ETA ?'); // no rate from one step
  });

  it('writes JSON progress lines with --json', () => {
    const out = sink();
    const p = new RetrainProgress('json', out.stream, 0);
    feed(p, events(20).slice(0, 15));
    const line = JSON.parse(out.text().trim().split('\n').pop()!);
    expect(line).toMatchObject({
      type: 'progress',
      stage: 'retrain',
      step: 15,
      totalSteps: 20,
      doneSteps: 35,
      allSteps: 60,
      doneRuns: 1,
      allRuns: 3,
      stepsPerSec: 10,
      etaSeconds: 3,
    });
  });
});

describe('counted progress (the KL study)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-28T12:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  // One architecture every 2 s: 20 of the 'kl' stage, then 10 of 'score'.
  const feed = (p: CountProgress): void => {
    for (let i = 1; i <= 20; i++) {
      vi.advanceTimersByTime(2000);
      p.update({ stage: 'kl', done: i, total: 20, unit: 'architectures' });
    }
    for (let i = 1; i <= 10; i++) {
      vi.advanceTimersByTime(2000);
      p.update({ stage: 'score', done: i, total: 10, unit: 'architectures' });
    }
  };

  it("prints a plain line at least every 10 s and at the end of each stage, with the stage's own rate", () => {
    const out = sink();
    feed(new CountProgress('plain', out.stream));
    const lines = out
      .text()
      .trim()
      .split('\n')
      .map((l) => l.trim());
    // kl: steps at 2, 4, .. 40 s from the stage start: lines at 12, 22, 32 s (10 s apart) and at the end; score likewise.
    expect(lines).toEqual([
      'kl: 6/20 architectures | 0.5/s ETA 28s',
      'kl: 11/20 architectures | 0.5/s ETA 18s',
      'kl: 16/20 architectures | 0.5/s ETA 8s',
      'kl: 20/20 architectures | 0.5/s ETA 0s',
      'score: 6/10 architectures | 0.5/s ETA 8s',
      'score: 10/10 architectures | 0.5/s ETA 0s',
    ]);
  });

  it('writes JSON progress lines with --json', () => {
    const out = sink();
    feed(new CountProgress('json', out.stream));
    const last = JSON.parse(out.text().trim().split('\n').pop()!);
    expect(last).toEqual({ type: 'progress', stage: 'score', done: 10, total: 10, unit: 'architectures', perSec: 0.5, etaSeconds: 0 });
  });
});

describe('training progress', () => {
  const step = (i: number, total: number) => ({
    type: 'step' as const,
    step: i,
    totalSteps: total,
    epoch: i / 10,
    loss: 2,
    accuracy: 0.5,
    lr: 0.1,
    dropIn: [0.1],
    dropOp: 0.2,
    imagesPerSec: 100,
    etaSeconds: total - i,
  });
  const start = {
    type: 'start' as const,
    totalSteps: 100,
    startStep: 0,
    stepsPerEpoch: 10,
    params: 1000,
    dataset: 'synthetic',
    trainExamples: 100,
    validationExamples: 10,
  };

  it('writes plain log lines outside a terminal: about 20 per run, no bar, no carriage returns', () => {
    const out = sink();
    const p = new TrainProgress('plain', out.stream, out.stream);
    p.handle(start);
    for (let i = 1; i <= 100; i++) p.handle(step(i, 100));
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(21); // the start line and every 5th step
    expect(lines[1]).toBe('step 5/100 ep 0.50 loss 2.000 acc 0.500 lr 0.1000 drop in 0.10 op 0.20 100 img/s ETA 1m35s');
    expect(out.text()).not.toMatch(/[[#\r]/);
  });

  it('draws one bar line on a terminal', () => {
    const out = sink();
    const p = new TrainProgress('tty', out.stream, out.stream);
    p.handle(step(50, 100));
    expect(out.text()).toBe(
      '\r\x1b[2K[############............] step 50/100 ep 5.00 loss 2.000 acc 0.500 lr 0.1000 drop in 0.10 op 0.20 100 img/s ETA 50s',
    );
  });
});

describe('racing progress', () => {
  it('prints a line per round and per tenth of it (plain), nothing with --json', () => {
    const plain = sink();
    const json = sink();
    const p = new ScoringProgress('plain', plain.stream);
    const q = new ScoringProgress('json', json.stream);
    const best = { arch: '0:sep3/1:identity/2:maxpool/3:avgpool', accuracy: 0.75, examples: 256 };
    for (const [round, candidates, from, to] of [
      [0, 40, 0, 256],
      [1, 10, 256, 1024],
    ]) {
      const start = { type: 'race-round' as const, round, rounds: 2, candidates, from, to, done: 0 };
      p.race(start);
      q.race(start);
      for (let done = 4; done < candidates + 4; done += 4) {
        done = Math.min(done, candidates);
        const e = { type: 'raced' as const, round, rounds: 2, done, candidates, imagesPerSec: 1000, etaSeconds: 65, best };
        p.race(e);
        q.race(e);
      }
    }
    const lines = plain.text().trim().split('\n');
    expect(lines[0]).toBe('round 1/2: 40 candidates on validation images 0..256');
    expect(lines[1]).toBe('round 1/2 4/40 scored, leader 0.7500 on 256 images, 1000 img/s, race ETA 1m05s');
    expect(lines.filter((l) => l.startsWith('round 1/2 '))).toHaveLength(10); // 40 in groups of 4: each tenth
    expect(lines[11]).toBe('round 2/2: 10 candidates on validation images 256..1,024');
    expect(lines.filter((l) => l.startsWith('round 2/2 '))).toHaveLength(3); // 4, 8, 10 of 10: tenths 4, 8, 10
    expect(json.text()).toBe('');
  });
});
