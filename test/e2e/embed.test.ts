// oneshot-nas inside someone else's program (test/fixtures/embed.js is the host): worker threads, a host that exits
// while a job runs, and buffers the host takes back. Each case runs in a child process, so that a crash is seen as
// the child's signal rather than taking the test runner down.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runProcess } from '../helpers';

const HOST = path.resolve(__dirname, '../fixtures/embed.js');
const host = (...args: string[]) => runProcess([HOST, ...args], { timeoutMs: 120_000 });

interface Run {
  seed: number;
  losses: number[];
  weights: number[];
}

describe('embedding', () => {
  it('4 worker threads train at once, a fifth is terminated mid-job, then the main thread trains: all runs exact', async () => {
    const r = await host('workers', '4');
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { workers: Run[]; main: Run[]; terminated: number };
    expect(out.workers).toHaveLength(4);
    expect(out.terminated).toBe(1); // worker.terminate() resolves with exit code 1
    // Each worker's run equals the main thread's run of the same seed after the workers are gone (one intra-op
    // thread: bit-identical), and different seeds differ: every environment really trained.
    for (let i = 0; i < 4; i++) {
      expect(out.workers[i].losses).toHaveLength(10);
      expect(out.workers[i]).toEqual(out.main[i]);
    }
    expect(out.workers[0].weights).not.toEqual(out.workers[1].weights);
  }, 180_000);

  it('a worker that calls process.exit() during its job ends cleanly and the main thread trains on', async () => {
    const r = await host('worker-exit');
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { code: number; run: Run };
    expect(out.code).toBe(0);
    expect(out.run.losses).toHaveLength(10);
    expect(out.run.losses.every(Number.isFinite)).toBe(true);
  }, 120_000);

  // worker.terminate() while the worker's first Supernet.create loads the addon: node-addon-api threw the error it could
  // not hand to the dying environment on as a C++ exception, and std::terminate aborted the host (11 of 11 tries at
  // 200-600 ms). Delays across the load window, each in its own host.
  it('a worker terminated while the addon loads in it leaves the host running: the main thread trains after', async () => {
    for (let ms = 0; ms <= 700; ms += 50) {
      const r = await host('terminate-loading', String(ms));
      expect({ ms, signal: r.signal, status: r.status }, r.stderr).toEqual({ ms, signal: null, status: 0 });
      const out = JSON.parse(r.stdout) as { code: number; run: Run };
      expect(out.run.losses).toHaveLength(10);
    }
  }, 300_000);

  // The process ends while a native job thread is inside LibTorch: 4 of 9 such runs segfaulted before the addon
  // stopped and joined its jobs on 'exit'. 20 runs, two at a time.
  it('process.exit(), an uncaught exception or an unhandled rejection during a job: the exit code asked for, 20 times', async () => {
    const cases: [string[], number][] = [
      [['exit', '3'], 3],
      [['throw'], 1],
      [['reject'], 1],
      [['exit', '0'], 0],
    ];
    const runs = Array.from({ length: 20 }, (_, i) => cases[i % cases.length]);
    for (let i = 0; i < runs.length; i += 2) {
      const done = await Promise.all(runs.slice(i, i + 2).map(([args]) => host(...args)));
      done.forEach((r, j) => {
        const [args, code] = runs[i + j];
        expect({ args, signal: r.signal, status: r.status }, r.stderr).toEqual({ args, signal: null, status: code });
      });
    }
  }, 600_000);

  it('a dataset whose pixel buffer is transferred away and collected evaluates as before (the addon owns a copy)', async () => {
    const r = await runProcess(['--expose-gc', HOST, 'detach'], { timeoutMs: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { before: unknown; after: unknown; detached: boolean };
    expect(out.detached).toBe(true);
    expect(out.after).toEqual(out.before);
  }, 90_000);
});
