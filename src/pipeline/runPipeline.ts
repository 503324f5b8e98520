/**
 * The whole method in one call: train the one-shot model -> search -> select -> retrain -> report, in one run
 * directory. Every stage resumes: a finished stage is skipped, an interrupted one continues from its own files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildReport, type ReportPlotEvent, type ReportSummary } from '../report/buildReport';
import { type RetrainEvent, type RetrainSummary, retrain, retrainOptionsFrom } from '../retrain/retrain';
import { type ScoringMode, type SearchEvent, type SearchSummary, runSearch } from '../search/runSearch';
import { type SearchResult, type SelectionRule, searchResultLine, selectArchitectures } from '../search/select';
import type { StrategyName } from '../search/strategy';
import { type TrainEvent, type TrainResult, runFiles, trainOneShot } from '../train/trainOneShot';
import { PRESETS, type TrainOptions } from '../train/trainOptions';
import { readJsonLines } from '../util/files';
import type { DatasetSplits } from '../data/types';

/** Options of the whole method (`nasctl run`): one-shot training, search, selection and retraining. */
export interface PipelineOptions {
  train: TrainOptions;
  search: {
    count: number;
    strategy: StrategyName;
    seed: number;
    valLimit?: number;
    /** `race`: score by racing (docs/model.md#racing) with the default schedule or these fields' values. */
    scoring?: ScoringMode;
    raceFirst?: number;
    raceKeep?: number;
    raceMin?: number;
  };
  select: { rule: SelectionRule; count: number };
  retrain: { filters: number; epochs: number; runs: number; trainLimit?: number; export: boolean };
}

/** Named pipelines of `nasctl run --preset`. */
export const PIPELINE_PRESETS: Record<'quick' | 'paper', PipelineOptions> = {
  // About five minutes on 2 CPU cores.
  quick: {
    train: PRESETS.quick,
    search: { count: 100, strategy: 'random', seed: 0, valLimit: 500 },
    select: { rule: 'top', count: 2 },
    retrain: { filters: 8, epochs: 1, runs: 1, export: true },
  },
  // The paper: ~20,000 random architectures, a stratified sample of 10 from the top 100, retrained at F = 16 for 300
  // epochs (Table 1), 1 run each here (the paper reports mean +- std over several).
  paper: {
    train: PRESETS.paper,
    search: { count: 20000, strategy: 'random', seed: 0 },
    select: { rule: 'top-stratified', count: 10 },
    retrain: { filters: 16, epochs: 300, runs: 1, export: true },
  },
};

/** Progress of `runPipeline`: stage changes and the events of the stage that runs. */
export type PipelineEvent =
  | { type: 'stage'; stage: 'train' | 'search' | 'retrain' | 'report'; skipped: boolean }
  | { type: 'train'; event: TrainEvent }
  | { type: 'search'; event: SearchEvent }
  | { type: 'retrain'; event: RetrainEvent }
  | { type: 'report'; event: ReportPlotEvent };

/** What each stage produced (absent for a stage that did not run), and whether a signal stopped it. */
export interface PipelineResult {
  out: string;
  aborted: boolean;
  train?: TrainResult;
  search?: SearchSummary;
  selected?: SearchResult[];
  retrained?: RetrainSummary[];
  report?: ReportSummary;
}

/** Runs train -> search -> select -> retrain -> report in `o.train.out`, resuming every stage from its files. */
export async function runPipeline(
  o: PipelineOptions,
  hooks: {
    signal?: AbortSignal;
    onEvent?: (e: PipelineEvent) => void;
    /** Splits built in memory, used by every stage instead of `o.train.dataset`. */
    data?: DatasetSplits;
  } = {},
): Promise<PipelineResult> {
  const out = o.train.out;
  const files = runFiles(out);
  const emit = hooks.onEvent ?? ((): void => undefined);
  const result: PipelineResult = { out, aborted: false };

  const trained = fs.existsSync(files.result);
  emit({ type: 'stage', stage: 'train', skipped: trained });
  if (!trained) {
    result.train = await trainOneShot(o.train, {
      resume: true,
      signal: hooks.signal,
      data: hooks.data,
      onEvent: (event) => emit({ type: 'train', event }),
    });
    if (result.train.aborted) return { ...result, aborted: true };
  }

  const results = path.join(out, 'search.jsonl');
  const searched = readJsonLines(results, searchResultLine).length >= o.search.count;
  emit({ type: 'stage', stage: 'search', skipped: searched });
  result.search = await runSearch(
    { supernet: out, out: results, ...o.search },
    { signal: hooks.signal, data: hooks.data, onEvent: (event) => emit({ type: 'search', event }) },
  );
  if (result.search.aborted) return { ...result, aborted: true };

  result.selected = selectArchitectures(readJsonLines(results, searchResultLine), o.select);
  emit({ type: 'stage', stage: 'retrain', skipped: false });
  const retrainOptions = retrainOptionsFrom(o.train, { out: path.join(out, 'retrain'), ...o.retrain });
  const r = await retrain(
    result.selected.map((s) => s.arch),
    retrainOptions,
    { signal: hooks.signal, data: hooks.data, onEvent: (event) => emit({ type: 'retrain', event }) },
  );
  result.retrained = r.summaries;
  if (r.aborted) return { ...result, aborted: true };

  emit({ type: 'stage', stage: 'report', skipped: false });
  result.report = await buildReport(out, { onPlot: (event) => emit({ type: 'report', event }) });
  return result;
}
