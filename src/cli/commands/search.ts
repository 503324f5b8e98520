/** `nasctl search` and `nasctl select`: score architectures on the one-shot model; pick some from the results. */
import * as path from 'node:path';
import { addRuntimeOptions } from '../runtime';
import { Command } from 'commander';

import { DEFAULT_SEARCH, SCORING_MODES, runSearch, type SearchEvent, type SearchOptions } from '../../search/runSearch';
import { DEFAULT_RACE } from '../../search/race';
import { SELECTION_RULES, SELECT_DEFAULTS, type SelectionRule, readSearchResults, selectArchitectures } from '../../search/select';
import { STRATEGIES } from '../../search/strategy';
import { allOnArchitecture, formatArchitecture } from '../../space/architecture';
import { DataProgress, ScoringProgress, formatDuration, outputMode } from '../progress';
import { nonNegativeInt, num, oneOf, positiveInt } from '../parse';
import { withAbortOnSignal } from '../lifecycle';
import { type DistFlags, addDistOptions, withGroup } from '../dist';

type SearchFlags = SearchOptions & DistFlags & { json?: boolean };

function renderer(json: boolean): (e: SearchEvent) => void {
  const mode = outputMode(json);
  const data = new DataProgress(mode);
  const race = new ScoringProgress(mode);
  let last = 0;
  return (e) => {
    if (e.type === 'race-round' || e.type === 'raced') {
      race.race(e);
      return;
    }
    if (e.type === 'decided') {
      if (mode === 'json') process.stdout.write(`${JSON.stringify(e.result)}\n`);
      return;
    }
    if (e.type === 'data') {
      data.handle(e.event);
      return;
    }
    if (e.type === 'warning') {
      process.stderr.write(`nasctl: warning: ${e.message}\n`);
      return;
    }
    if (e.type === 'start') {
      if (mode !== 'json')
        process.stderr.write(
          e.scoring === 'race'
            ? `${e.strategy} search by racing: ${e.done}/${e.count} decided so far, the finalists on all ${e.validationExamples} validation images, results in ${e.results}\n`
            : `${e.strategy} search: ${e.done}/${e.count} scored so far, ${e.validationExamples} validation images each, results in ${e.results}\n`,
        );
      return;
    }
    if (mode === 'json') {
      process.stdout.write(`${JSON.stringify(e.result)}\n`);
      return;
    }
    const text =
      `${e.done}/${e.count} ${e.result.accuracy.toFixed(4)} ${e.result.arch} | best ${e.best.accuracy.toFixed(4)} | ` +
      `${e.archsPerSec.toFixed(2)} arch/s ${e.imagesPerSec.toFixed(0)} img/s ETA ${formatDuration(e.etaSeconds)}`;
    if (mode === 'tty') {
      if (Date.now() - last < 100 && e.done !== e.count) return;
      last = Date.now();
      process.stderr.write(`\r\x1b[2K${text}`);
    } else if (e.done % Math.max(1, Math.round(e.count / 20)) === 0 || e.done === e.count) {
      process.stderr.write(`${text}\n`);
    }
  };
}

