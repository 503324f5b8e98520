/**
 * The paper's experiments as functions: correlation (Figure 5), dropout (Figure 4) and KL (Figures 6 and 7).
 * Each writes its results as JSON into its folder and reuses the search, retrain and train stages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NativeData } from '../Supernet';
import { RetrainEvent, retrain } from '../retrain/retrain';
import { kendall, spearman } from '../report/correlation';
import { runSearch, SearchEvent } from '../search/runSearch';
import { openSupernet } from '../search/openSupernet';
import { SearchResult } from '../search/select';
import { formatArchitecture } from '../space/architecture';
import { sampleArchitectures } from '../space/sampleArchitecture';
import { TrainEvent, trainOneShot } from '../train/trainOneShot';
import { TrainOptions, withOverrides } from '../train/trainOptions';
import { appendJsonLine, readJsonLines, writeFileAtomic, makeDir } from '../util/files';
import { Rng } from '../util/rng';
import { klProbe, klScores, sampleReference } from './klStudy';

export interface CorrelationRow {
  arch: string;
  oneShot: number;
  standalone: number;
  standaloneStd: number;
  params: number;
  bucket: number;
}

export interface CorrelationStudy {
  rows: CorrelationRow[];
  spearman: number;
  kendall: number;
  file: string;
}

/** Picks `perBucket` architectures (seeded) from each of `buckets` equal-width one-shot accuracy buckets. */
export function bucketSample(results: SearchResult[], buckets: number, perBucket: number, seed: number): { r: SearchResult; bucket: number }[] {
  const acc = results.map((r) => r.accuracy);
  const lo = Math.min(...acc);
  const hi = Math.max(...acc);
  const rng = new Rng(seed);
  const out: { r: SearchResult; bucket: number }[] = [];
  for (let b = 0; b < buckets; b++) {
    const pool = results.filter((r) => {
      const k = hi > lo ? Math.min(buckets - 1, Math.floor(((r.accuracy - lo) / (hi - lo)) * buckets)) : 0;
      return k === b;
    });
    for (let i = 0; i < perBucket && pool.length; i++) out.push({ r: pool.splice(rng.below(pool.length), 1)[0], bucket: b });
  }
  return out;
}

/** Figure 5: one-shot vs stand-alone accuracy over a bucketed sample, with Spearman's rho and Kendall's tau. */
export async function correlationStudy(
  o: { supernet: string; out: string; sample: number; buckets: number; perBucket: number; epochs: number; runs: number; filters: number; valLimit?: number; seed: number; threads?: number },
  hooks: { signal?: AbortSignal; onSearch?: (e: SearchEvent) => void; onRetrain?: (e: RetrainEvent) => void } = {},
): Promise<CorrelationStudy> {
  makeDir(o.out);
  const results = path.join(o.out, 'search.jsonl');
  await runSearch({ supernet: o.supernet, out: results, count: o.sample, seed: o.seed, valLimit: o.valLimit, threads: o.threads }, { signal: hooks.signal, onEvent: hooks.onSearch });
  const { options } = await (async () => {
    const opened = await openSupernet(o.supernet, { threads: 1 });
    opened.net.dispose();
    return opened;
  })();
  const picked = bucketSample(readJsonLines<SearchResult>(results), o.buckets, o.perBucket, o.seed);
  const r = await retrain(picked.map((p) => p.r.arch), {
    out: path.join(o.out, 'retrain'), dataset: options.dataset,
    net: { filters: o.filters, stacks: options.net.stacks, cellsPerStack: options.net.cellsPerStack, threads: o.threads },
    epochs: o.epochs, batchSize: 64, learningRate: { kind: 'cosine', base: options.learningRate.base }, momentum: options.momentum,
    weightDecay: options.weightDecay, cropPad: options.cropPad, flip: options.flip, runs: o.runs, seed: o.seed, evalBatchSize: 256, export: false,
  }, { signal: hooks.signal, onEvent: hooks.onRetrain });
  const rows: CorrelationRow[] = picked.flatMap((p) => {
    const s = r.summaries.find((x) => x.arch === p.r.arch);
    if (!s) return [];
    const val = s.runs.map((x) => x.validationAccuracy);
    const mean = val.reduce((a, b) => a + b, 0) / val.length;
    const std = Math.sqrt(val.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, val.length - 1));
    return [{ arch: p.r.arch, oneShot: p.r.accuracy, standalone: mean, standaloneStd: std, params: p.r.params, bucket: p.bucket }];
  });
  const study: CorrelationStudy = {
    rows,
    spearman: spearman(rows.map((x) => x.oneShot), rows.map((x) => x.standalone)),
    kendall: kendall(rows.map((x) => x.oneShot), rows.map((x) => x.standalone)),
    file: path.join(o.out, 'correlation.json'),
  };
  writeFileAtomic(study.file, `${JSON.stringify(study, null, 2)}\n`);
  return study;
}

