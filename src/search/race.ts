/**
 * Racing (successive halving) as a search scorer (docs/model.md#racing): every candidate is scored on a first slice
 * of the validation split, the better part goes on to the next, larger slice, and so on until the survivors have
 * seen the whole split. Each slice's counts are kept in a state file, so a stopped race resumes within its round; a
 * candidate's line goes to the results file when its fate is known (cut after a round, or scored in full).
 */
import * as fs from 'node:fs';
import type { ProcessGroup } from '../distributed/processGroup';
import { evaluateShared } from '../distributed/evaluateShared';
import type { NativeData, Supernet } from '../model/Supernet';
import { type Architecture, formatArchitecture } from '../space/architecture';
import { type ModelShape, modelSize } from '../space/modelSize';
import { NasError, invalidParameter } from '../util/errors';
import { appendJsonLines, objectLine, readJsonLinesStrict, repairTornLine, writeFileAtomic } from '../util/files';
import type { SearchResult } from './select';

/** A racing schedule: the first slice, the fraction kept after each round, and the fewest candidates ever kept. */
export interface RaceSchedule {
  /** Validation images of the first round (rounded up to whole ghost batches). */
  first: number;
  /** Fraction of a round's candidates that go on to the next round, in (0, 1]; 1 scores every candidate in full. */
  keep: number;
  /** No round keeps fewer candidates than this: the best `min` are always scored on the whole split. */
  min: number;
}

/**
 * The default schedule (docs/model.md#racing): 256 images first, a quarter kept, never fewer than 100. Slices grow
 * by 1/keep, so every round costs about the same image passes; for 20,000 candidates on 5,000 images that is 13% of
 * full scoring.
 */
export const DEFAULT_RACE: RaceSchedule = { first: 256, keep: 0.25, min: 100 };

/** Throws ERR_NAS_BAD_CONFIG naming the first bad field of a schedule. */
export function validateRace(s: RaceSchedule): void {
  if (!(Number.isInteger(s.first) && s.first > 0)) throw invalidParameter('raceFirst', 'a positive integer', s.first);
  if (!(typeof s.keep === 'number' && s.keep > 0 && s.keep <= 1)) throw invalidParameter('raceKeep', 'a number in (0, 1]', s.keep);
  if (!(Number.isInteger(s.min) && s.min > 0)) throw invalidParameter('raceMin', 'a positive integer', s.min);
}

/**
 * The ends of the rounds' slices of `total` validation images: the first at `first`, each next one 1/keep times
 * larger (at least twice), every end a multiple of `align` (the ghost batch, so that a candidate's ghost batches and
 * hence its counts are those of full scoring), the last at `total`.
 */
export function raceSlices(total: number, s: RaceSchedule, align: number): number[] {
  const up = (x: number): number => Math.min(total, Math.ceil(x / align) * align);
  const growth = Math.max(2, 1 / s.keep);
  const ends = [up(s.first)];
  while (ends[ends.length - 1] < total) ends.push(up(ends[ends.length - 1] * growth));
  return ends;
}

/** Candidates in each round: all `n` in the first, then ceil(keep x the previous), but never fewer than `min`. */
export function raceSizes(n: number, rounds: number, s: RaceSchedule): number[] {
  const sizes = [n];
  for (let r = 1; r < rounds; r++) {
    const prev = sizes[r - 1];
    sizes.push(Math.min(prev, Math.max(Math.ceil(prev * s.keep - 1e-9), s.min)));
  }
  return sizes;
}

/** Image passes of a race (candidates x images over all rounds), to compare with n x total of full scoring. */
export function racePasses(n: number, total: number, s: RaceSchedule, align: number): number {
  const ends = raceSlices(total, s, align);
  const sizes = raceSizes(n, ends.length, s);
  return sizes.reduce((sum, k, r) => sum + k * (ends[r] - (r ? ends[r - 1] : 0)), 0);
}

/** Correct answers and summed loss over the examples seen. */
export interface RaceCounts {
  correct: number;
  lossSum: number;
  examples: number;
}

/** A candidate of a race: its counts after each round it was scored in (cumulative). */
export interface RaceTally {
  index: number;
  arch: Architecture;
  key: string;
  after: RaceCounts[];
}

/** Race order after round r: more correct, then lower loss, then proposal order (all have seen the same images). */
const atRound =
  (r: number) =>
  (a: RaceTally, b: RaceTally): number =>
    b.after[r].correct - a.after[r].correct || a.after[r].lossSum - b.after[r].lossSum || a.index - b.index;

