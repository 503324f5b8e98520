#!/usr/bin/env node
'use strict';
// node scripts/race-check.js pick RACE.jsonl [--per-rung K]            > cut.txt
// node scripts/race-check.js compare RACE.jsonl FULL.jsonl [--top 10] [--json]
//
// Whether a race missed a candidate that full scoring would put in its top k (docs/results.md#racing), for races too
// large to score fully (the paper's 20,000 candidates). The candidates a race is likeliest to have cut wrongly are the
// best of those each round cut: their partial scores sit just below the survivors'. `pick` lists the best K cut
// candidates of every cut round (in the race's own order: correct answers, then loss, then proposal order) in the
// format of `nasctl search --archs`; full scoring of that list on the same model and split (`nasctl search --supernet
// M --archs cut.txt --out FULL.jsonl`) gives their full scores; `compare` ranks the race's finalists (the candidates
// that saw the whole split) together with those and reports the overlap of that top k with the race's top k, and per
// cut round how many checked candidates full scoring would have put in the top k.
const path = require('node:path');
// The project's strict results reader: a malformed line is named by file and line, a torn last line is left out.
const { readSearchResults: rows } = require(path.join(__dirname, '..', 'dist', 'search', 'select'));

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv.splice(i, 2)[1] : fallback;
};
const usage = () => {
  process.stderr.write(
    'usage: node scripts/race-check.js pick RACE.jsonl [--per-rung K]\n' +
      '       node scripts/race-check.js compare RACE.jsonl FULL.jsonl [--top K] [--json]\n',
  );
  process.exit(2);
};
const positive = (name, text) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`race-check: --${name} must be a positive integer (got ${text})\n`);
    process.exit(2);
  }
  return n;
};
const perRung = positive('per-rung', opt('per-rung', '100'));
const top = positive('top', opt('top', '10'));
const json = argv.includes('--json');
const [mode, ...files] = argv.filter((a) => a !== '--json');

// The race's order within a round, and full scoring's: correct answers (accuracy on the same images), then the
// summed loss, then proposal order.
const better = (a, b) => b.accuracy - a.accuracy || a.loss - b.loss || a.index - b.index;

if (mode === 'pick' && files.length === 1) {
  const race = rows(files[0]);
  const total = Math.max(...race.map((r) => r.examples));
  const rungs = [...new Set(race.filter((r) => r.examples < total).map((r) => r.rung))].sort((a, b) => a - b);
  for (const rung of rungs) {
    const cut = race.filter((r) => r.rung === rung && r.examples < total).sort(better);
    for (const r of cut.slice(0, perRung)) process.stdout.write(`${r.arch}\n`);
  }
} else if (mode === 'compare' && files.length === 2) {
  const race = rows(files[0]);
  const full = new Map(rows(files[1]).map((r) => [r.arch, r]));
  const total = Math.max(...race.map((r) => r.examples));
  for (const r of full.values())
    if (r.examples !== undefined && r.examples !== total)
      throw new Error(`${files[1]}: ${r.arch} was scored on ${r.examples} images, the race's split has ${total}`);
  const finalists = race.filter((r) => r.examples === total).sort(better);
  if (finalists.length < top)
    throw new Error(`${files[0]}: ${finalists.length} candidates saw all ${total} images, fewer than --top ${top}`);
  const raceTop = finalists.slice(0, top);
  const bar = raceTop[top - 1];
  const checked = race.filter((r) => r.examples < total && full.has(r.arch));
  // The pool full scoring can rank: the finalists (their race score is their full score) and the checked cut ones.
  const pool = [...finalists, ...checked.map((r) => ({ ...full.get(r.arch), index: r.index }))].sort(better);
  const poolTop = new Set(pool.slice(0, top).map((r) => r.arch));
  const overlap = raceTop.filter((r) => poolTop.has(r.arch)).length;
  const rungs = [...new Set(checked.map((r) => r.rung))]
    .sort((a, b) => a - b)
    .map((rung) => {
      const mine = checked.filter((r) => r.rung === rung);
      const scored = mine.map((r) => full.get(r.arch));
      const best = [...scored].sort(better)[0];
      return {
        rung,
        examples: mine[0].examples,
        checked: mine.length,
        bestPartial: Math.max(...mine.map((r) => r.accuracy)),
        bestFull: best.accuracy,
        intoTop: scored.filter((r) => poolTop.has(r.arch)).length,
        meanChange: scored.reduce((s, r, i) => s + (r.accuracy - mine[i].accuracy), 0) / mine.length,
      };
    });
  const result = { total, finalists: finalists.length, top, raceTop: raceTop.map((r) => r.arch), bar: bar.accuracy, overlap, rungs };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      `${finalists.length} finalists on ${total} images; the race's #${top} has ${bar.accuracy.toFixed(4)}; ` +
        `top-${top} overlap with full scoring of finalists + ${checked.length} checked cut candidates: ${overlap}/${top}\n\n`,
    );
    process.stdout.write(
      `| cut in round | on images | checked (best of the cut) | best partial | best full | in the full top ${top} | mean full - partial |\n`,
    );
    process.stdout.write('|---|---|---|---|---|---|---|\n');
    for (const g of rungs)
      process.stdout.write(
        `| ${g.rung + 1} | ${g.examples} | ${g.checked} | ${g.bestPartial.toFixed(4)} | ${g.bestFull.toFixed(4)} | ${g.intoTop} | ${g.meanChange >= 0 ? '+' : ''}${g.meanChange.toFixed(4)} |\n`,
      );
  }
} else usage();
