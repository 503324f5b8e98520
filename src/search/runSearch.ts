/**
 * Search: propose architectures with a strategy, score each by its one-shot validation accuracy, and stream one JSON
 * line per architecture to a results file. A killed search resumes where it stopped, never scoring an architecture
 * twice or losing a scored one.
 */
import * as fs from 'node:fs';
import type { ExecutionPlan } from '../native/binding';
import * as path from 'node:path';
import { type ProcessGroup, agreeOnJob } from '../distributed/processGroup';
import { evaluateShared } from '../distributed/evaluateShared';
import { NasError, invalidParameter } from '../util/errors';
import { type Architecture, formatArchitecture, spaceWith } from '../space/architecture';
import { type ModelShape, modelSize } from '../space/modelSize';
import { NativeData, type Supernet } from '../model/Supernet';
import type { ImageFolderEvent } from '../data/imageFolder';
import { type DatasetSplits, splitsDigest } from '../data/types';
import {
  acquireLock,
  lockHolder,
  checkOutputFile,
  readJsonFile,
  removeStaleTemps,
  appendJsonLine,
  readJsonLinesStrict,
  repairTornLine,
  writeFileAtomic,
} from '../util/files';
import { openSupernet, supernetCheckpoint } from './openSupernet';
import { type SearchResult, byRank, searchResultLine } from './select';
import { readArchList } from './archList';
import { ListSearch, STRATEGIES, type StrategyName, createStrategy, type SearchStrategy } from './strategy';
import {
  DEFAULT_RACE,
  type RaceEvent,
  type RaceLine,
  type RaceSchedule,
  racePasses,
  raceSizes,
  raceSlices,
  readRaceState,
  runRace,
  validateRace,
} from './race';

/** How architectures are scored: each on the whole validation split, or by racing (docs/model.md#racing). */
export type ScoringMode = 'full' | 'race';
/** Every scoring mode, for option parsing. */
export const SCORING_MODES: ScoringMode[] = ['full', 'race'];

/** Options of `runSearch`: the one-shot model, how many architectures, the strategy, constraints and the results file. */
export interface SearchOptions {
  /** Run directory or checkpoint of a trained one-shot model. */
  supernet: string;
  /** Results file (default: search.jsonl in the run directory). */
  out?: string;
  /** Architectures to score (the paper: about 20,000). */
  count: number;
  strategy: StrategyName;
  seed: number;
  maxParams?: number;
  maxMadds?: number;
  /** Validation examples used for scoring (default: the whole validation split). */
  valLimit?: number;
  /** Architectures handed to native code per call (random strategy). */
  batchArchs: number;
  /** Score each call's architectures in one pass per ghost batch (see Supernet.evaluate). */
  batched?: boolean;
  evalBatchSize: number;
  population: number;
  tournament: number;
  /**
   * Evolution: architectures proposed (and scored in parallel) before their scores are told to the strategy.
   * Default: the number of workers (1 alone: the sequential algorithm). Fixed for a results file once it starts.
   */
  round?: number;
  threads?: number;
  device?: string;
  precision?: 'fp32' | 'bf16';
  /**
   * Score these architectures instead of sampling: a file with one architecture per line, or JSON lines with an
   * `arch` field (a previous search.jsonl); `-` for standard input. `count` then defaults to the whole list.
   */
  archs?: string;
  /** Execution plan (see SupernetConfig.plan). */
  plan?: ExecutionPlan;
  /**
   * `full` (default): every architecture on the whole validation split. `race`: successive halving
   * (docs/model.md#racing): all on a first slice, the better part on to larger slices; the best `raceMin` or more
   * are scored in full, the others keep a partial score. One results file holds one mode.
   */
  scoring?: ScoringMode;
  /** Racing: validation images of the first round (default 256). */
  raceFirst?: number;
  /** Racing: fraction of the candidates kept after each round, in (0, 1] (default 0.25). */
  raceKeep?: number;
  /** Racing: no round keeps fewer candidates (default 100). */
  raceMin?: number;
  /**
   * Score the supernet's current checkpoint although a training job is writing its run directory (default: refused
   * with ERR_NAS_LOCKED, since the checkpoint changes under the search); a warning event says so.
   */
  whileTraining?: boolean;
}

