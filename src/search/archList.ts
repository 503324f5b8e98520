/**
 * Lists of architectures to score (`nasctl search --archs FILE`): one canonical architecture per line, or JSON lines
 * with an `arch` field (a previous search.jsonl, say); `-` reads standard input. Blank lines and lines starting with
 * `#` are skipped; repeats keep their first place.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { NasError, invalidParameter } from '../util/errors';
import { type Architecture, type SearchSpace, formatArchitecture, parseArchitecture } from '../space/architecture';

/** A validated list of architectures to score, with the digest that identifies it. */
export interface ArchList {
  archs: Architecture[];
  /** sha256 of the canonical list: a resumed search must score the same list. */
  digest: string;
}

/** Reads and validates the list; ERR_NAS_BAD_ARCH names the file, line and column of the first bad entry. */
export function readArchList(file: string, space: SearchSpace): ArchList {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new NasError('ERR_NAS_IO', `archs: cannot read ${file === '-' ? 'standard input' : file}: ${(err as Error).message}`);
  }
  const where = file === '-' ? 'stdin' : file;
  const seen = new Set<string>();
  const archs: Architecture[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    let entry = line;
    if (line.startsWith('{')) {
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        throw new NasError(
          'ERR_NAS_BAD_ARCH',
          `${where}:${i + 1}:1: not JSON (expected an architecture, or a JSON object with an "arch" field)`,
        );
      }
      const arch = (obj as { arch?: unknown }).arch;
      if (typeof arch !== 'string') throw new NasError('ERR_NAS_BAD_ARCH', `${where}:${i + 1}:1: the JSON object has no "arch" string`);
      entry = arch;
    }
    let a: Architecture;
    try {
      a = parseArchitecture(entry, space);
    } catch (err) {
      const e = err as NasError;
      const pos = (e.details as { position?: number } | undefined)?.position ?? 0;
      const col = raw.indexOf(entry) + pos + 1;
      throw new NasError('ERR_NAS_BAD_ARCH', `${where}:${i + 1}:${col}: ${e.message}`, { line: i + 1, column: col });
    }
    const key = formatArchitecture(a);
    if (seen.has(key)) return;
    seen.add(key);
    archs.push(a);
  });
  if (!archs.length) throw invalidParameter('archs', 'at least one architecture', `an empty list in ${where}`, 'ERR_NAS_BAD_ARCH');
  const digest = createHash('sha256').update(archs.map(formatArchitecture).join('\n')).digest('hex');
  return { archs, digest };
}
