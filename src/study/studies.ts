/**
 * The paper's experiments as functions: correlation (Figure 5), dropout (Figure 4) and KL (Figures 6 and 7).
 * Each writes its results as JSON into its folder and reuses the search, retrain and train stages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NativeData } from '../model/Supernet';
import { type RetrainEvent, meanStd, retrain, retrainOptionsFrom } from '../retrain/retrain';
import { type Interval, bootstrapInterval, kendall, meanPairwiseSpearman, spearman } from '../report/correlation';
import { runSearch, type SearchEvent } from '../search/runSearch';
import { openSupernet, readSupernetOptions } from '../search/openSupernet';
import { type SearchResult, searchResultLine } from '../search/select';
import { formatArchitecture } from '../space/architecture';
import { sampleArchitectures } from '../space/sampleArchitecture';
import { type TrainEvent, readRunOptions, trainOneShot } from '../train/trainOneShot';
import { PRESETS, type TrainOptions, withOverrides } from '../train/trainOptions';
import { appendJsonLine, readJsonLines, writeFileAtomic, makeDir } from '../util/files';
import { Rng } from '../util/rng';
import { invalidParameter } from '../util/errors';
import { klProbe, klScores, sampleReference } from '../train/kl';

/** One architecture of a correlation study: its one-shot score and stand-alone accuracies. */
export interface CorrelationRow {
  arch: string;
  oneShot: number;
  /** Mean stand-alone validation accuracy over the runs, their standard deviation, and each run's (by seed). */
  standalone: number;
  standaloneStd: number;
  standaloneRuns: number[];
  params: number;
  /** One-shot accuracy bucket the architecture was drawn from (-1: given with --archs). */
  bucket: number;
}

/** The result of a correlation study (correlation.json). */
export interface CorrelationStudy {
  rows: CorrelationRow[];
  /** One-shot accuracy vs mean stand-alone validation accuracy, with bootstrap 95% intervals. */
  spearman: number;
  kendall: number;
  spearmanInterval: Interval;
  kendallInterval: Interval;
  /**
   * How repeatable the stand-alone ranking is: Spearman's rho between the runs (seeds), averaged over pairs of runs;
   * null with one run. A correlation with one-shot accuracy cannot be clearer than this.
   */
  seedSpearman: number | null;
  file: string;
  options: CorrelationOptions;
}

/** What a correlation study scores and retrains (Figure 5). */
export interface CorrelationOptions {
  /** Run directory of a trained one-shot model; without it the study trains `oneShot` into `<out>/oneshot` first. */
  supernet?: string;
  /** The one-shot training the study runs when `supernet` is not given (a preset's `oneShot`; its `out` is replaced). */
  oneShot?: TrainOptions;
  /** Study folder: search results, retraining runs, correlation.json. */
  out: string;
  /** Architectures sampled and scored, and the sample's equal-width one-shot accuracy buckets and picks per bucket. */
  sample: number;
  buckets: number;
  perBucket: number;
  /** Score and retrain exactly these instead (a file as for `nasctl search --archs`). */
  archs?: string;
  /** Stand-alone training: epochs, runs (seeds) per architecture, F, ghost batch, training and test examples. */
  epochs: number;
  runs: number;
  filters: number;
  ghostBatch?: number;
  trainLimit?: number;
  testLimit?: number;
  /** Validation images of the one-shot scores (default: all). Stand-alone models use the whole validation split. */
  valLimit?: number;
  seed: number;
  threads?: number;
  /** Device of the scores and the stand-alone runs (default: the one-shot model's). */
  device?: string;
  /** Stand-alone runs trained at once (see RetrainOptions.jobs). */
  jobs?: number;
  /** Bootstrap resamples of the intervals. */
  resamples?: number;
}

/** Named studies: the one-shot model to train (when none is given) and the study's options. */
export interface CorrelationPreset {
  oneShot: TrainOptions;
  study: Omit<CorrelationOptions, 'supernet' | 'oneShot' | 'out'>;
}