/** Defaults of `runSearch` (and of `nasctl search`). */
export const DEFAULT_SEARCH: Omit<SearchOptions, 'supernet'> = {
  count: 100,
  strategy: 'random',
  seed: 0,
  batchArchs: 8,
  evalBatchSize: 256,
  population: 50,
  tournament: 10,
};

/** Progress of `runSearch`: its start and each scored architecture (and with racing, each round and group). */
export type SearchEvent =
  | RaceEvent
  | { type: 'data'; event: ImageFolderEvent }
  | { type: 'warning'; message: string }
  | {
      type: 'start';
      count: number;
      done: number;
      results: string;
      strategy: string;
      /** The validation images a full score is on (a race's finalists; its cut candidates see fewer). */
      validationExamples: number;
      scoring: ScoringMode;
    }
  | {
      type: 'scored';
      result: SearchResult;
      done: number;
      count: number;
      archsPerSec: number;
      imagesPerSec: number;
      best: SearchResult;
      etaSeconds: number;
    };

/** What a search did: the results file, how many were scored, speed, and the best five. */
export interface SearchSummary {
  results: string;
  scored: number;
  count: number;
  aborted: boolean;
  /** Scoring speed of this session (architectures and images per second of wall time). */
  archsPerSec: number;
  imagesPerSec: number;
  top: SearchResult[];
  /** Racing: each round's candidates and the validation images they had seen by its end, and the image passes. */
  race?: { rounds: { candidates: number; examples: number }[]; passes: number; fullPasses: number };
}

/** The part of the options that must not change between a search and its resumption. */
const IDENTITY: (keyof SearchOptions | 'archsDigest' | 'checkpoint' | 'race')[] = [
  'strategy',
  'seed',
  'maxParams',
  'maxMadds',
  'valLimit',
  'population',
  'tournament',
  'round',
  'archsDigest',
  'checkpoint',
  'scoring',
  'race',
];

/** A search's racing schedule (the defaults filled in), or undefined for full scoring. */
function scheduleOf(o: SearchOptions): RaceSchedule | undefined {
  if (o.scoring !== 'race') return undefined;
  return { first: o.raceFirst ?? DEFAULT_RACE.first, keep: o.raceKeep ?? DEFAULT_RACE.keep, min: o.raceMin ?? DEFAULT_RACE.min };
}

function validate(o: SearchOptions): void {
  if (!(Number.isInteger(o.count) && o.count > 0)) throw invalidParameter('count', 'a positive integer', o.count);
  if (!STRATEGIES.includes(o.strategy)) throw invalidParameter('strategy', `one of ${STRATEGIES.join(', ')}`, o.strategy);
  for (const k of ['maxParams', 'maxMadds', 'valLimit', 'round'] as const) {
    if (o[k] !== undefined && !(Number(o[k]) > 0)) throw invalidParameter(k, 'a positive number', o[k]);
  }
  if (o.scoring !== undefined && !SCORING_MODES.includes(o.scoring))
    throw invalidParameter('scoring', `one of ${SCORING_MODES.join(', ')}`, o.scoring);
  const race = scheduleOf(o);
  if (race) {
    validateRace(race);
    if (o.strategy === 'evolution')
      throw invalidParameter('scoring', "'full' with the evolution strategy (it learns from every full score as it goes)", o.scoring);
  }
}

/** Cancellation, progress and, for data-parallel workers, the process group. */
export interface SearchHooks {
  signal?: AbortSignal;
  onEvent?: (e: SearchEvent) => void;
  /** Score as one worker of this group: each worker scores its share of every round, rank 0 writes the results. */
  group?: ProcessGroup;
  /** The splits the one-shot model was trained on, when they were given in memory (trainOneShot's `data`). */
  data?: DatasetSplits;
}

