#!/usr/bin/env node
'use strict';
// Training and scoring throughput of the native one-shot model on synthetic data of a real data set's shape.
//   node scripts/bench-train.js [--filters 16] [--shape cifar10|fashion-mnist] [--batch 64] [--ghost 32]
//                               [--steps 20] [--rate 0.1] [--threads N] [--json]
// Prints images/s for training at drop rate 0 and at the linear schedule's end rates (r^(1/k)), and scoring
// images/s / architectures/s for one architecture at a time. Median of 3 timed repeats after one warm-up.
const os = require('node:os');
const { Supernet, NativeData, syntheticSet, channelStats, dropTables, sampleArchitectures, formatArchitecture } = require('../dist');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const filters = Number(arg('filters', 16));
const shape = arg('shape', 'cifar10');
const batch = Number(arg('batch', 64));
const ghost = Number(arg('ghost', 32));
const steps = Number(arg('steps', 20));
const rate = Number(arg('rate', 0.1));
const threads = Number(arg('threads', os.availableParallelism ? os.availableParallelism() : os.cpus().length));
const json = process.argv.includes('--json');
const [size, channels] = shape === 'fashion-mnist' ? [28, 1] : [32, 3];

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const set = syntheticSet({ n: Math.max(1024, batch * 4), size, channels, classes: 10, seed: 1 });
  const { mean, std } = channelStats(set);
  const data = new NativeData(set, mean, std);
  const net = Supernet.create(
    { filters, inChannels: channels, imageSize: size, ghostBatch: ghost, threads },
    { batchSize: batch, seed: 1 },
  );
  const out = {
    filters,
    shape,
    batch,
    ghost,
    threads,
    steps,
    params: net.parameterCount(),
    torch: require('../dist').loadAddon().torchVersion,
  };
  for (const [label, schedule] of [
    ['train_drop0', { kind: 'constant', rate: 0 }],
    [`train_end_r${rate}`, { kind: 'constant', rate }],
  ]) {
    const { dropIn, dropOp } = dropTables(schedule, { steps });
    const lr = new Float64Array(steps).fill(0.01);
    const times = [];
    for (let rep = 0; rep < 4; rep++) {
      const t0 = process.hrtime.bigint();
      await net.train(data, { steps, lr, dropIn, dropOp });
      if (rep > 0) times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    out[label] = Math.round(((steps * batch) / median(times)) * 10) / 10;
  }
  const archs = sampleArchitectures(3, 5).map(formatArchitecture);
  const times = [];
  for (let rep = 0; rep < 4; rep++) {
    const t0 = process.hrtime.bigint();
    await net.evaluate(data, [archs[rep % 3]], { count: 1024, batchSize: 256 });
    if (rep > 0) times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  out.score_images_per_s = Math.round(1024 / median(times));
  out.score_archs_per_s_5000 = Math.round((1024 / median(times) / 5000) * 1000) / 1000;
  net.dispose();
  if (json) console.log(JSON.stringify(out));
  else for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(24)} ${v}`);
}
main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