/** The candidates of round `r + 1`: the best `size` of round r's `alive` by their counts after round r. */
export function survivorsOf(alive: RaceTally[], r: number, size: number): RaceTally[] {
  return [...alive].sort(atRound(r)).slice(0, size);
}

/** A line of the race's state file: one candidate's counts on one round's slice. */
export interface RaceLine {
  round: number;
  arch: string;
  correct: number;
  lossSum: number;
  examples: number;
}

function raceLine(value: unknown): RaceLine | string {
  const o = objectLine(value, ['round', 'correct', 'lossSum', 'examples'], ['arch']);
  return typeof o === 'string' ? o : (o as unknown as RaceLine);
}

/** The state file of a race into `results`: `<results without .jsonl>.race.jsonl`. */
export function raceStateFile(results: string): string {
  return `${results.replace(/\.jsonl$/, '')}.race.jsonl`;
}

/** Progress of a race: the start of each round and each scored group of candidates. */
export type RaceEvent =
  | { type: 'race-round'; round: number; rounds: number; candidates: number; from: number; to: number; done: number }
  | {
      type: 'raced';
      round: number;
      rounds: number;
      done: number;
      candidates: number;
      imagesPerSec: number;
      etaSeconds: number;
      /** The best candidate of this round so far, by its accuracy on the examples it has seen. */
      best: { arch: string; accuracy: number; examples: number };
    }
  /** A candidate's line in the results file: cut after a round (a partial score) or scored in full. */
  | { type: 'decided'; result: SearchResult };

/** What a race works with. */
export interface RaceInput {
  net: Supernet;
  group?: ProcessGroup;
  val: NativeData;
  /** Validation images of a full score. */
  total: number;
  schedule: RaceSchedule;
  /** The candidates, distinct, in proposal order. */
  candidates: Architecture[];
  shape: ModelShape;
  /** The results lines already written (a resumed race). */
  previous: SearchResult[];
  /** The state file's lines, read by the writer before the race (a resumed race); see readRaceState. */
  state: RaceLine[];
  writer: boolean;
  results: string;
  settings: string;
  pendingSettings: string | null;
  evalBatchSize: number;
  batchArchs: number;
  batched?: boolean;
  workers: number;
  emit: (e: RaceEvent) => void;
  /** Called with each results line as it is written. */
  onResult: (r: SearchResult) => void;
  signal?: AbortSignal;
}

/** The state file's lines (a torn last line of a stopped race is dropped); none when it does not exist. */
export function readRaceState(results: string): RaceLine[] {
  const file = raceStateFile(results);
  if (!fs.existsSync(file)) return [];
  const read = readJsonLinesStrict(file, raceLine);
  repairTornLine(file, read);
  return read.rows;
}

/**
 * Runs (or resumes) a race; each worker of a group scores its share of every group of candidates and keeps the same
 * tallies, rank 0 writes the files. Returns whether it was stopped and the image passes of this session.
 */