/**
 * Rank 0's start of a search into `results`: a resumed search must have the saved settings' identity (else
 * ERR_NAS_BAD_CONFIG names the field); a torn last line (a killed search) is dropped. A new search's settings are
 * returned to be written with its first result, so that a search refused before scoring anything leaves none behind.
 */
function openResults(
  results: string,
  settings: string,
  identity: Record<string, unknown>,
  defaultRound: number,
  supernet: string,
): Started & { pendingSettings: string | null } {
  let round = defaultRound;
  let pendingSettings: string | null = null;
  if (fs.existsSync(settings)) {
    const saved = readJsonFile(settings, 'ERR_NAS_BAD_CONFIG', 'search settings') as Partial<SearchOptions> & Record<string, unknown>;
    const explicitRound = identity.round as number | undefined;
    round = explicitRound ?? saved.round ?? 1;
    for (const k of IDENTITY) {
      const mine = k === 'round' ? round : identity[k];
      // Files from before rounds were recorded: 1; from before racing: full scoring.
      const was = k === 'round' ? (saved.round ?? 1) : k === 'scoring' ? (saved.scoring ?? 'full') : saved[k];
      if (k === 'checkpoint' && was === undefined) continue; // results from before checkpoints were recorded
      if (k === 'checkpoint' && was !== mine) {
        const [[wasStep, wasDigest], [step, digest]] = [was, mine].map((v) => String(v).split(':'));
        throw new NasError(
          'ERR_NAS_BAD_CONFIG',
          `${results} was scored on the one-shot model at step ${wasStep} (checkpoint ${wasDigest}); ${supernet} now holds step ${step} (${digest}): rows of two models would mix. Search into another --out`,
          { field: 'checkpoint', expected: was, actual: mine },
        );
      }
      if (was !== mine) throw invalidParameter(k, `${JSON.stringify(was)} to resume ${results} (or choose another --out)`, mine);
    }
  } else {
    pendingSettings = `${JSON.stringify({ ...identity, round, supernet }, null, 2)}\n`;
  }
  const read = readJsonLinesStrict(results, searchResultLine);
  repairTornLine(results, read);
  const previous = read.rows;
  // A race's per-round counts (its state file) come with its results; full scoring has none.
  const state = identity.scoring === 'race' ? readRaceState(results) : [];
  return { round, previous, state, pendingSettings };
}

/** What rank 0 read of a search it starts or resumes, and tells the other workers. */
interface Started {
  round: number;
  previous: SearchResult[];
  state: RaceLine[];
}

/**
 * The architectures a search scores next: new ones (a repeat is told its score and skipped) that fit the
 * constraints, in rounds of distinct architectures (so that a round of k results always consumed the same proposals),
 * and the replay that puts a resumed search's strategy where it was.
 */
class Proposer {
  constructor(
    private readonly strategy: SearchStrategy,
    private readonly fits: (a: Architecture) => boolean,
    private readonly scored: Map<string, SearchResult>,
  ) {}

  next(): Architecture {
    for (let guard = 0; guard < 1_000_000; guard++) {
      const a = this.strategy.propose();
      if (!this.fits(a)) continue;
      const seen = this.scored.get(formatArchitecture(a));
      if (seen) {
        this.strategy.tell(a, seen.accuracy);
        continue;
      }
      return a;
    }
    throw new NasError('ERR_NAS_BAD_CONFIG', 'no architecture satisfies --max-params / --max-madds (a million proposals tried)');
  }

  round(k: number): Architecture[] {
    // A set, not a scan of the batch: a race proposes all 20,000 of the paper's candidates in one round.
    const batch: Architecture[] = [];
    const names = new Set<string>();
    while (batch.length < k) {
      const a = this.next();
      const name = formatArchitecture(a);
      if (names.has(name)) continue;
      names.add(name);
      batch.push(a);
    }
    return batch;
  }

