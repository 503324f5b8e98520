// The module API by design: every export of src/index.ts is documented in docs/api.md (values from the module
// itself, types from the index's `type` re-exports), and the defaults objects are valid options of the functions they
// belong to, so that `{ ...DEFAULTS, ...mine }` is a whole call from JavaScript too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../../src/index';
import { resolveRetrainOptions } from '../../src/retrain/retrain';
import { validateTrainOptions } from '../../src/train/trainOptions';

const root = path.resolve(__dirname, '../..');
const doc = fs.readFileSync(path.join(root, 'docs/api.md'), 'utf8');
const index = fs.readFileSync(path.join(root, 'src/index.ts'), 'utf8');

/** The names written in backticks in docs/api.md (`retrain(archs, options: RetrainInput)` names three). */
const prose = doc.replace(/```[\s\S]*?```/g, '');
const documented = new Set([...prose.matchAll(/`([^`\n]+)`/g)].flatMap((m) => m[1].match(/[A-Za-z_$][\w$]*/g) ?? []));

describe('docs/api.md', () => {
  it('documents every value the package exports', () => {
    const values = Object.keys(api);
    expect(values.length).toBeGreaterThan(40);
    expect(values.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('documents every type the package exports', () => {
    const types = [...index.matchAll(/\btype (\w+)/g)].map((m) => m[1]);
    expect(types.length).toBeGreaterThan(40);
    expect(types.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('exports no internal helper (the surface is decided, not accidental)', () => {
    for (const name of ['Rng', 'percentile', 'bucketSample', 'evaluateShared', 'shareOf', 'runFiles', 'resolveSupernetConfig'])
      expect(Object.keys(api), name).not.toContain(name);
  });
});

describe('the defaults objects are valid options', () => {
  it('RETRAIN_DEFAULTS is a whole RetrainOptions with out and dataset', () => {
    const o = resolveRetrainOptions({ ...api.RETRAIN_DEFAULTS, out: 'x', dataset: { name: 'synthetic' } });
    expect(o).toEqual({ ...api.RETRAIN_DEFAULTS, out: 'x', dataset: { name: 'synthetic' } });
    // Only out and dataset are needed; a partial net keeps the other defaults.
    const partial = resolveRetrainOptions({ out: 'x', dataset: { name: 'synthetic' }, net: { filters: 4 }, epochs: 3 });
    expect(partial.net).toEqual({ filters: 4, ghostBatch: api.RETRAIN_DEFAULTS.net.ghostBatch });
    expect(partial.epochs).toBe(3);
    expect(partial.learningRate).toEqual(api.RETRAIN_DEFAULTS.learningRate);
  });

  it('names the field of a JavaScript caller mistake in a coded error', () => {
    const bad = (o: Record<string, unknown>): unknown => {
      try {
        resolveRetrainOptions({ out: 'x', dataset: { name: 'synthetic' }, ...o } as never);
      } catch (err) {
        return { code: (err as api.NasError).code, message: (err as Error).message };
      }
      return 'accepted';
    };
    // The old flat defaults (learningRate: 0.1) spread into retrain's options.
    expect(bad({ learningRate: 0.1 })).toMatchObject({ code: 'ERR_NAS_BAD_CONFIG', message: expect.stringContaining('learningRate') });
    expect(bad({ epochs: 0 })).toMatchObject({ code: 'ERR_NAS_BAD_CONFIG', message: expect.stringContaining('epochs') });
    expect(bad({ flip: 'yes' })).toMatchObject({ code: 'ERR_NAS_BAD_CONFIG', message: expect.stringContaining('flip') });
    expect(bad({ out: '' })).toMatchObject({ code: 'ERR_NAS_BAD_CONFIG', message: expect.stringContaining('out') });
  });

  it('PRESETS and PIPELINE_PRESETS hold valid training options', () => {
    for (const [name, o] of Object.entries(api.PRESETS)) expect(() => validateTrainOptions(o), name).not.toThrow();
    for (const [name, p] of Object.entries(api.PIPELINE_PRESETS)) expect(() => validateTrainOptions(p.train), name).not.toThrow();
    for (const [name, p] of Object.entries(api.CORRELATION_PRESETS)) expect(() => validateTrainOptions(p.oneShot), name).not.toThrow();
  });

  it('DEFAULT_SEARCH is SearchOptions but for the supernet', () => {
    const keys = Object.keys(api.DEFAULT_SEARCH).sort();
    expect(keys).toEqual(['batchArchs', 'count', 'evalBatchSize', 'population', 'seed', 'strategy', 'tournament']);
  });
});

describe('options objects, not positional lists', () => {
  it('dropTables and learningRateTable take a step range; their defaults are the whole run and the paper space', () => {
    const { dropIn, dropOp } = api.dropTables({ kind: 'linear', rate: 0.1 }, { steps: 5 });
    expect(dropIn).toHaveLength(5 * api.DEFAULT_SPACE.blocks);
    expect(dropOp[4 * 4]).toBeCloseTo(Math.pow(0.1, 1 / api.OPS.length), 6);
    const part = api.dropTables({ kind: 'linear', rate: 0.1 }, { steps: 5, from: 3, count: 2, blocks: 2 });
    expect(Array.from(part.dropOp)).toEqual(Array.from(dropOp.subarray(12, 20)).filter((_, i) => i % 4 < 2));
    const lr = api.learningRateTable({ kind: 'cosine', base: 0.1 }, { steps: 10, from: 8 });
    expect(Array.from(lr)).toEqual([8, 9].map((t) => api.learningRate({ kind: 'cosine', base: 0.1 }, t, 10)));
    expect(() => api.learningRateTable({ kind: 'cosine', base: 0.1 }, { steps: 10, from: -1 })).toThrow(/from/);
  });

  it('normaliseImages checks the size of what it is given', () => {
    const x = api.normaliseImages(new Uint8Array([0, 255]), { count: 2, size: 1, channels: 1, mean: [0.5], std: [0.5] });
    expect(Array.from(x)).toEqual([-1, 1]);
    expect(() => api.normaliseImages(new Uint8Array(3), { count: 2, size: 2, channels: 1, mean: [0], std: [1] })).toThrow(/images/);
  });
});
