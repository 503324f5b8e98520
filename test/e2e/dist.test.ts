// Data-parallel workers as separate processes (nasctl launch, c10d over loopback): equal to one process, sharded
// search, and a killed worker that stops the others with an error naming it while the last checkpoint stays usable.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native/binding';
import { openSupernet } from '../../src/search/openSupernet';
import { Supernet } from '../../src/model/Supernet';
import { type Ran, maxAbsDiff, requiredUnderCi, runProcess, NASCTL } from '../helpers';

const nasctl = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> =>
  runProcess([NASCTL, ...args], { env: { ...process.env, OMP_NUM_THREADS: '1', ...env } });

// Tiny synthetic run; no crop (see test/native/dist.test.ts on why crop makes this net chaotic) and a small lr.
const TRAIN = [
  'train',
  '--dataset',
  'synthetic',
  '--filters',
  '4',
  '--stacks',
  '2',
  '--cells-per-stack',
  '1',
  '--batch-size',
  '64',
  '--ghost-batch',
  '16',
  '--lr',
  '0.02',
  '--eval-archs',
  '2',
  '--eval-limit',
  '64',
  '--seed',
  '3',
  '--no-augment',
];

async function parameters(dir: string): Promise<Map<string, Float32Array>> {
  const { net } = await openSupernet(dir, { threads: 1 });
  try {
    return new Map(net.parameterNames().map((n) => [n, net.getParameter(n)]));
  } finally {
    net.dispose();
  }
}

async function worstDiff(a: string, b: string): Promise<number> {
  const pa = await parameters(a);
  const pb = await parameters(b);
  let worst = 0;
  for (const [n, v] of pa) worst = Math.max(worst, maxAbsDiff(v, pb.get(n)!));
  return worst;
}