  /** Replays a recorded history round by round; a line this search would not propose is refused by line number. */
  replay(previous: SearchResult[], results: string): void {
    for (let i = 0; i < previous.length; ) {
      let j = i + 1;
      while (j < previous.length && previous[j].round !== undefined && previous[j].round === previous[i].round) j++;
      const lines = previous.slice(i, j);
      const proposed = this.round(lines.length);
      lines.forEach((r, n) => {
        if (formatArchitecture(proposed[n]) !== r.arch) {
          throw new NasError(
            'ERR_NAS_BAD_CONFIG',
            `${results}: line ${r.index + 1} (${r.arch}) is not what this search proposes (${formatArchitecture(proposed[n])}); was it written with another seed or supernet?`,
          );
        }
        this.scored.set(r.arch, r);
        this.strategy.tell(proposed[n], r.accuracy);
      });
      i = j;
    }
  }
}

/**
 * Scores architectures on a trained one-shot model into a resumable JSON-lines results file (one writer per file):
 * sampled by a strategy, or a given list (`archs`). Resumes from the file; with a group, workers share every round.
 */
export async function runSearch(given: Partial<SearchOptions> & { supernet: string }, hooks: SearchHooks = {}): Promise<SearchSummary> {
  const o: SearchOptions = {
    ...DEFAULT_SEARCH,
    ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
  } as SearchOptions;
  validate(o);
  const group = hooks.group;
  const writer = !group || group.isWriter;
  const workers = group?.worldSize ?? 1;
  if (group) {
    // One job: the same search on every worker, but for how each runs (threads, device, precision, plan).
    const { threads: _t, device: _d, precision: _p, plan: _l, ...job } = o;
    await agreeOnJob(group, 'search', job);
  }
  // A run directory a training job is writing: its checkpoint changes under the search (rows of two models).
  const runDir = path.dirname(supernetCheckpoint(o.supernet));
  const trainer = lockHolder(runDir, 'dir');
  if (trainer) {
    const what = `${runDir} is being written by process ${trainer.pid}${trainer.host ? ` on ${trainer.host}` : ''} (${trainer.what ?? 'a nasctl job'})`;
    if (!o.whileTraining)
      throw new NasError(
        'ERR_NAS_LOCKED',
        `${what}: its checkpoint changes while a search reads it. Wait for the training to end, or pass --while-training to score the checkpoint as it is now (the results file records its step)`,
        { path: runDir, pid: trainer.pid },
      );
    hooks.onEvent?.({ type: 'warning', message: `${what}; scoring its checkpoint as it is now (--while-training)` });
  }
  const opened = await openSupernet(o.supernet, {
    threads: o.threads,
    device: o.device,
    precision: o.precision,
    plan: o.plan,
    onData: (event) => hooks.onEvent?.({ type: 'data', event }),
    data: hooks.data,
  });
  const { net, data } = opened;
  let release = (): void => undefined;
  try {
    // Every worker scores the same checkpoint on the same data (its own copy when workers are on several machines).
    if (group) await agreeOnJob(group, 'search', { checkpoint: opened.identity, data: splitsDigest(data) });
    const shape: ModelShape = { ...net.config };
    const fits = (a: Architecture): boolean => {
      const s = modelSize(a, shape);
      return (o.maxParams === undefined || s.params <= o.maxParams) && (o.maxMadds === undefined || s.madds <= o.maxMadds);
    };
    // A given list is read (and a bad one refused) before any file is written.
    const list = o.archs !== undefined ? readArchList(o.archs, spaceWith(net.config.blocks)) : undefined;
    const listed = list?.archs.filter(fits);
    if (listed) {
      if (!listed.length) throw new NasError('ERR_NAS_BAD_CONFIG', 'no architecture of the list satisfies --max-params / --max-madds');
      o.count = Math.min(given.count ?? listed.length, listed.length);
    }
    const { whileTraining: _w, raceFirst: _f, raceKeep: _k, raceMin: _m, ...settled } = o; // how it was let run, not what it scores
    const schedule = scheduleOf(o);
    // A race's cuts depend on how many candidates race: its count is part of what it scores.
    const race = schedule && `first ${schedule.first}, keep ${schedule.keep}, min ${schedule.min}, count ${o.count}`;
    const identity = { ...settled, scoring: o.scoring ?? 'full', race, archsDigest: list?.digest, checkpoint: opened.identity };
    const results = o.out ?? path.join(opened.dir, 'search.jsonl');
    const settings = `${results.replace(/\.jsonl$/, '')}.search.json`;
    // Results are appended to: only an absent file or one of JSON lines (a previous search's) is taken.
    checkOutputFile(results, 'search results file (JSON lines)', (head) => head.startsWith('{'));
    // One writer per results file: a second search into it is refused by name (rows would be written twice).
    if (writer) {
      release = acquireLock(results, 'file', `searching into ${results}`);
      removeStaleTemps(path.dirname(path.resolve(results)));
    }
    const defaultRound = o.round ?? (o.strategy === 'evolution' ? workers : 1);
    const { round, previous, state, pendingSettings } = await agreeOnStart(group, writer, () =>
      openResults(results, settings, identity, defaultRound, path.resolve(o.supernet)),
    );
    const strategy = listed
      ? new ListSearch(listed)
      : createStrategy(o.strategy, o.seed, spaceWith(net.config.blocks), { population: o.population, sample: o.tournament });
    const scored = new Map<string, SearchResult>();
    const proposer = new Proposer(strategy, fits, scored);
    const val = new NativeData(data.validation, data.mean, data.std);
    const count = Math.min(o.valLimit ?? data.validation.n, data.validation.n);
    const emit = hooks.onEvent ?? ((): void => undefined);
    if (schedule) {
      // A race proposes all its candidates first (the same ones when it resumes: the strategy is seeded).
      const candidates = proposer.round(o.count);
      emit({
        type: 'start',
        count: o.count,
        done: previous.length,
        results,
        strategy: strategy.name,
        validationExamples: count,
        scoring: 'race',
      });
      const started = Date.now();
      const all = [...previous];
      const ran = await runRace({
        net,
        group,
        val,
        total: count,
        schedule,
        candidates,
        shape,
        previous,
        state,
        writer,
        results,
        settings,
        pendingSettings,
        evalBatchSize: o.evalBatchSize,
        batchArchs: o.batchArchs,
        batched: o.batched,
        workers,
        emit,
        onResult: (r) => all.push(r),
        signal: hooks.signal,
      });
      const secs = Math.max((Date.now() - started) / 1000, 1e-9);
      const ends = raceSlices(count, schedule, net.config.ghostBatch);
      const sizes = raceSizes(o.count, ends.length, schedule);
      return {
        results,
        scored: all.length,
        count: o.count,
        aborted: ran.aborted,
        archsPerSec: ran.decided / secs,
        imagesPerSec: ran.passes / secs,
        top: all.sort(byRank).slice(0, 5),
        race: {
          rounds: sizes.map((candidates, r) => ({ candidates, examples: ends[r] })),
          passes: racePasses(o.count, count, schedule, net.config.ghostBatch),
          fullPasses: o.count * count,
        },
      };
    }
    proposer.replay(previous, results);
    const rounds = previous.length ? (previous[previous.length - 1].round ?? previous.length - 1) + 1 : 0;
    emit({
      type: 'start',
      count: o.count,
      done: scored.size,
      results,
      strategy: strategy.name,
      validationExamples: count,
      scoring: 'full',
    });
    const { aborted, session, started } = await scoreRounds({
      o,
      net,
      group,
      val,
      count,
      shape,
      proposer,
      strategy,
      scored,
      writer,
      results,
      settings,
      pendingSettings,
      workers,
      firstRound: rounds,
      roundSize: round,
      listed: listed !== undefined,
      emit,
      signal: hooks.signal,
    });
    const secs = (Date.now() - started) / 1000;
    const archsPerSec = session / Math.max(secs, 1e-9);
    return {
      results,
      scored: scored.size,
      count: o.count,
      aborted,
      archsPerSec,
      imagesPerSec: archsPerSec * count,
      top: [...scored.values()].sort((a, b) => b.accuracy - a.accuracy).slice(0, 5),
    };
  } finally {
    net.dispose();
    release();
  }
}

