/** `nasctl study correlation|dropout|kl`: the paper's experiments (Figures 4 to 7). */
import { addRuntimeOptions } from '../runtime';
import { Command } from 'commander';
import * as path from 'node:path';
import type { Interval } from '../../report/correlation';
import {
  CORRELATION_PRESETS,
  CORRELATION_PRESET_NAMES,
  type CorrelationPreset,
  type CorrelationPresetName,
  correlationStudy,
  dropoutStudy,
  klStudy,
} from '../../study/studies';
import { stripUndefined } from '../../util/objects';
import { PRESETS, withOverrides } from '../../train/trainOptions';
import { readRunOptions } from '../../train/trainOneShot';
import { nonNegativeInt, num, oneOf, positiveInt, presetDefault } from '../parse';
import { CountProgress, RetrainProgress, ScoringProgress, TrainProgress, formatDuration, outputMode } from '../progress';
import { withAbortOnSignal } from '../lifecycle';
import { addDatasetOptions, datasetFromFlags } from '../dataset';

const say = (json: boolean | undefined, text: string, value: unknown): void => {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : text);
};

/** `nasctl study`: the paper's experiments (correlation, dropout, kl). */
export function studyCommand(): Command {
  return new Command('study')
    .description("the paper's analyses: correlation (Fig. 5), dropout (Fig. 4), kl (Fig. 6/7)")
    .addCommand(correlationCommand())
    .addCommand(dropoutCommand())
    .addCommand(klCommand());
}

/** "(default: ...)" of a flag from CORRELATION_PRESETS' study options. */
const preset = (get: (s: CorrelationPreset['study']) => unknown): string =>
  presetDefault(CORRELATION_PRESETS, (p: CorrelationPreset) => get(p.study));

