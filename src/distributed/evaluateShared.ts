/** Scoring shared between the workers of a group. */
import type { ArchLike, EvaluationResult, NativeData, Supernet } from '../model/Supernet';
import type { ProcessGroup } from './processGroup';

/** Indices of `n` items that worker `rank` of `worldSize` takes (round robin). */
export function shareOf(n: number, rank: number, worldSize: number): number[] {
  const out: number[] = [];
  for (let i = rank; i < n; i += worldSize) out.push(i);
  return out;
}

/**
 * Evaluates `archs` with each worker scoring its round-robin share; every worker gets all results in order. On an
 * abort the result is the longest prefix of `archs` that every worker finished.
 */
export async function evaluateShared(
  net: Supernet,
  group: ProcessGroup | undefined,
  data: NativeData,
  archs: ArchLike[],
  o: Parameters<Supernet['evaluate']>[2] = {},
): Promise<EvaluationResult[]> {
  if (!group) return net.evaluate(data, archs, o);
  const mine = shareOf(archs.length, group.rank, group.worldSize);
  const ev = await net.evaluate(
    data,
    mine.map((i) => archs[i]),
    o,
  );
  const all = await group.exchange('evaluate', ev);
  const out: EvaluationResult[] = [];
  for (let i = 0; i < archs.length; i++) {
    const r = all[i % group.worldSize]?.[Math.floor(i / group.worldSize)];
    if (!r) break;
    out.push(r);
  }
  return out;
}
