/**
 * `nasctl report`: one self-contained HTML page per run directory with the plots (Vega-Lite rendered to inline SVG)
 * and the ranked table. Reads whatever the run has: metrics.jsonl, search.jsonl, retrain/retrain.jsonl.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NasError } from '../util/errors';
import { dropProbability } from '../schedule/dropout';
import { type SearchResult, byRank, isRaced, searchResultLine } from '../search/select';
import { type RetrainRun, retrainRunLine } from '../retrain/retrain';
import { type MetricsLine, metricsLine } from '../train/trainOneShot';
import type { TrainOptions } from '../train/trainOptions';
import { checkOutputFile, readJsonFile, readJsonLines, writeFileAtomic } from '../util/files';
import { spearman, kendall } from './correlation';
import { accuracyHistogram, dropSchedule, klOverTraining, klVsAccuracy, oneShotVsStandalone, renderSvg, trainingCurves } from './plots';
import { mean } from '../util/stats';
import { drawCell } from './cellDrawing';
import { esc } from './html';
import { DEFAULT_SPACE, parseCandidate, spaceWith } from '../space/architecture';

// Every value that reaches the page goes through esc (text, ./html.ts) or fixed (numbers).
/** A finite number with `digits` decimals (all of its digits when omitted); anything else as it is, as text. */
const numText = (v: unknown, digits?: number): string =>
  typeof v === 'number' && Number.isFinite(v) ? (digits === undefined ? String(v) : v.toFixed(digits)) : String(v ?? '');
/** numText for the page (escaped). Section notes take numText: they are escaped as a whole. */
const fixed = (v: unknown, digits?: number): string => esc(numText(v, digits));

/** What `buildReport` wrote: the HTML file and the titles of its plots. */
export interface ReportSummary {
  file: string;
  plots: string[];
}

/** One rendered plot of the report (progress of `nasctl report` and of the pipeline's report stage). */
export interface ReportPlotEvent {
  title: string;
  index: number;
  seconds: number;
}

const REPORT_GENERATOR = 'oneshot-nas report';
/** A report this package wrote (an earlier version's too: its title), recognised from the file's first bytes. */
const isReport = (head: string): boolean =>
  /^<!doctype html>/i.test(head) && (head.includes(REPORT_GENERATOR) || head.includes('<title>oneshot-nas report:'));

/** Writes `<dir>/report.html` (or `o.out`) for a run directory: plots of whatever the run has and the ranked table; `o.onPlot` reports each rendered plot. */
export async function buildReport(
  dir: string,
  o: { out?: string; retrainDir?: string; top?: number; onPlot?: (e: ReportPlotEvent) => void } = {},
): Promise<ReportSummary> {
  let rendered = 0;
  const render = async (title: string, spec: Parameters<typeof renderSvg>[0]): Promise<string> => {
    const t0 = Date.now();
    const svg = await renderSvg(spec);
    o.onPlot?.({ title, index: ++rendered, seconds: (Date.now() - t0) / 1000 });
    return svg;
  };
  // The output is checked first: a path that is not a report of ours is refused before any work.
  const file = o.out ?? path.join(dir, 'report.html');
  checkOutputFile(file, 'HTML report', isReport);
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) throw new NasError('ERR_NAS_IO', `${dir}: not a run directory (no config.json)`);
  const options = readJsonFile(configFile, 'ERR_NAS_BAD_CONFIG', 'run configuration') as TrainOptions;
  const metrics = readJsonLines(path.join(dir, 'metrics.jsonl'), metricsLine);
  const search = readJsonLines(path.join(dir, 'search.jsonl'), searchResultLine);
  const retrained = readJsonLines(path.join(o.retrainDir ?? path.join(dir, 'retrain'), 'retrain.jsonl'), retrainRunLine);
  const sections: { title: string; svg?: string; note?: string }[] = [];

  if (metrics.length) sections.push({ title: 'Training curves', svg: await render('Training curves', trainingCurves(metrics)) });
  const total = metrics.length ? metrics[metrics.length - 1].step : 0;
  if (total > 0) {
    sections.push({
      title: 'Path-dropout schedule',
      svg: await render('Path-dropout schedule', dropSchedule(dropScheduleRows(options, total))),
    });
  }
  if (search.length)
    sections.push({
      title: 'One-shot accuracies',
      svg: await render('One-shot accuracies', accuracyHistogram(search.map((r) => r.accuracy))),
      note: [searchNote(path.join(dir, 'search.search.json'), search.length), raceNote(search)].filter(Boolean).join(' '),
    });
  const byArch = new Map(search.map((r) => [r.arch, r]));
  const pairs = new Map<string, { oneShot: number; standalone: number[] }>();
  for (const r of retrained) {
    const s = byArch.get(r.arch);
    if (!s) continue;
    const p = pairs.get(r.arch) ?? { oneShot: s.accuracy, standalone: [] };
    p.standalone.push(r.testAccuracy);
    pairs.set(r.arch, p);
  }
  const scatter = [...pairs.entries()].map(([arch, p]) => ({ arch, oneShot: p.oneShot, standalone: mean(p.standalone) }));
  if (scatter.length) {
    const note = correlationNote(scatter);
    sections.push({ title: 'One-shot vs stand-alone', svg: await render('One-shot vs stand-alone', oneShotVsStandalone(scatter)), note });
  }
  const klFile = path.join(dir, 'study-kl', 'kl.json');
  if (fs.existsSync(klFile)) {
    const kl = readJsonFile(klFile, 'ERR_NAS_BAD_RESULTS', 'KL study') as {
      rows: { kl: number; accuracy: number; arch: string }[];
      spearman: number;
      kendall: number;
    };
    sections.push({
      title: 'KL vs one-shot accuracy',
      svg: await render('KL vs one-shot accuracy', klVsAccuracy(kl.rows)),
      note: `Spearman's rho ${numText(kl.spearman, 3)}, Kendall's tau ${numText(kl.kendall, 3)} over ${numText(kl.rows?.length)} candidates.`,
    });
  } else {
    sections.push({ title: 'KL vs one-shot accuracy', note: 'Run `nasctl study kl --supernet <this dir>` to add this plot.' });
  }
  const tracked = metrics
    .filter((m) => m.kl?.length)
    .flatMap((m) => m.kl!.map((kl, i) => ({ step: m.step, kl: Math.max(kl, 1e-9), arch: `#${i + 1}` })));
  if (tracked.length) sections.push({ title: 'KL over training', svg: await render('KL over training', klOverTraining(tracked)) });

  const table = rankedTable(search, retrained, o.top ?? 20);
  const html = reportPage(dir, options, metrics, sections, table + cellDrawings(search, retrained, options.net?.blocks));
  writeFileAtomic(file, html);
  return { file, plots: sections.filter((s) => s.svg).map((s) => s.title) };
}

