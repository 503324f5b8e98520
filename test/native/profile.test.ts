// NAS_PROFILE: a job records its ATen ops in a chrome://tracing file, and the forward marks its parts (stem, each
// reduction, each stack's cells, the head) as user scopes that scripts/profile.js sums. The parts must hold every
// convolution of the forward, and the stem exactly one (the 3x3 convolution on the input) per forward.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatArchitecture } from '../../src/space/architecture';
import { sampleArchitectures } from '../../src/space/sampleArchitecture';
import { tinyData, tinyNet } from '../helpers';

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  dur: number;
  tid: number;
}

describe('NAS_PROFILE', () => {
  it('writes the scoring job trace with the forward parts around every convolution, one in the stem per forward', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-profile-test-'));
    const prefix = path.join(dir, 'p');
    const net = tinyNet({ threads: 1 });
    const data = tinyData(32);
    process.env.NAS_PROFILE = prefix;
    try {
      await net.evaluate(data, [formatArchitecture(sampleArchitectures(1, 3)[0])], { count: 32 });
    } finally {
      delete process.env.NAS_PROFILE;
      net.dispose();
    }
    const raw = JSON.parse(fs.readFileSync(`${prefix}.evaluate.json`, 'utf8'));
    const events = ((Array.isArray(raw) ? raw : raw.traceEvents) as TraceEvent[]).filter((e) => e.ph === 'X');
    fs.rmSync(dir, { recursive: true, force: true });
    const parts = events.filter((e) => e.name.startsWith('nas::'));
    const names = new Set(parts.map((e) => e.name));
    // TINY: 3 stacks of one cell; the third stack's reduction and cells share the "2+" / "3+" names.
    expect([...names].sort()).toEqual([
      'nas::cells, stack 1',
      'nas::cells, stack 2',
      'nas::cells, stack 3+',
      'nas::head',
      'nas::reduction 1',
      'nas::reduction 2+',
      'nas::stem',
    ]);
    const inside = (e: TraceEvent, p: TraceEvent): boolean => e.tid === p.tid && e.ts >= p.ts && e.ts + e.dur <= p.ts + p.dur;
    const convs = events.filter((e) => e.name === 'aten::conv2d');
    const stems = parts.filter((p) => p.name === 'nas::stem');
    // One forward per ghost batch of 8 when scoring on the CPU: 32 images, 4 forwards.
    expect(stems).toHaveLength(4);
    expect(parts.filter((p) => p.name === 'nas::head')).toHaveLength(4);
    for (const s of stems) expect(convs.filter((c) => inside(c, s))).toHaveLength(1);
    expect(convs.length).toBeGreaterThan(stems.length);
    for (const c of convs) expect(parts.some((p) => inside(c, p))).toBe(true);
  });
});
