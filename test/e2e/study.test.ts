// The paper's analyses on a small synthetic one-shot model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readJsonLines } from '../../src/util/files';
import { correlationStudy, dropoutStudy, klStudy } from '../../src/study/studies';
import { MetricsLine, trainOneShot } from '../../src/train/trainOneShot';
import { PRESETS, TrainOptions } from '../../src/train/trainOptions';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-study-'));
const base = (out: string): TrainOptions => ({
  ...PRESETS.quick, out, dataset: { name: 'synthetic' }, net: { filters: 4, stacks: 2, cellsPerStack: 1, ghostBatch: 16, threads: 1 },
  batchSize: 32, steps: 30, evalEvery: 10, evalArchs: 1, evalLimit: 32, checkpointEvery: 30,
});

describe('studies', () => {
  const run = path.join(root, 'run');
  beforeAll(async () => {
    await trainOneShot({ ...base(run), trackKl: 2 });
  });

  it('records KL of tracked architectures during training (--track-kl)', () => {
    const lines = readJsonLines<MetricsLine>(path.join(run, 'metrics.jsonl'));
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      expect(l.kl).toHaveLength(2);
      for (const k of l.kl!) expect(k).toBeGreaterThanOrEqual(0);
    }
  });

  it('kl: scores candidates by KL and one-shot accuracy', async () => {
    const r = await klStudy({ supernet: run, out: path.join(run, 'study-kl'), references: 2, candidates: 8, examples: 32, valLimit: 64, seed: 1, threads: 1 });
    expect(r.rows).toHaveLength(8);
    expect(r.rows.every((x) => x.kl >= 0 && x.accuracy >= 0 && x.accuracy <= 1)).toBe(true);
    expect(Math.abs(r.spearman)).toBeLessThanOrEqual(1);
    expect(fs.existsSync(r.file)).toBe(true);
  });

  it('correlation: buckets, retrains over seeds and reports rank correlations', async () => {
    const r = await correlationStudy({ supernet: run, out: path.join(run, 'study-correlation'), sample: 12, buckets: 3, perBucket: 1, epochs: 1, runs: 2, filters: 4, valLimit: 64, seed: 0, threads: 1 });
    expect(r.rows.length).toBeGreaterThanOrEqual(2);
    expect(r.rows.length).toBeLessThanOrEqual(3);
    expect(Number.isFinite(r.spearman)).toBe(true);
    expect(JSON.parse(fs.readFileSync(r.file, 'utf8')).rows).toHaveLength(r.rows.length);
  });

  it('dropout: trains one model per constant rate and scores a common sample', async () => {
    const r = await dropoutStudy({ ...base(root), steps: 20 }, { out: path.join(root, 'dropout'), rates: [1e-6, 0.3], sample: 6, valLimit: 64, seed: 0 });
    expect(r.rows.map((x) => x.rate)).toEqual([1e-6, 0.3]);
    expect(r.rows[0].rhoVsFirst).toBeCloseTo(1, 9);
    for (const x of r.rows) expect(x.minAccuracy).toBeLessThanOrEqual(x.maxAccuracy);
  });
});
