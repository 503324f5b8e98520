/** `nasctl study correlation|dropout|kl`: the paper's experiments (Figures 4 to 7). */
import { Command } from 'commander';
import * as path from 'node:path';
import { correlationStudy, dropoutStudy, klStudy } from '../../study/studies';
import { PRESETS, withOverrides } from '../../train/trainOptions';
import { readRunOptions } from '../../train/trainOneShot';
import { nonNegativeInt, num, positiveInt } from '../parse';
import { withAbortOnSignal } from '../run';

const say = (json: boolean | undefined, text: string, value: unknown): void => {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : text);
};

export function studyCommand(): Command {
  const study = new Command('study').description("the paper's analyses: correlation (Fig. 5), dropout (Fig. 4), kl (Fig. 6/7)");

  study.command('correlation')
    .description('score a sample, take a few architectures per one-shot accuracy bucket, retrain them briefly over several seeds, report Spearman/Kendall')
    .requiredOption('--supernet <dir>', 'run directory of a trained one-shot model')
    .option('--out <dir>', 'study folder (default: <supernet>/study-correlation)')
    .option('--sample <n>', 'architectures scored', positiveInt, 100)
    .option('--buckets <n>', 'one-shot accuracy buckets', positiveInt, 4)
    .option('--per-bucket <n>', 'architectures retrained per bucket', positiveInt, 2)
    .option('--epochs <n>', 'stand-alone training epochs (the paper: ~28)', positiveInt, 1)
    .option('--runs <n>', 'seeds per architecture (the paper: 5)', positiveInt, 2)
    .option('--filters <F>', 'F of the stand-alone models', positiveInt, 8)
    .option('--val-limit <n>', 'validation images for one-shot scores', positiveInt)
    .option('--seed <n>', 'seed', nonNegativeInt, 0)
    .option('--threads <n>', 'LibTorch threads', positiveInt)
    .option('--json', 'print the result as JSON')
    .action(async (f) => {
      const r = await withAbortOnSignal((signal) => correlationStudy({ ...f, out: f.out ?? path.join(f.supernet, 'study-correlation') }, {
        signal,
        onRetrain: (e) => e.type === 'run' && !f.json && process.stderr.write(`  ${e.result.arch}: stand-alone validation ${e.result.validationAccuracy.toFixed(4)} (seed ${e.result.seed})\n`),
      }));
      say(f.json, `${r.rows.map((x) => `${x.oneShot.toFixed(4)}  ${x.standalone.toFixed(4)} ± ${x.standaloneStd.toFixed(4)}  ${x.arch}`).join('\n')}\n` +
        `Spearman's rho ${r.spearman.toFixed(3)}, Kendall's tau ${r.kendall.toFixed(3)} over ${r.rows.length} architectures (${r.file})\n`, r);
    });

  study.command('dropout')
    .description('train one-shot models with constant dropout rates and compare the spread of their one-shot accuracies')
    .option('--base <dir>', 'take the training options of this run (default: the quick preset)')
    .option('--rates <list>', 'comma-separated constant rates r', '0.000001,0.01,0.3')
    .option('--out <dir>', 'study folder', 'runs/study-dropout')
    .option('--sample <n>', 'architectures scored on every model', positiveInt, 50)
    .option('--steps <n>', 'training steps per model (default: the base run\'s)', positiveInt)
    .option('--val-limit <n>', 'validation images per architecture', positiveInt, 1000)
    .option('--seed <n>', 'seed of the sample', nonNegativeInt, 0)
    .option('--json', 'print the result as JSON')
    .action(async (f) => {
      const rates = String(f.rates).split(',').map((x) => num(x));
      const base = withOverrides(f.base ? readRunOptions(f.base) : PRESETS.quick, { steps: f.steps });
      const r = await withAbortOnSignal((signal) => dropoutStudy(base, { out: f.out, rates, sample: f.sample, valLimit: f.valLimit, seed: f.seed }, {
        signal,
        onTrain: (rate, e) => e.type === 'eval' && !f.json && process.stderr.write(`  r=${rate} step ${e.step}: one-shot validation accuracy ${e.valAccuracy.toFixed(4)}\n`),
      }));
      say(f.json, `${r.rows.map((x) => `r=${x.rate}: mean ${x.meanAccuracy.toFixed(4)} std ${x.stdAccuracy.toFixed(4)} range ${x.minAccuracy.toFixed(4)}..${x.maxAccuracy.toFixed(4)} rho vs r=${r.rows[0].rate} ${x.rhoVsFirst.toFixed(3)}`).join('\n')}\n(${r.file})\n`, r);
    });

  study.command('kl')
    .description('symmetrized KL between reference (r = 1e-8) and candidate architectures on random training examples, vs one-shot accuracy')
    .requiredOption('--supernet <dir>', 'run directory of a trained one-shot model')
    .option('--out <dir>', 'study folder (default: <supernet>/study-kl)')
    .option('--references <n>', 'reference architectures', positiveInt, 4)
    .option('--candidates <n>', 'candidate architectures', positiveInt, 50)
    .option('--examples <n>', 'training examples (labels unused)', positiveInt, 64)
    .option('--val-limit <n>', 'validation images for one-shot accuracy', positiveInt, 1000)
    .option('--seed <n>', 'seed', nonNegativeInt, 0)
    .option('--threads <n>', 'LibTorch threads', positiveInt)
    .option('--json', 'print the result as JSON')
    .action(async (f) => {
      const r = await klStudy({ ...f, out: f.out ?? path.join(f.supernet, 'study-kl') });
      say(f.json, `Spearman's rho between KL and one-shot accuracy ${r.spearman.toFixed(3)}, Kendall's tau ${r.kendall.toFixed(3)} over ${r.rows.length} candidates (${r.file})\n`, r);
    });
  return study;
}
