#!/usr/bin/env node
'use strict';
// Where the time goes: profiles training (drop rate 0 and the end rates) and single-architecture scoring of docs/model.md's
// one-shot model with LibTorch's profiler (NAS_PROFILE, one thread so every op is on the job's thread; training steps
// of one ghost batch, the unit each training thread runs), and prints the ops by self time.
// The forward marks its parts (stem, each reduction, the cells of each stack, the head) as user scopes, so each job's
// summary ends with the share of the job's op time inside each part.
//   node scripts/profile.js [--filters 8] [--steps 4] [--images 512] [--top 15] [--size 32] [--channels 3]
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const F = Number(arg('filters', 8));
const steps = Number(arg('steps', 4));
const images = Number(arg('images', 512));
const top = Number(arg('top', 15));
const size = Number(arg('size', 32));
const channels = Number(arg('channels', 3));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-profile-'));

// Self time per op name from a chrome trace (complete events, nested by time on each thread).
function summarise(file) {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  const events = (Array.isArray(raw) ? raw : raw.traceEvents).filter((e) => e.ph === 'X' && typeof e.dur === 'number');
  const byTid = new Map();
  for (const e of events) {
    if (!byTid.has(e.tid)) byTid.set(e.tid, []);
    byTid.get(e.tid).push(e);
  }
  const self = new Map();
  const count = new Map();
  const parts = new Map(); // inclusive time of the forward's scopes (nas::...)
  let total = 0;
  for (const list of byTid.values()) {
    list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    const stack = [];
    for (const e of list) {
      while (stack.length && e.ts >= stack[stack.length - 1].ts + stack[stack.length - 1].dur) stack.pop();
      if (stack.length) stack[stack.length - 1].child += e.dur;
      else total += e.dur;
      e.child = 0;
      stack.push(e);
    }
    for (const e of list) {
      if (e.name.startsWith('nas::')) parts.set(e.name, (parts.get(e.name) || 0) + e.dur);
      self.set(e.name, (self.get(e.name) || 0) + e.dur - e.child);
      count.set(e.name, (count.get(e.name) || 0) + 1);
    }
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return {
    total,
    ops: events.length,
    rows: rows.map(([name, us]) => ({ name, ms: us / 1000, share: us / total, calls: count.get(name) })),
    parts: [...parts.entries()].map(([name, us]) => ({ name, ms: us / 1000, share: us / total })),
  };
}

async function main() {
  process.env.NAS_PROFILE = path.join(dir, 'p');
  const { Supernet, NativeData, syntheticSet, channelStats, dropTables, sampleArchitectures, formatArchitecture } = require('../dist');
  const set = syntheticSet({ n: Math.max(images, 1024), size, channels, classes: 10, seed: 1 });
  const shape = `${size}x${size}x${channels}`;
  const { mean, std } = channelStats(set);
  const data = new NativeData(set, mean, std);
  // One ghost batch per step: what each of the training threads runs (a step's ghost batches go to their own threads).
  const net = Supernet.create({ filters: F, threads: 1, imageSize: size, inChannels: channels }, { batchSize: 32, seed: 1 });
  const report = (label, file, work) => {
    const s = summarise(file);
    process.stdout.write(`\n${label}: ${(s.total / 1000).toFixed(0)} ms in ops (${s.ops} op events; ${work})\n`);
    process.stdout.write(`  ${'op'.padEnd(40)} ${'self ms'.padStart(9)} ${'share'.padStart(6)} ${'calls'.padStart(7)}\n`);
    for (const r of s.rows)
      process.stdout.write(
        `  ${r.name.padEnd(40)} ${r.ms.toFixed(1).padStart(9)} ${(r.share * 100).toFixed(1).padStart(5)}% ${String(r.calls).padStart(7)}\n`,
      );
    if (!s.parts.length) return;
    process.stdout.write(`  by part of the forward (op time inside it, backward excluded):\n`);
    for (const r of s.parts)
      process.stdout.write(`  ${r.name.padEnd(40)} ${r.ms.toFixed(1).padStart(9)} ${(r.share * 100).toFixed(1).padStart(5)}%\n`);
  };
  for (const [label, rate] of [
    ['train, drop rate 0', 0],
    ['train, end rates (r = 0.1)', 0.1],
  ]) {
    const { dropIn, dropOp } = dropTables({ kind: 'constant', rate }, { steps });
    await net.train(data, { steps: 1, lr: new Float64Array(1).fill(0.01), dropIn, dropOp }); // warm-up, overwritten below
    await net.train(data, { steps, lr: new Float64Array(steps).fill(0.01), dropIn, dropOp });
    report(label, `${process.env.NAS_PROFILE}.train.json`, `${steps} steps of one ghost batch (32 images), F=${F}, ${shape}, one thread`);
  }
  const arch = formatArchitecture(sampleArchitectures(1, 5)[0]);
  await net.evaluate(data, [arch], { count: images, batchSize: 256 });
  report('score one architecture', `${process.env.NAS_PROFILE}.evaluate.json`, `${images} images, ${shape}, ${arch}`);
  // The CPU scoring kernels (docs/architecture.md#execution-plans) are not LibTorch ops: their time is the self time
  // of the nas:: part that runs them.
  process.stdout.write(
    '  (scoring: the self time of a nas:: part is mostly the hand-written scoring kernels; NAS_SCORING_KERNELS=0 shows LibTorch ops)\n',
  );
  net.dispose();
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
