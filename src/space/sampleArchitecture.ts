import { Rng } from '../util/rng';
import { type Architecture, type Block, DEFAULT_SPACE, OPS, type OpName, type SearchSpace } from './architecture';

/** All operation sets of the space in a fixed order (singles, then pairs, ...), for uniform choice. */
export function operationSets(space: SearchSpace = DEFAULT_SPACE): OpName[][] {
  const out: OpName[][] = [];
  const rec = (start: number, cur: OpName[], size: number): void => {
    if (cur.length === size) {
      out.push([...cur]);
      return;
    }
    for (let o = start; o < OPS.length; o++) rec(o + 1, [...cur, OPS[o]], size);
  };
  for (let k = 1; k <= space.maxOps; k++) rec(0, [], k);
  return out;
}

/**
 * Draws one architecture from the search distribution (docs/model.md#search): for block i a uniformly random non-empty subset of its
 * 2 + i inputs and a uniformly random operation set.
 */
export function sampleArchitecture(rng: Rng, space: SearchSpace = DEFAULT_SPACE): Architecture {
  const sets = operationSets(space);
  const blocks: Block[] = [];
  for (let i = 0; i < space.blocks; i++) {
    const mask = 1 + rng.below(2 ** (2 + i) - 1);
    const inputs: number[] = [];
    for (let j = 0; j < 2 + i; j++) if ((mask >>> j) & 1) inputs.push(j);
    blocks.push({ inputs, ops: sets[rng.below(sets.length)] });
  }
  return { blocks };
}

/** n architectures from one seed, one at a time (memory flat in n); the sequence of {@link sampleArchitectures}. */
export function* sampleArchitectureStream(n: number, seed: number, space: SearchSpace = DEFAULT_SPACE): Generator<Architecture> {
  const rng = new Rng(seed);
  for (let i = 0; i < n; i++) yield sampleArchitecture(rng, space);
}

/** n architectures from one seed (the same seed gives the same list). */
export function sampleArchitectures(n: number, seed: number, space: SearchSpace = DEFAULT_SPACE): Architecture[] {
  return Array.from(sampleArchitectureStream(n, seed, space));
}
