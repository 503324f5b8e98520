// Progress of long stages (retraining): a line at least every interval outside a terminal, JSON lines with --json.
import { describe, expect, it } from 'vitest';
import { RetrainProgress } from '../../src/cli/progress';

function sink(): { stream: NodeJS.WriteStream; text: () => string } {
  const parts: string[] = [];
  return { stream: { write: (s: string) => parts.push(s) > 0 } as unknown as NodeJS.WriteStream, text: () => parts.join('') };
}

const events = (n: number) => Array.from({ length: n }, (_, i) => ({
  arch: '0:sep3/1:identity/2:maxpool/3:avgpool', run: 0, step: i + 1, totalSteps: n, loss: 1 / (i + 1), accuracy: 0.5,
  doneSteps: n + i + 1, allSteps: 3 * n, doneRuns: 1, allRuns: 3,
}));

describe('retraining progress', () => {
  it('prints plain lines no more often than the interval, and always the last step', () => {
    const quiet = sink();
    const p = new RetrainProgress('plain', quiet.stream, 1e9);
    events(50).forEach((e) => p.step(e));
    expect(quiet.text().trim().split('\n')).toEqual([expect.stringMatching(/^runs 1\/3, step 50\/50 loss 0\.020 acc 0\.500 \| [\d.]+ steps\/s ETA /)]);
    const every = sink();
    const q = new RetrainProgress('plain', every.stream, 0);
    events(5).forEach((e) => q.step(e));
    expect(every.text().trim().split('\n')).toHaveLength(5);
  });

  it('writes JSON progress lines with --json', () => {
    const out = sink();
    const p = new RetrainProgress('json', out.stream, 0);
    p.step({ ...events(20)[14] });
    const line = JSON.parse(out.text());
    expect(line).toMatchObject({ type: 'progress', stage: 'retrain', step: 15, totalSteps: 20, doneSteps: 35, allSteps: 60, doneRuns: 1, allRuns: 3 });
    expect(typeof line.etaSeconds).toBe('number');
  });
});
