#!/usr/bin/env node
'use strict';
// npm run bench [-- --filters 8,16 --threads N --score-images 5000 --quick --native-only --device cpu|cuda]
// Throughput of the oneshot-nas addon against a straightforward PyTorch (eager, every path computed and masked)
// implementation on the same LibTorch, and against TensorFlow.js, on the one-shot model of docs/model.md with CIFAR-size input
// (32x32x3), batch 64, ghost batch 32. Prints a table; writes bench/results/latest.json.
// --device cuda: the GPU table instead, addon (fused plan) and PyTorch eager (bench/pytorch_eager.py on CUDA, BN over
// the whole batch, cudnn.benchmark) in the same run: training at batch 64 and 1024 in fp32 and bf16, scoring
// architectures/s on --score-images images one at a time and batched x8 / x32. Each stage has a time limit and
// its result is written as soon as it is measured (bench/results/partial.jsonl, or --rows FILE). --gpu-table on the CPU runs the
// same code (a smoke test of the script: `npm run bench -- --gpu-table --filters 4 --train-batches 64 --precisions fp32 --score-images 256`;
// --train-steps N times N training steps instead of 20, 5 at batch 1024; --eager-reps N repeats PyTorch eager's timing
// N times, the first a warm-up, instead of 3).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const argv = process.argv.slice(2);
if (argv.includes('--contended')) {
  // The contention benchmark is its own script (scripts/bench-contended.js): hand over and stop here.
  const r = spawnSync(process.execPath, [path.join(__dirname, 'bench-contended.js'), ...argv.filter((a) => a !== '--contended')], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
const arg = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const quick = argv.includes('--quick');
const nativeOnly = argv.includes('--native-only'); // the addon's rows only (no PyTorch, no TensorFlow.js)
const filters = String(arg('filters', '8,16')).split(',').map(Number);
const threads = Number(arg('threads', os.availableParallelism ? os.availableParallelism() : os.cpus().length));
const scoreImages = Number(arg('score-images', quick ? 1000 : 5000));
const rate = 0.1;
const device = arg('device', 'cpu');
const trainBatches = String(arg('train-batches', '64,1024')).split(',').map(Number); // GPU table
const precisions = String(arg('precisions', 'fp32,bf16')).split(','); // GPU table
// GPU table: PyTorch eager's repeats (the first a warm-up, the median of the others reported); the CPU dry run uses 2.
const eagerReps = Number(arg('eager-reps', 3));

// PyTorch's process gets the malloc settings the addon applies to its own (docs/architecture.md#memory-on-the-cpu):
// glibc reads them from the environment at start-up. Empty when NAS_MALLOC_RETAIN_MB=0 or the environment tunes malloc.
function mallocEnv() {
  const { mallocRetainBytes, MALLOC_TOP_PAD, MALLOC_MMAP_THRESHOLD } = require('../dist/native/binding');
  const retain = mallocRetainBytes(process.env);
  if (retain === 0) return {};
  return {
    MALLOC_TRIM_THRESHOLD_: String(retain),
    MALLOC_TOP_PAD_: String(MALLOC_TOP_PAD),
    MALLOC_MMAP_THRESHOLD_: String(MALLOC_MMAP_THRESHOLD),
  };
}

function runJson(cmd, args, timeoutMs, env = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env } });
  const line = (r.stdout || '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) return { error: r.error?.message || (r.stderr || '').trim().split('\n').pop() || `exit ${r.status}` };
  return JSON.parse(line);
}

function pythonTorch() {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch;print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { py, version: r.stdout.trim() };
  }
  return null;
}

