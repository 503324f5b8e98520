// The parameter table of docs/model.md#parameter-counts, from the native model and from the TypeScript count, and agreement on sampled architectures.
import { describe, expect, it } from 'vitest';
import { OP_SPECS, OPS, allOnArchitecture } from '../../src/space/architecture';
import { loadAddon } from '../../src/native/binding';
import { modelSize } from '../../src/space/modelSize';
import { sampleArchitectures } from '../../src/space/sampleArchitecture';
import { Supernet } from '../../src/model/Supernet';

const TABLE: [channels: number, filters: number, params: number][] = [
  [3, 16, 1_272_314],
  [3, 32, 4_744_170],
  [3, 64, 18_286_538],
  [3, 128, 71_765_898],
  [1, 8, 361_074],
  [1, 16, 1_272_026],
];

describe('the operation table', () => {
  it('is the same in the addon and in TypeScript (names, kinds and kernels in id order)', () => {
    expect(loadAddon().ops).toEqual(OP_SPECS);
    expect(OP_SPECS.map((o) => o.name)).toEqual([...OPS]);
  });
});

describe("docs/model.md's all-on parameter counts", () => {
  it.each(TABLE)('in=%i F=%i has %i parameters (native and TypeScript)', (c, f, expected) => {
    const shape = { inChannels: c, imageSize: c === 1 ? 28 : 32, classes: 10, filters: f, stacks: 3, cellsPerStack: 2 };
    expect(modelSize(allOnArchitecture(4), shape).params).toBe(expected);
    const net = Supernet.create({ ...shape, threads: 1 });
    expect(net.parameterCount()).toBe(expected);
    if (f <= 32) expect(net.describe()).toEqual(modelSize(allOnArchitecture(4), shape));
    net.dispose();
  });
});

describe('stand-alone model size', () => {
  it('agrees between the native model and the TypeScript count for sampled architectures', () => {
    for (const [c, size] of [
      [3, 32],
      [1, 28],
    ]) {
      const shape = { inChannels: c, imageSize: size, classes: 10, filters: 16, stacks: 3, cellsPerStack: 2 };
      const net = Supernet.create({ ...shape, threads: 1 });
      for (const arch of sampleArchitectures(8, c)) expect(net.describe(arch)).toEqual(modelSize(arch, shape));
      net.dispose();
    }
  });
});