/** Names of the correlation presets (`nasctl study correlation --preset`). */
export const CORRELATION_PRESET_NAMES = ['quick', 'fidelity', 'gpu', 'paper'] as const;
/** A correlation preset's name. */
export type CorrelationPresetName = (typeof CORRELATION_PRESET_NAMES)[number];

/** The correlation presets: quick (minutes), fidelity (a 2-core CPU, ~75 minutes), gpu (one or two short GPU windows), paper (a GPU, hours). */
export const CORRELATION_PRESETS: Record<CorrelationPresetName, CorrelationPreset> = {
  // Minutes on 2 cores; shows the machinery, not the finding (stand-alone seeds disagree at one epoch).
  quick: {
    oneShot: { ...PRESETS.quick, out: 'runs/correlation-quick/oneshot' },
    study: {
      sample: 100,
      valLimit: 1000,
      buckets: 4,
      perBucket: 2,
      epochs: 1,
      runs: 2,
      filters: 8,
      trainLimit: 12000,
      testLimit: 2000,
      seed: 0,
    },
  },
  // Sized for a 2-core CPU (about 75 minutes, docs/results.md#the-correlation-study-on-2-cpu-cores): the one-shot model on all 55,000 training images for 2 epochs
  // with a *constant* path dropout rate r = 0.1 (the paper's Figure 4 protocol). The linear ramp of the paper's
  // 10,000-step run leaves a 2-epoch model trained mostly with every path on: its one-shot accuracy then follows how
  // many paths an architecture keeps, not what trains well (docs/results.md#the-correlation-study-on-2-cpu-cores). 240 architectures scored (one-shot accuracies
  // crowd at the top: the low buckets need a large sample); 2 per each of 10 buckets retrained at F = 8 on 12,000
  // images for 2 epochs, twice.
  fidelity: {
    oneShot: {
      ...PRESETS.quick,
      out: 'runs/correlation-fidelity/oneshot',
      dataset: { name: 'fashion-mnist' },
      dropout: { kind: 'constant', rate: 0.1 },
      evalEvery: undefined,
      evalLimit: 1000,
    },
    study: {
      sample: 240,
      valLimit: 2000,
      buckets: 10,
      perBucket: 2,
      epochs: 2,
      runs: 2,
      filters: 8,
      trainLimit: 12000,
      testLimit: 2000,
      seed: 0,
    },
  },
  // Fashion-MNIST on one GPU, about 11.5 minutes of study by the estimate in docs/results.md#the-gpu-correlation-presets-budget (the first H200 run was 4 to 13 times slower): the
  // one-shot model at F = 16 on all 55,000 training images, 1,000 steps of the paper's batch (1,024 = 32 ghost
  // batches of 32) with constant path dropout r = 0.1 (the fidelity preset's reason); 1,000 architectures scored on
  // the whole validation split; 2 per each of 10 buckets retrained at F = 16 on all training images for 6 epochs
  // (5,154 steps, 14x the 374 steps that the fidelity study found too short), twice, 8 runs at once.
  gpu: {
    oneShot: {
      ...PRESETS.quick,
      out: 'runs/correlation-gpu/oneshot',
      dataset: { name: 'fashion-mnist' },
      net: { ...PRESETS.quick.net, filters: 16, device: 'cuda' },
      epochs: 19,
      steps: 1000,
      batchSize: 1024,
      learningRate: { kind: 'cosine', base: 0.1, warmupSteps: 20 },
      dropout: { kind: 'constant', rate: 0.1 },
      evalEvery: 100,
      evalLimit: 1000,
    },
    study: { sample: 1000, buckets: 10, perBucket: 2, epochs: 6, runs: 2, filters: 16, jobs: 8, seed: 0 },
  },
  // The paper's protocol (for a GPU): the paper's one-shot run; stand-alone models trained for 28 epochs at batch 64
  // with ghost batches of 32, 5 runs each; 20 architectures from 10 buckets of 1,000 scored.
  paper: {
    oneShot: { ...PRESETS.paper, out: 'runs/correlation-paper/oneshot' },
    study: { sample: 1000, buckets: 10, perBucket: 2, epochs: 28, runs: 5, filters: 16, seed: 0 },
  },
};

