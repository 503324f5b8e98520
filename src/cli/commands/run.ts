/** `nasctl run`: train -> search -> select -> retrain -> report in one run directory, resumable at every stage. */
import { addRuntimeOptions } from '../runtime';
import { Command } from 'commander';
import type { ExecutionPlan } from '../../native/binding';
import { PIPELINE_PRESETS, type PipelineEvent, type PipelineOptions, runPipeline } from '../../pipeline/runPipeline';
import { SELECTION_RULES, type SelectionRule } from '../../search/select';
import { STRATEGIES, type StrategyName } from '../../search/strategy';
import { SCORING_MODES, type ScoringMode } from '../../search/runSearch';
import { oneOf, positiveInt, presetDefault } from '../parse';
import { DataProgress, RetrainProgress, ScoringProgress, TrainProgress, outputMode } from '../progress';
import { type DatasetFlags, addDatasetOptions, datasetFromFlags } from '../dataset';
import * as path from 'node:path';
import { withAbortOnSignal } from '../lifecycle';

interface RunFlags extends DatasetFlags {
  preset: 'quick' | 'paper';
  out?: string;
  searchCount?: number;
  strategy?: StrategyName;
  scoring?: ScoringMode;
  select?: SelectionRule;
  retrainCount?: number;
  retrainFilters?: number;
  retrainEpochs?: number;
  runs?: number;
  threads?: number;
  device?: string;
  precision?: 'fp32' | 'bf16';
  plan?: ExecutionPlan;
  json?: boolean;
}

/** runs/<name> of a run on an image folder: the folder's name, made safe for a path. */
function folderRunName(dir: string): string {
  return path.basename(path.resolve(dir)).replace(/[^A-Za-z0-9._-]/g, '_') || 'folder';
}

/** "(default: ...)" of a flag from PIPELINE_PRESETS. */
const preset = (get: (p: PipelineOptions) => unknown): string => presetDefault(PIPELINE_PRESETS, get);