/**
 * Rank 0 owns the files: it checks the settings and reads what was scored (`open`), then tells the other workers; an
 * error there stops every worker. A new search's settings are written with its first result (`pendingSettings`), so
 * that a search refused before scoring anything leaves no settings behind to refuse the corrected command.
 */
async function agreeOnStart(
  group: ProcessGroup | undefined,
  writer: boolean,
  open: () => Started & { pendingSettings: string | null },
): Promise<Started & { pendingSettings: string | null }> {
  let start: Started | { error: { message: string } } | null = null;
  let pendingSettings: string | null = null;
  if (writer) {
    try {
      const opened = open();
      pendingSettings = opened.pendingSettings;
      start = { round: opened.round, previous: opened.previous, state: opened.state };
    } catch (err) {
      if (!group) throw err;
      start = { error: { message: (err as Error).message } };
    }
  }
  if (group) start = (await group.exchange('search-start', start))[0];
  if (!start || 'error' in start)
    throw new NasError('ERR_NAS_BAD_CONFIG', `worker 0 could not start the search: ${start ? start.error.message : 'no answer'}`);
  return { ...start, pendingSettings };
}

/** What the scoring rounds of a search work with. */
interface Scoring {
  o: SearchOptions;
  net: Supernet;
  group?: ProcessGroup;
  val: NativeData;
  /** Validation images per architecture. */
  count: number;
  shape: ModelShape;
  proposer: Proposer;
  strategy: SearchStrategy;
  scored: Map<string, SearchResult>;
  writer: boolean;
  results: string;
  settings: string;
  pendingSettings: string | null;
  workers: number;
  firstRound: number;
  roundSize: number;
  listed: boolean;
  emit: (e: SearchEvent) => void;
  signal?: AbortSignal;
}

