// The dependency rule of src/ (docs/architecture.md#layers): a module imports only from its own layer or lower ones,
// no import cycle (type-only imports included), and src/cli/ is imported by nothing outside it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const src = path.resolve(__dirname, '../../src');

/** Layer of each folder of src/ (and of index.ts, the module API), lowest first. */
const LAYERS: Record<string, number> = {
  util: 0,
  space: 1,
  schedule: 1,
  data: 1,
  native: 2,
  model: 3,
  distributed: 3,
  train: 4,
  search: 4,
  retrain: 4,
  report: 4,
  study: 5,
  pipeline: 5,
  index: 6,
  cli: 7,
};

function files(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** The src/ modules a file imports (static, dynamic and re-exports, type-only ones too), as paths relative to src/. */
function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s*|import\s*\(\s*|import\s+)'(\.[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => {
    const p = path.resolve(path.dirname(file), s);
    const target = [`${p}.ts`, path.join(p, 'index.ts')].find((c) => fs.existsSync(c));
    if (!target) throw new Error(`${path.relative(src, file)}: cannot resolve '${s}'`);
    return path.relative(src, target);
  });
}

const layerOf = (rel: string): string => (rel.includes('/') ? rel.split('/')[0] : path.basename(rel, '.ts'));

/** Imports that go up a layer, or into the CLI from outside it. */
function upward(graph: Map<string, string[]>): string[] {
  const wrong: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const a = layerOf(from);
      const b = layerOf(to);
      if (b === 'cli' && a !== 'cli') wrong.push(`${from} -> ${to} (only the CLI imports the CLI)`);
      else if (LAYERS[b] > LAYERS[a]) wrong.push(`${from} (${a}) -> ${to} (${b}, a higher layer)`);
    }
  }
  return wrong;
}

/** Every cycle a depth-first walk meets, as `a -> b -> a`. */
function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of graph.get(f) ?? []) {
      if (state.get(t) === 'open') found.push([...stack.slice(stack.indexOf(t)), t].join(' -> '));
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

const graph = new Map(files(src).map((f) => [path.relative(src, f), imports(f)]));

describe('the layers of src/', () => {
  it('gives every module a layer', () => {
    const unknown = [...graph.keys()].filter((f) => LAYERS[layerOf(f)] === undefined);
    expect(unknown).toEqual([]);
  });

  it('imports downwards only, and nothing imports the CLI', () => {
    expect(upward(graph)).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('would report an upward import, an import of the CLI and a cycle (the checks can fail)', () => {
    const made = new Map([
      ['util/a.ts', ['model/b.ts']],
      ['model/b.ts', ['util/a.ts', 'cli/c.ts']],
      ['cli/c.ts', []],
    ]);
    expect(upward(made)).toEqual([
      'util/a.ts (util) -> model/b.ts (model, a higher layer)',
      'model/b.ts -> cli/c.ts (only the CLI imports the CLI)',
    ]);
    expect(cycles(made)).toEqual(['util/a.ts -> model/b.ts -> util/a.ts']);
  });
});
