#!/usr/bin/env node
'use strict';
// ATen ops of one stand-alone training step on each execution plan: on a GPU every op is a kernel launch, so this is
// the GPU cost of a step made visible on the CPU (docs/architecture.md#execution-plans).
//   node scripts/standalone-ops.js [--filters F] [--size S] [--batch B] [--ghost G] [--arch ARCH]
// Needs the compiled dist/ (npm run build:ts) and the addon.
const path = require('node:path');
const root = path.resolve(__dirname, '..');
const { StandaloneModel } = require(path.join(root, 'dist/model/StandaloneModel.js'));
const { syntheticSet } = require(path.join(root, 'dist/data/synthetic.js'));
const { channelStats } = require(path.join(root, 'dist/data/types.js'));
const { NativeData } = require(path.join(root, 'dist/model/Supernet.js'));

const args = process.argv.slice(2);
const flag = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const F = Number(flag('filters', 16));
const size = Number(flag('size', 32));
const batch = Number(flag('batch', 64));
const ghost = Number(flag('ghost', 32));
const arch = flag('arch', '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool');

const set = syntheticSet({ n: Math.max(4 * batch, 256), size, channels: 1, classes: 10, seed: 3 });
const { mean, std } = channelStats(set);
const data = new NativeData(set, mean, std);
for (const plan of ['per-ghost', 'fused']) {
  const m = StandaloneModel.create({ inChannels: 1, imageSize: size, classes: 10, filters: F, ghostBatch: ghost, threads: 1, plan }, arch, {
    batchSize: batch,
    seed: 2,
  });
  m.countStepOps(data, 0.05); // the first step allocates
  const ops = m.countStepOps(data, 0.05);
  m.dispose();
  process.stdout.write(
    `${JSON.stringify({ plan, filters: F, size, batch, ghost, ghostBatches: batch / ghost, opsTotal: ops.total, opsTopLevel: ops.topLevel })}\n`,
  );
}