/** Drop probabilities over training for three nodes of different fan-in: the rows of the schedule plot. */
function dropScheduleRows(options: TrainOptions, total: number): { step: number; p: number; node: string }[] {
  const rows: { step: number; p: number; node: string }[] = [];
  const nodes: [string, number][] = [
    ['inputs of block 0 (k=2)', 2],
    ['inputs of block 3 (k=5)', 5],
    ['operations (k=7)', 7],
  ];
  for (let s = 0; s <= total; s += Math.max(1, Math.floor(total / 50))) {
    for (const [node, k] of nodes) rows.push({ step: s, p: dropProbability(options.dropout, k, s, total), node });
  }
  return rows;
}

/** The rank correlations under the one-shot vs stand-alone plot (from 3 architectures on). */
function correlationNote(scatter: { oneShot: number; standalone: number }[]): string {
  if (scatter.length < 3) return `${scatter.length} architecture(s): too few for a rank correlation.`;
  const x = scatter.map((s) => s.oneShot);
  const y = scatter.map((s) => s.standalone);
  return `Spearman's rho ${numText(spearman(x, y), 3)}, Kendall's tau ${numText(kendall(x, y), 3)} over ${scatter.length} architectures.`;
}

/**
 * A racing search (docs/model.md#racing): how many candidates reached each round and on how many validation images
 * each was scored; partial scores rank below full ones. Undefined for full scoring.
 */
export function raceNote(search: SearchResult[]): string | undefined {
  if (!isRaced(search)) return undefined;
  const byExamples = new Map<number, number>();
  for (const r of search) byExamples.set(r.examples, (byExamples.get(r.examples) ?? 0) + 1);
  const levels = [...byExamples.keys()].sort((a, b) => a - b);
  const n = (x: number): string => x.toLocaleString('en-US');
  const reached = levels.map(
    (e, i) => `${n(levels.slice(i).reduce((sum, l) => sum + (byExamples.get(l) ?? 0), 0))} reached ${n(e)} images`,
  );
  return `Scored by racing: ${reached.join(', ')}; the histogram mixes partial scores (fewer images) with full ones, and the ranking puts an architecture the race kept longer above one it cut.`;
}

/** The `count` best architectures in rank order (select.ts byRank), with their stand-alone test accuracy where retrained. */
function rankedTable(search: SearchResult[], retrained: RetrainRun[], count: number): string {
  const top = [...search].sort(byRank).slice(0, count);
  const retrainedBy = new Map<string, number[]>();
  for (const r of retrained) retrainedBy.set(r.arch, [...(retrainedBy.get(r.arch) ?? []), r.testAccuracy]);
  return top.length
    ? `<table><thead><tr><th>#</th><th>one-shot acc.</th><th>val. images</th><th>params</th><th>multiply-adds</th><th>stand-alone test acc.</th><th>architecture</th></tr></thead><tbody>${top
        .map((r, i) => {
          const st = retrainedBy.get(r.arch);
          return `<tr><td>${i + 1}</td><td>${fixed(r.accuracy, 4)}</td><td>${fixed(r.examples)}</td><td>${esc(r.params.toLocaleString('en-US'))}</td><td>${fixed(r.madds / 1e6, 1)}M</td><td>${st ? fixed(mean(st), 4) : ''}</td><td><code>${esc(r.arch)}</code></td></tr>`;
        })
        .join('')}</tbody></table>`
    : '<p>No search results yet (run <code>nasctl search</code>).</p>';
}

