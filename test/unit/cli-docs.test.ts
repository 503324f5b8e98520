// The defaults docs/cli.md states are the ones the code uses: the `nasctl train` table against the quick preset (and
// the paper preset where the table names it), the `nasctl study correlation` presets against CORRELATION_PRESETS.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SUPERNET_CONFIG } from '../../src/model/Supernet';
import { CORRELATION_PRESETS } from '../../src/study/studies';
import { PRESETS } from '../../src/train/trainOptions';

const doc = fs.readFileSync(path.resolve(__dirname, '../../docs/cli.md'), 'utf8');

/** A number in its shortest form (1e-4 and 0.0001 alike), anything else as it is. */
const norm = (v: string): string => (v !== '' && Number.isFinite(Number(v)) ? String(Number(v)) : v);

/** The default column of the table row whose first cell starts with `flag`, as its comma-separated values. */
function documented(flag: string): string[] {
  const row = doc.split('\n').find((l) => l.startsWith(`| \`${flag}`));
  if (!row) throw new Error(`docs/cli.md has no table row for ${flag}`);
  const cells = row.split(/(?<!\\)\|/).map((c) => c.trim());
  return cells[cells.length - 2]
    .replace(/`/g, '')
    .split(/, (?![^(]*\))/)
    .map((v) => norm(v.trim()));
}

describe('docs/cli.md', () => {
  it('states the defaults of `nasctl train` that the presets hold', () => {
    const q = PRESETS.quick;
    const p = PRESETS.paper;
    const net = { ...DEFAULT_SUPERNET_CONFIG, ...q.net };
    const epochs = (o: typeof q, n: number): string => (o.evalEvery === undefined ? '1 epoch' : String(n));
    const expected: Record<string, string[]> = {
      '--preset': ['quick'],
      '--dataset': [q.dataset.name],
      '--train-limit': [String(q.dataset.trainLimit)],
      '--filters': [net.filters, net.stacks, net.cellsPerStack, net.blocks].map(String),
      '--ghost-batch': [String(net.ghostBatch), String(q.batchSize)],
      '--epochs': [`${q.epochs} epochs`],
      '--lr': [String(q.learningRate.base), q.learningRate.kind, String(q.momentum), String(q.weightDecay)],
      '--warmup-steps': [`quick: ${q.learningRate.warmupSteps}`, `paper: ${p.learningRate.warmupSteps}`],
      '--drop-rate': [String(q.dropout.rate), q.dropout.kind],
      '--augment': [q.cropPad === 0 && !q.flip ? 'off' : 'on'],
      '--seed': [String(q.seed)],
      '--checkpoint-every': [String(q.checkpointEvery), `${epochs(q, q.evalEvery ?? 0)} (paper: ${epochs(p, p.evalEvery ?? 0)})`],
      '--eval-archs': [String(q.evalArchs), `${q.evalLimit} (paper: ${p.evalArchs}, ${p.evalLimit ?? 'all'})`],
      '--out': [q.out],
    };
    for (const [flag, values] of Object.entries(expected)) expect(documented(flag), flag).toEqual(values.map(norm));
  });

  it('describes the correlation presets the code defines', () => {
    const section = doc.slice(doc.indexOf('## `nasctl study`'));
    for (const [name, p] of Object.entries(CORRELATION_PRESETS)) {
      const row = section.split('\n').find((l) => l.trim().startsWith(`| \`${name}\``));
      expect(row, name).toBeDefined();
      expect(row, name).toContain(`F = ${p.study.filters}`);
      expect(row, name).toContain(`${p.study.buckets} buckets x ${p.study.perBucket}`);
      expect(row, name).toContain(`${p.study.runs} seeds`);
      expect(row, name).toContain(`${p.study.epochs} epoch`);
    }
  });
});
