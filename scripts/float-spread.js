#!/usr/bin/env node
'use strict';
// node scripts/float-spread.js [--runs 20] [--steps 4]
// Measures how far runs of the tiny test net (test/helpers.ts TINY) drift apart when only float summation order or a
// one-ulp input changes, the numbers behind the float-order tolerances in test/helpers.ts:
//  1. multi-step: the reference run vs the same run at 1-3 threads with the learning rate times 1 + k * 1e-7, as a
//     fraction of the largest parameter movement, per seed and drop rates (median and worst);
//  2. one step: the gradients of the per-ghost and fused plans from the same weights, against each plan's own change
//     under a one-ulp nudge of the weights (the "conditioning" of that point).
// Needs the compiled dist/ (npm run build:ts) and the addon.
const path = require('node:path');
const root = path.resolve(__dirname, '..');
const { Supernet, NativeData, syntheticSet, channelStats } = require(path.join(root, 'dist'));

const argv = process.argv.slice(2);
const arg = (name, def) => (argv.includes(`--${name}`) ? Number(argv[argv.indexOf(`--${name}`) + 1]) : def);
const runs = arg('runs', 20);
const steps = arg('steps', 4);
const TINY = { inChannels: 1, imageSize: 8, classes: 4, filters: 4, stacks: 3, cellsPerStack: 1, blocks: 4, ghostBatch: 8, seed: 7 };
const set = syntheticSet({ n: 96, size: 8, channels: 1, classes: 4, seed: 3 });
const { mean, std } = channelStats(set);
const data = new NativeData(set, mean, std);
const snapshot = (net) => new Map(net.parameterNames().map((n) => [n, net.getParameter(n)]));
const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

async function train({ threads = 1, plan = 'per-ghost', seed, dropIn, dropOp, lrScale = 1, nSteps = steps, nudge = 0 }) {
  const net = Supernet.create({ ...TINY, threads, plan }, { batchSize: 32, momentum: 0.9, weightDecay: 1e-3, seed });
  for (const name of net.parameterNames()) {
    let v = net.getParameter(name);
    if (nSteps === 1 && name.endsWith('bn.bias')) v = v.map((_, i) => 0.1 * Math.sin(i + 1));
    if (nudge) v = v.map((w, i) => w * (1 + nudge * ((i % 3) - 1)));
    net.setParameter(name, v);
  }
  const start = snapshot(net);
  await net.train(data, {
    steps: nSteps,
    lr: new Float64Array(nSteps).fill(0.05 * lrScale),
    dropIn: new Float32Array(nSteps * 4).fill(dropIn),
    dropOp: new Float32Array(nSteps * 4).fill(dropOp),
  });
  const out = { start, params: snapshot(net), grads: new Map(net.parameterNames().map((n) => [n, net.getGradient(n)])) };
  net.dispose();
  return out;
}

function ofMovement(ref, other) {
  let d = 0;
  let moved = 0;
  for (const [n, p] of ref.params) {
    d = Math.max(d, maxDiff(p, other.params.get(n)));
    moved = Math.max(moved, maxDiff(p, ref.start.get(n)));
  }
  return d / moved;
}

function gradDiff(a, b) {
  let w = 0;
  for (const [n, g] of a.grads) {
    const h = b.grads.get(n);
    if (!g || !h) continue;
    w = Math.max(w, maxDiff(g, h) / (g.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1));
  }
  return w;
}

const q = (xs, f) =>
  xs
    .slice()
    .sort((a, b) => a - b)
    [Math.min(xs.length - 1, Math.floor(f * xs.length))].toExponential(1);

(async () => {
  console.log(
    `1. ${steps} steps, other thread counts and lr x (1 + k*1e-7) vs the reference, fraction of the largest movement (${runs} runs):`,
  );
  for (const seed of [9, 21, 5]) {
    for (const [dropIn, dropOp] of [
      [0.3, 0.3],
      [0, 0.3],
    ]) {
      const ref = await train({ seed, dropIn, dropOp });
      const xs = [];
      for (let k = 1; k <= runs; k++)
        xs.push(ofMovement(ref, await train({ seed, dropIn, dropOp, threads: 1 + (k % 3), lrScale: 1 + k * 1e-7 })));
      console.log(`   seed ${seed} dropIn ${dropIn} dropOp ${dropOp}: median ${q(xs, 0.5)}, worst ${q(xs, 1)}`);
    }
  }
  console.log('2. one step, fused vs per-ghost plan gradients (relative), against the larger one-ulp spread of the two plans:');
  let worst = 0;
  const rows = [];
  for (let seed = 1; seed <= runs; seed++) {
    const o = { seed, dropIn: 0.3, dropOp: 0.3, nSteps: 1 };
    const [pg, fu] = [await train({ ...o }), await train({ ...o, plan: 'fused' })];
    const spread = Math.max(
      gradDiff(pg, await train({ ...o, nudge: 2.4e-7 })),
      gradDiff(fu, await train({ ...o, plan: 'fused', nudge: 2.4e-7 })),
    );
    const cross = gradDiff(pg, fu);
    worst = Math.max(worst, cross / Math.max(spread, 1e-5));
    rows.push(`${seed}: ${cross.toExponential(0)} / ${spread.toExponential(0)}`);
  }
  console.log(`   ${rows.join(', ')}\n   worst ratio ${worst.toFixed(2)}`);
})();
