/** Selection of architectures from search results, as in the paper's Table 1. */
import * as fs from 'node:fs';
import { NasError, invalidParameter } from '../native/errors';
import { parseArchitecture } from '../space/architecture';
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
}

/**
 * The results of a search file, strictly: every line must be a JSON object with a valid `arch` and a numeric
 * `accuracy` (ERR_NAS_BAD_ARG / ERR_NAS_BAD_ARCH naming file and line), except a torn last line of a killed search,
 * which is skipped; a file without results is an error (ERR_NAS_BAD_ARG) rather than an empty selection.
 */
export function readSearchResults(file: string): SearchResult[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new NasError('ERR_NAS_IO', `${file}: cannot read the results file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run \`nasctl search\` first`);
  }
  const lines = text.split('\n');
  const out: SearchResult[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let r: SearchResult;
    try {
      r = JSON.parse(line) as SearchResult;
    } catch {
      if (i === lines.length - 1) return; // a torn last line (no newline yet): the search was killed mid-write
      throw new NasError('ERR_NAS_BAD_ARG', `${file}:${i + 1}: not a JSON line of search results`);
    }
    if (r === null || typeof r !== 'object' || typeof r.arch !== 'string') throw new NasError('ERR_NAS_BAD_ARG', `${file}:${i + 1}: no "arch" string`);
    try {
      parseArchitecture(r.arch, { blocks: r.arch.split('/').length, maxOps: 2 });
    } catch (err) {
      throw new NasError('ERR_NAS_BAD_ARCH', `${file}:${i + 1}: ${(err as Error).message}`);
    }
    if (typeof r.accuracy !== 'number' || !Number.isFinite(r.accuracy)) throw new NasError('ERR_NAS_BAD_ARG', `${file}:${i + 1}: "accuracy" is not a number`);
    out.push(r);
  });
  if (!out.length) throw new NasError('ERR_NAS_BAD_ARG', `${file}: no results in it; run \`nasctl search\` first`);
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

const byAccuracy = (a: SearchResult, b: SearchResult): number => b.accuracy - a.accuracy || a.loss - b.loss || a.index - b.index;

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
      const pool = ranked.slice(0, Math.max(k, o.pool ?? 100));
      return Array.from({ length: k }, (_, i) => pool[Math.floor((i * pool.length) / k)]);
    }
    case 'small': {
      const p = o.percentile ?? 90;
      if (!(p >= 0 && p <= 100)) throw invalidParameter('percentile', 'a number in 0..100', p);
      const threshold = percentile(ranked.map((r) => r.accuracy), p);
      return ranked
        .filter((r) => r.accuracy >= threshold)
        .sort((a, b) => a.params - b.params || byAccuracy(a, b))
        .slice(0, k)
        .sort(byAccuracy);
    }
    case 'random': {
      const rng = new Rng(o.seed ?? 0);
      const pool = [...ranked];
      const out: SearchResult[] = [];
      while (out.length < k) out.push(pool.splice(rng.below(pool.length), 1)[0]);
      return out.sort(byAccuracy);
    }
  }
}
