#!/usr/bin/env node
'use strict';
// node scripts/race-replay.js [--schedules 256:0.25:100,128:0.25:100,...] [--images N] [--json] STATE.race.jsonl...
//
// How often a racing schedule finds what full scoring finds (docs/results.md#racing), without scoring twice: the
// state files of races run with keep 1 (`nasctl search --scoring race --race-keep 1 --race-min 1 --race-first 64`)
// hold every candidate's counts on every slice, i.e. its full score and its score on each prefix of the split. Any
// schedule whose slice ends are among those prefixes is replayed exactly as `runSearch` runs it (the same order:
// correct answers, then summed loss, then proposal order), and compared with full scoring: the overlap of the top
// 10 and top 50, Spearman's rho over the candidates full scoring ranks in its top 10% (their race ranks against
// their full ranks), and the image passes against full scoring's. Several files are one pool of candidates (races
// of other seeds on the same model and split). `--images N` replays races of the first N images: only the slices that
// end at or before N count, so races stopped (or run further) past N pool with races of N images.
const fs = require('node:fs');
const path = require('node:path');
const { raceSizes, raceSlices, spearman } = require(path.join(__dirname, '..', 'dist'));

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv.splice(i, 2)[1] : fallback;
};
const schedules = opt('schedules', '256:0.25:100,128:0.25:100,64:0.25:100,256:0.5:100,128:0.125:100,256:0.25:50')
  .split(',')
  .map((s) => {
    const [first, keep, min] = s.split(':').map(Number);
    return { first, keep, min };
  });
const ghost = Number(opt('ghost-batch', 32));
const images = Number(opt('images', Number.POSITIVE_INFINITY));
const json = argv.includes('--json');
const files = argv.filter((a) => a !== '--json');
if (!files.length) {
  process.stderr.write('usage: node scripts/race-replay.js [--schedules first:keep:min,...] [--images N] [--json] STATE.race.jsonl...\n');
  process.exit(2);
}

// Every candidate's cumulative counts at each slice end of its keep-1 race.
const candidates = [];
let ends = null;
for (const [f, file] of files.entries()) {
  const byArch = new Map();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const l = JSON.parse(line);
    const seen = byArch.get(l.arch)?.examples ?? 0;
    if (seen + l.examples > images) continue;
    let c = byArch.get(l.arch);
    if (!c) {
      c = { arch: l.arch, order: [f, byArch.size], at: new Map(), correct: 0, lossSum: 0, examples: 0 };
      byArch.set(l.arch, c);
    }
    c.correct += l.correct;
    c.lossSum += l.lossSum;
    c.examples += l.examples;
    c.at.set(c.examples, { correct: c.correct, lossSum: c.lossSum });
  }
  for (const c of byArch.values()) {
    const mine = [...c.at.keys()];
    if (ends && mine.join() !== ends.join())
      throw new Error(`${file}: ${c.arch} was scored on slices ending at ${mine}, others at ${ends}`);
    ends = mine;
    candidates.push(c);
  }
}
const total = ends[ends.length - 1];
if (Number.isFinite(images) && total !== images) throw new Error(`--images ${images}: the races have no slice ending there (${ends})`);
const before = (a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1];
const at = (e) => (a, b) => b.at.get(e).correct - a.at.get(e).correct || a.at.get(e).lossSum - b.at.get(e).lossSum || before(a, b);
const full = [...candidates].sort(at(total));
const fullRank = new Map(full.map((c, i) => [c.arch, i]));

const rows = [];
for (const s of schedules) {
  const slices = raceSlices(total, s, ghost);
  const missing = slices.filter((e) => !ends.includes(e));
  if (missing.length) {
    rows.push({ schedule: s, error: `needs prefixes ${missing} that the races did not record (they end at ${ends})` });
    continue;
  }
  const sizes = raceSizes(candidates.length, slices.length, s);
  // Replay: after each round the best `sizes[r + 1]` by their counts on the images seen go on; the ranking is
  // the last round's candidates by their full scores, then each earlier round's cut ones by theirs (select.ts byRank).
  let alive = candidates;
  const ranking = [];
  for (let r = 0; r < slices.length; r++) {
    const ordered = [...alive].sort(at(slices[r]));
    const next = r + 1 < slices.length ? ordered.slice(0, sizes[r + 1]) : [];
    ranking.unshift(ordered.slice(next.length));
    alive = next;
  }
  const raced = ranking.flat();
  const overlap = (k) => raced.slice(0, k).filter((c) => fullRank.get(c.arch) < k).length;
  const top10pct = full.slice(0, Math.ceil(candidates.length / 10));
  const racedRank = new Map(raced.map((c, i) => [c.arch, i]));
  const passes = sizes.reduce((sum, k, r) => sum + k * (slices[r] - (r ? slices[r - 1] : 0)), 0);
  rows.push({
    schedule: s,
    rounds: sizes.map((n, r) => `${n} on ${slices[r]}`).join(', '),
    top10: overlap(10),
    top50: overlap(50),
    rhoTop10pct: spearman(
      top10pct.map((c) => fullRank.get(c.arch)),
      top10pct.map((c) => racedRank.get(c.arch)),
    ),
    passShare: passes / (candidates.length * total),
  });
}

if (json) {
  process.stdout.write(`${JSON.stringify({ candidates: candidates.length, images: total, files, rows })}\n`);
} else {
  process.stdout.write(
    `${candidates.length} candidates, ${total} validation images (${files.map((f) => path.basename(f)).join(', ')})\n\n`,
  );
  process.stdout.write(
    '| first | keep | min | rounds (candidates on images) | top-10 overlap | top-50 overlap | rho, full top 10% | image passes |\n',
  );
  process.stdout.write('|---|---|---|---|---|---|---|---|\n');
  for (const r of rows) {
    const s = r.schedule;
    process.stdout.write(
      r.error
        ? `| ${s.first} | ${s.keep} | ${s.min} | ${r.error} | | | | |\n`
        : `| ${s.first} | ${s.keep} | ${s.min} | ${r.rounds} | ${r.top10}/10 | ${r.top50}/50 | ${r.rhoTop10pct.toFixed(3)} | ${(100 * r.passShare).toFixed(1)}% |\n`,
    );
  }
}