describe.skipIf(!requiredUnderCi(loadAddon().distAvailable, 'c10d Gloo in the addon (libgloo-dev at build time)'))(
  'nasctl launch (2 worker processes on loopback)',
  () => {
    it('trains to the parameters of one process, and rank 0 alone writes the run', async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-dp-'));
      const one = await nasctl([...TRAIN, '--steps', '6', '--eval-every', '3', '--out', path.join(root, 'one')]);
      expect(one.status, one.stderr).toBe(0);
      const two = await nasctl([
        'launch',
        '--nproc',
        '2',
        '--',
        ...TRAIN,
        '--steps',
        '6',
        '--eval-every',
        '3',
        '--out',
        path.join(root, 'two'),
        '--json',
      ]);
      expect(two.status, two.stderr).toBe(0);
      expect(two.stderr).toContain('worker 1 of 2 started');
      // Only rank 0 prints: two metrics lines and the result.
      const lines = two.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(3);
      expect(lines[2].result.steps).toBe(6);
      const metrics = fs
        .readFileSync(path.join(root, 'two', 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n');
      expect(metrics).toHaveLength(2);
      // Float summation order differs (per-worker sums, then the all-reduce); this tiny net amplifies such noise
      // (1 vs 2 LibTorch threads in one process differ by ~5e-5 after 8 steps, 4e-2 after 60), so: few steps and a
      // bound far below what a wrong mask or shard would give (>1e-3 after one step).
      expect(await worstDiff(path.join(root, 'one'), path.join(root, 'two'))).toBeLessThan(1e-4);
      // The evaluation is shared between the workers and gathered: the same scores as one process's.
      const r1 = JSON.parse(fs.readFileSync(path.join(root, 'one', 'result.json'), 'utf8'));
      const r2 = JSON.parse(fs.readFileSync(path.join(root, 'two', 'result.json'), 'utf8'));
      expect(r2.perArch.map((p: { arch: string }) => p.arch)).toEqual(r1.perArch.map((p: { arch: string }) => p.arch));
      for (let i = 0; i < r1.perArch.length; i++) expect(r2.perArch[i].accuracy).toBeCloseTo(r1.perArch[i].accuracy, 2);

      // Search split across 3 workers: the same results file as one process (random strategy), written once.
      const s1 = await nasctl([
        'search',
        '--supernet',
        path.join(root, 'one'),
        '--count',
        '10',
        '--batch-archs',
        '2',
        '--out',
        path.join(root, 's1.jsonl'),
      ]);
      expect(s1.status, s1.stderr).toBe(0);
      // (in two sessions: 6, then resumed to 10)
      for (const count of ['6', '10']) {
        const s3 = await nasctl([
          'launch',
          '--nproc',
          '3',
          '--',
          'search',
          '--supernet',
          path.join(root, 'one'),
          '--count',
          count,
          '--batch-archs',
          '2',
          '--out',
          path.join(root, 's3.jsonl'),
        ]);
        expect(s3.status, s3.stderr).toBe(0);
      }
      const read = (f: string): { arch: string; accuracy: number; index: number }[] =>
        fs
          .readFileSync(path.join(root, f), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
      const a = read('s1.jsonl');
      const b = read('s3.jsonl');
      expect(b.map((r) => [r.index, r.arch, r.accuracy])).toEqual(a.map((r) => [r.index, r.arch, r.accuracy]));

      // Evolution in rounds of 2 (one proposal per worker), resumed by a single process: the replay follows the rounds.
      const evo = [
        'search',
        '--supernet',
        path.join(root, 'one'),
        '--strategy',
        'evolution',
        '--population',
        '4',
        '--tournament',
        '2',
        '--out',
        path.join(root, 'evo.jsonl'),
      ];
      const e2 = await nasctl(['launch', '--nproc', '2', '--', ...evo, '--count', '8']);
      expect(e2.status, e2.stderr).toBe(0);
      const e1 = await nasctl([...evo, '--count', '11']);
      expect(e1.status, e1.stderr).toBe(0);
      const rounds = read('evo.jsonl').map((r) => (r as unknown as { round: number }).round);
      expect(rounds).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
      expect(new Set(read('evo.jsonl').map((r) => r.arch)).size).toBe(11);
    }, 240_000);

    /** `nasctl launch` of two long training workers into a new folder, once both train; their pids and the stderr so far. */
    async function launchTraining(prefix: string) {
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), prefix)), 'run');
      const child = spawn(process.execPath, [NASCTL, 'launch', '--nproc', '2', '--', ...TRAIN, '--steps', '5000', '--out', out], {
        env: { ...process.env, OMP_NUM_THREADS: '1' },
      });
      const ran = { out, child, stderr: '', pids: [] as number[] };
      child.stderr.on('data', (d: Buffer) => {
        ran.stderr += d.toString();
      });
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (ran.stderr.includes('training on')) {
            clearInterval(poll);
            resolve();
          }
        }, 20);
      });
      ran.pids = [...ran.stderr.matchAll(/worker \d of 2 started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
      expect(ran.pids).toHaveLength(2);
      return ran;
    }
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };

    it('stops the workers when the launcher is killed (SIGKILL): none trains on with nobody watching', async () => {
      const ran = await launchTraining('nas-dp-orphan-');
      const { out, pids } = ran;
      ran.child.kill('SIGKILL');
      const killedAt = Date.now();
      while (pids.some(alive) && Date.now() - killedAt < 60_000) await new Promise((r) => setTimeout(r, 100));
      // Each notices within a second and stops after the step the workers agree on, saving a checkpoint.
      expect(pids.filter(alive)).toEqual([]);
      expect(Date.now() - killedAt).toBeLessThan(30_000);
      expect(ran.stderr).toContain('the launcher (pid');
      expect(fs.existsSync(path.join(out, 'checkpoint.pt'))).toBe(true);
      expect(fs.existsSync(path.join(out, 'result.json'))).toBe(false);
      expect(fs.existsSync(path.join(out, '.lock'))).toBe(false);
    }, 120_000);

    it.each([
      ['SIGHUP', 129],
      ['SIGTERM', 143],
    ] as const)(
      'a %s to the launcher stops the workers as asked (checkpoint saved, lock freed), reported as a stop, not a failure',
      async (signal, code) => {
        const ran = await launchTraining('nas-dp-stop-');
        const exited = new Promise<number | null>((resolve) => ran.child.on('close', (c) => resolve(c)));
        ran.child.kill(signal);
        expect(await exited).toBe(code);
        expect(ran.pids.filter(alive)).toEqual([]);
        expect(ran.stderr).toContain(`nasctl launch: stopped (${signal}), as asked`);
        expect(ran.stderr).not.toContain('nasctl launch: failed');
        expect(fs.existsSync(path.join(ran.out, 'checkpoint.pt'))).toBe(true);
        expect(fs.existsSync(path.join(ran.out, '.lock'))).toBe(false);
      },
      120_000,
    );

    it('stops the survivor with an error naming the killed worker; the checkpoint resumes with one worker', async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-dp-kill-'));
      const out = path.join(root, 'run');
      const args = [...TRAIN, '--steps', '60', '--checkpoint-every', '5', '--eval-every', '60'];
      const child = spawn(process.execPath, [NASCTL, 'launch', '--nproc', '2', '--grace', '20', '--', ...args, '--out', out], {
        env: { ...process.env, OMP_NUM_THREADS: '1', NAS_DIST_DEAD_AFTER_MS: '2000' },
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          const pid = /worker 1 of 2 started \(pid (\d+)\)/.exec(stderr)?.[1];
          if (pid && fs.existsSync(path.join(out, 'checkpoint.pt'))) {
            clearInterval(poll);
            process.kill(Number(pid), 'SIGKILL');
            resolve();
          }
        }, 5);
      });
      const killedAt = Date.now();
      const code = await exited;
      // Bounded: the survivor notices within its heartbeat window, long before the launcher's 20 s grace.
      expect(Date.now() - killedAt).toBeLessThan(15_000);
      expect(code).not.toBe(0);
      expect(stderr).toContain('worker 1 (pid');
      expect(stderr).toMatch(/worker 1 stopped responding|Connection closed|worker 1/);
      expect(stderr).toContain('ERR_NAS_WORKER_LOST');
      expect(fs.existsSync(path.join(out, 'result.json'))).toBe(false);

      // The last checkpoint is whole (written by rank 0 at a step boundary), and a different world size (one process)
      // continues it to the end.
      const meta = (await Supernet.readCheckpointMeta(path.join(out, 'checkpoint.pt'))) as { step: number };
      expect(meta.step % 5).toBe(0);
      expect(meta.step).toBeGreaterThan(0);
      expect(meta.step).toBeLessThan(60);
      const resumed = await nasctl([...args, '--out', out, '--resume']);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8')).steps).toBe(60);
    }, 240_000);

    it('a worker alone says in one line what it waited for and how long (no C++ backtrace), with a code', async () => {
      const r = await nasctl([
        ...TRAIN,
        '--steps',
        '2',
        '--world-size',
        '2',
        '--rank',
        '0',
        '--master-port',
        '29531',
        '--dist-timeout',
        '1',
        '--out',
        path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-alone-')), 'run'),
      ]);
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(
        /worker 0 of 2 could not join the group at 127\.0\.0\.1:29531 within 1 s \(--dist-timeout\).*\[ERR_NAS_DIST\]/,
      );
      expect(r.stderr).not.toContain('frame #');
    }, 60_000);

    it('refuses a worker with other settings (--filters, --seed) on every worker, with a code, before any tensor crosses', async () => {
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-dp-settings-')), 'run');
      const worker = (rank: number, extra: string[]) =>
        nasctl([
          ...TRAIN,
          '--steps',
          '4',
          '--world-size',
          '2',
          '--rank',
          String(rank),
          '--master-port',
          '29533',
          '--dist-timeout',
          '30',
          '--out',
          out,
          ...extra,
        ]);
      const [a, b] = await Promise.all([worker(0, ['--filters', '4', '--seed', '1']), worker(1, ['--filters', '8', '--seed', '2'])]);
      for (const r of [a, b]) {
        expect(r.signal).toBeNull(); // it used to be SIGABRT in Gloo (tensors of another size)
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/worker 1 is not running the job worker 0 runs: .*net\.filters 8 \(worker 0: 4\)/);
        expect(r.stderr).toContain('ERR_NAS_DIST');
      }
      expect(b.stderr).toMatch(/seed 2 \(worker 0: 1\)/);
      expect(fs.existsSync(path.join(out, 'result.json'))).toBe(false); // no model trained by two settings
    }, 120_000);

    it('refuses a worker of another job on the same port, and a second worker with a taken rank, at rendezvous; the job trains as it would alone', async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-dp-jobs-'));
      const job = (rank: number, out: string) =>
        nasctl([
          ...TRAIN,
          '--steps',
          '6',
          '--world-size',
          '2',
          '--rank',
          String(rank),
          '--master-port',
          '29534',
          '--dist-timeout',
          '60',
          '--out',
          path.join(root, out),
        ]);
      // Interleaved starts: job c's two workers, a rank 1 of job d, and a second rank 1 of job c.
      const t0 = Date.now();
      const [c0, d1, c1, c1b] = await Promise.all([
        job(0, 'c'),
        job(1, 'd').then((r) => ({ ...r, ms: Date.now() - t0 })),
        job(1, 'c'),
        job(1, 'c'),
      ]);
      expect(d1.status).toBe(1);
      expect(d1.stderr).toMatch(
        /worker 1 is of job 'train:.*[/]d', but the group at 127\.0\.0\.1:29534 is job 'train:.*[/]c'.*ERR_NAS_DIST/,
      );
      expect(d1.ms).toBeLessThan(30_000); // refused at rendezvous, not after --dist-timeout (60 s)
      // Exactly one of the two rank-1 workers of c took the rank; the other was refused by name.
      const [took, refused] = c1.status === 0 ? [c1, c1b] : [c1b, c1];
      expect(took.status, took.stderr).toBe(0);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/rank 1 of job 'train:.*[/]c' has already joined the group.*ERR_NAS_DIST/);
      expect(c0.status, c0.stderr).toBe(0);
      expect(fs.existsSync(path.join(root, 'd', 'result.json'))).toBe(false);
      // Job c's model is the one its own two workers train (launch: a private store, no other worker can join).
      const alone = await nasctl(['launch', '--nproc', '2', '--', ...TRAIN, '--steps', '6', '--out', path.join(root, 'alone')]);
      expect(alone.status, alone.stderr).toBe(0);
      const result = (dir: string) => JSON.parse(fs.readFileSync(path.join(root, dir, 'result.json'), 'utf8'));
      expect(result('c').valAccuracy).toBe(result('alone').valAccuracy);
      expect(await worstDiff(path.join(root, 'c'), path.join(root, 'alone'))).toBe(0);
    }, 180_000);

    it("checks the workers' command once before starting any: a bad option starts no worker", async () => {
      // The last: 2 ghost batches of 32 cannot be split between 64 workers (each worker's trainer would say so, after
      // 64 LibTorch processes had started).
      for (const bad of [['--bogus'], ['--lr', '-1'], ['--ghost-batch', '24'], ['--batch-size', '64', '--ghost-batch', '32']]) {
        const r = await nasctl(['launch', '--nproc', '64', '--', ...TRAIN, ...bad, '--out', path.join(os.tmpdir(), 'never')]);
        expect(r.status, bad.join(' ')).toBe(2);
        expect(r.stderr, bad.join(' ')).not.toContain('started (pid');
      }
    });

    it('on one machine the workers open no port but on 127.0.0.1 (the store is a private file, Gloo is on loopback)', async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-dp-ports-'));
      const child = spawn(
        process.execPath,
        [
          NASCTL,
          'launch',
          '--nproc',
          '2',
          '--',
          ...TRAIN,
          '--steps',
          '400',
          '--eval-every',
          '1',
          '--json',
          '--out',
          path.join(root, 'run'),
        ],
        {
          env: { ...process.env, OMP_NUM_THREADS: '1' },
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      // Once rank 0 printed its first metrics line the group is connected: every socket it will have is open.
      const connected = await Promise.race([
        new Promise<boolean>((resolve) => child.stdout.once('data', () => resolve(true))),
        exited.then(() => false),
      ]);
      expect(connected, stderr).toBe(true);
      const pids = [...stderr.matchAll(/started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
      expect(pids).toHaveLength(2);
      const sockets = pids.flatMap((pid) => tcpSockets(pid));
      child.kill('SIGTERM');
      await exited;
      expect(sockets.length).toBeGreaterThan(0); // Gloo's connection between the two: the check sees sockets at all
      expect(sockets.filter((s) => !s.local.startsWith('127.'))).toEqual([]);
      expect(sockets.filter((s) => s.listening && !s.local.startsWith('127.'))).toEqual([]);
      expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('oneshot-nas-store-') && stderr.includes(n))).toEqual([]);
    }, 120_000);
  },
);