/** `nasctl study correlation`: one-shot vs stand-alone accuracy (Figure 5). */
function correlationCommand(): Command {
  return addDatasetOptions(
    addRuntimeOptions(new Command('correlation'), ['threads', 'device'], {
      device: "the preset's for the one-shot model it trains, else that model's",
    }),
    undefined,
    "(default: the preset's for the one-shot model it trains, else that model's)",
  )
    .description(
      'score a sample (or --archs), retrain a few architectures per one-shot accuracy bucket over several seeds, ' +
        "report Spearman's rho and Kendall's tau with bootstrap 95% intervals and the seed-to-seed rho",
    )
    .option(
      '--preset <name>',
      `${CORRELATION_PRESET_NAMES.join(', ')}: the study's sizes, and the one-shot model trained when --supernet is not given`,
      oneOf(CORRELATION_PRESET_NAMES),
      'quick',
    )
    .option('--supernet <dir>', "run directory of a trained one-shot model (default: train the preset's into <out>/oneshot)")
    .option('--out <dir>', 'study folder (default: <supernet>/study-correlation, or runs/correlation-<preset>)')
    .option(
      '--archs <file>',
      'score and retrain these architectures instead of a bucketed sample (as for `nasctl search --archs`; - for stdin) (default: none)',
    )
    .option('--sample <n>', `architectures scored ${preset((s) => s.sample)}`, positiveInt)
    .option('--buckets <n>', `one-shot accuracy buckets ${preset((s) => s.buckets)}`, positiveInt)
    .option('--per-bucket <n>', `architectures retrained per bucket ${preset((s) => s.perBucket)}`, positiveInt)
    .option('--epochs <n>', `stand-alone training epochs (the paper: ~28) ${preset((s) => s.epochs)}`, positiveInt)
    .option('--runs <n>', `seeds per architecture (the paper: 5) ${preset((s) => s.runs)}`, positiveInt)
    .option('--filters <F>', `F of the stand-alone models ${preset((s) => s.filters)}`, positiveInt)
    .option('--train-limit <n>', `training examples of the stand-alone models ${preset((s) => s.trainLimit ?? 'all')}`, positiveInt)
    .option('--val-limit <n>', `validation images of the one-shot scores ${preset((s) => s.valLimit ?? 'all')}`, positiveInt)
    .option(
      '--jobs <n>',
      `stand-alone runs trained at once ${preset((s) => s.jobs ?? 'one per core on the CPU, one on a GPU')}`,
      positiveInt,
    )
    .option('--resamples <n>', 'bootstrap resamples', positiveInt, 2000)
    .option('--seed <n>', `seed ${preset((s) => s.seed)}`, nonNegativeInt)
    .option('--oneshot-steps <n>', "training steps of the one-shot model the study trains (default: the preset's)", positiveInt)
    .option('--json', 'print the result as JSON')
    .action(async (f) => {
      const preset = CORRELATION_PRESETS[f.preset as CorrelationPresetName];
      const out: string = f.out ?? (f.supernet ? path.join(f.supernet, 'study-correlation') : `runs/correlation-${f.preset}`);
      const mode = outputMode(f.json === true);
      const trainProgress = new TrainProgress(mode === 'json' ? 'plain' : mode);
      const retrainProgress = new RetrainProgress(mode);
      const scoringProgress = new ScoringProgress(mode);
      // Without --supernet the study trains the preset's one-shot model; on another dataset than the preset's, without
      // the preset's dataset-bound values (training subset, eval interval).
      const other = f.dataset !== undefined && f.dataset !== preset.oneShot.dataset.name;
      const base = other ? { ...preset.oneShot, dataset: datasetFromFlags(f, f.dataset), evalEvery: undefined } : preset.oneShot;
      const oneShot = f.supernet
        ? undefined
        : withOverrides(base, {
            out: path.join(out, 'oneshot'),
            steps: f.oneshotSteps,
            net: { threads: f.threads, device: f.device },
            dataset: other ? undefined : datasetFromFlags(f, preset.oneShot.dataset.name),
          });
      const r = await withAbortOnSignal(async (signal) => {
        return correlationStudy(
          {
            ...preset.study,
            ...stripUndefined({
              sample: f.sample,
              buckets: f.buckets,
              perBucket: f.perBucket,
              epochs: f.epochs,
              runs: f.runs,
              filters: f.filters,
              trainLimit: f.trainLimit,
              valLimit: f.valLimit,
              seed: f.seed,
              jobs: f.jobs,
            }),
            archs: f.archs,
            threads: f.threads,
            device: f.device,
            resamples: f.resamples,
            supernet: f.supernet,
            oneShot,
            out,
          },
          {
            signal,
            onEvent: (e) => {
              if (e.type === 'stage') {
                trainProgress.finish();
                const title = {
                  oneshot: `one-shot model (${f.preset} preset) -> ${oneShot?.out}`,
                  score: 'one-shot scores',
                  retrain: 'stand-alone training',
                };
                if (mode !== 'json') process.stderr.write(`== ${title[e.stage]}\n`);
              } else if (e.type === 'train') {
                trainProgress.handle(e.event);
              } else if (e.type === 'search' && e.event.type === 'scored') {
                scoringProgress.scored(e.event);
              } else if (e.type === 'retrain') {
                const ev = e.event;
                if (ev.type === 'step') retrainProgress.step(ev);
                else if (ev.type === 'run' && mode !== 'json') {
                  retrainProgress.finish();
                  process.stderr.write(
                    `  ${ev.result.arch}: stand-alone validation ${ev.result.validationAccuracy.toFixed(4)} (seed ${ev.result.seed}, ${formatDuration(ev.result.seconds)})\n`,
                  );
                }
              }
            },
          },
        );
      });
      if (r.aborted) {
        if (!f.json) process.stderr.write(`stopped; run the same command again to continue (${out})\n`);
        else process.stdout.write(`${JSON.stringify({ aborted: true })}\n`);
        process.exitCode = 130;
        return;
      }
      const iv = (x: Interval): string => `${x.value.toFixed(3)} [${x.low.toFixed(3)}, ${x.high.toFixed(3)}]`;
      say(
        f.json,
        `${r.rows.map((x) => `${x.oneShot.toFixed(4)}  ${x.standalone.toFixed(4)} ± ${x.standaloneStd.toFixed(4)}  ${x.arch}`).join('\n')}\n` +
          `over ${r.rows.length} architectures, one-shot vs stand-alone: Spearman's rho ${iv(r.spearmanInterval)}, Kendall's tau ${iv(r.kendallInterval)} (bootstrap 95% intervals)\n` +
          `stand-alone seed-to-seed Spearman's rho: ${r.seedSpearman === null ? 'n/a (one run)' : r.seedSpearman.toFixed(3)}\n(${r.file})\n`,
        r,
      );
    });
}