async function native(F) {
  const { Supernet, NativeData, syntheticSet, channelStats, dropTables, sampleArchitectures, formatArchitecture } = require('../dist');
  const set = syntheticSet({ n: Math.max(scoreImages, 1024), size: 32, channels: 3, classes: 10, seed: 1 });
  const { mean, std } = channelStats(set);
  const data = new NativeData(set, mean, std);
  const net = Supernet.create({ filters: F, threads, device }, { batchSize: 64, seed: 1 });
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const timeIt = async (reps, fn) => {
    const t = [];
    for (let i = 0; i <= reps; i++) {
      const t0 = process.hrtime.bigint();
      await fn();
      if (i > 0) t.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return median(t);
  };
  const out = { impl: 'oneshot-nas', params: net.parameterCount() };
  const steps = quick ? 5 : 10;
  for (const [label, r] of [
    ['train_drop0', 0],
    [`train_end_r${rate}`, rate],
  ]) {
    const { dropIn, dropOp } = dropTables({ kind: 'constant', rate: r }, { steps });
    const lr = new Float64Array(steps).fill(0.01);
    out[label] = Math.round(((steps * 64) / (await timeIt(3, () => net.train(data, { steps, lr, dropIn, dropOp })))) * 10) / 10;
  }
  const archs = sampleArchitectures(8, 5).map(formatArchitecture);
  let k = 0;
  const one = await timeIt(quick ? 1 : 2, () => net.evaluate(data, [archs[k++ % 8]], { count: scoreImages, batchSize: 256 }));
  out.score_images_per_s = Math.round(scoreImages / one);
  out.score_archs_per_s_5000 = Math.round((scoreImages / one / 5000) * 1000) / 1000;
  const batched = await timeIt(1, () => net.evaluate(data, archs, { count: Math.min(scoreImages, 1000), batched: true }));
  out.score_batched8_images_per_s = Math.round((8 * Math.min(scoreImages, 1000)) / batched);
  net.dispose();
  return out;
}

// --results FILE: the table's JSON elsewhere than bench/results/latest.json (the GPU check's dry run must not replace it)
const resultsFile = path.resolve(arg('results', path.join(root, 'bench', 'results', 'latest.json')));
const partial = path.resolve(arg('rows', path.join(root, 'bench', 'results', 'partial.jsonl'))); // --rows FILE: elsewhere
function record(row) {
  fs.mkdirSync(path.dirname(partial), { recursive: true });
  fs.appendFileSync(partial, `${JSON.stringify({ time: new Date().toISOString(), ...row })}\n`);
  process.stderr.write(`${JSON.stringify(row)}\n`);
  return row;
}

// GPU rows of the addon: training at each batch size and precision, scoring one at a time and batched.
async function nativeGpu(F) {
  const { Supernet, NativeData, syntheticSet, channelStats, dropTables, sampleArchitectures, formatArchitecture } = require('../dist');
  const set = syntheticSet({ n: Math.max(scoreImages, 4096), size: 32, channels: 3, classes: 10, seed: 1 });
  const { mean, std } = channelStats(set);
  const data = new NativeData(set, mean, std);
  const rows = [];
  for (const precision of precisions) {
    for (const batch of trainBatches) {
      const net = Supernet.create({ filters: F, threads, device, precision }, { batchSize: batch, seed: 1 });
      const row = { filters: F, impl: 'oneshot-nas (fused plan)', batch, precision };
      const steps = Number(arg('train-steps', batch >= 1024 ? 5 : 20));
      for (const [label, r] of [
        ['train_drop0', 0],
        [`train_end_r${rate}`, rate],
      ]) {
        const { dropIn, dropOp } = dropTables({ kind: 'constant', rate: r }, { steps });
        const lr = new Float64Array(steps).fill(0.01);
        await net.train(data, { steps, lr, dropIn, dropOp }); // warm-up (cudnn algorithm choice, allocator)
        const t0 = process.hrtime.bigint();
        await net.train(data, { steps, lr, dropIn, dropOp });
        row[label] = Math.round((steps * batch) / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
      if (batch === Math.max(...trainBatches)) {
        const archs = sampleArchitectures(40, 5).map(formatArchitecture);
        const time = async (list, batched) => {
          await net.evaluate(data, list.slice(0, batched ? list.length : 2), { count: scoreImages, batched });
          const t0 = process.hrtime.bigint();
          await net.evaluate(data, list, { count: scoreImages, batched });
          return Math.round((list.length / (Number(process.hrtime.bigint() - t0) / 1e9)) * 100) / 100;
        };
        row.score_archs_per_s = await time(archs.slice(0, 8), false);
        row.score_batched8_archs_per_s = await time(archs.slice(0, 8), true);
        row.score_batched32_archs_per_s = await time(archs.slice(8, 40), true);
      }
      net.dispose();
      rows.push(record(row));
    }
  }
  return rows;
}

function eagerGpu(py, F) {
  const rows = [];
  for (const precision of precisions) {
    for (const batch of trainBatches) {
      const args = [
        'bench/pytorch_eager.py',
        '--device',
        device,
        '--bn',
        'plain',
        '--filters',
        String(F),
        '--batch',
        String(batch),
        '--steps',
        String(arg('train-steps', batch >= 1024 ? 5 : 20)),
        '--reps',
        String(eagerReps),
        '--score-images',
        String(scoreImages),
        '--score-batch',
        String(Math.min(1000, scoreImages)),
        ...(precision === 'bf16' ? ['--bf16'] : []),
      ];
      const r = runJson(py.py, args, 300_000);
      const row = {
        filters: F,
        impl: `pytorch-eager ${py.version} (plain BN, cudnn.benchmark)`,
        batch,
        precision,
        train_drop0: r.train_drop0,
        [`train_end_r${rate}`]: r[`train_end_r${rate}`],
        error: r.error,
      };
      if (batch === Math.max(...trainBatches))
        row.score_archs_per_s = r.score_images_per_s && Math.round((r.score_images_per_s / scoreImages) * 100) / 100;
      rows.push(record(row));
    }
  }
  return rows;
}

async function gpuMain() {
  const { loadAddon } = require('../dist');
  const addon = loadAddon();
  const machine = {
    cpu: os.cpus()[0].model,
    cores: os.cpus().length,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    libtorch: addon.torchVersion,
    device,
    cuda: addon.cudaAvailable,
  };
  const py = nativeOnly ? null : pythonTorch();
  const rows = [];
  for (const F of filters) {
    rows.push(...(await nativeGpu(F)));
    if (py) rows.push(...eagerGpu(py, F));
  }
  const cols = [
    'filters',
    'impl',
    'batch',
    'precision',
    'train_drop0',
    `train_end_r${rate}`,
    'score_archs_per_s',
    'score_batched8_archs_per_s',
    'score_batched32_archs_per_s',
    'error',
  ];
  const head = [
    'F',
    'implementation',
    'batch',
    'precision',
    'train img/s (r=0)',
    `train img/s (end, r=${rate})`,
    `arch/s (${scoreImages} img)`,
    'batched x8 arch/s',
    'batched x32 arch/s',
    'error',
  ];
  printAndSave(head, cols, rows, machine);
}

/** Prints the rows as a Markdown table (`head` over the `cols` keys) with the machine and command, and saves them. */
function printAndSave(head, cols, rows, machine) {
  const command = `npm run bench -- ${argv.join(' ')}`;
  const table = [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${cols.map((c) => fmt(r[c])).join(' | ')} |`),
  ].join('\n');
  process.stdout.write(`${table}\n\nmachine: ${JSON.stringify(machine)}\ncommand: ${command}\n`);
  fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
  fs.writeFileSync(resultsFile, `${JSON.stringify({ date: new Date().toISOString(), command, machine, rows }, null, 2)}\n`);
}

function fmt(v) {
  return v === undefined ? '' : typeof v === 'number' ? String(v) : v;
}

async function main() {
  const { loadAddon } = require('../dist');
  const addon = loadAddon();
  const machine = {
    cpu: os.cpus()[0].model,
    cores: os.cpus().length,
    threads,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    libtorch: addon.torchVersion,
    device,
  };
  const py = nativeOnly ? null : pythonTorch();
  const rows = [];
  for (const F of filters) {
    process.stderr.write(`F=${F}: oneshot-nas...\n`);
    rows.push({ filters: F, ...(await native(F)) });
    if (nativeOnly) continue;
    if (py) {
      for (const cl of [false, true]) {
        if (device !== 'cpu') break; // the eager baseline script runs on the CPU only
        process.stderr.write(`F=${F}: PyTorch eager${cl ? ' (channels_last)' : ''}...\n`);
        const r = runJson(
          py.py,
          [
            'bench/pytorch_eager.py',
            '--filters',
            String(F),
            '--threads',
            String(threads),
            '--steps',
            '1',
            '--reps',
            '2',
            '--score-images',
            quick ? '256' : '512',
            ...(cl ? ['--channels-last'] : []),
          ],
          1_800_000,
          mallocEnv(),
        );
        rows.push({ filters: F, ...r, impl: `pytorch-eager${cl ? '-channels-last' : ''} ${py.version}` });
      }
    } else {
      rows.push({ filters: F, impl: 'pytorch-eager', error: 'unavailable: no python3 torch (apt-get install python3-torch)' });
    }
    if (F === filters[0] && device === 'cpu') {
      process.stderr.write(`F=${F}: TensorFlow.js...\n`);
      // tfjs-cpu trains this model at well under 1 image/s here: one timed step of 32 images (batch 32 = one ghost batch).
      const limit = 600;
      const train = runJson(
        process.execPath,
        ['bench/tfjs_oneshot.js', '--backend', 'cpu', '--mode', 'train', '--filters', String(F), '--images', '32', '--batch', '32'],
        limit * 1000,
      );
      if (train.error)
        train.error = `no result within ${limit} s for a warm-up step and a timed step of 32 images (below ${(64 / limit).toFixed(2)} images/s): ${train.error}`;
      const score = runJson(
        process.execPath,
        ['bench/tfjs_oneshot.js', '--backend', 'wasm', '--mode', 'score', '--filters', String(F), '--images', quick ? '64' : '256'],
        1_800_000,
      );
      rows.push({
        filters: F,
        impl: 'tfjs-cpu',
        train_drop0: train.imagesPerSec,
        note: train.error || `training: ${train.imagesTimed} images timed (batch 32); scoring: see tfjs-wasm`,
      });
      rows.push({
        filters: F,
        impl: 'tfjs-wasm',
        score_images_per_s: score.imagesPerSec,
        score_archs_per_s_5000: score.imagesPerSec && Math.round((score.imagesPerSec / 5000) * 1e4) / 1e4,
        note: `${score.error || `${score.imagesTimed} images timed`}; training not possible: the wasm backend has no Conv2DBackpropFilter kernel`,
      });
      rows.push({
        filters: F,
        impl: 'tfjs-node',
        note: 'unavailable: its install downloads libtensorflow from storage.googleapis.com, which this machine cannot reach',
      });
    }
  }
  const cols = [
    'filters',
    'impl',
    'params',
    'train_drop0',
    `train_end_r${rate}`,
    'score_images_per_s',
    'score_archs_per_s_5000',
    'score_batched8_images_per_s',
    'note',
    'error',
  ];
  const head = [
    'F',
    'implementation',
    'params',
    'train img/s (r=0)',
    `train img/s (end, r=${rate})`,
    'score img/s',
    'arch/s (5000 img)',
    'batched x8 img/s',
    'note',
    'error',
  ];
  printAndSave(head, cols, rows, machine);
}

(device === 'cpu' && !argv.includes('--gpu-table') ? main() : gpuMain()).catch((e) => {
  console.error(e);
  process.exit(1);
});
