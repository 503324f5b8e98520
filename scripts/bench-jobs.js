#!/usr/bin/env node
'use strict';
// Stand-alone training throughput with N runs at once in one process (retrain --jobs N): on a GPU each run has its
// own stream (docs/gpu.md#several-runs-on-one-gpu); this measures how far that scales.
//   node scripts/bench-jobs.js [--device cuda] [--jobs 1,4,8] [--steps 200] [--filters 16] [--batch 64]
// Fashion-MNIST's shape (28x28x1) on synthetic images; one line of JSON per N, written as it is measured: images/s
// over all runs, and the time of one step of one run. Needs the compiled dist/ (npm run build:ts) and the addon.
const { StandaloneModel, flag: arg, formatArchitecture, sampleArchitectures, syntheticData } = require('./lib/standalone');

const device = arg('device', 'cpu');
const jobList = String(arg('jobs', '1,4,8')).split(',').map(Number);
const steps = Number(arg('steps', 200));
const F = Number(arg('filters', 16));
const batch = Number(arg('batch', 64));

async function main() {
  const data = syntheticData(4096, 28);
  const archs = sampleArchitectures(Math.max(...jobList), 5).map(formatArchitecture);
  const lr = new Float64Array(steps).fill(0.05);
  for (const jobs of jobList) {
    const models = archs.slice(0, jobs).map((a, k) =>
      StandaloneModel.create({ inChannels: 1, imageSize: 28, classes: 10, filters: F, ghostBatch: 32, device, threads: 1 }, a, {
        batchSize: batch,
        seed: k,
      }),
    );
    await Promise.all(models.map((m) => m.train(data, { steps: 2, lr }))); // warm-up: allocations, cuDNN plans
    const t0 = process.hrtime.bigint();
    await Promise.all(models.map((m) => m.train(data, { steps, lr })));
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const m of models) m.dispose();
    process.stdout.write(
      `${JSON.stringify({ device, jobs, filters: F, batch, steps, seconds: +s.toFixed(3), imagesPerSec: +((jobs * steps * batch) / s).toFixed(1), msPerStepOfOneRun: +((1000 * s) / steps).toFixed(2) })}\n`,
    );
  }
}
main().catch((e) => {
  process.stderr.write(`bench-jobs: ${e.message}\n`);
  process.exit(1);
});
