#!/usr/bin/env node
'use strict';
// How the addon degrades when another process takes a core (laptops, CI runners, shared servers):
//   npm run bench -- --contended [--steps 20] [--threads 2] [--json]
// Times each stage idle, then with a busy loop pinned on core 0 (taskset; unpinned when taskset is missing), and
// prints the slowdown. Stages (F = 8, 28x28x1 synthetic images, batch 64, ghost batch 32):
//   train       one-shot training at the dropout schedule's end rates, --threads threads (ghost batches on threads)
//   score       one-shot scoring of 8 architectures on 1,024 images, one at a time
//   retrain     one stand-alone run and its evaluation as `nasctl retrain ARCH` runs it (one intra-op thread; see
//               retrainJobs), and with --retrain-threads N that many OpenMP threads (2: the old default)
//   retrain x2  two stand-alone runs at once, one thread each (what `retrain --runs 2` and the studies do)
// Each stage runs in its own process (the loader's OpenMP settings apply as they do for nasctl; GOMP_SPINCOUNT or
// OMP_WAIT_POLICY in the environment override them). Target (issue 11): no stage slower than 2.5x idle.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const argv = process.argv.slice(2);
const arg = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const steps = Number(arg('steps', 20));
const threads = Number(arg('threads', 2));
const json = argv.includes('--json');
const ARCH = '01:identity+sep5/012:sep7+conv7x1/01:conv7x1+maxpool/02:sep5+conv7x1';

async function stage(name) {
  const nas = require('../dist');
  const set = nas.syntheticSet({ n: 2048, size: 28, channels: 1, classes: 10, seed: 1 });
  const { mean, std } = nas.channelStats(set);
  const data = new nas.NativeData(set, mean, std);
  const lr = (n) => new Float64Array(n).fill(0.05);
  const shape = { inChannels: 1, imageSize: 28, classes: 10, filters: 8, ghostBatch: 32 };
  const t0 = process.hrtime.bigint();
  if (name === 'train' || name === 'score') {
    const net = nas.Supernet.create({ ...shape, threads }, { batchSize: 64, seed: 1 });
    if (name === 'train') {
      const { dropIn, dropOp } = nas.dropTables({ kind: 'linear', rate: 0.1 }, { steps, from: steps, count: steps });
      await net.train(data, { steps, lr: lr(steps), dropIn, dropOp });
    } else {
      await net.evaluate(data, nas.sampleArchitectures(8, 0).map(nas.formatArchitecture), { count: 1024 });
    }
    net.dispose();
  } else {
    const runs = name === 'retrain' ? 1 : 2;
    const given = arg('retrain-threads', undefined);
    const { jobs, threads: perJob } = nas.retrainJobs({ threads: given === undefined ? undefined : Number(given) }, runs);
    await Promise.all(
      Array.from({ length: jobs }, async (_, k) => {
        const m = nas.StandaloneModel.create({ ...shape, threads: perJob, seed: k }, ARCH, { batchSize: 64, seed: k });
        await m.train(data, { steps, lr: lr(steps) });
        await m.evaluate(data, { count: 512 });
        m.dispose();
      }),
    );
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function timeStage(name) {
  const extra = arg('retrain-threads', undefined) === undefined ? [] : ['--retrain-threads', arg('retrain-threads')];
  const r = spawnSync(process.execPath, [__filename, '--child', name, '--steps', String(steps), '--threads', String(threads), ...extra], {
    encoding: 'utf8',
  });
  const line = (r.stdout || '').trim().split('\n').pop();
  if (r.status !== 0 || !line) throw new Error(`${name}: ${(r.stderr || '').trim().split('\n').slice(-3).join(' ')}`);
  return JSON.parse(line).seconds;
}

async function main() {
  if (argv[0] === '--child') {
    process.stdout.write(`${JSON.stringify({ seconds: await stage(argv[1]) })}\n`);
    return;
  }
  const stages = ['train', 'score', 'retrain', 'retrain x2'];
  const idle = Object.fromEntries(stages.map((s) => [s, timeStage(s)]));
  const pinned = spawnSync('taskset', ['--version']).status === 0;
  const busy = pinned ? spawn('taskset', ['-c', '0', process.execPath, '-e', 'for(;;){}']) : spawn(process.execPath, ['-e', 'for(;;){}']);
  let contended;
  try {
    await new Promise((r) => setTimeout(r, 500));
    contended = Object.fromEntries(stages.map((s) => [s, timeStage(s)]));
  } finally {
    busy.kill('SIGKILL');
  }
  const rows = stages.map((s) => ({ stage: s, idleSeconds: idle[s], contendedSeconds: contended[s], slowdown: contended[s] / idle[s] }));
  const result = {
    command: `npm run bench -- --contended --steps ${steps} --threads ${threads}${arg('retrain-threads', undefined) === undefined ? '' : ` --retrain-threads ${arg('retrain-threads')}`}`,
    machine: `${os.cpus()[0].model}, ${os.cpus().length} cores`,
    busyLoop: pinned ? 'pinned on core 0 (taskset)' : 'unpinned',
    gompSpincount: process.env.GOMP_SPINCOUNT ?? "200000 (the loader's default)",
    ompWaitPolicy: process.env.OMP_WAIT_POLICY ?? "PASSIVE (the loader's default)",
    rows,
    worst: Math.max(...rows.map((r) => r.slowdown)),
  };
  fs.mkdirSync(path.join(__dirname, '..', 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, '..', 'bench', 'results', 'contended.json'), `${JSON.stringify(result, null, 2)}\n`);
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  process.stdout.write(`${result.command}\n${result.machine}; busy loop ${result.busyLoop}; GOMP_SPINCOUNT ${result.gompSpincount}\n\n`);
  process.stdout.write('| stage | idle, s | one core busy, s | slowdown |\n|---|---|---|---|\n');
  for (const r of rows)
    process.stdout.write(`| ${r.stage} | ${r.idleSeconds.toFixed(2)} | ${r.contendedSeconds.toFixed(2)} | ${r.slowdown.toFixed(2)}x |\n`);
  process.stdout.write(`\nworst ${result.worst.toFixed(2)}x (target: at most 2.5x)\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