/**
 * Picks `perBucket` architectures (seeded) from each of `buckets` equal-width one-shot accuracy buckets. One-shot
 * accuracies crowd at the top, so the low buckets often hold fewer: their share is then taken, one at a time, from
 * the other buckets, lowest first, so that the study retrains `buckets * perBucket` architectures whenever the
 * sample has that many.
 */
export function bucketSample(
  results: SearchResult[],
  buckets: number,
  perBucket: number,
  seed: number,
): { r: SearchResult; bucket: number }[] {
  const acc = results.map((r) => r.accuracy);
  const lo = Math.min(...acc);
  const hi = Math.max(...acc);
  const rng = new Rng(seed);
  const pools: SearchResult[][] = Array.from({ length: buckets }, () => []);
  for (const r of results) pools[hi > lo ? Math.min(buckets - 1, Math.floor(((r.accuracy - lo) / (hi - lo)) * buckets)) : 0].push(r);
  const out: { r: SearchResult; bucket: number }[] = [];
  const take = (b: number): void => {
    out.push({ r: pools[b].splice(rng.below(pools[b].length), 1)[0], bucket: b });
  };
  for (let b = 0; b < buckets; b++) for (let i = 0; i < perBucket && pools[b].length; i++) take(b);
  const want = Math.min(buckets * perBucket, results.length);
  while (out.length < want) {
    for (let b = 0; b < buckets && out.length < want; b++) if (pools[b].length) take(b);
  }
  return out;
}

/** The study's statistics over its rows (exported for tests and for re-analysis of a correlation.json). */
export function correlationStatistics(
  rows: CorrelationRow[],
  o: { resamples?: number; seed?: number } = {},
): Pick<CorrelationStudy, 'spearman' | 'kendall' | 'spearmanInterval' | 'kendallInterval' | 'seedSpearman'> {
  const x = rows.map((r) => r.oneShot);
  const y = rows.map((r) => r.standalone);
  const spearmanInterval = bootstrapInterval(x, y, spearman, { resamples: o.resamples, seed: o.seed });
  const kendallInterval = bootstrapInterval(x, y, kendall, { resamples: o.resamples, seed: o.seed });
  const runs = Math.min(...rows.map((r) => r.standaloneRuns.length));
  const columns = Array.from({ length: runs }, (_, k) => rows.map((r) => r.standaloneRuns[k]));
  return {
    spearman: spearmanInterval.value,
    kendall: kendallInterval.value,
    spearmanInterval,
    kendallInterval,
    seedSpearman: runs >= 2 ? meanPairwiseSpearman(columns) : null,
  };
}

/** Progress of a correlation study: stage changes and the events of scoring and retraining. */
export type CorrelationEvent =
  | { type: 'stage'; stage: 'oneshot' | 'score' | 'retrain' }
  | { type: 'train'; event: TrainEvent }
  | { type: 'search'; event: SearchEvent }
  | { type: 'retrain'; event: RetrainEvent };

/**
 * Figure 5: one-shot vs stand-alone accuracy over a bucketed sample (or a given list), with Spearman's rho and
 * Kendall's tau, their bootstrap 95% intervals, and the stand-alone seed-to-seed rho. Resumable: scoring and
 * retraining continue from their files.
 */
