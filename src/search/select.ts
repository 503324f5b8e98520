/** Selection of architectures from search results, as in the paper's Table 1. */
import * as fs from 'node:fs';
import { NasError, invalidParameter } from '../util/errors';
import { parseArchitecture, spaceWith } from '../space/architecture';
import { readJsonLines, objectLine } from '../util/files';
import { Rng } from '../util/rng';

/** One scored architecture (a line of search.jsonl). */
export interface SearchResult {
  index: number;
  arch: string;
  accuracy: number;
  loss: number;
  params: number;
  madds: number;
  examples: number;
  /** The proposal round (architectures proposed together before their scores were told to the strategy). */
  round?: number;
  /**
   * Racing (docs/model.md#racing): the last round the architecture was scored in; `examples` says how many
   * validation images its scores come from (fewer than a full score's when the race cut it).
   */
  rung?: number;
}

/** The line check of search results: the fields of {@link SearchResult}, and an `arch` that parses. */
export function searchResultLine(value: unknown): SearchResult | string {
  const o = objectLine(value, ['index', 'accuracy', 'loss', 'params', 'madds', 'examples'], ['arch']);
  if (typeof o === 'string') return o;
  const arch = o.arch as string;
  try {
    parseArchitecture(arch, spaceWith(arch.split('/').length));
  } catch (err) {
    return `"arch": ${(err as Error).message}`;
  }
  for (const k of ['round', 'rung'])
    if (o[k] !== undefined && !Number.isInteger(o[k])) return `"${k}": expected an integer, got ${JSON.stringify(o[k])}`;
  return o as unknown as SearchResult;
}

/**
 * The results of a search file, strictly (files.ts: readJsonLinesStrict): a damaged or malformed line is
 * ERR_NAS_BAD_RESULTS naming file:line, a torn last line of a killed search is left out; a missing file or one
 * without results is an error rather than an empty selection.
 */
export function readSearchResults(file: string): SearchResult[] {
  if (!fs.existsSync(file))
    throw new NasError('ERR_NAS_IO', `${file}: no such results file; run \`nasctl search\` first`, { path: file, code: 'ENOENT' });
  const out = readJsonLines(file, searchResultLine);
  if (!out.length) throw new NasError('ERR_NAS_BAD_RESULTS', `${file}: no results in it; run \`nasctl search\` first`, { path: file });
  return out;
}

/** How to pick architectures from search results (the paper's Table 1 rows). */
export type SelectionRule = 'top' | 'top-stratified' | 'small' | 'random';
/** Every selection rule, for option parsing. */
export const SELECTION_RULES: SelectionRule[] = ['top', 'top-stratified', 'small', 'random'];

/** A selection rule, how many to pick and its parameters. */
export interface SelectOptions {
  rule: SelectionRule;
  count: number;
  /** `small`: one-shot accuracy must be at or above this percentile of all results (default 90). */
  percentile?: number;
  /** `top-stratified`: the pool it samples from (the paper: the top 100). */
  pool?: number;
  seed?: number;
}

/** The defaults of SelectOptions (and of `nasctl select` and `nasctl retrain --from`): the paper's Table 1 settings. */
export const SELECT_DEFAULTS = { percentile: 90, pool: 100, seed: 0 } as const;

/**
 * Rank order of search results: more validation examples first (with racing, an architecture the race kept to a
 * later round beat those it cut on the images they all saw; docs/model.md#racing), then accuracy, loss and line.
 * With full scoring every result has the same examples: plain accuracy order.
 */
export const byRank = (a: SearchResult, b: SearchResult): number =>
  b.examples - a.examples || b.accuracy - a.accuracy || a.loss - b.loss || a.index - b.index;
const byAccuracy = byRank;

/** Whether search results come from a race (docs/model.md#racing): some were scored on fewer examples than others. */
export function isRaced(results: SearchResult[]): boolean {
  return results.some((r) => r.examples !== results[0].examples);
}

/** The value at percentile p (0..100) of xs, nearest-rank. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/**
 * `top`: the best `count` by one-shot accuracy. `top-stratified`: `count` spread evenly over the ranks of the best
 * `pool` (the paper's "stratified sample of the top 100"). `small`: the `count` smallest architectures whose
 * accuracy is at or above the `percentile`-th percentile ("One-Shot Small"). `random`: `count` at random (seeded).
 * Results come back ranked by one-shot accuracy.
 */
export function selectArchitectures(results: SearchResult[], o: SelectOptions): SearchResult[] {
  if (!SELECTION_RULES.includes(o.rule)) throw invalidParameter('select', `one of ${SELECTION_RULES.join(', ')}`, o.rule);
  if (!(Number.isInteger(o.count) && o.count > 0)) throw invalidParameter('count', 'a positive integer', o.count);
  const ranked = [...results].sort(byAccuracy);
  const k = Math.min(o.count, ranked.length);
  switch (o.rule) {
    case 'top':
      return ranked.slice(0, k);
    case 'top-stratified': {
      const pool = ranked.slice(0, Math.max(k, o.pool ?? SELECT_DEFAULTS.pool));
      return Array.from({ length: k }, (_, i) => pool[Math.floor((i * pool.length) / k)]);
    }
    case 'small': {
      const p = o.percentile ?? SELECT_DEFAULTS.percentile;
      if (!(p >= 0 && p <= 100)) throw invalidParameter('percentile', 'a number in 0..100', p);
      const threshold = percentile(
        ranked.map((r) => r.accuracy),
        p,
      );
      // A race's partial scores are not comparable with full ones: there the percentile is one of rank (the best
      // 100 - p percent in rank order), which is the same set as the accuracy threshold's when all are full scores.
      const eligible = isRaced(results)
        ? ranked.slice(0, Math.max(1, Math.ceil(((100 - p) / 100) * ranked.length)))
        : ranked.filter((r) => r.accuracy >= threshold);
      return eligible
        .sort((a, b) => a.params - b.params || byAccuracy(a, b))
        .slice(0, k)
        .sort(byAccuracy);
    }
    case 'random': {
      const rng = new Rng(o.seed ?? SELECT_DEFAULTS.seed);
      const pool = [...ranked];
      const out: SearchResult[] = [];
      while (out.length < k) out.push(pool.splice(rng.below(pool.length), 1)[0]);
      return out.sort(byAccuracy);
    }
  }
}
