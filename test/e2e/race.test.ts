// Racing (successive halving) as a search scorer, on a small supernet trained here: the schedule's arithmetic, the
// rounds against a reference that scores every candidate on each prefix of the validation split, keep 1 against full
// scoring, resume mid-round, refusals, selection and sharding over `nasctl launch` workers.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Ran, NASCTL, requiredUnderCi, runProcess } from '../helpers';
import { loadAddon } from '../../src/native/binding';
import { NativeData } from '../../src/model/Supernet';
import type { NasError } from '../../src/util/errors';
import { openSupernet } from '../../src/search/openSupernet';
import { DEFAULT_RACE, racePasses, raceSizes, raceSlices } from '../../src/search/race';
import { type SearchEvent, runSearch } from '../../src/search/runSearch';
import { type SearchResult, readSearchResults, selectArchitectures } from '../../src/search/select';

const nasctl = (...args: string[]): Promise<Ran> => runProcess([NASCTL, ...args], { env: { ...process.env, OMP_NUM_THREADS: '1' } });

describe('racing schedule', () => {
  it('grows slices by 1/keep in whole ghost batches up to the split, and keeps ceil(keep x n) but never fewer than min', () => {
    expect(raceSlices(5000, DEFAULT_RACE, 32)).toEqual([256, 1024, 4096, 5000]);
    expect(raceSizes(20000, 4, DEFAULT_RACE)).toEqual([20000, 5000, 1250, 313]);
    // 20000 x 256 + 5000 x 768 + 1250 x 3072 + 313 x 904 image passes: 13.1% of 20,000 x 5,000.
    expect(racePasses(20000, 5000, DEFAULT_RACE, 32)).toBe(20000 * 256 + 5000 * 768 + 1250 * 3072 + 313 * 904);
    // A first slice that is not a whole number of ghost batches is rounded up; keep > 1/2 still at least doubles.
    expect(raceSlices(166, { first: 20, keep: 0.75, min: 1 }, 16)).toEqual([32, 64, 128, 166]);
    expect(raceSizes(10, 4, { first: 20, keep: 0.75, min: 1 })).toEqual([10, 8, 6, 5]);
    // The floor: never fewer than min (nor more than the round before).
    expect(raceSizes(40, 4, { first: 32, keep: 0.25, min: 12 })).toEqual([40, 12, 12, 12]);
    // keep 1: every candidate sees every image, as with full scoring.
    expect(racePasses(7, 166, { first: 32, keep: 1, min: 1 }, 16)).toBe(7 * 166);
  });
});