export async function correlationStudy(
  o: CorrelationOptions,
  hooks: { signal?: AbortSignal; onEvent?: (e: CorrelationEvent) => void } = {},
): Promise<(CorrelationStudy & { aborted: false }) | { aborted: true }> {
  const emit = hooks.onEvent ?? ((): void => undefined);
  if (o.supernet === undefined && o.oneShot === undefined)
    throw invalidParameter('supernet', 'a trained one-shot run directory, or oneShot: the training to run', undefined);
  makeDir(o.out);
  // The one-shot model, trained (and resumed) in the study's folder unless one is given; a finished run is reused.
  const supernet = o.supernet ?? path.join(o.out, 'oneshot');
  if (o.supernet === undefined && !fs.existsSync(path.join(supernet, 'result.json'))) {
    emit({ type: 'stage', stage: 'oneshot' });
    const trained = await trainOneShot(
      { ...(o.oneShot as TrainOptions), out: supernet },
      { resume: true, signal: hooks.signal, onEvent: (event) => emit({ type: 'train', event }) },
    );
    if (trained.aborted) return { aborted: true };
  }
  const results = path.join(o.out, o.archs !== undefined ? 'archs.jsonl' : 'search.jsonl');
  emit({ type: 'stage', stage: 'score' });
  // A finished sample is not opened again: the one-shot model's checkpoint is then no longer needed (a study moved
  // between GPU windows travels without it, docs/gpu.md).
  const sampled = o.archs === undefined && fs.existsSync(results) ? readJsonLines(results, searchResultLine).length : 0;
  if (o.archs !== undefined || sampled < o.sample) {
    const searched = await runSearch(
      {
        supernet,
        out: results,
        count: o.archs !== undefined ? undefined : o.sample,
        archs: o.archs,
        seed: o.seed,
        valLimit: o.valLimit,
        threads: o.threads,
        device: o.device,
      },
      { signal: hooks.signal, onEvent: (event) => emit({ type: 'search', event }) },
    );
    if (searched.aborted) return { aborted: true };
  }
  // The run's options from its checkpoint, or from its config.json when the checkpoint stayed behind (above).
  const moved =
    o.archs === undefined &&
    sampled >= o.sample &&
    !fs.existsSync(path.join(supernet, 'checkpoint.pt')) &&
    fs.existsSync(path.join(supernet, 'config.json'));
  const options = moved ? readRunOptions(supernet) : (await readSupernetOptions(supernet)).options;
  const scored = readJsonLines(results, searchResultLine);
  const picked = o.archs !== undefined ? scored.map((r) => ({ r, bucket: -1 })) : bucketSample(scored, o.buckets, o.perBucket, o.seed);
  emit({ type: 'stage', stage: 'retrain' });
  const retrainOptions = retrainOptionsFrom(options, {
    out: path.join(o.out, 'retrain'),
    filters: o.filters,
    epochs: o.epochs,
    runs: o.runs,
    trainLimit: o.trainLimit,
    testLimit: o.testLimit,
    ghostBatch: o.ghostBatch,
    threads: o.threads,
    device: o.device,
    jobs: o.jobs,
    seed: o.seed,
  });
  const r = await retrain(
    picked.map((p) => p.r.arch),
    retrainOptions,
    { signal: hooks.signal, onEvent: (event) => emit({ type: 'retrain', event }) },
  );
  if (r.aborted) return { aborted: true };
  const rows: CorrelationRow[] = picked.flatMap((p) => {
    const s = r.summaries.find((x) => x.arch === p.r.arch);
    if (!s) return [];
    const { mean, std } = meanStd(s.runs.map((x) => x.validationAccuracy));
    return [
      {
        arch: p.r.arch,
        oneShot: p.r.accuracy,
        standalone: mean,
        standaloneStd: std,
        standaloneRuns: s.runs.map((x) => x.validationAccuracy),
        params: p.r.params,
        bucket: p.bucket,
      },
    ];
  });
  const study: CorrelationStudy = {
    rows,
    ...correlationStatistics(rows, { resamples: o.resamples, seed: o.seed }),
    file: path.join(o.out, 'correlation.json'),
    options: o,
  };
  writeFileAtomic(study.file, `${JSON.stringify(study, null, 2)}\n`);
  return { ...study, aborted: false };
}

/** One dropout rate of the dropout study: the one-shot accuracies of its model over the common sample. */
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

/** What the dropout study trains and scores (`nasctl study dropout`); the training itself is the `base` options'. */
export interface DropoutStudyOptions {
  /** Study folder: one run directory per rate (r<rate>), scores.jsonl, dropout.json. */
  out: string;
  /** Constant dropout rates r, one one-shot model each. */
  rates: number[];
  /** Architectures sampled (seeded) and scored on every model, on this many validation images (default: all). */
  sample: number;
  valLimit?: number;
  seed: number;
}

