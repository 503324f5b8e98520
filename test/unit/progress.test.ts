// Progress of long stages (retraining): a line at least every interval outside a terminal, JSON lines with --json,
// rates and ETAs over all runs of a call (several train at once).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CountProgress, RetrainProgress, TrainProgress } from '../../src/cli/progress';

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
