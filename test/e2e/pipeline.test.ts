// The whole method on a small synthetic problem: train -> search -> select -> retrain -> report, then the report
// opened in headless Chromium with its plots present.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPipeline } from '../../src/pipeline/runPipeline';
import { PRESETS } from '../../src/train/trainOptions';
import { requiredUnderCi, runProcess } from '../helpers';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
requiredUnderCi(CHROMIUM !== undefined, 'Chromium (/usr/bin/chromium)');

describe('nasctl run (pipeline)', () => {
  it('trains, searches, retrains and writes a report whose plots render in Chromium', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-pipeline-'));
    const stages: string[] = [];
    const result = await runPipeline(
      {
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
      },
      { onEvent: (e) => e.type === 'stage' && stages.push(e.stage) },
    );
    expect(stages).toEqual(['train', 'search', 'retrain', 'report']);
    expect(result.search!.scored).toBe(12);
    expect(result.retrained).toHaveLength(2);
    expect(result.retrained![0].runs).toHaveLength(2);
    expect(fs.existsSync(path.join(result.retrained![0].exportedTo!, 'model.safetensors'))).toBe(true);
    expect(result.report!.plots).toEqual(['Training curves', 'Path-dropout schedule', 'One-shot accuracies', 'One-shot vs stand-alone']);
    const html = fs.readFileSync(result.report!.file, 'utf8');
    expect(html).toContain(result.search!.top[0].arch);

    if (!CHROMIUM) return; // outside CI, without Chromium only the HTML is checked (under CI=true it is required, above)
    const r = await runProcess(
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${fs.mkdtempSync(path.join(os.tmpdir(), 'nas-chromium-'))}`,
        '--dump-dom',
        `file://${result.report!.file}`,
      ],
      { command: CHROMIUM, timeoutMs: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const dom = r.stdout;
    const svgs = dom.match(/<svg[\s>]/g) ?? [];
    expect(svgs.length).toBeGreaterThanOrEqual(4);
    // Each plot drew marks (Vega's SVG renderer gives every mark group a role).
    expect((dom.match(/role-mark/g) ?? []).length).toBeGreaterThanOrEqual(4);
    expect(dom).toContain('One-shot vs stand-alone');

    // Resumable: a second run finds every stage done and changes nothing it does not need to.
    const again = await runPipeline({
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
    });
    expect(again.train).toBeUndefined();
    expect(again.retrained!.map((s) => s.testAccuracyMean)).toEqual(result.retrained!.map((s) => s.testAccuracyMean));
  }, 300_000); // 62 s were measured with the other core busy
});
