import { describe, expect, it } from 'vitest';
import { type SearchResult, percentile, selectArchitectures } from '../../src/search/select';
import { EvolutionSearch, RandomSearch, type SearchStrategy } from '../../src/search/strategy';
import { type Architecture, DEFAULT_SPACE, formatArchitecture, parseArchitecture } from '../../src/space/architecture';

const r = (index: number, accuracy: number, params: number): SearchResult => ({
  index,
  arch: `a${index}`,
  accuracy,
  loss: 1 - accuracy,
  params,
  madds: params * 10,
  examples: 100,
});
// Hand-made results: accuracy rises with index, size is irregular.
const RESULTS = [r(0, 0.5, 900), r(1, 0.9, 800), r(2, 0.7, 100), r(3, 0.95, 700), r(4, 0.85, 200), r(5, 0.6, 50), r(6, 0.92, 300)];

describe('selection rules', () => {
  it('top: the best k by one-shot accuracy', () => {
    expect(selectArchitectures(RESULTS, { rule: 'top', count: 3 }).map((x) => x.index)).toEqual([3, 6, 1]);
  });

  it('small: the smallest above a percentile threshold, ranked by accuracy', () => {
    // 50th percentile (nearest rank: the 4th of 7 sorted) is 0.85: candidates 3, 6, 1, 4; the 2 smallest are 4 and 6.
    expect(
      percentile(
        RESULTS.map((x) => x.accuracy),
        50,
      ),
    ).toBe(0.85);
    expect(selectArchitectures(RESULTS, { rule: 'small', count: 2, percentile: 50 }).map((x) => x.index)).toEqual([6, 4]);
  });

  it('top-stratified: evenly over the ranks of the pool', () => {
    // Ranked: 3, 6, 1, 4, 2, 5, 0; pool of 6 -> ranks 0, 2, 4.
    expect(selectArchitectures(RESULTS, { rule: 'top-stratified', count: 3, pool: 6 }).map((x) => x.index)).toEqual([3, 1, 2]);
  });

  it('random: seeded, distinct, ranked', () => {
    const a = selectArchitectures(RESULTS, { rule: 'random', count: 4, seed: 3 });
    expect(a).toEqual(selectArchitectures(RESULTS, { rule: 'random', count: 4, seed: 3 }));
    expect(new Set(a.map((x) => x.index)).size).toBe(4);
    expect([...a].sort((x, y) => y.accuracy - x.accuracy)).toEqual(a);
  });

  it('names a bad rule or count', () => {
    expect(() => selectArchitectures(RESULTS, { rule: 'best' as never, count: 1 })).toThrow(/select: expected one of/);
    expect(() => selectArchitectures(RESULTS, { rule: 'top', count: 0 })).toThrow(/count: expected a positive integer/);
  });
});

describe('strategies', () => {
  // A synthetic objective: reward sep3 everywhere and reading input 0, so that there is something to find.
  const objective = (a: Architecture): number =>
    a.blocks.reduce((s, b) => s + (b.ops.includes('sep3') ? 1 : 0) + (b.inputs.includes(0) ? 0.5 : 0) - 0.1 * b.inputs.length, 0);

  function run(s: SearchStrategy, n: number): number[] {
    const scores: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = s.propose();
      parseArchitecture(formatArchitecture(a)); // always a valid member of the space
      const y = objective(a);
      s.tell(a, y);
      scores.push(y);
    }
    return scores;
  }

  it('evolution improves over random search on a synthetic objective (fixed seed)', () => {
    const evo = run(new EvolutionSearch(1, DEFAULT_SPACE, { population: 20, sample: 5 }), 400);
    const rnd = run(new RandomSearch(1, DEFAULT_SPACE), 400);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(evo.slice(-100))).toBeGreaterThan(mean(rnd.slice(-100)) + 1);
    expect(Math.max(...evo)).toBeGreaterThanOrEqual(Math.max(...rnd));
  });

  it('mutates exactly one block, and one of its input set or op set', () => {
    const e = new EvolutionSearch(2, DEFAULT_SPACE);
    const parent = parseArchitecture('01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool');
    for (let i = 0; i < 50; i++) {
      const child = e.mutate(parent);
      const changed = child.blocks.map((b, k) => ({
        inputs: b.inputs.join() !== parent.blocks[k].inputs.join(),
        ops: b.ops.join() !== parent.blocks[k].ops.join(),
      }));
      expect(changed.filter((c) => c.inputs || c.ops)).toHaveLength(1);
      expect(changed.filter((c) => c.inputs && c.ops)).toHaveLength(0);
    }
  });

  it('are deterministic for a seed', () => {
    const a = run(new EvolutionSearch(5, DEFAULT_SPACE, { population: 10, sample: 3 }), 60);
    const b = run(new EvolutionSearch(5, DEFAULT_SPACE, { population: 10, sample: 3 }), 60);
    expect(a).toEqual(b);
  });
});