/** Scores rounds of proposals until the search has `o.count` results or is stopped; each result is appended at once. */
async function scoreRounds(c: Scoring): Promise<{ aborted: boolean; session: number; started: number }> {
  const { o, scored, strategy, proposer, emit, count } = c;
  let pendingSettings = c.pendingSettings;
  let rounds = c.firstRound;
  const round = c.roundSize;
  const workers = c.workers;
  const started = Date.now();
  let session = 0;
  let aborted = false;
  let best = [...scored.values()].sort((a, b) => b.accuracy - a.accuracy)[0];
  while (scored.size < o.count) {
    if (c.signal?.aborted) {
      aborted = true;
      break;
    }
    // Evolution tells scores after each round (of one architecture when alone); random search does not learn and
    // hands native code a batch per worker. Workers score their round-robin shares of the round.
    const k = Math.min(o.strategy === 'random' || c.listed ? o.batchArchs * workers : round, o.count - scored.size);
    const batch = proposer.round(k);
    const ev = await evaluateShared(c.net, c.group, c.val, batch, {
      count,
      batchSize: o.evalBatchSize,
      batched: o.batched,
      signal: c.signal,
    });
    if (ev.length < batch.length) aborted = true; // aborted mid-batch: the finished ones are kept below
    for (let i = 0; i < ev.length; i++) {
      const size = modelSize(batch[i], c.shape);
      const r: SearchResult = {
        index: scored.size,
        arch: ev[i].arch,
        accuracy: ev[i].accuracy,
        loss: ev[i].loss,
        params: size.params,
        madds: size.madds,
        examples: ev[i].examples,
        round: rounds,
      };
      if (c.writer) {
        if (pendingSettings !== null) writeFileAtomic(c.settings, pendingSettings);
        pendingSettings = null;
        appendJsonLine(c.results, r);
      }
      scored.set(r.arch, r);
      strategy.tell(batch[i], r.accuracy);
      session++;
      if (!best || r.accuracy > best.accuracy) best = r;
      const secs = (Date.now() - started) / 1000;
      const archsPerSec = session / Math.max(secs, 1e-9);
      emit({
        type: 'scored',
        result: r,
        done: scored.size,
        count: o.count,
        archsPerSec,
        imagesPerSec: archsPerSec * count,
        best,
        etaSeconds: (o.count - scored.size) / archsPerSec,
      });
    }
    rounds++;
    if (aborted) break;
  }
  return { aborted, session, started };
}
