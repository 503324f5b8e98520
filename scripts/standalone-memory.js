#!/usr/bin/env node
'use strict';
// Device memory of one stand-alone training job, measured on the CPU as the tensor bytes LibTorch allocates
// (StandaloneModel.stepMemory), and how many such jobs one GPU holds: what bounds `retrain --jobs N` on a GPU
// (docs/gpu.md#several-runs-on-one-gpu).
//   node scripts/standalone-memory.js [--filters F] [--batch B] [--ghost G] [--train N] [--gpu-gib 139] [--context-gib 1]
// The default shape is Fashion-MNIST's (28x28x1, 55,000 training images resident on the fused plan). Two real steps
// run per row. Needs the compiled dist/ (npm run build:ts) and the addon.
const { StandaloneModel, flag: text, syntheticData } = require('./lib/standalone');

const flag = (name, def) => Number(text(name, def));
const F = flag('filters', 16);
const batch = flag('batch', 64);
const ghost = flag('ghost', 32);
const train = flag('train', 55000);
const gpu = flag('gpu-gib', 139) * 2 ** 30;
const context = flag('context-gib', 1) * 2 ** 30; // CUDA context, cuDNN/cuBLAS handles and workspaces: once per process
const archs = { 'all-on (largest)': 'all-on', sampled: '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool' };

const data = syntheticData(train, 28);
const mb = (b) => (b / 1e6).toFixed(1);
for (const [name, arch] of Object.entries(archs)) {
  const m = StandaloneModel.create(
    { inChannels: 1, imageSize: 28, classes: 10, filters: F, ghostBatch: ghost, threads: 1, plan: 'fused' },
    arch,
    { batchSize: batch, seed: 2 },
  );
  const r = m.stepMemory(data);
  m.dispose();
  const jobs = Math.floor((gpu - context) / r.totalBytes);
  process.stdout.write(`${JSON.stringify({ arch: name, filters: F, batch, ghost, ...r, jobsThatFit: jobs, gpuGiB: gpu / 2 ** 30 })}\n`);
  process.stderr.write(
    `${name}: parameters ${mb(r.parameterBytes)} MB + momentum ${mb(r.momentumBytes)} MB + step peak ${mb(r.stepPeakBytes)} MB ` +
      `+ resident training set ${mb(r.residentDataBytes)} MB = ${mb(r.totalBytes)} MB per job; ${jobs} jobs fit in ${gpu / 2 ** 30} GiB\n`,
  );
}
