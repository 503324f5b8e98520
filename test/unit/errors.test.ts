// docs/errors.md is the one table of error codes: every code the sources can raise is in it and in NasErrorCode,
// and its exit status column is what nasctl returns.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitStatusFor } from '../../src/cli/lifecycle';

const ROOT = path.resolve(__dirname, '../..');
const CODE = /ERR_NAS_[A-Z_]+/g;

function filesUnder(dir: string, ext: RegExp): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p, ext) : ext.test(e.name) ? [p] : [];
  });
}

const table = new Map(
  [...fs.readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8').matchAll(/^\| `(ERR_NAS_[A-Z_]+)` \|[^|]+\| (\d+) \|/gm)].map((m) => [
    m[1],
    Number(m[2]),
  ]),
);

describe('error codes', () => {
  it('every code in the sources (TypeScript and C++) is in docs/errors.md and in NasErrorCode, and no other', () => {
    const sources = [...filesUnder(path.join(ROOT, 'src'), /\.ts$/), ...filesUnder(path.join(ROOT, 'native'), /\.(cc|h)$/)];
    const used = new Set(sources.flatMap((f) => fs.readFileSync(f, 'utf8').match(CODE) ?? []));
    const union = fs.readFileSync(path.join(ROOT, 'src/util/errors.ts'), 'utf8');
    const typed = new Set(union.slice(0, union.indexOf(';')).match(CODE));
    expect(used.size).toBeGreaterThan(20);
    expect([...used].sort()).toEqual([...table.keys()].sort());
    expect([...typed].sort()).toEqual([...table.keys()].sort());
  });

  it('the exit status column is the one nasctl returns', () => {
    for (const [code, status] of table) expect([code, exitStatusFor(code)]).toEqual([code, status]);
  });
});