/** `nasctl study dropout`: one-shot models with constant dropout rates (Figure 4). */
function dropoutCommand(): Command {
  return new Command('dropout')
    .description('train one-shot models with constant dropout rates and compare the spread of their one-shot accuracies')
    .option('--base <dir>', 'take the training options of this run (default: the quick preset)')
    .option('--rates <list>', 'comma-separated constant rates r', '0.000001,0.01,0.3')
    .option('--out <dir>', 'study folder', 'runs/study-dropout')
    .option('--sample <n>', 'architectures scored on every model', positiveInt, 50)
    .option('--steps <n>', "training steps per model (default: the base run's)", positiveInt)
    .option('--val-limit <n>', 'validation images per architecture', positiveInt, 1000)
    .option('--seed <n>', 'seed of the sample', nonNegativeInt, 0)
    .option('--json', 'print the result as JSON')
    .action(async (f) => {
      const rates = String(f.rates)
        .split(',')
        .map((x) => num(x));
      const base = withOverrides(f.base ? readRunOptions(f.base) : PRESETS.quick, { steps: f.steps });
      const progress = new TrainProgress(outputMode(f.json === true) === 'tty' ? 'tty' : 'plain');
      const r = await withAbortOnSignal((signal) =>
        dropoutStudy(
          base,
          { out: f.out, rates, sample: f.sample, valLimit: f.valLimit, seed: f.seed },
          {
            signal,
            onTrain: (rate, e) => {
              if (e.type === 'start') process.stderr.write(`== one-shot model with constant r = ${rate}\n`);
              progress.handle(e);
            },
          },
        ),
      );
      progress.finish();
      say(
        f.json,
        `${r.rows.map((x) => `r=${x.rate}: mean ${x.meanAccuracy.toFixed(4)} std ${x.stdAccuracy.toFixed(4)} range ${x.minAccuracy.toFixed(4)}..${x.maxAccuracy.toFixed(4)} rho vs r=${r.rows[0].rate} ${x.rhoVsFirst.toFixed(3)}`).join('\n')}\n(${r.file})\n`,
        r,
      );
    });
}

/** `nasctl study kl`: the symmetrized KL against reference architectures (Figures 6 and 7). */
function klCommand(): Command {
  return addRuntimeOptions(new Command('kl'), ['threads'])
    .description(
      'symmetrized KL between reference (r = 1e-8) and candidate architectures on random training examples, vs one-shot accuracy',
    )
    .requiredOption('--supernet <dir>', 'run directory of a trained one-shot model')
    .option('--out <dir>', 'study folder (default: <supernet>/study-kl)')
    .option('--references <n>', 'reference architectures', positiveInt, 4)
    .option('--candidates <n>', 'candidate architectures', positiveInt, 50)
    .option('--examples <n>', 'training examples (labels unused)', positiveInt, 64)
    .option('--val-limit <n>', 'validation images for one-shot accuracy', positiveInt, 1000)
    .option('--seed <n>', 'seed', nonNegativeInt, 0)
    .option('--json', 'print the result as JSON')
    .action(async (f) => {
      const progress = new CountProgress(outputMode(Boolean(f.json)));
      const r = await klStudy(
        {
          supernet: f.supernet,
          out: f.out ?? path.join(f.supernet, 'study-kl'),
          references: f.references,
          candidates: f.candidates,
          examples: f.examples,
          valLimit: f.valLimit,
          seed: f.seed,
          threads: f.threads,
        },
        { onProgress: (p) => progress.update(p) },
      );
      say(
        f.json,
        `Spearman's rho between KL and one-shot accuracy ${r.spearman.toFixed(3)}, Kendall's tau ${r.kendall.toFixed(3)} over ${r.rows.length} candidates (${r.file})\n`,
        r,
      );
    });
}