/** How many of the best architectures by one-shot accuracy are drawn (the retrained ones are drawn as well). */
const DRAWN_TOP = 3;

/**
 * Drawings of the cells of the best architectures and of the retrained ones, under the ranked table. An architecture
 * that does not parse (a results file from another space) is listed without a drawing rather than failing the report.
 */
function cellDrawings(search: SearchResult[], retrained: RetrainRun[], blocks = DEFAULT_SPACE.blocks): string {
  const ranked = [...search].sort(byRank);
  const rank = new Map(ranked.map((r, i) => [r.arch, i + 1]));
  const standalone = new Map<string, number[]>();
  for (const r of retrained) standalone.set(r.arch, [...(standalone.get(r.arch) ?? []), r.testAccuracy]);
  const archs = [...new Set([...ranked.slice(0, DRAWN_TOP).map((r) => r.arch), ...standalone.keys()])];
  if (!archs.length) return '';
  const figures = archs.map((arch, k) => {
    const caption = [
      rank.has(arch) ? `#${rank.get(arch)} by one-shot accuracy` : 'retrained',
      standalone.has(arch) ? `stand-alone test acc. ${fixed(mean(standalone.get(arch)!), 4)}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    let svg: string;
    try {
      svg = drawCell(parseCandidate(arch, spaceWith(blocks)), { title: arch, id: `cell-${k}` });
    } catch {
      svg = '<p class="note">(not an architecture of this space: not drawn)</p>';
    }
    return `<figure class="cell" data-arch="${esc(arch)}"><figcaption>${esc(caption)}<br><code>${esc(arch)}</code></figcaption>${svg}</figure>`;
  });
  return `\n<h2>Cells</h2>\n<p class="note">The cell each architecture repeats in all its cells: each block mixes its chosen inputs with a 1x1 convolution and sums its operations; the cell concatenates its blocks. An input no block reads is faded.</p>\n<div class="cells">${figures.join('\n')}</div>`;
}

/**
 * What the search's settings file says about its rows: how many of the planned architectures are scored (an unfinished
 * search says so, and how to continue it) and the checkpoint step they were scored on.
 */
function searchNote(settingsFile: string, rows: number): string | undefined {
  if (!fs.existsSync(settingsFile)) return undefined;
  const settings = readJsonFile(settingsFile, 'ERR_NAS_BAD_RESULTS', 'search settings') as { count?: unknown; checkpoint?: unknown };
  const count = typeof settings.count === 'number' ? settings.count : undefined;
  const step = typeof settings.checkpoint === 'string' ? settings.checkpoint.split(':')[0] : undefined;
  const scoredOn = step ? ` Scored on the one-shot model's checkpoint at step ${step}.` : '';
  if (count !== undefined && rows < count)
    return `Unfinished search: ${numText(rows)} of ${numText(count)} planned architectures scored (the same \`nasctl search\` command continues it).${scoredOn}`;
  return `${numText(rows)} architectures scored.${scoredOn}`;
}

/** The whole page: the run's settings, the plots with their notes, the ranked table. Every value is escaped. */
function reportPage(
  dir: string,
  options: TrainOptions,
  metrics: MetricsLine[],
  sections: { title: string; svg?: string; note?: string }[],
  table: string,
): string {
  const total = metrics.length ? metrics[metrics.length - 1].step : 0;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="${REPORT_GENERATOR}"><title>oneshot-nas report: ${esc(path.basename(path.resolve(dir)))}</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}td:last-child{text-align:left}
code{font-size:12px}.note{color:#555;font-size:13px}div.cells{display:flex;flex-wrap:wrap;gap:1em 2em;align-items:flex-start}figure.cell{margin:0;flex:0 1 480px;min-width:0}figure.cell figcaption{font-size:13px;margin-bottom:4px;overflow-wrap:anywhere}svg.nas-cell{max-width:100%;height:auto}</style></head><body>
<h1>oneshot-nas run <code>${esc(path.resolve(dir))}</code></h1>
<p class="note">Dataset ${esc(options.dataset?.name)}; F=${fixed(options.net?.filters ?? '')}; batch ${fixed(options.batchSize)} (ghost ${fixed(options.net?.ghostBatch ?? 32)});
dropout ${esc(options.dropout?.kind)} r=${fixed(options.dropout?.rate)}; lr ${fixed(options.learningRate?.base)} ${esc(options.learningRate?.kind)}; seed ${fixed(options.seed)}.
${metrics.length ? `Final one-shot validation accuracy ${fixed(metrics[metrics.length - 1].valAccuracy, 4)} at step ${fixed(total)}.` : ''}</p>
${sections.map((s) => `<figure class="plot" data-title="${esc(s.title)}"><figcaption><h3>${esc(s.title)}</h3></figcaption>${s.svg ?? ''}${s.note ? `<p class="note">${esc(s.note)}</p>` : ''}</figure>`).join('\n')}
<h2>Architectures ranked by one-shot accuracy</h2>
${table}
</body></html>
`;
}
