#!/usr/bin/env node
'use strict';
// ATen ops of one stand-alone training step on each execution plan: on a GPU every op is a kernel launch, so this is
// the GPU cost of a step made visible on the CPU (docs/architecture.md#execution-plans).
//   node scripts/standalone-ops.js [--filters F] [--size S] [--batch B] [--ghost G] [--arch ARCH]
// Needs the compiled dist/ (npm run build:ts) and the addon.
const { StandaloneModel, flag, syntheticData } = require('./lib/standalone');

const F = Number(flag('filters', 16));
const size = Number(flag('size', 32));
const batch = Number(flag('batch', 64));
const ghost = Number(flag('ghost', 32));
const arch = flag('arch', '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool');

const data = syntheticData(Math.max(4 * batch, 256), size);
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
