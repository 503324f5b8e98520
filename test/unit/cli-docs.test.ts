// The defaults docs/cli.md states are the ones the code uses: the `nasctl train` table against the quick preset (and
// the paper preset where the table names it), the `nasctl study correlation` presets against CORRELATION_PRESETS;
// `--help` shows every default; the command list is the CLI's; README's setup list is scripts/setup's.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { nasctlProgram } from '../../src/cli/nasctl';
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

describe('nasctl --help', () => {
  const program = nasctlProgram();
  const commands = (c: Command, at: string): [string, Command][] => [
    [at, c],
    ...c.commands.flatMap((s) => commands(s, `${at} ${s.name()}`)),
  ];
  const all = commands(program, 'nasctl');

  it('shows the default of every option that takes a value (required options aside)', () => {
    // The two `arch` flags that are actions of their own, not settings.
    const actions = new Set(['nasctl arch --sample', 'nasctl arch --svg']);
    const missing = all.flatMap(([at, c]) =>
      c.options
        .filter((o) => (o.required || o.optional) && !o.mandatory && !actions.has(`${at} ${o.long}`))
        .filter((o) => o.defaultValue === undefined && !/\(default: [^)]+\)/.test(o.description))
        .map((o) => `${at} ${o.long}`),
    );
    expect(missing).toEqual([]);
  });

  it('shows the presets’ values, the ones the docs table is checked against above', () => {
    const help = program.commands.find((c) => c.name() === 'train')!.helpInformation();
    const flat = help.replace(/\s+/g, ' ');
    expect(flat).toContain(`--lr <x> base learning rate (default: ${PRESETS.quick.learningRate.base})`);
    expect(flat).toContain(`(default: quick: ${PRESETS.quick.epochs}, paper: ${PRESETS.paper.epochs})`);
  });

  it('is the command list of docs/cli.md', () => {
    const overview = doc.slice(doc.indexOf('```'), doc.indexOf('```', doc.indexOf('```') + 3));
    const listed = [...overview.matchAll(/^nasctl ([a-z]+)/gm)].map((m) => m[1]).sort();
    const names = program.commands.map((c) => c.name()).sort();
    expect(listed).toEqual(names);
    const study = program.commands.find((c) => c.name() === 'study')!;
    for (const sub of study.commands) expect(overview, `study ${sub.name()}`).toContain(sub.name());
  });
});

describe('README.md', () => {
  const readme = fs.readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');

  it('names every apt package scripts/setup installs', () => {
    const setup = fs.readFileSync(path.resolve(__dirname, '../../scripts/setup'), 'utf8');
    const packages = [...setup.matchAll(/packages\+=\(([\w.-]+)\)/g)].map((m) => m[1]);
    expect(packages.length).toBeGreaterThanOrEqual(6);
    const paragraph = readme.slice(
      readme.indexOf('`scripts/setup` installs'),
      readme.indexOf('\n\n', readme.indexOf('`scripts/setup` installs')),
    );
    expect(packages.filter((p) => !paragraph.includes(p))).toEqual([]);
  });

  it('states the quick run time the quick pipeline preset says', () => {
    expect(readme).toMatch(/about 5 min, 2 cores/);
    expect(fs.readFileSync(path.resolve(__dirname, '../../src/pipeline/runPipeline.ts'), 'utf8')).toContain(
      'About five minutes on 2 CPU cores',
    );
  });
});