export interface DropoutRow {
  rate: number;
  out: string;
  meanAccuracy: number;
  stdAccuracy: number;
  minAccuracy: number;
  maxAccuracy: number;
  /** Spearman's rho between the one-shot accuracies of this model and those of the first rate's model. */
  rhoVsFirst: number;
}

/** Figure 4: one-shot models trained with constant dropout rates, scored on one common sample of architectures. */
export async function dropoutStudy(
  base: TrainOptions,
  o: { out: string; rates: number[]; sample: number; valLimit?: number; seed: number },
  hooks: { signal?: AbortSignal; onTrain?: (rate: number, e: TrainEvent) => void } = {},
): Promise<{ rows: DropoutRow[]; file: string }> {
  const archs = sampleArchitectures(o.sample, o.seed).map(formatArchitecture);
  const perRate: { rate: number; out: string; acc: number[] }[] = [];
  for (const rate of o.rates) {
    const out = path.join(o.out, `r${rate}`);
    const opts = withOverrides(base, { out, dropout: { kind: 'constant', rate } });
    if (!fs.existsSync(path.join(out, 'result.json'))) {
      const res = await trainOneShot(opts, { resume: true, signal: hooks.signal, onEvent: (e) => hooks.onTrain?.(rate, e) });
      if (res.aborted) throw Object.assign(new Error('aborted'), { aborted: true });
    }
    const opened = await openSupernet(out);
    try {
      const val = new NativeData(opened.data.validation, opened.data.mean, opened.data.std);
      const ev = await opened.net.evaluate(val, archs, { count: Math.min(o.valLimit ?? opened.data.validation.n, opened.data.validation.n), signal: hooks.signal });
      perRate.push({ rate, out, acc: ev.map((e) => e.accuracy) });
      for (const e of ev) appendJsonLine(path.join(o.out, 'scores.jsonl'), { rate, arch: e.arch, accuracy: e.accuracy, loss: e.loss });
    } finally {
      opened.net.dispose();
    }
  }
  const rows = perRate.map((p) => {
    const mean = p.acc.reduce((a, b) => a + b, 0) / p.acc.length;
    return {
      rate: p.rate, out: p.out, meanAccuracy: mean,
      stdAccuracy: Math.sqrt(p.acc.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, p.acc.length - 1)),
      minAccuracy: Math.min(...p.acc), maxAccuracy: Math.max(...p.acc), rhoVsFirst: spearman(perRate[0].acc, p.acc),
    };
  });
  const file = path.join(o.out, 'dropout.json');
  writeFileAtomic(file, `${JSON.stringify({ archs, rows }, null, 2)}\n`);
  return { rows, file };
}

export interface KlRow {
  arch: string;
  kl: number;
  accuracy: number;
}

/** Figure 6: KL against references vs one-shot validation accuracy, and their rank correlation (expected < 0). */
export async function klStudy(o: { supernet: string; out: string; references: number; candidates: number; examples: number; valLimit?: number; seed: number; threads?: number }): Promise<{ rows: KlRow[]; spearman: number; kendall: number; file: string }> {
  const opened = await openSupernet(o.supernet, { threads: o.threads });
  try {
    const rng = new Rng(o.seed);
    const refs = Array.from({ length: o.references }, () => sampleReference(rng, opened.net.config.blocks));
    const candidates = sampleArchitectures(o.candidates, o.seed + 1);
    const probe = klProbe(opened.data, o.examples, o.seed + 2);
    const kls = klScores(opened.net, probe, refs, candidates);
    const val = new NativeData(opened.data.validation, opened.data.mean, opened.data.std);
    const ev = await opened.net.evaluate(val, candidates.map(formatArchitecture), { count: Math.min(o.valLimit ?? opened.data.validation.n, opened.data.validation.n) });
    const rows = candidates.map((c, i) => ({ arch: formatArchitecture(c), kl: kls[i], accuracy: ev[i].accuracy }));
    const file = path.join(o.out, 'kl.json');
    const result = { rows, spearman: spearman(rows.map((r) => r.kl), rows.map((r) => r.accuracy)), kendall: kendall(rows.map((r) => r.kl), rows.map((r) => r.accuracy)), file };
    makeDir(o.out);
    writeFileAtomic(file, `${JSON.stringify({ references: refs.map(formatArchitecture), ...result }, null, 2)}\n`);
    return result;
  } finally {
    opened.net.dispose();
  }
}

