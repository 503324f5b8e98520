// The whole method on a small synthetic problem: train -> search -> select -> retrain -> report, then the report
// opened in headless Chromium with its plots present.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PipelineOptions, runPipeline } from '../../src/pipeline/runPipeline';
import { PRESETS } from '../../src/train/trainOptions';
import { CHROMIUM, requiredUnderCi, runChromium } from '../helpers';

requiredUnderCi(CHROMIUM !== undefined, 'Chromium (/usr/bin/chromium)');

/**
 * Renders the report with a probe appended that measures, in every cell drawing, each label's box and its node's
 * shape; checks that the drawings of `archs` are there, that no two labels of a drawing overlap, and that each label
 * lies inside its node.
 */
async function expectLegibleCells(html: string, dir: string, archs: string[]): Promise<void> {
  const probe = `<script>
const rect = (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
const drawings = [...document.querySelectorAll('figure.cell')].map((f) => ({
  arch: f.dataset.arch,
  nodes: [...f.querySelectorAll('svg.nas-cell g.node')].map((g) => ({ label: g.textContent, text: rect(g.querySelector('text')), shape: rect(g.firstElementChild) })),
}));
const pre = document.createElement('pre'); pre.id = 'cell-boxes'; pre.textContent = JSON.stringify(drawings); document.body.append(pre);
</script></body>`;
  const file = path.join(dir, 'report-probe.html');
  fs.writeFileSync(file, html.replace('</body>', probe));
  const r = await runChromium(`file://${file}`, ['--dump-dom', '--window-size=1200,900']);
  expect(r.status, r.stderr).toBe(0);
  const json = /<pre id="cell-boxes">(.*?)<\/pre>/s
    .exec(r.stdout)![1]
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  type Box = { x: number; y: number; w: number; h: number };
  const drawings = JSON.parse(json) as { arch: string; nodes: { label: string; text: Box; shape: Box }[] }[];
  for (const a of archs) expect(drawings.map((d) => d.arch)).toContain(a);
  const overlap = (a: Box, b: Box): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  const inside = (a: Box, b: Box): boolean =>
    a.x >= b.x - 0.5 && a.y >= b.y - 0.5 && a.x + a.w <= b.x + b.w + 0.5 && a.y + a.h <= b.y + b.h + 0.5;
  for (const d of drawings) {
    expect(d.nodes.length, d.arch).toBeGreaterThanOrEqual(5);
    for (const [i, n] of d.nodes.entries()) {
      expect(n.text.w, `${d.arch}: ${n.label} rendered`).toBeGreaterThan(0);
      expect(inside(n.text, n.shape), `${d.arch}: label ${n.label} inside its box`).toBe(true);
      for (const m of d.nodes.slice(i + 1))
        expect(overlap(n.text, m.text), `${d.arch}: labels ${n.label} and ${m.label} overlap`).toBe(false);
    }
  }
}

describe('nasctl run (pipeline)', () => {
  it('trains, searches, retrains and writes a report whose plots render in Chromium', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-pipeline-'));
    const stages: string[] = [];
    const options: PipelineOptions = {
      train: {
        ...PRESETS.quick,
        out,
        dataset: { name: 'synthetic' },
        net: { filters: 4, stacks: 2, cellsPerStack: 1, ghostBatch: 16, threads: 1 },
        batchSize: 32,
        steps: 40,
        evalEvery: 10,
        evalArchs: 2,
        evalLimit: 64,
        checkpointEvery: 20,
      },
      search: { count: 12, strategy: 'random', seed: 1, valLimit: 64 },
      select: { rule: 'top', count: 2 },
      retrain: { filters: 4, epochs: 1, runs: 2, export: true },
    };
    const result = await runPipeline(options, { onEvent: (e) => e.type === 'stage' && stages.push(e.stage) });
    expect(stages).toEqual(['train', 'search', 'retrain', 'report']);
    expect(result.search!.scored).toBe(12);
    expect(result.retrained).toHaveLength(2);
    expect(result.retrained![0].runs).toHaveLength(2);
    expect(fs.existsSync(path.join(result.retrained![0].exportedTo!, 'model.safetensors'))).toBe(true);
    expect(result.report!.plots).toEqual(['Training curves', 'Path-dropout schedule', 'One-shot accuracies', 'One-shot vs stand-alone']);
    const html = fs.readFileSync(result.report!.file, 'utf8');
    expect(html).toContain(result.search!.top[0].arch);

    if (!CHROMIUM) return; // outside CI, without Chromium only the HTML is checked (under CI=true it is required, above)
    const r = await runChromium(`file://${result.report!.file}`, ['--dump-dom']);
    expect(r.status, r.stderr).toBe(0);
    const dom = r.stdout;
    const svgs = dom.match(/<svg[\s>]/g) ?? [];
    expect(svgs.length).toBeGreaterThanOrEqual(4);
    // Each plot drew marks (Vega's SVG renderer gives every mark group a role).
    expect((dom.match(/role-mark/g) ?? []).length).toBeGreaterThanOrEqual(4);
    expect(dom).toContain('One-shot vs stand-alone');
    await expectLegibleCells(html, out, [result.search!.top[0].arch, ...result.retrained!.map((r) => r.arch)]);

    // Resumable: a second run finds every stage done and changes nothing it does not need to.
    const again = await runPipeline(options);
    expect(again.train).toBeUndefined();
    expect(again.retrained!.map((s) => s.testAccuracyMean)).toEqual(result.retrained!.map((s) => s.testAccuracyMean));
  }, 300_000); // 62 s were measured with the other core busy
});
