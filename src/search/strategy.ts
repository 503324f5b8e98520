/**
 * Search strategies behind one interface: a strategy proposes architectures and is told their scores.
 * Strategies are deterministic for a seed, so a resumed search replays the recorded history (propose, tell) and
 * continues exactly where it stopped.
 */
import { type Architecture, type SearchSpace, formatArchitecture } from '../space/architecture';
import { operationSets, sampleArchitecture } from '../space/sampleArchitecture';
import { Rng } from '../util/rng';
import { NasError } from '../util/errors';

/** Proposes architectures and is told their scores (random sampling or regularized evolution). */
export interface SearchStrategy {
  readonly name: string;
  /** The next architecture to score. */
  propose(): Architecture;
  /** The score (one-shot validation accuracy) of an architecture this strategy proposed. */
  tell(arch: Architecture, score: number): void;
}

/** A given list, in order (`nasctl search --archs`): nothing is sampled and nothing is learnt. */
export class ListSearch implements SearchStrategy {
  readonly name = 'list';
  private next = 0;

  constructor(private readonly archs: Architecture[]) {}

  propose(): Architecture {
    if (this.next >= this.archs.length)
      throw new NasError('ERR_NAS_BAD_CONFIG', `the list of ${this.archs.length} architectures is exhausted`);
    return this.archs[this.next++];
  }

  tell(): void {
    // A list does not learn.
  }
}

/** The paper's: independent draws from the search distribution (docs/model.md#search). */
export class RandomSearch implements SearchStrategy {
  readonly name = 'random';
  private readonly rng: Rng;

  constructor(
    seed: number,
    private readonly space: SearchSpace,
  ) {
    this.rng = new Rng(seed);
  }

  propose(): Architecture {
    return sampleArchitecture(this.rng, this.space);
  }

  tell(): void {
    // Random search does not learn.
  }
}

/** Regularized evolution: population size and tournament size. */
export interface EvolutionOptions {
  /** Population size P (the first P proposals are random). */
  population: number;
  /** Tournament size S. */
  sample: number;
}

/**
 * Regularized evolution (Real et al., 2019) over the canonical notation: tournament selection of a parent among S
 * random members of the population, a mutation of one block's input set or one block's operation set, and the
 * oldest member dies.
 */
export class EvolutionSearch implements SearchStrategy {
  readonly name = 'evolution';
  private readonly rng: Rng;
  private readonly population: { arch: Architecture; score: number }[] = [];
  private readonly opSets: string[][];

  constructor(
    seed: number,
    private readonly space: SearchSpace,
    private readonly o: EvolutionOptions = { population: 50, sample: 10 },
  ) {
    this.rng = new Rng(seed);
    this.opSets = operationSets(space);
  }

  propose(): Architecture {
    if (this.population.length < this.o.population) return sampleArchitecture(this.rng, this.space);
    let parent = this.population[this.rng.below(this.population.length)];
    for (let i = 1; i < this.o.sample; i++) {
      const c = this.population[this.rng.below(this.population.length)];
      if (c.score > parent.score) parent = c;
    }
    return this.mutate(parent.arch);
  }

  tell(arch: Architecture, score: number): void {
    this.population.push({ arch, score });
    if (this.population.length > this.o.population) this.population.shift();
  }

  /** A copy of `arch` with one block's input set or operation set replaced by a different one. */
  mutate(arch: Architecture): Architecture {
    const child: Architecture = { blocks: arch.blocks.map((b) => ({ inputs: [...b.inputs], ops: [...b.ops] })) };
    const i = this.rng.below(child.blocks.length);
    const before = formatArchitecture(arch);
    for (;;) {
      if (this.rng.below(2) === 0) {
        const mask = 1 + this.rng.below(2 ** (2 + i) - 1);
        child.blocks[i].inputs = Array.from({ length: 2 + i }, (_, j) => j).filter((j) => (mask >> j) & 1);
      } else {
        child.blocks[i].ops = [...this.opSets[this.rng.below(this.opSets.length)]] as Architecture['blocks'][number]['ops'];
      }
      if (formatArchitecture(child) !== before) return child;
    }
  }
}

/** The search strategies. */
export type StrategyName = 'random' | 'evolution';
/** Every strategy name, for option parsing. */
export const STRATEGIES: StrategyName[] = ['random', 'evolution'];

/** A strategy by name, seeded. */
export function createStrategy(name: StrategyName, seed: number, space: SearchSpace, evo?: EvolutionOptions): SearchStrategy {
  return name === 'evolution' ? new EvolutionSearch(seed, space, evo) : new RandomSearch(seed, space);
}
