// The dependency rule of src/ (docs/architecture.md#layers): a module imports only from its own layer or lower ones,
// no import cycle (type-only imports included), and src/cli/ is imported by nothing outside it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
// The graph and the layers are shared with scripts/layer-map.js, which draws the picture in docs/architecture.md.
import { LAYERS, importGraph, layerOf, mermaid } from '../../scripts/lib/imports';

const root = path.resolve(__dirname, '../..');
const graph = importGraph(path.join(root, 'src'));

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

  it('is what the picture in docs/architecture.md shows (node scripts/layer-map.js --write redraws it)', () => {
    const doc = fs.readFileSync(path.join(root, 'docs', 'architecture.md'), 'utf8');
    const shown = /<!-- layer-map:begin[^>]*-->\n([\s\S]*?)\n<!-- layer-map:end -->/.exec(doc)?.[1];
    expect(shown).toBe(mermaid(graph));
  });
});