describe('nasctl search --scoring race', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-race-'));
  const run = path.join(root, 'run');
  const base = { supernet: run, count: 40, seed: 4, threads: 1, batchArchs: 4 };
  const race = { ...base, scoring: 'race' as const, raceFirst: 32, raceKeep: 0.5, raceMin: 3 };
  const read = (file: string): SearchResult[] => readSearchResults(file);

  beforeAll(async () => {
    const r = await nasctl(
      'train',
      '--dataset',
      'synthetic',
      '--filters',
      '4',
      '--stacks',
      '2',
      '--cells-per-stack',
      '1',
      '--batch-size',
      '32',
      '--ghost-batch',
      '16',
      '--threads',
      '1',
      '--steps',
      '40',
      '--eval-archs',
      '1',
      '--eval-limit',
      '32',
      '--out',
      run,
    );
    expect(r.status, r.stderr).toBe(0);
  });

  it('cuts each round to the better part by the counts on the images seen, as scoring every candidate on each prefix does', async () => {
    const out = path.join(root, 'race.jsonl');
    const events: SearchEvent[] = [];
    const summary = await runSearch({ ...race, out }, { onEvent: (e) => events.push(e) });
    expect(summary.aborted).toBe(false);
    const rows = read(out);
    expect(rows).toHaveLength(40);
    expect(new Set(rows.map((r) => r.arch)).size).toBe(40);
    const full = read((await runSearch({ ...base, out: path.join(root, 'full.jsonl') })).results);

    // The reference: every candidate (in proposal order: the full search's, same seed) scored on [0, end) of each
    // round, the best ceil(n/2) (at least 3) by correct answers, then loss, then proposal order go on.
    const { net, data } = await openSupernet(run, { threads: 1 });
    const val = new NativeData(data.validation, data.mean, data.std);
    const n = data.validation.n;
    expect(n % 16).not.toBe(0); // the last round ends in a ghost batch shorter than 16, as full scoring's does
    const ends = raceSlices(n, { first: 32, keep: 0.5, min: 3 }, 16);
    expect(ends).toEqual([32, 64, 128, n]);
    let alive = full.map((r) => r.arch);
    try {
      for (let round = 0; round < ends.length; round++) {
        const ev = await net.evaluate(val, alive, { count: ends[round] });
        const order = alive.map((arch, i) => ({ ...ev[i], arch, i }));
        order.sort((a, b) => b.correct - a.correct || a.loss - b.loss || a.i - b.i);
        const size = round + 1 < ends.length ? Math.max(Math.ceil(alive.length / 2), 3) : 0;
        const cut = order.slice(size);
        const lines = rows.filter((r) => r.rung === round);
        expect(lines.map((r) => r.arch)).toEqual(cut.map((c) => c.arch)); // written in rank order at the round's end
        for (const [k, r] of lines.entries()) {
          expect(r.examples).toBe(ends[round]);
          expect(r.accuracy).toBe(cut[k].correct / ends[round]); // counts are integers: exact
          expect(Math.abs(r.loss - cut[k].loss)).toBeLessThan(1e-12 * cut[k].loss); // summed per slice: rounding only
        }
        // The leader the progress line shows once the round is scored: the reference's first.
        const raced = events.filter((e) => e.type === 'raced' && e.round === round);
        const last = raced[raced.length - 1];
        expect(last?.type === 'raced' && [last.best.arch, last.best.examples]).toEqual([order[0].arch, ends[round]]);
        alive = order.slice(0, size).map((c) => c.arch);
      }
    } finally {
      net.dispose();
    }
    expect(rows.map((r) => r.rung)).toEqual([...Array(20).fill(0), ...Array(10).fill(1), ...Array(5).fill(2), ...Array(5).fill(3)]);
    // Progress: a start line per round with its candidates and images, and the summary's plan.
    expect(events.filter((e) => e.type === 'race-round').map((e) => e.type === 'race-round' && [e.candidates, e.from, e.to])).toEqual([
      [40, 0, 32],
      [20, 32, 64],
      [10, 64, 128],
      [5, 128, n],
    ]);
    expect(events.filter((e) => e.type === 'decided')).toHaveLength(40);
    expect(summary.race?.rounds).toEqual([
      { candidates: 40, examples: 32 },
      { candidates: 20, examples: 64 },
      { candidates: 10, examples: 128 },
      { candidates: 5, examples: n },
    ]);
    expect(summary.race?.passes).toBe(40 * 32 + 20 * 32 + 10 * 64 + 5 * (n - 128));
    expect(summary.race?.fullPasses).toBe(40 * n);

    // Selection: the full scores rank first; Small's percentile is one of rank (the best 10% = 4 by rank order).
    expect(selectArchitectures(rows, { rule: 'top', count: 7 }).map((r) => r.examples)).toEqual([n, n, n, n, n, 128, 128]);
    const small = selectArchitectures(rows, { rule: 'small', count: 2, percentile: 90 });
    const best4 = [...rows].sort((a, b) => b.examples - a.examples || b.accuracy - a.accuracy || a.loss - b.loss).slice(0, 4);
    expect(small.map((r) => r.arch).sort()).toEqual(
      [...best4]
        .sort((a, b) => a.params - b.params)
        .slice(0, 2)
        .map((r) => r.arch)
        .sort(),
    );
  });

  it('with keep 1 scores every candidate on every image: the same results as full scoring (counts exact, loss to rounding)', async () => {
    const raced = read((await runSearch({ ...race, raceKeep: 1, raceMin: 1, out: path.join(root, 'keep1.jsonl') })).results);
    const full = new Map(read(path.join(root, 'full.jsonl')).map((r) => [r.arch, r]));
    expect(raced).toHaveLength(40);
    for (const r of raced) {
      const f = full.get(r.arch)!;
      expect(f).toBeDefined();
      expect([r.accuracy, r.examples, r.params, r.madds]).toEqual([f.accuracy, f.examples, f.params, f.madds]);
      // The loss is summed per slice instead of in one pass: the same terms, added in another order.
      expect(Math.abs(r.loss - f.loss)).toBeLessThan(1e-12 * f.loss);
    }
  });

  /** scripts/race-replay.js on the keep-1 race of the test above, schedule 32:0.5:3, with more arguments. */
  const replay = (...more: string[]) =>
    runProcess([
      path.resolve(__dirname, '../../scripts/race-replay.js'),
      '--json',
      '--ghost-batch',
      '16',
      '--schedules',
      '32:0.5:3',
      ...more,
      path.join(root, 'keep1.race.jsonl'),
    ]);

  it('scripts/race-replay.js replays a schedule from the keep-1 race to what a race of that schedule finds', async () => {
    const r = await replay();
    expect(r.status, r.stderr).toBe(0);
    const [row] = JSON.parse(r.stdout).rows;
    const n = read(path.join(root, 'full.jsonl'))[0].examples;
    expect(row.rounds).toBe(`40 on 32, 20 on 64, 10 on 128, 5 on ${n}`);
    // The race of that schedule (first test) against full scoring, as the script counts it.
    const rank = (rows: SearchResult[]): string[] =>
      [...rows]
        .sort((a, b) => b.examples - a.examples || b.accuracy - a.accuracy || a.loss - b.loss || a.index - b.index)
        .map((x) => x.arch);
    const raced = rank(read(path.join(root, 'race.jsonl')));
    const full = rank(read(path.join(root, 'full.jsonl')));
    const overlap = (k: number): number => raced.slice(0, k).filter((a) => full.slice(0, k).includes(a)).length;
    expect([row.top10, row.passShare]).toEqual([overlap(10), (40 * 32 + 20 * 32 + 10 * 64 + 5 * (n - 128)) / (40 * n)]);
  });

  it('scripts/race-check.js lists the best cut candidates of each round and ranks them by full score with the finalists', async () => {
    const check = (...args: string[]) => runProcess([path.resolve(__dirname, '../../scripts/race-check.js'), ...args]);
    const raceFile = path.join(root, 'race.jsonl');
    const fullFile = path.join(root, 'full.jsonl');
    const raced = read(raceFile);
    const n = Math.max(...raced.map((r) => r.examples));
    // The race of the first test cut 20, 10 and 5 candidates in its rounds on 32, 64 and 128 images.
    const cutIn = (rung: number): SearchResult[] =>
      raced
        .filter((r) => r.rung === rung && r.examples < n)
        .sort((a, b) => b.accuracy - a.accuracy || a.loss - b.loss || a.index - b.index);
    const two = await check('pick', raceFile, '--per-rung', '2');
    expect(two.status, two.stderr).toBe(0);
    expect(two.stdout.trim().split('\n')).toEqual(
      [0, 1, 2].flatMap((g) =>
        cutIn(g)
          .slice(0, 2)
          .map((r) => r.arch),
      ),
    );
    // Every cut candidate checked: the pool is all 40 with full scores, so its top k is full scoring's.
    const cmp = await check('compare', raceFile, fullFile, '--top', '5', '--json');
    expect(cmp.status, cmp.stderr).toBe(0);
    const out = JSON.parse(cmp.stdout);
    const order = (rows: SearchResult[]): string[] =>
      [...rows].sort((a, b) => b.accuracy - a.accuracy || a.loss - b.loss || a.index - b.index).map((r) => r.arch);
    const fullTop = order(read(fullFile)).slice(0, 5);
    const raceTop = order(raced.filter((r) => r.examples === n)).slice(0, 5);
    expect(out.raceTop).toEqual(raceTop);
    expect(out.overlap).toBe(raceTop.filter((a) => fullTop.includes(a)).length);
    expect(out.rungs.map((g: { checked: number }) => g.checked)).toEqual([20, 10, 5]);
    const intoTop = out.rungs.reduce((s: number, g: { intoTop: number }) => s + g.intoTop, 0);
    expect(intoTop).toBe(5 - out.overlap);
    const bad = await check('pick', raceFile, '--per-rung', '0');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--per-rung must be a positive integer \(got 0\)/);
  });

  it('replays races of the first N images from longer keep-1 races (--images), and only at a slice end', async () => {
    const r = await replay('--images', '64');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect([out.candidates, out.images, out.rows[0].rounds]).toEqual([40, 64, '40 on 32, 20 on 64']);
    expect(out.rows[0].passShare).toBe((40 * 32 + 20 * 32) / (40 * 64));
    const bad = await replay('--images', '100');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--images 100: the races have no slice ending there/);
  });

  it('resumes a race stopped mid-round three times to the same files as one uninterrupted race', async () => {
    const out = path.join(root, 'stopped.jsonl');
    const seen: number[] = [];
    for (const stopAfter of [3, 6, 2]) {
      const ac = new AbortController();
      let groups = 0;
      const s = await runSearch(
        { ...race, out },
        {
          signal: ac.signal,
          onEvent: (e) => {
            if (e.type === 'raced' && ++groups === stopAfter) ac.abort();
          },
        },
      );
      expect(s.aborted).toBe(true);
      seen.push(fs.readFileSync(out.replace(/\.jsonl$/, '.race.jsonl'), 'utf8').split('\n').length);
    }
    expect(seen[0]).toBeLessThan(seen[1]); // each stop came later in the race (and mid-round: groups of 4 of 40, 20..)
    const done = await runSearch({ ...race, out });
    expect(done.aborted).toBe(false);
    expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(path.join(root, 'race.jsonl'), 'utf8'));
    expect(fs.readFileSync(path.join(root, 'stopped.race.jsonl'), 'utf8')).toBe(
      fs.readFileSync(path.join(root, 'race.race.jsonl'), 'utf8'),
    );
  });

  it('stops while the first group of a round is scored (the group returns nothing) and resumes to the same files', async () => {
    const out = path.join(root, 'stopped-at-round.jsonl');
    const ac = new AbortController();
    const s = await runSearch(
      { ...race, out },
      {
        signal: ac.signal,
        onEvent: (e) => {
          // Aborted once the round's first evaluation has started (the microtask runs at its first await).
          if (e.type === 'race-round' && e.round === 1) queueMicrotask(() => ac.abort());
        },
      },
    );
    expect(s.aborted).toBe(true);
    const state = fs.readFileSync(out.replace(/\.jsonl$/, '.race.jsonl'), 'utf8');
    expect(state.split('\n').filter((l) => l.includes('"round":1'))).toHaveLength(0);
    const done = await runSearch({ ...race, out });
    expect(done.aborted).toBe(false);
    expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(path.join(root, 'race.jsonl'), 'utf8'));
  });

  it('refuses evolution, a bad schedule, and a results file of the other mode or another schedule, naming the field', async () => {
    const refused = async (o: Record<string, unknown>): Promise<unknown> => {
      try {
        await runSearch({ ...race, ...o });
      } catch (err) {
        return { code: (err as NasError).code, field: (err as NasError).details?.field };
      }
      return 'not refused';
    };
    expect(await refused({ strategy: 'evolution', out: path.join(root, 'evo.jsonl') })).toEqual({
      code: 'ERR_NAS_BAD_CONFIG',
      field: 'scoring',
    });
    expect(await refused({ raceKeep: 0, out: path.join(root, 'k0.jsonl') })).toEqual({ code: 'ERR_NAS_BAD_CONFIG', field: 'raceKeep' });
    expect(await refused({ scoring: 'fast', out: path.join(root, 'fast.jsonl') })).toEqual({
      code: 'ERR_NAS_BAD_CONFIG',
      field: 'scoring',
    });
    expect(await refused({ scoring: 'full', out: path.join(root, 'race.jsonl') })).toEqual({
      code: 'ERR_NAS_BAD_CONFIG',
      field: 'scoring',
    });
    expect(await refused({ out: path.join(root, 'full.jsonl') })).toEqual({ code: 'ERR_NAS_BAD_CONFIG', field: 'scoring' });
    expect(await refused({ raceKeep: 0.25, out: path.join(root, 'race.jsonl') })).toEqual({ code: 'ERR_NAS_BAD_CONFIG', field: 'race' });
    expect(await refused({ count: 41, out: path.join(root, 'race.jsonl') })).toEqual({ code: 'ERR_NAS_BAD_CONFIG', field: 'race' });
    for (const f of ['evo', 'k0', 'fast']) expect(fs.existsSync(path.join(root, `${f}.search.json`))).toBe(false);
  });

  describe.skipIf(!requiredUnderCi(loadAddon().distAvailable, 'c10d Gloo in the addon (libgloo-dev at build time)'))('sharded', () => {
    it('over 3 `nasctl launch` workers writes the files one process writes, and prints the rounds', async () => {
      const flags = ['--supernet', run, '--count', '40', '--seed', '4', '--threads', '1', '--batch-archs', '4'];
      const raceFlags = ['--scoring', 'race', '--race-first', '32', '--race-keep', '0.5', '--race-min', '3'];
      const out = path.join(root, 'launched.jsonl');
      const r = await nasctl('launch', '--nproc', '3', '--', 'search', ...flags, ...raceFlags, '--out', out);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/random search by racing: 0\/40 decided so far, the finalists on all \d+ validation images/);
      expect(r.stderr).toMatch(/round 4\/4: 5 candidates on validation images 128\.\.\d+/);
      expect(r.stderr).toMatch(/race: 40 on 32, 20 on 64, 10 on 128, 5 on \d+ images; [\d.]+% of the image passes of full scoring/);
      expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(path.join(root, 'race.jsonl'), 'utf8'));
    });
  });
});
