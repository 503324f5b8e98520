// What the code and the docs cite exists: every repository path named in a source file, a script or a doc, and every
// section anchor of a docs/ link (`docs/model.md#weight-decay`), against the files and the Markdown headings.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).trim().split('\n');
const scanned = tracked.filter(
  (f) =>
    /^(src|native|test|scripts|bench|docs|cmake|examples|\.ci)\/|^(README\.md|CMakeLists\.txt|package\.json)$/.test(f) &&
    !/\.(jsonl?|png|svg|gz)$/.test(f),
);

/** A path git ignores is an output a command writes (bench/results/partial.jsonl): cited, never tracked. */
const ignored = (p: string): boolean => spawnSync('git', ['check-ignore', '-q', '--no-index', p], { cwd: root }).status === 0;

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, '')
    .replace(/[^\p{L}\p{N} -]/gu, '')
    .replace(/ /g, '-');
}

function anchors(file: string): Set<string> {
  const text = fs.readFileSync(path.join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
}

/** Every repository path (with its #anchor, if any) in a text, and the Markdown links of a .md file (relative to it). */
function citations(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const found = [...text.matchAll(/(?<![\w./-])((?:src|native|test|scripts|bench|docs|cmake|examples)\/[\w./-]*[\w])(#[\w-]+)?/g)].map(
    (m) => m[1] + (m[2] ?? ''),
  );
  if (file.endsWith('.md')) {
    for (const m of text.matchAll(/\]\(([^)#\s]+\.md)?(#[\w-]+)?\)/g)) {
      if (!m[1] && !m[2]) continue;
      if (m[1] && /^[a-z]+:/.test(m[1])) continue; // a URL
      found.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1] ?? path.posix.basename(file))) + (m[2] ?? ''));
    }
  }
  return found;
}

describe('citations', () => {
  it('makes the anchors GitHub makes', () => {
    expect(slug('Ghost batch normalization')).toBe('ghost-batch-normalization');
    expect(slug("`nasctl study`: the paper's analyses")).toBe('nasctl-study-the-papers-analyses');
  });

  it('names only files, folders and doc sections that exist', () => {
    const missing: string[] = [];
    for (const file of scanned) {
      for (const cite of citations(file)) {
        const [target, anchor] = cite.split('#');
        const where = `${file}: ${cite}`;
        if (!fs.existsSync(path.join(root, target))) {
          if (!ignored(target)) missing.push(`${where} (no such file or folder)`);
        } else if (anchor && target.endsWith('.md') && !anchors(target).has(anchor))
          missing.push(`${where} (no such section in ${target})`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('cites no file from outside the repository (the project specification is docs/model.md here)', () => {
    const outside = scanned.filter(
      (f) => /SPEC\.md|STYLE\.md|\.\.\/shared\//.test(fs.readFileSync(path.join(root, f), 'utf8')) && f !== 'test/unit/citations.test.ts',
    );
    expect(outside).toEqual([]);
  });
});
