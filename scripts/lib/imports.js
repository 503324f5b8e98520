'use strict';
// The import graph of src/ and its layers: one definition for test/unit/layers.test.ts (the dependency rule) and
// scripts/layer-map.js (the picture in docs/architecture.md#layers).
const fs = require('node:fs');
const path = require('node:path');

/** Layer of each folder of src/ (and of index.ts, the module API), lowest first. */
const LAYERS = {
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
  export: 4,
  report: 4,
  study: 5,
  pipeline: 5,
  index: 6,
  cli: 7,
};

/** The folder of src/ a module belongs to (`index` for src/index.ts). */
const layerOf = (rel) => (rel.includes('/') ? rel.split('/')[0] : path.basename(rel, '.ts'));

function files(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** The src/ modules a file imports (static, dynamic and re-exports, type-only ones too), relative to src/. */
function imports(src, file) {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s*|import\s*\(\s*|import\s+)'(\.[^']+)'/g)].map((m) => {
    const p = path.resolve(path.dirname(file), m[1]);
    const target = [`${p}.ts`, path.join(p, 'index.ts')].find((c) => fs.existsSync(c));
    if (!target) throw new Error(`${path.relative(src, file)}: cannot resolve '${m[1]}'`);
    return path.relative(src, target);
  });
}

/** Module -> the modules it imports, for every module of `src`. */
function importGraph(src) {
  return new Map(files(src).map((f) => [path.relative(src, f), imports(src, f)]));
}

/**
 * The folder-level picture as a Mermaid flowchart: one node per folder, one arrow per folder it imports. The CLI and
 * index.ts import from nearly every layer: their arrows are left out and their labels say so.
 */
function mermaid(graph) {
  const top = new Set(['cli', 'index']);
  const edges = new Set();
  for (const [from, targets] of graph) {
    for (const to of targets)
      if (layerOf(from) !== layerOf(to) && !top.has(layerOf(from))) edges.add(`${layerOf(from)} --> ${layerOf(to)}`);
  }
  const byLayer = Object.entries(LAYERS).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const lines = ['```mermaid', 'flowchart TD'];
  for (const [name, layer] of byLayer) {
    const label = `${name === 'index' ? 'index.ts' : `${name}/`} (layer ${layer}${top.has(name) ? ', imports the layers below' : ''})`;
    lines.push(`  ${name}["${label}"]`);
  }
  for (const e of [...edges].sort()) lines.push(`  ${e}`);
  lines.push('```');
  return lines.join('\n');
}

module.exports = { LAYERS, layerOf, importGraph, mermaid };