/** `nasctl search`: scores sampled or given architectures on a trained one-shot model. */
export function searchCommand(): Command {
  return addRuntimeOptions(addDistOptions(new Command('search')))
    .description('score architectures by one-shot validation accuracy, streaming one JSON line each to a results file (resumable)')
    .requiredOption('--supernet <path>', 'run directory (or checkpoint) of a trained one-shot model')
    .option('--out <file>', 'results file (default: <run dir>/search.jsonl)')
    .option(
      '--count <n>',
      `architectures to score (the paper: ~20,000) (default: ${DEFAULT_SEARCH.count}; with --archs: the whole list)`,
      positiveInt,
    )
    .option(
      '--archs <file>',
      'score these architectures (one per line, or JSON lines with an "arch" field such as a search.jsonl; - for stdin) instead of sampling (default: none: sample)',
    )
    .option('--strategy <name>', `${STRATEGIES.join(' or ')}`, oneOf(STRATEGIES), DEFAULT_SEARCH.strategy)
    .option('--seed <n>', 'seed of the strategy', nonNegativeInt, DEFAULT_SEARCH.seed)
    .option('--max-params <n>', "only architectures with at most n parameters (at the supernet's F) (default: no limit)", positiveInt)
    .option('--max-madds <n>', 'only architectures with at most n multiply-adds (default: no limit)', positiveInt)
    .option('--val-limit <n>', 'validation images per architecture (default: all)', positiveInt)
    .option('--batch-archs <n>', 'architectures per native call (random strategy)', positiveInt, DEFAULT_SEARCH.batchArchs)
    .option('--batched', "score each call's architectures in one pass per ghost batch (faster on GPUs)")
    .option('--population <n>', 'evolution: population size', positiveInt, DEFAULT_SEARCH.population)
    .option('--tournament <n>', 'evolution: tournament size', positiveInt, DEFAULT_SEARCH.tournament)
    .option(
      '--round <n>',
      'evolution: proposals scored (in parallel by the workers) before the strategy hears their scores (default: the number of workers)',
      positiveInt,
    )
    .option(
      '--scoring <mode>',
      'full: every architecture on the whole validation split; race: successive halving, the best part of each round goes on to more images (docs/model.md#racing)',
      oneOf(SCORING_MODES),
      'full',
    )
    .option('--race-first <n>', 'race: validation images of the first round', positiveInt, DEFAULT_RACE.first)
    .option('--race-keep <fraction>', 'race: fraction of the candidates kept after each round, in (0, 1]', num, DEFAULT_RACE.keep)
    .option('--race-min <n>', 'race: no round keeps fewer candidates (they are scored in full)', positiveInt, DEFAULT_RACE.min)
    .option(
      '--eval-batch-size <n>',
      'validation images per forward (any value gives the same scores)',
      positiveInt,
      DEFAULT_SEARCH.evalBatchSize,
    )
    .option('--while-training', "score the supernet's current checkpoint although a training job is writing its run (default: refused)")
    .option('--json', 'one JSON line per scored architecture on stdout, then {"summary":..}')
    .action(async (f: SearchFlags) => {
      const render = renderer(f.json === true);
      const {
        rank: _r,
        worldSize: _w,
        localRank: _l,
        masterAddr: _a,
        masterPort: _p,
        distTimeout: _t,
        jobId: _i,
        json: _j,
        ...options
      } = f;
      let writer = true;
      // One job per results file (or per supernet, for its default results file).
      const summary = await withGroup(f, `search:${path.resolve(f.out ?? f.supernet)}`, (group) => {
        writer = !group || group.isWriter;
        return withAbortOnSignal((signal) => runSearch(options, { signal, group, onEvent: writer ? render : undefined }));
      });
      if (!writer) {
        if (summary.aborted) process.exitCode = 130;
        return;
      }
      if (outputMode(f.json === true) === 'tty') process.stderr.write('\n');
      if (f.json) {
        process.stdout.write(`${JSON.stringify({ summary })}\n`);
      } else {
        process.stderr.write(
          `${summary.aborted ? 'stopped' : 'done'}: ${summary.scored}/${summary.count} scored, ${summary.archsPerSec.toFixed(3)} architectures/s, ${summary.imagesPerSec.toFixed(0)} images/s\n`,
        );
        if (summary.race) {
          const { rounds, passes, fullPasses } = summary.race;
          process.stderr.write(
            `race: ${rounds.map((r) => `${r.candidates} on ${r.examples}`).join(', ')} images; ${((100 * passes) / fullPasses).toFixed(1)}% of the image passes of full scoring\n`,
          );
        }
        process.stdout.write(`best by one-shot validation accuracy (${summary.results}):\n`);
        for (const r of summary.top)
          process.stdout.write(`  ${r.accuracy.toFixed(4)}  ${r.params.toLocaleString('en-US').padStart(9)} params  ${r.arch}\n`);
      }
      if (summary.aborted) process.exitCode = 130;
    });
}

interface SelectFlags {
  from: string;
  select: SelectionRule | 'all-on';
  count: number;
  percentile: number;
  pool: number;
  seed: number;
  json?: boolean;
}

/** `nasctl select`: picks architectures from search results by a selection rule. */
export function selectCommand(): Command {
  return new Command('select')
    .description('pick architectures from search results: top, top-stratified, small ("One-Shot Small"), random, all-on')
    .requiredOption('--from <file>', 'search results (search.jsonl)')
    .option('--select <rule>', `${[...SELECTION_RULES, 'all-on'].join(', ')}`, oneOf([...SELECTION_RULES, 'all-on'] as const), 'top')
    .option('--count <k>', 'how many', positiveInt, 10)
    .option('--percentile <p>', 'small: accuracy at or above this percentile', num, SELECT_DEFAULTS.percentile)
    .option('--pool <n>', 'top-stratified: sample from the best n', positiveInt, SELECT_DEFAULTS.pool)
    .option('--seed <n>', 'random: seed', nonNegativeInt, SELECT_DEFAULTS.seed)
    .option('--json', 'one JSON line per architecture')
    .action((f: SelectFlags) => {
      const results = readSearchResults(f.from);
      const picked: { arch: string; accuracy?: number; params?: number }[] =
        f.select === 'all-on'
          ? [{ arch: formatArchitecture(allOnArchitecture(4)) }]
          : selectArchitectures(results, { rule: f.select, count: f.count, percentile: f.percentile, pool: f.pool, seed: f.seed });
      picked.forEach((r, i) => {
        if (f.json) process.stdout.write(`${JSON.stringify({ rank: i + 1, ...r })}\n`);
        else
          process.stdout.write(
            `${String(i + 1).padStart(3)}  ${r.accuracy?.toFixed(4) ?? '   -  '}  ${(r.params?.toLocaleString('en-US') ?? '').padStart(9)}  ${r.arch}\n`,
          );
      });
    });
}
