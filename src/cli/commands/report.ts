/** `nasctl report`: a self-contained HTML page with plots for a run directory. */
import { Command } from 'commander';
import { type ReportPlotEvent, buildReport } from '../../report/buildReport';
import { positiveInt } from '../parse';

/** `nasctl report`: the HTML report of a run directory. */
export function reportCommand(): Command {
  return new Command('report')
    .description(
      'write <run dir>/report.html: training curves, dropout schedule, one-shot accuracy histogram, one-shot vs stand-alone, ranked table',
    )
    .argument('<dir>', 'run directory (from nasctl train / run)')
    .option('--out <file>', 'HTML file (default: <dir>/report.html)')
    .option('--retrain-dir <dir>', 'where retrain.jsonl is (default: <dir>/retrain)')
    .option('--top <n>', 'rows of the ranked table', positiveInt, 20)
    .option('--json', 'print {"file","plots"}')
    .action(async (dir: string, f: { out?: string; retrainDir?: string; top: number; json?: boolean }) => {
      const onPlot = (e: ReportPlotEvent): void => {
        process.stderr.write(
          f.json
            ? `${JSON.stringify({ type: 'progress', stage: 'report', ...e })}\n`
            : `  plot ${e.index}: ${e.title} (${e.seconds.toFixed(1)} s)\n`,
        );
      };
      const r = await buildReport(dir, { out: f.out, retrainDir: f.retrainDir, top: f.top, onPlot });
      process.stdout.write(f.json ? `${JSON.stringify(r)}\n` : `wrote ${r.file} (${r.plots.length} plots: ${r.plots.join(', ')})\n`);
    });
}
