import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SPACE,
  OPS,
  allOnArchitecture,
  countArchitectures,
  decodeArchitecture,
  encodeArchitecture,
  formatArchitecture,
  opSetCount,
  parseArchitecture,
  parseCandidate,
} from '../../src/space/architecture';
import { operationSets, sampleArchitectures } from '../../src/space/sampleArchitecture';
import { NasError } from '../../src/util/errors';
import { modelSize } from '../../src/space/modelSize';

const EXAMPLE = '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool';

describe('architecture notation', () => {
  it('round-trips the canonical form', () => {
    const a = parseArchitecture(EXAMPLE);
    expect(a.blocks[0]).toEqual({ inputs: [0, 1], ops: ['sep3', 'maxpool'] });
    expect(a.blocks[3]).toEqual({ inputs: [2, 4], ops: ['conv7x1', 'avgpool'] });
    expect(formatArchitecture(a)).toBe(EXAMPLE);
    expect(decodeArchitecture(encodeArchitecture(a), 4)).toEqual(a);
  });

  it.each([
    ['01:sep3+maxpool/2:identity/013:sep5/25:conv7x1', 37, 'candidate inputs 0..4'],
    ['01:sep3+maxpool/2:identiti/013:sep5/24:conv7x1', 18, "unknown operation 'identiti'"],
    ['10:sep3/2:identity/013:sep5/24:conv7x1', 1, 'ascending'],
    ['01:sep3+sep5+sep7/2:identity/013:sep5/24:conv7x1', 3, 'at most 2'],
    [':sep3/2:identity/013:sep5/24:conv7x1', 0, 'selects no input'],
    ['01:sep3/2:identity/013:sep5', 27, 'expected 4 blocks'],
    ['01:sep3/2:identity/0x3:sep5/24:conv7x1', 20, "'x' is not an input digit"],
  ])('rejects %s at position %i', (text, pos, why) => {
    let err: unknown;
    try {
      parseArchitecture(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NasError);
    expect((err as NasError).code).toBe('ERR_NAS_BAD_ARCH');
    expect((err as NasError).details.position).toBe(pos);
    expect((err as NasError).message).toContain(why);
    // The message ends with the text and a caret under the bad character.
    const lines = (err as NasError).message.split('\n');
    expect(lines[2].indexOf('^')).toBe(pos);
  });
});

describe('the space', () => {
  it('has 28 operation sets per block', () => {
    expect(opSetCount()).toBe(28);
    expect(operationSets()).toHaveLength(28);
  });

  it('counts prod(2^(2+i)-1) * 28^4 cells, checked by enumerating each block', () => {
    let brute = 1n;
    for (let i = 0; i < 4; i++) {
      let perBlock = 0;
      for (let mask = 1; mask < 2 ** (2 + i); mask++) perBlock += operationSets().length;
      brute *= BigInt(perBlock);
    }
    expect(countArchitectures()).toBe(brute);
    // The formula (3 * 7 * 15 * 31 * 28^4); an earlier printed total, 6,028,568,064, is not divisible by 7, so it
    // cannot be this product (docs/model.md#architectures-and-their-notation).
    expect(countArchitectures(DEFAULT_SPACE)).toBe(6_002_115_840n);
  });

  it('samples deterministically from the search distribution', () => {
    expect(sampleArchitectures(5, 7).map(formatArchitecture)).toEqual(sampleArchitectures(5, 7).map(formatArchitecture));
    expect(sampleArchitectures(5, 7).map(formatArchitecture)).not.toEqual(sampleArchitectures(5, 8).map(formatArchitecture));
    const n = 28000;
    const archs = sampleArchitectures(n, 1);
    // Block 3's input subset is uniform over 31 non-empty subsets; op sets uniform over 28.
    const subsetCounts = new Map<string, number>();
    const opCounts = new Map<string, number>();
    for (const a of archs) {
      const b = a.blocks[3];
      subsetCounts.set(b.inputs.join(''), (subsetCounts.get(b.inputs.join('')) ?? 0) + 1);
      opCounts.set(b.ops.join('+'), (opCounts.get(b.ops.join('+')) ?? 0) + 1);
      parseArchitecture(formatArchitecture(a)); // every sample is valid
    }
    expect(subsetCounts.size).toBe(31);
    expect(opCounts.size).toBe(28);
    const chi2 = (counts: Map<string, number>, k: number): number =>
      [...counts.values()].reduce((s, c) => s + (c - n / k) ** 2 / (n / k), 0);
    // 99.9th percentiles of chi-square with 30 and 27 degrees of freedom: 59.7 and 55.5.
    expect(chi2(subsetCounts, 31)).toBeLessThan(59.7);
    expect(chi2(opCounts, 28)).toBeLessThan(55.5);
  });
});

describe('model size', () => {
  it('counts a hand-computable one-block, one-cell model', () => {
    // F=2, 1 stack of 1 cell, 1 block taking input 0 with identity, 1-channel 4x4 input, 3 classes.
    const shape = { inChannels: 1, imageSize: 4, classes: 3, filters: 2, stacks: 1, cellsPerStack: 1 };
    const size = modelSize({ blocks: [{ inputs: [0], ops: [OPS[0]] }] }, shape);
    // stem 2*1*9=18; block BN 4 + conv 1x1 2*2=4; cell out BN 4 + conv 4; head BN 4 + fc 2*3+3=9.
    expect(size.params).toBe(18 + 4 + 4 + 4 + 4 + 4 + 9);
    // stem 18*16; block conv 4*16; out conv 4*16; fc 6.
    expect(size.madds).toBe(18 * 16 + 4 * 16 + 4 * 16 + 6);
  });
});

describe('parseCandidate (the parser of arch, retrain and the stand-alone model)', () => {
  it('accepts the space and the all-on model (by name or spelled out), and nothing in between', async () => {
    const allOn = allOnArchitecture(4);
    expect(parseCandidate('all-on')).toEqual(allOn);
    expect(parseCandidate(formatArchitecture(allOn))).toEqual(allOn);
    expect(formatArchitecture(parseCandidate('01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool'))).toBe(
      '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool',
    );
    expect(() => parseCandidate('01:sep3+sep5+maxpool/2:identity/013:sep5/24:avgpool')).toThrow(
      /block 0 selects 3 operations, at most 2 allowed/,
    );
    expect(parseCandidate('all-on', { ...DEFAULT_SPACE, blocks: 2 }).blocks).toHaveLength(2);
  });
});