export async function runRace(c: RaceInput): Promise<{ aborted: boolean; passes: number; decided: number }> {
  const align = c.net.config.ghostBatch;
  const ends = raceSlices(c.total, c.schedule, align);
  const sizes = raceSizes(c.candidates.length, ends.length, c.schedule);
  const tallies = c.candidates.map((arch, index): RaceTally => ({ index, arch, key: formatArchitecture(arch), after: [] }));
  const byKey = new Map(tallies.map((t) => [t.key, t]));
  const add = (t: RaceTally, l: RaceCounts): void => {
    const was = t.after[t.after.length - 1] ?? { correct: 0, lossSum: 0, examples: 0 };
    t.after.push({ correct: was.correct + l.correct, lossSum: was.lossSum + l.lossSum, examples: was.examples + l.examples });
  };
  const stateFile = raceStateFile(c.results);
  for (const [i, l] of c.state.entries()) {
    const t = byKey.get(l.arch);
    const slice = l.round < ends.length ? ends[l.round] - (l.round ? ends[l.round - 1] : 0) : -1;
    if (!t || l.round !== t.after.length || l.examples !== slice)
      throw new NasError(
        'ERR_NAS_BAD_RESULTS',
        `${stateFile}:${i + 1}: ${l.arch} in round ${l.round} on ${l.examples} images is not a step of this race (was it written by another search?)`,
        { path: stateFile },
      );
    add(t, l);
  }
  const written = new Set(c.previous.map((r) => r.arch));
  for (const r of c.previous)
    if (!byKey.has(r.arch))
      throw new NasError('ERR_NAS_BAD_RESULTS', `${c.results}:${r.index + 1}: ${r.arch} is not a candidate of this race`, {
        path: c.results,
      });
  let lines = c.previous.length;
  let pendingSettings = c.pendingSettings;
  const settle = (): void => {
    if (pendingSettings !== null) writeFileAtomic(c.settings, pendingSettings);
    pendingSettings = null;
  };
  // A round's cut candidates go to the results file in one write and one flush (15,000 of them after the first
  // round of a 20,000-candidate race), then to the caller. Returns how many were not written before.
  const publish = (cut: RaceTally[], round: number): number => {
    const rs = cut
      .filter((t) => !written.has(t.key))
      .map((t): SearchResult => {
        written.add(t.key);
        const size = modelSize(t.arch, c.shape);
        const n = t.after[round];
        return {
          index: lines++,
          arch: t.key,
          accuracy: n.correct / n.examples,
          loss: n.lossSum / n.examples,
          params: size.params,
          madds: size.madds,
          examples: n.examples,
          rung: round,
        };
      });
    if (c.writer && rs.length > 0) {
      settle();
      appendJsonLines(c.results, rs);
    }
    for (const r of rs) {
      c.onResult(r);
      c.emit({ type: 'decided', result: r });
    }
    return rs.length;
  };

  const started = Date.now();
  let passes = 0;
  let decided = 0;
  let alive = tallies;
  for (let round = 0; round < ends.length; round++) {
    const from = round ? ends[round - 1] : 0;
    const slice = ends[round] - from;
    const todo = alive.filter((t) => t.after.length === round);
    c.emit({
      type: 'race-round',
      round,
      rounds: ends.length,
      candidates: alive.length,
      from,
      to: ends[round],
      done: alive.length - todo.length,
    });
    // The round's leader so far, kept as results come (a sort per group is quadratic over 20,000 candidates).
    const order = atRound(round);
    const better = (a: RaceTally | undefined, b: RaceTally): RaceTally => (a && order(a, b) <= 0 ? a : b);
    let lead: RaceTally | undefined;
    for (const t of alive) if (t.after.length > round) lead = better(lead, t);
    const step = c.batchArchs * c.workers;
    for (let i = 0; i < todo.length; i += step) {
      if (c.signal?.aborted) return { aborted: true, passes, decided };
      const group = todo.slice(i, i + step);
      const ev = await evaluateShared(
        c.net,
        c.group,
        c.val,
        group.map((t) => t.arch),
        { start: from, count: slice, batchSize: c.evalBatchSize, batched: c.batched, signal: c.signal },
      );
      const counted = ev.map(
        (e, k): RaceLine => ({ round, arch: group[k].key, correct: e.correct, lossSum: e.lossSum, examples: e.examples }),
      );
      if (c.writer && counted.length > 0) {
        settle();
        appendJsonLines(stateFile, counted);
      }
      counted.forEach((line, k) => {
        add(group[k], line);
        lead = better(lead, group[k]);
        passes += slice;
      });
      const secs = (Date.now() - started) / 1000;
      const rate = passes / Math.max(secs, 1e-9);
      let left = (todo.length - i - ev.length) * slice;
      for (let r = round + 1; r < ends.length; r++) left += sizes[r] * (ends[r] - ends[r - 1]);
      if (lead)
        c.emit({
          type: 'raced',
          round,
          rounds: ends.length,
          done: alive.length - todo.length + i + ev.length,
          candidates: alive.length,
          imagesPerSec: rate,
          etaSeconds: left / rate,
          best: { arch: lead.key, accuracy: lead.after[round].correct / lead.after[round].examples, examples: lead.after[round].examples },
        });
      if (ev.length < group.length) return { aborted: true, passes, decided };
    }
    const next = round + 1 < ends.length ? survivorsOf(alive, round, sizes[round + 1]) : [];
    const kept = new Set(next.map((t) => t.key));
    decided += publish(
      [...alive].sort(atRound(round)).filter((t) => !kept.has(t.key)),
      round,
    );
    alive = next;
  }
  return { aborted: false, passes, decided };
}
