// The message for a missing addon fits where the package sits: a clone (scripts/setup) or an installed dependency.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildAdvice } from '../../src/native/binding';

describe('a missing addon', () => {
  it('says scripts/setup in a clone, and npm rebuild (or allowing the build under pnpm) in an installed package', () => {
    expect(buildAdvice(path.resolve(__dirname, '../..'))).toMatch(/^Run `scripts\/setup`/);
    const installed = fs.mkdtempSync(path.join(os.tmpdir(), 'node_modules-oneshot-nas-'));
    const advice = buildAdvice(installed);
    expect(advice).toContain('npm rebuild oneshot-nas');
    expect(advice).toContain('pnpm approve-builds');
    expect(advice).not.toContain('scripts/setup');
  });
});