/** `nasctl run`: the whole method (train, search, select, retrain, report) from a preset. */
export function runCommand(): Command {
  return addDatasetOptions(
    addRuntimeOptions(new Command('run')),
    undefined,
    preset((p) => p.train.dataset.name),
  )
    .description('the whole method: train the one-shot model, search, select, retrain the winners, write the HTML report')
    .option(
      '--preset <name>',
      "quick (Fashion-MNIST, about 5 minutes on 2 cores) or paper (CIFAR-10, the paper's run: a GPU)",
      oneOf(['quick', 'paper'] as const),
      'quick',
    )
    .option('--out <dir>', 'run directory (default: runs/<preset>; with --dataset folder: runs/<folder name>)')
    .option('--search-count <n>', `architectures to score ${preset((p) => p.search.count)}`, positiveInt)
    .option('--strategy <name>', `${STRATEGIES.join(' or ')} ${preset((p) => p.search.strategy)}`, oneOf(STRATEGIES))
    .option(
      '--scoring <mode>',
      `full, or race: the search by racing, the best part of each round on to more validation images (docs/model.md#racing) ${preset((p) => p.search.scoring ?? 'full')}`,
      oneOf(SCORING_MODES),
    )
    .option('--select <rule>', `${SELECTION_RULES.join(', ')} ${preset((p) => p.select.rule)}`, oneOf(SELECTION_RULES))
    .option('--retrain-count <k>', `architectures to retrain ${preset((p) => p.select.count)}`, positiveInt)
    .option('--retrain-filters <F>', `F of the retrained models ${preset((p) => p.retrain.filters)}`, positiveInt)
    .option('--retrain-epochs <n>', `epochs of retraining ${preset((p) => p.retrain.epochs)}`, positiveInt)
    .option('--runs <r>', `retraining runs per architecture ${preset((p) => p.retrain.runs)}`, positiveInt)
    .option('--json', 'JSON lines: stage events, then {"result":..}')
    .action(async (f: RunFlags) => {
      const p = PIPELINE_PRESETS[f.preset];
      // Another dataset than the preset's: none of the preset's dataset-bound values (training subset, eval interval).
      const other = f.dataset !== undefined && f.dataset !== p.train.dataset.name;
      const o = {
        train: {
          ...p.train,
          ...(other ? { evalEvery: undefined } : {}),
          dataset: other ? datasetFromFlags(f, f.dataset!) : { ...p.train.dataset, ...datasetFromFlags(f, p.train.dataset.name) },
          out: f.out ?? (other && f.dataset === 'folder' ? path.join('runs', folderRunName(f.dataDir!)) : p.train.out),
          net: {
            ...p.train.net,
            ...(f.threads ? { threads: f.threads } : {}),
            ...(f.device ? { device: f.device } : {}),
            ...(f.precision ? { precision: f.precision } : {}),
            ...(f.plan ? { plan: f.plan } : {}),
          },
        },
        search: {
          ...p.search,
          ...(f.searchCount ? { count: f.searchCount } : {}),
          ...(f.strategy ? { strategy: f.strategy } : {}),
          ...(f.scoring ? { scoring: f.scoring } : {}),
        },
        select: { ...p.select, ...(f.select ? { rule: f.select } : {}), ...(f.retrainCount ? { count: f.retrainCount } : {}) },
        retrain: {
          ...p.retrain,
          ...(f.retrainFilters ? { filters: f.retrainFilters } : {}),
          ...(f.retrainEpochs ? { epochs: f.retrainEpochs } : {}),
          ...(f.runs ? { runs: f.runs } : {}),
        },
      };
      const mode = outputMode(f.json === true);
      const trainProgress = new TrainProgress(mode === 'json' ? 'plain' : mode);
      const retrainProgress = new RetrainProgress(mode);
      const scoringProgress = new ScoringProgress(mode);
      const dataProgress = new DataProgress(mode);
      const onEvent = (e: PipelineEvent): void => {
        if (mode === 'json') {
          if (e.type === 'stage') process.stdout.write(`${JSON.stringify(e)}\n`);
          if (e.type === 'search' && (e.event.type === 'scored' || e.event.type === 'decided'))
            process.stdout.write(`${JSON.stringify({ type: 'scored', ...e.event.result })}\n`);
          if (e.type === 'retrain' && e.event.type === 'run')
            process.stdout.write(`${JSON.stringify({ type: 'retrained', ...e.event.result })}\n`);
          if (e.type === 'train' && e.event.type === 'eval') process.stdout.write(`${JSON.stringify(e.event)}\n`);
          if (e.type === 'retrain' && e.event.type === 'step') retrainProgress.step(e.event); // JSON lines on stderr
          if (e.type === 'report') process.stderr.write(`${JSON.stringify({ type: 'progress', stage: 'report', ...e.event })}\n`);
          return;
        }
        if (e.type === 'search' && e.event.type === 'data') dataProgress.handle(e.event.event);
        if (e.type === 'retrain' && e.event.type === 'data') dataProgress.handle(e.event.event);
        if (e.type === 'stage') {
          trainProgress.finish();
          process.stderr.write(`== ${e.stage}${e.skipped ? ' (already done)' : ''}\n`);
        } else if (e.type === 'train') {
          trainProgress.handle(e.event);
        } else if (e.type === 'search' && e.event.type === 'scored') {
          scoringProgress.scored(e.event);
        } else if (e.type === 'search') {
          scoringProgress.race(e.event);
        } else if (e.type === 'report') {
          process.stderr.write(`  plot ${e.event.index}: ${e.event.title} (${e.event.seconds.toFixed(1)} s)\n`);
        } else if (e.type === 'retrain') {
          const r = e.event;
          if (r.type === 'run-start') {
            process.stderr.write(`${mode === 'tty' ? '\r\x1b[2K' : ''}retraining ${r.arch} (run ${r.run + 1}, ${r.totalSteps} steps)\n`);
          }
          if (r.type === 'step') retrainProgress.step(r);
          if (r.type === 'run')
            process.stderr.write(
              `${mode === 'tty' ? '\r\x1b[2K' : ''}  test accuracy ${r.result.testAccuracy.toFixed(4)}, ${r.result.params.toLocaleString('en-US')} params\n`,
            );
        }
      };
      const result = await withAbortOnSignal((signal) => runPipeline(o, { signal, onEvent }));
      if (f.json) {
        process.stdout.write(`${JSON.stringify({ result })}\n`);
      } else if (result.aborted) {
        process.stderr.write(`stopped; run the same command again to continue (${result.out})\n`);
      } else {
        const s = result.search!;
        process.stdout.write(
          `\nsearch: ${s.scored} architectures, ${s.archsPerSec.toFixed(2)} arch/s; best one-shot validation accuracies:\n`,
        );
        for (const t of s.top.slice(0, 3)) process.stdout.write(`  ${t.accuracy.toFixed(4)}  ${t.arch}\n`);
        process.stdout.write('retrained from scratch (test accuracy on held-out test images):\n');
        for (const r of result.retrained ?? [])
          process.stdout.write(
            `  ${(100 * r.testAccuracyMean).toFixed(2)} ± ${(100 * r.testAccuracyStd).toFixed(2)}%  ${r.params.toLocaleString('en-US')} params  ${r.arch}\n`,
          );
        process.stdout.write(`report: ${result.report?.file}\n`);
      }
      if (result.aborted) process.exitCode = 130;
    });
}
