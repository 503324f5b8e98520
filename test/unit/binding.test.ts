// The message for a missing addon fits where the package sits: a clone (scripts/setup) or an installed dependency.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MALLOC_RETAIN_MB, buildAdvice, mallocRetainBytes } from '../../src/native/binding';

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

describe('freed memory kept mapped (NAS_MALLOC_RETAIN_MB)', () => {
  it('keeps 1 GiB by default, the MiB given, none with 0, and leaves a malloc the environment tunes alone', () => {
    expect(MALLOC_RETAIN_MB).toBe(1024);
    expect(mallocRetainBytes({})).toBe(2 ** 30);
    expect(mallocRetainBytes({ NAS_MALLOC_RETAIN_MB: '' })).toBe(2 ** 30);
    expect(mallocRetainBytes({ NAS_MALLOC_RETAIN_MB: '256' })).toBe(256 * 2 ** 20);
    expect(mallocRetainBytes({ NAS_MALLOC_RETAIN_MB: '0' })).toBe(0);
    expect(mallocRetainBytes({ MALLOC_TRIM_THRESHOLD_: '1000000' })).toBe(0);
    expect(mallocRetainBytes({ MALLOC_MMAP_THRESHOLD_: '1000000' })).toBe(0);
    expect(mallocRetainBytes({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1000000' })).toBe(0);
    expect(mallocRetainBytes({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' })).toBe(2 ** 30);
  });

  it('names the variable, what it takes and what came', () => {
    for (const bad of ['x', '-1', '1.5', '2048'])
      expect(() => mallocRetainBytes({ NAS_MALLOC_RETAIN_MB: bad })).toThrow(
        expect.objectContaining({
          code: 'ERR_NAS_BAD_CONFIG',
          message: `NAS_MALLOC_RETAIN_MB: expected an integer number of MiB in 0..2047, got "${bad}"`,
        }),
      );
  });
});
