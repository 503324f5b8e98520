#!/usr/bin/env node
'use strict';
// The layer map of src/ in docs/architecture.md#layers, drawn from the imports (so that it cannot drift):
//   node scripts/layer-map.js           # prints it
//   node scripts/layer-map.js --write   # replaces the map between the layer-map markers of docs/architecture.md
// test/unit/layers.test.ts fails when the doc's map is not the one the code gives.
const fs = require('node:fs');
const path = require('node:path');
const { importGraph, mermaid } = require('./lib/imports');

const root = path.resolve(__dirname, '..');
const map = mermaid(importGraph(path.join(root, 'src')));
if (!process.argv.includes('--write')) {
  process.stdout.write(`${map}\n`);
} else {
  const doc = path.join(root, 'docs', 'architecture.md');
  const text = fs.readFileSync(doc, 'utf8');
  const re = /(<!-- layer-map:begin[^>]*-->)[\s\S]*?(<!-- layer-map:end -->)/;
  if (!re.test(text)) throw new Error(`${doc}: no layer-map markers`);
  fs.writeFileSync(doc, text.replace(re, `$1\n${map}\n$2`));
}
