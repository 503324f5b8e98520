// The default thread count: OMP_NUM_THREADS read as libgomp reads it, never more than the cores; --threads above
// the cores is allowed with a warning.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cores, defaultThreads, ompNumThreads } from '../../src/util/threads';
import { NASCTL, runProcess } from '../helpers';

describe('threads', () => {
  it('reads OMP_NUM_THREADS as libgomp does: a list of positive decimal integers, the first one; anything else is ignored', () => {
    expect(ompNumThreads('3')).toBe(3);
    expect(ompNumThreads(' 2 ')).toBe(2);
    expect(ompNumThreads('4,2')).toBe(4);
    expect(ompNumThreads('4, 2 ,1')).toBe(4);
    for (const bad of ['1e3', '0', '-1', '2x', '', '0x10', '1.5', ',2', '2,', undefined])
      expect(ompNumThreads(bad), String(bad)).toBeUndefined();
  });

  it('defaults to OMP_NUM_THREADS up to the cores, else the cores', () => {
    const n = cores();
    expect(defaultThreads({})).toBe(n);
    expect(defaultThreads({ OMP_NUM_THREADS: '1' })).toBe(1);
    expect(defaultThreads({ OMP_NUM_THREADS: '1e3' })).toBe(n); // it was 1,000 threads
    expect(defaultThreads({ OMP_NUM_THREADS: String(n * 64) })).toBe(n);
  });

  it('warns when --threads asks for more than the cores, and still runs', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-threads-')), 'run');
    const many = cores() * 2;
    const r = await runProcess([
      NASCTL,
      'train',
      '--dataset',
      'synthetic',
      '--filters',
      '4',
      '--steps',
      '1',
      '--threads',
      String(many),
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`nasctl: warning: --threads ${many} is more than the ${cores()} cores of this machine`);
    expect((await runProcess([NASCTL, 'train', '--help'])).stdout.replace(/\s+/g, ' ')).toContain('$OMP_NUM_THREADS up to the cores');
  }, 60_000);
});
