// The paper's analyses on a small synthetic one-shot model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readJsonLines } from '../../src/util/files';
import { correlationStudy, dropoutStudy, klStudy } from '../../src/study/studies';
import { type RetrainOptions, type RetrainSummary, retrain, retrainJobs } from '../../src/retrain/retrain';
import { spearman } from '../../src/report/correlation';
import { metricsLine, trainOneShot } from '../../src/train/trainOneShot';
import { PRESETS, type TrainOptions } from '../../src/train/trainOptions';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-study-'));
const base = (out: string): TrainOptions => ({
  ...PRESETS.quick,
  out,
  dataset: { name: 'synthetic' },
  net: { filters: 4, stacks: 2, cellsPerStack: 1, ghostBatch: 16, threads: 1 },
  batchSize: 32,
  steps: 30,
  evalEvery: 10,
  evalArchs: 1,
  evalLimit: 32,
  checkpointEvery: 30,
});

describe('studies', () => {
  const run = path.join(root, 'run');
  beforeAll(async () => {
    await trainOneShot({ ...base(run), trackKl: 2 });
  });

  it('records KL of tracked architectures during training (--track-kl)', () => {
    const lines = readJsonLines(path.join(run, 'metrics.jsonl'), metricsLine);
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      expect(l.kl).toHaveLength(2);
      for (const k of l.kl!) expect(k).toBeGreaterThanOrEqual(0);
    }
  });

  it('kl: scores candidates by KL and one-shot accuracy', async () => {
    const r = await klStudy({
      supernet: run,
      out: path.join(run, 'study-kl'),
      references: 2,
      candidates: 8,
      examples: 32,
      valLimit: 64,
      seed: 1,
      threads: 1,
    });
    expect(r.rows).toHaveLength(8);
    expect(r.rows.every((x) => x.kl >= 0 && x.accuracy >= 0 && x.accuracy <= 1)).toBe(true);
    expect(Math.abs(r.spearman)).toBeLessThanOrEqual(1);
    expect(fs.existsSync(r.file)).toBe(true);
  });

  it('correlation: buckets, retrains over seeds and reports rank correlations with intervals and the seed-to-seed rho', async () => {
    const r = await correlationStudy({
      supernet: run,
      out: path.join(run, 'study-correlation'),
      sample: 12,
      buckets: 3,
      perBucket: 1,
      epochs: 1,
      runs: 2,
      filters: 4,
      valLimit: 64,
      seed: 0,
      threads: 2,
      resamples: 200,
    });
    if (r.aborted) throw new Error('aborted');
    expect(r.rows.length).toBeGreaterThanOrEqual(2);
    expect(r.rows.length).toBeLessThanOrEqual(3);
    for (const row of r.rows) {
      expect(row.standaloneRuns).toHaveLength(2);
      expect(row.standalone).toBeCloseTo((row.standaloneRuns[0] + row.standaloneRuns[1]) / 2, 12);
    }
    expect(r.spearman).toBe(
      spearman(
        r.rows.map((x) => x.oneShot),
        r.rows.map((x) => x.standalone),
      ),
    );
    expect(r.spearmanInterval.low).toBeLessThanOrEqual(r.spearmanInterval.high);
    expect(r.seedSpearman).toBe(
      spearman(
        r.rows.map((x) => x.standaloneRuns[0]),
        r.rows.map((x) => x.standaloneRuns[1]),
      ),
    );
    const saved = JSON.parse(fs.readFileSync(r.file, 'utf8'));
    expect(saved.rows).toHaveLength(r.rows.length);
    expect(saved.kendallInterval.level).toBe(0.95);

    // --archs: the listed architectures are scored as in the sampled study and all retrained (bucket -1).
    const list = path.join(root, 'archs.txt');
    fs.writeFileSync(list, `${r.rows.map((x) => x.arch).join('\n')}\n`);
    const g = await correlationStudy({
      supernet: run,
      out: path.join(run, 'study-archs'),
      archs: list,
      sample: 1,
      buckets: 1,
      perBucket: 1,
      epochs: 1,
      runs: 2,
      filters: 4,
      valLimit: 64,
      seed: 0,
      threads: 2,
      resamples: 200,
    });
    if (g.aborted) throw new Error('aborted');
    expect(g.rows.map((x) => [x.arch, x.oneShot, x.standalone, x.bucket])).toEqual(
      r.rows.map((x) => [x.arch, x.oneShot, x.standalone, -1]),
    );
  });

  it('correlation without a supernet trains its one-shot model first, once (the API does the whole study)', async () => {
    const out = path.join(root, 'study-whole');
    const options = {
      oneShot: { ...base(path.join(root, 'ignored')), steps: 10, evalEvery: undefined },
      out,
      sample: 4,
      buckets: 2,
      perBucket: 1,
      epochs: 1,
      runs: 1,
      filters: 4,
      valLimit: 32,
      seed: 0,
      threads: 1,
      resamples: 50,
    };
    const stages: string[] = [];
    let trainSteps = 0;
    const first = await correlationStudy(options, {
      onEvent: (e) => {
        if (e.type === 'stage') stages.push(e.stage);
        if (e.type === 'train' && e.event.type === 'step') trainSteps++;
      },
    });
    if (first.aborted) throw new Error('aborted');
    expect(stages).toEqual(['oneshot', 'score', 'retrain']);
    expect(trainSteps).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(out, 'oneshot', 'result.json'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'ignored'))).toBe(false); // the study's folder, not the options' out
    // Again: the trained model and the finished runs are reused, the result is the same.
    stages.length = 0;
    const again = await correlationStudy(options, { onEvent: (e) => e.type === 'stage' && stages.push(e.stage) });
    if (again.aborted) throw new Error('aborted');
    expect(stages).toEqual(['score', 'retrain']);
    expect(again.rows).toEqual(first.rows);
    await expect(correlationStudy({ ...options, oneShot: undefined })).rejects.toMatchObject({ code: 'ERR_NAS_BAD_CONFIG' });
  });

  it('retrains runs concurrently (one thread each) to the results of one run at a time', async () => {
    const archs = ['0:sep3/1:identity/2:maxpool/3:avgpool', '01:conv7x1/0:sep5/12:identity/3:sep3'];
    const opts = (out: string, threads: number, jobs: number): RetrainOptions => ({
      out,
      dataset: { name: 'synthetic' },
      net: { filters: 4, stacks: 2, cellsPerStack: 1, threads },
      epochs: 1,
      batchSize: 32,
      learningRate: { kind: 'cosine', base: 0.05 },
      momentum: 0.9,
      weightDecay: 1e-4,
      cropPad: 0,
      flip: false,
      runs: 2,
      seed: 3,
      evalBatchSize: 64,
      export: false,
      jobs,
    });
    expect(retrainJobs({ threads: 2, jobs: 2 }, 4)).toEqual({ jobs: 2, threads: 1 });
    expect(retrainJobs({ threads: 2, device: 'cuda' }, 4)).toEqual({ jobs: 1, threads: 2 });
    expect(retrainJobs({}, 1)).toEqual({ jobs: 1, threads: 1 }); // one run on the CPU: still one intra-op thread
    const one = await retrain(archs, opts(path.join(root, 'pool-1'), 1, 1));
    const two = await retrain(archs, opts(path.join(root, 'pool-2'), 2, 2));
    const key = (s: RetrainSummary[]): unknown =>
      s.map((x) => x.runs.map((r) => [r.arch, r.run, r.validationAccuracy, r.testAccuracy, r.testLoss]));
    expect(key(two.summaries)).toEqual(key(one.summaries));
  });

  it('dropout: trains one model per constant rate and scores a common sample', async () => {
    const r = await dropoutStudy(
      { ...base(root), steps: 20 },
      { out: path.join(root, 'dropout'), rates: [1e-6, 0.3], sample: 6, valLimit: 64, seed: 0 },
    );
    expect(r.rows.map((x) => x.rate)).toEqual([1e-6, 0.3]);
    expect(r.rows[0].rhoVsFirst).toBeCloseTo(1, 9);
    for (const x of r.rows) expect(x.minAccuracy).toBeLessThanOrEqual(x.maxAccuracy);
  });
});
