#!/usr/bin/env node
'use strict';
// Image folders (docs/data.md): decode throughput, the cost of training from the cache against the same set in
// memory, and the memory of training on a cache larger than the memory allowed. Needs the compiled dist/.
//   node scripts/bench-data.js [--images 20000] [--size 32] [--steps 20] [--repeats 10] [--limit-mb 512] [--json]
//                              [--results bench/results/data.json] [--skip-memory]
// 1. decode: a generated folder of --images JPEGs (10 classes, 160x120 colour photos-like gradients and noise) is
//    decoded into a cache at --size; images/s in all and per core.
// 2. training: two one-shot models (F = 8, batch 64), one reading the cache and one the same split in memory, train in
//    --repeats alternating rounds (default 10) of --steps steps (default 20) after one untimed round each; images/s of
//    each over all rounds and the cache's cost in percent.
// 3. memory: under a memory cgroup of --limit-mb (cgroup v1 or v2, swap forbidden; root), a stand-alone model reads
//    every image of a cache 3x that size once and trains 50 steps; peak resident memory, whether the limit held
//    (no OOM kill), the cgroup's peak and its swap use. Skipped with a message where no cgroup can be made.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const root = path.resolve(__dirname, '..');
const nas = require(path.join(root, 'dist/index.js'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const IMAGES = Number(arg('images', 20000));
const SIZE = Number(arg('size', 32));
const STEPS = Number(arg('steps', 20));
const LIMIT_MB = Number(arg('limit-mb', 512));
const REPEATS = Number(arg('repeats', 10));
const json = process.argv.includes('--json');
const resultsFile = arg('results', path.join(root, 'bench/results/data.json'));
const cores = os.availableParallelism();
const say = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function makeFolder(dir) {
  const sharp = require('sharp');
  const done = path.join(dir, '.complete');
  if (fs.existsSync(done)) return;
  say(`writing ${IMAGES} JPEGs (160x120) into ${dir}`);
  for (let i = 0; i < IMAGES; i++) {
    const cls = i % 10;
    const w = 160;
    const h = 120;
    const px = Buffer.alloc(w * h * 3);
    let seed = i * 2654435761;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const n = (seed >>> 24) & 31;
        const o = (y * w + x) * 3;
        px[o] = (x * 255) / w + cls * 20 + n;
        px[o + 1] = (y * 255) / h + n;
        px[o + 2] = cls * 25 + n;
      }
    fs.mkdirSync(path.join(dir, `class${cls}`), { recursive: true });
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(path.join(dir, `class${cls}`, `${String(i).padStart(6, '0')}.jpg`));
  }
  fs.writeFileSync(done, '');
}

async function decodeBench(dir, cacheDir) {
  fs.rmSync(cacheDir, { recursive: true, force: true });
  const t0 = Date.now();
  let probeDone = 0;
  const r = await nas.prepareImageFolder(
    dir,
    { imageSize: SIZE, cacheDir },
    {
      onEvent: (e) => {
        if (e.type === 'probe') probeDone = Date.now();
      },
    },
  );
  const seconds = (Date.now() - t0) / 1000;
  const n = r.manifest.sources.length;
  return {
    images: n,
    seconds,
    headerSeconds: (probeDone - t0) / 1000,
    imagesPerSec: n / seconds,
    imagesPerSecPerCore: n / seconds / cores,
    cacheBytes: ['train', 'validation', 'test'].reduce((a, s) => a + fs.statSync(path.join(r.dir, `${s}.pixels`)).size, 0),
  };
}

async function trainBench(dir, cacheDir) {
  const fromCache = nas.loadDataset({ name: 'folder', dataDir: dir, folder: { imageSize: SIZE, cacheDir } });
  const inMemory = {
    ...fromCache,
    train: { ...fromCache.train, images: nas.readImages(fromCache.train, 0, fromCache.train.n), file: undefined },
  };
  // Two identical models, one reading the cache and one the same split in memory, trained in alternating rounds of
  // STEPS steps: a machine whose speed drifts (another process, clock changes) slows both alike.
  const { dropIn, dropOp } = nas.dropTables({ kind: 'linear', rate: 0.1 }, { steps: STEPS });
  const lr = new Float64Array(STEPS).fill(0.05);
  const make = (splits) => ({
    net: nas.Supernet.create({ filters: 8, inChannels: 3, imageSize: SIZE, classes: 10, threads: cores }, { batchSize: 64, seed: 1 }),
    data: new nas.NativeData(splits.train, splits.mean, splits.std),
  });
  const round = async (m) => {
    const t0 = process.hrtime.bigint();
    await m.net.train(m.data, { steps: STEPS, lr, dropIn, dropOp });
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const a = make(inMemory);
  const b = make(fromCache);
  await round(a); // untimed: the first steps pay LibTorch's one-time set-up
  await round(b);
  const memory = [];
  const cache = [];
  for (let k = 0; k < REPEATS; k++) {
    const first = k % 2 === 0; // which goes first alternates too
    const tm = first ? await round(a) : 0;
    const tc = await round(b);
    memory.push((STEPS * 64) / (first ? tm : await round(a)));
    cache.push((STEPS * 64) / tc);
    say(`  round ${k + 1}: memory ${memory[k].toFixed(1)} img/s, cache ${cache[k].toFixed(1)} img/s`);
  }
  a.net.dispose();
  b.net.dispose();
  // Images/s over all rounds (total images / total time), and the median of the per-round ratios.
  const rate = (xs) => (xs.length * STEPS * 64) / xs.reduce((s, x) => s + (STEPS * 64) / x, 0);
  const m = rate(memory);
  const c = rate(cache);
  const ratios = cache.map((x, k) => x / memory[k]);
  return {
    steps: STEPS,
    rounds: REPEATS,
    batch: 64,
    filters: 8,
    memory,
    cache,
    memoryImagesPerSec: m,
    cacheImagesPerSec: c,
    cacheCostPercent: (100 * (m - c)) / m,
    medianRoundCostPercent: 100 * (1 - median(ratios)),
  };
}

/** Runs `argv` in a fresh memory cgroup of `limit` bytes with swap forbidden; returns its stdout and the cgroup's figures. */
function inCgroup(limit, argv) {
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  const dir = v2 ? `/sys/fs/cgroup/nas-bench-${process.pid}` : `/sys/fs/cgroup/memory/nas-bench-${process.pid}`;
  fs.mkdirSync(dir);
  try {
    if (v2) {
      fs.writeFileSync(path.join(dir, 'memory.max'), String(limit));
      fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
    } else {
      fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limit));
      fs.writeFileSync(path.join(dir, 'memory.memsw.limit_in_bytes'), String(limit));
    }
    const script = `echo $$ > ${path.join(dir, 'cgroup.procs')} && exec "$@"`;
    let out;
    let killed = false;
    try {
      out = execFileSync('sh', ['-c', script, 'sh', ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    } catch (err) {
      killed = true;
      out = err.stdout ?? '';
    }
    const read = (f) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8').trim() : undefined);
    const stat = read('memory.stat') ?? '';
    return {
      out,
      killed,
      cgroupPeakBytes: Number(read(v2 ? 'memory.peak' : 'memory.max_usage_in_bytes')),
      swapBytes: v2 ? Number(read('memory.swap.current') ?? 0) : Number(/^swap (\d+)/m.exec(stat)?.[1] ?? 0),
      oomKills: v2
        ? Number(/oom_kill (\d+)/.exec(read('memory.events') ?? '')?.[1] ?? 0)
        : Number(/oom_kill (\d+)/.exec(read('memory.oom_control') ?? '')?.[1] ?? 0),
    };
  } finally {
    fs.rmdirSync(dir);
  }
}

function memoryBench(work) {
  const limit = LIMIT_MB * 1024 * 1024;
  const S = 64;
  const per = S * S * 3;
  const n = Math.ceil((3 * limit) / per);
  const file = path.join(work, 'big.pixels');
  if (!fs.existsSync(file) || fs.statSync(file).size !== n * per) {
    say(`writing a ${((n * per) / 2 ** 30).toFixed(2)} GiB cache (${n} images of ${S}x${S}x3)`);
    const fd = fs.openSync(file, 'w');
    const chunk = Buffer.alloc(per * 256);
    for (let i = 0; i < n; i += 256) fs.writeSync(fd, chunk.fill(i % 251), 0, Math.min(256, n - i) * per);
    fs.closeSync(fd);
  }
  const fixture = path.join(root, 'test/fixtures/fileDataRss.js');
  let r;
  try {
    r = inCgroup(limit, [process.execPath, fixture, file, String(n), String(S), '50', 'file']);
  } catch (err) {
    say(`memory: no memory cgroup could be made here (${err.code ?? err.message}); run as root on Linux`);
    return undefined;
  }
  const fixtureOut = r.out.trim() ? JSON.parse(r.out.trim()) : {};
  return {
    limitBytes: limit,
    cacheBytes: n * per,
    images: n,
    completed: !r.killed,
    processPeakBytes: fixtureOut.peak,
    processBaseBytes: fixtureOut.before,
    cgroupPeakBytes: r.cgroupPeakBytes,
    swapBytes: r.swapBytes,
    oomKills: r.oomKills,
    evalSeconds: fixtureOut.evalSeconds,
  };
}

async function main() {
  const work = path.join(os.tmpdir(), 'nas-bench-data');
  const dir = path.join(work, 'folder');
  const cacheDir = path.join(work, 'cache');
  fs.mkdirSync(work, { recursive: true });
  await makeFolder(dir);
  const out = {
    date: new Date().toISOString().slice(0, 10),
    cpu: os.cpus()[0].model,
    cores,
    command: `node scripts/bench-data.js ${process.argv.slice(2).join(' ')}`.trim(),
  };
  say('decoding');
  out.decode = await decodeBench(dir, cacheDir);
  say(
    `  ${out.decode.images} JPEGs in ${out.decode.seconds.toFixed(1)} s: ${out.decode.imagesPerSec.toFixed(0)} images/s (${out.decode.imagesPerSecPerCore.toFixed(0)} per core)`,
  );
  say('training from the cache and from memory');
  out.train = await trainBench(dir, cacheDir);
  say(
    `  memory ${out.train.memoryImagesPerSec.toFixed(1)} img/s, cache ${out.train.cacheImagesPerSec.toFixed(1)} img/s: the cache costs ${out.train.cacheCostPercent.toFixed(1)}% (median of the rounds: ${out.train.medianRoundCostPercent.toFixed(1)}%)`,
  );
  if (!process.argv.includes('--skip-memory')) {
    say(`memory: a cache 3x a ${LIMIT_MB} MiB limit`);
    out.memory = memoryBench(work);
    if (out.memory)
      say(
        `  ${out.memory.completed ? 'completed' : 'KILLED'}; process peak ${(out.memory.processPeakBytes / 2 ** 20).toFixed(0)} MiB (at start ${(out.memory.processBaseBytes / 2 ** 20).toFixed(0)} MiB), cgroup peak ${(out.memory.cgroupPeakBytes / 2 ** 20).toFixed(0)} MiB, swap ${out.memory.swapBytes} bytes, OOM kills ${out.memory.oomKills}`,
      );
  }
  fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
  fs.writeFileSync(resultsFile, `${JSON.stringify(out, null, 2)}\n`);
  if (json) process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