/** Figure 4: one-shot models trained with constant dropout rates, scored on one common sample of architectures. */
export async function dropoutStudy(
  base: TrainOptions,
  o: DropoutStudyOptions,
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
      const ev = await opened.net.evaluate(val, archs, {
        count: Math.min(o.valLimit ?? opened.data.validation.n, opened.data.validation.n),
        signal: hooks.signal,
      });
      perRate.push({ rate, out, acc: ev.map((e) => e.accuracy) });
      for (const e of ev) appendJsonLine(path.join(o.out, 'scores.jsonl'), { rate, arch: e.arch, accuracy: e.accuracy, loss: e.loss });
    } finally {
      opened.net.dispose();
    }
  }
  const rows = perRate.map((p) => {
    const { mean, std } = meanStd(p.acc);
    return {
      rate: p.rate,
      out: p.out,
      meanAccuracy: mean,
      stdAccuracy: std,
      minAccuracy: Math.min(...p.acc),
      maxAccuracy: Math.max(...p.acc),
      rhoVsFirst: spearman(perRate[0].acc, p.acc),
    };
  });
  const file = path.join(o.out, 'dropout.json');
  writeFileAtomic(file, `${JSON.stringify({ archs, rows }, null, 2)}\n`);
  return { rows, file };
}

/** One candidate of the KL study: its mean symmetrized KL against the references and its one-shot accuracy. */
export interface KlRow {
  arch: string;
  kl: number;
  accuracy: number;
}

/** Progress of the KL study: forward passes of the references and candidates ('kl'), then their scores ('score'). */
export interface KlProgress {
  stage: 'kl' | 'score';
  done: number;
  total: number;
  unit: 'architectures';
}

/** What the KL study compares (`nasctl study kl`). */
export interface KlOptions {
  /** Run directory of a trained one-shot model. */
  supernet: string;
  /** Study folder (kl.json). */
  out: string;
  /** Reference architectures (sampled with r = 1e-8, the paper's) and candidates. */
  references: number;
  candidates: number;
  /** Training examples the distributions are compared on (labels unused). */
  examples: number;
  /** Validation images of the candidates' one-shot accuracy (default: all). */
  valLimit?: number;
  seed: number;
  threads?: number;
}

/** Figure 6: KL against references vs one-shot validation accuracy, and their rank correlation (expected < 0). */
export async function klStudy(
  o: KlOptions,
  hooks: { onProgress?: (p: KlProgress) => void } = {},
): Promise<{ rows: KlRow[]; spearman: number; kendall: number; file: string }> {
  const opened = await openSupernet(o.supernet, { threads: o.threads });
  try {
    const rng = new Rng(o.seed);
    const refs = Array.from({ length: o.references }, () => sampleReference(rng, opened.net.config.blocks));
    const candidates = sampleArchitectures(o.candidates, o.seed + 1);
    const probe = klProbe(opened.data, o.examples, o.seed + 2);
    const progress =
      (stage: KlProgress['stage'], total: number) =>
      (done: number): void =>
        hooks.onProgress?.({ stage, done, total, unit: 'architectures' });
    const kls = klScores(opened.net, probe, refs, candidates, progress('kl', refs.length + candidates.length));
    const val = new NativeData(opened.data.validation, opened.data.mean, opened.data.std);
    const count = Math.min(o.valLimit ?? opened.data.validation.n, opened.data.validation.n);
    const ev = await opened.net.evaluate(val, candidates.map(formatArchitecture), {
      count,
      onProgress: progress('score', candidates.length),
    });
    const rows = candidates.map((c, i) => ({ arch: formatArchitecture(c), kl: kls[i], accuracy: ev[i].accuracy }));
    const file = path.join(o.out, 'kl.json');
    const result = {
      rows,
      spearman: spearman(
        rows.map((r) => r.kl),
        rows.map((r) => r.accuracy),
      ),
      kendall: kendall(
        rows.map((r) => r.kl),
        rows.map((r) => r.accuracy),
      ),
      file,
    };
    makeDir(o.out);
    writeFileAtomic(file, `${JSON.stringify({ references: refs.map(formatArchitecture), ...result }, null, 2)}\n`);
    return result;
  } finally {
    opened.net.dispose();
  }
}