// Two hosts on real networking: two network namespaces joined by a veth pair, one worker in each (the store on
// host 0's address, Gloo over the veth). Needs root and iproute2; under CI=true both are required.
const canNetns = process.getuid?.() === 0 && fs.existsSync('/usr/sbin/ip');
describe.skipIf(!requiredUnderCi(canNetns, 'root and iproute2 (ip netns) for the two-host test'))(
  'two hosts (network namespaces and a veth pair)',
  () => {
    const tag = `nas${process.pid % 100000}`;
    const hosts = [
      { ns: `${tag}a`, dev: `${tag}a`, addr: '10.231.7.1' },
      { ns: `${tag}b`, dev: `${tag}b`, addr: '10.231.7.2' },
    ];
    const ip = (...args: string[]): void => {
      execFileSync('ip', args, { stdio: 'pipe' });
    };
    beforeAll(() => {
      for (const h of hosts) ip('netns', 'add', h.ns);
      ip('link', 'add', hosts[0].dev, 'type', 'veth', 'peer', 'name', hosts[1].dev);
      for (const h of hosts) {
        ip('link', 'set', h.dev, 'netns', h.ns);
        ip('-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.dev);
        ip('-n', h.ns, 'link', 'set', h.dev, 'up');
        ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      }
    });
    afterAll(() => {
      for (const h of hosts) {
        try {
          ip('netns', 'del', h.ns); // removes its end of the veth pair too
        } catch {
          // not created
        }
      }
    });
    /** `nasctl launch` of node `k` (one worker) inside host k's namespace. */
    const node = (k: number, args: string[], env: Record<string, string> = {}) =>
      spawn('ip', [
        'netns',
        'exec',
        hosts[k].ns,
        'env',
        `GLOO_SOCKET_IFNAME=${hosts[k].dev}`,
        'OMP_NUM_THREADS=1',
        ...Object.entries(env).map(([key, v]) => `${key}=${v}`),
        process.execPath,
        NASCTL,
        'launch',
        '--nnodes',
        '2',
        '--node-rank',
        String(k),
        '--nproc',
        '1',
        '--master-addr',
        hosts[0].addr,
        '--master-port',
        '29517',
        '--grace',
        '20',
        '--',
        ...args,
      ]);
    const finished = (child: ReturnType<typeof spawn>): Promise<{ code: number | null; stderr: string }> => {
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
    };

    // This tiny net is chaotic (test/helpers.ts: a one-ulp change grows to O(1) within tens of steps; seen here after
    // 20 steps: 5e-4..4e-3 with every path on, 32 on a BN bias with path dropout), so 20 steps are compared with the
    // same two workers on one machine, which sum in the same order: exactly equal. That run equals one process within
    // the loopback test's bound after 6 steps, and so do the two hosts.
    it('20 training steps on two hosts equal two workers on one machine exactly, and 6 steps equal one process', async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-hosts-'));
      const hostsRun = async (args: string[], out: string): Promise<void> => {
        const runs = await Promise.all([0, 1].map((k) => finished(node(k, [...args, '--out', out]))));
        for (const r of runs) expect(r.code, r.stderr).toBe(0);
      };
      const long = [...TRAIN, '--steps', '20', '--eval-every', '10'];
      await hostsRun(long, path.join(root, 'hosts20'));
      const local = await nasctl(['launch', '--nproc', '2', '--', ...long, '--out', path.join(root, 'local20')]);
      expect(local.status, local.stderr).toBe(0);
      expect(await worstDiff(path.join(root, 'hosts20'), path.join(root, 'local20'))).toBe(0);
      const short = [...TRAIN, '--steps', '6', '--eval-every', '3'];
      await hostsRun(short, path.join(root, 'hosts6'));
      const one = await nasctl([...short, '--out', path.join(root, 'one6')]);
      expect(one.status, one.stderr).toBe(0);
      expect(await worstDiff(path.join(root, 'one6'), path.join(root, 'hosts6'))).toBeLessThan(1e-4);
    }, 240_000);

    it('the store listens on --master-addr only; a killed worker on one host ends the other with ERR_NAS_WORKER_LOST in its heartbeat window', async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-hosts-kill-'));
      const args = [...TRAIN, '--steps', '400', '--checkpoint-every', '5', '--eval-every', '400', '--out', path.join(root, 'run')];
      const env = { NAS_DIST_DEAD_AFTER_MS: '2000' };
      const host0 = node(0, args, env);
      const host1 = node(1, args, env);
      const done0 = finished(host0);
      let stderr0 = '';
      host0.stderr!.on('data', (d: Buffer) => {
        stderr0 += d.toString();
      });
      let stderr1 = '';
      host1.stderr!.on('data', (d: Buffer) => {
        stderr1 += d.toString();
      });
      const done1 = new Promise<void>((resolve) => host1.on('exit', () => resolve()));
      const pid = await new Promise<number>((resolve) => {
        const poll = setInterval(() => {
          const m = /worker 1 of 2 started \(pid (\d+)\)/.exec(stderr1);
          if (m && fs.existsSync(path.join(root, 'run', 'checkpoint.pt'))) {
            clearInterval(poll);
            resolve(Number(m[1]));
          }
        }, 10);
      });
      // Rank 0's store (and anything else it listens on) is on host 0's address, not on every interface.
      const rank0 = Number(/worker 0 of 2 started \(pid (\d+)\)/.exec(stderr0)![1]);
      const listening = tcpSockets(rank0)
        .filter((s) => s.listening)
        .map((s) => s.local);
      expect(listening).toEqual([hosts[0].addr]);
      process.kill(pid, 'SIGKILL');
      const killedAt = Date.now();
      const r0 = await done0;
      await done1;
      expect(Date.now() - killedAt).toBeLessThan(15_000); // the heartbeat window, not the launcher's 20 s grace
      expect(r0.code).not.toBe(0);
      expect(r0.stderr).toContain('ERR_NAS_WORKER_LOST');
      expect(r0.stderr).toMatch(/worker 1/);
    }, 240_000);
  },
);

/** The TCP sockets of process `pid`: local address (a.b.c.d, or ipv6:hex) and whether it listens. */
function tcpSockets(pid: number): { local: string; listening: boolean }[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const out: { local: string; listening: boolean }[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (!inodes.has(f[9])) continue;
      const hex = f[1].split(':')[0];
      out.push({
        local:
          table === 'tcp'
            ? hex
                .match(/../g)!
                .reverse()
                .map((h) => parseInt(h, 16))
                .join('.')
            : `ipv6:${hex}`,
        listening: f[3] === '0A',
      });
    }
  }
  return out;
}
