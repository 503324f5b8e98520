/**
 * Starts N data-parallel workers of one nasctl command on this machine (torchrun's role), with RANK, WORLD_SIZE,
 * LOCAL_RANK, MASTER_ADDR and MASTER_PORT set for each; `nasctl launch` and the module API's launchWorkers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { DIST_DEFAULTS } from './processGroup';
import { NasError } from '../util/errors';

/** Where and how many workers to start (`nasctl launch`'s flags). */
export interface LaunchFlags {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  masterAddr?: string;
  masterPort?: number;
  grace: number;
  /** The workers' job id ($NAS_JOB_ID): default, a new one per launch on one machine (docs/distributed.md#one-job). */
  jobId?: string;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const log = (msg: string): void => {
  process.stderr.write(`nasctl launch: ${msg}\n`);
};

/** How a launch ended: the exit code nasctl launch returns, and the first worker that failed. */
export interface LaunchResult {
  exitCode: number;
  /** The first worker that failed, if any (a worker that ended as a stop the launcher passed on asked is no failure). */
  failed?: { rank: number; code: number | null; signal: NodeJS.Signals | null };
  /** The signal that asked the launch to stop (SIGINT, SIGTERM, SIGHUP), if one did. */
  stopped?: NodeJS.Signals;
}

/**
 * Runs the workers to completion (`check`, if given, vets their command first: `nasctl launch` parses it as each
 * worker will). When one fails, the others get `graceSeconds` to notice it themselves (they stop
 * with an error naming it), then SIGTERM, then SIGKILL.
 */
export async function launchWorkers(
  args: string[],
  f: LaunchFlags,
  o: { check?: (args: string[], world: number) => Promise<void> } = {},
): Promise<LaunchResult> {
  if (f.nodeRank >= f.nnodes)
    throw new NasError(
      'ERR_NAS_BAD_CONFIG',
      `--node-rank: expected an integer in 0..${f.nnodes - 1} (--nnodes ${f.nnodes}), got ${f.nodeRank}`,
    );
  if (f.nnodes > 1 && !f.masterAddr)
    throw new NasError(
      'ERR_NAS_BAD_CONFIG',
      '--master-addr: expected the address of node 0 (reachable from every node) with --nnodes > 1, got nothing',
    );
  if (args.length === 0 || !['train', 'search'].includes(args[0])) {
    throw new NasError(
      'ERR_NAS_BAD_CONFIG',
      `command: expected \`train ...\` or \`search ...\` after --, got ${args.length ? `"${args[0]}"` : 'nothing'}`,
    );
  }
  await o.check?.(args, f.nproc * f.nnodes);
  const masterAddr = f.masterAddr ?? '127.0.0.1';
  // One machine: the workers meet through a file in a folder only this user can read, and open no store port at
  // all (Gloo's connections are on 127.0.0.1). Several machines: rank 0 serves the TCP store at --master-addr.
  const local = f.nnodes === 1 && LOOPBACK.test(masterAddr);
  const storeDir = local ? fs.mkdtempSync(path.join(os.tmpdir(), 'oneshot-nas-store-')) : undefined;
  const masterPort = f.masterPort ?? (local ? DIST_DEFAULTS.masterPort : 29500);
  try {
    return await runWorkers(args, f, { masterAddr, masterPort, storeFile: storeDir && path.join(storeDir, 'store') });
  } finally {
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  }
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1)$/;

async function runWorkers(
  args: string[],
  f: LaunchFlags,
  at: { masterAddr: string; masterPort: number; storeFile?: string },
): Promise<LaunchResult> {
  const { masterAddr, masterPort } = at;
  const world = f.nproc * f.nnodes;
  const script = path.join(__dirname, '..', 'cli', 'nasctl.js'); // the workers are nasctl processes
  const children: { rank: number; proc: ChildProcess; done: boolean }[] = [];
  let failed: LaunchResult['failed'];
  let stopped: NodeJS.Signals | undefined;
  // One job id for every worker of this launch; several machines share the one given (or each worker's default).
  const jobId = f.jobId ?? process.env.NAS_JOB_ID ?? (f.nnodes === 1 ? `launch-${randomUUID()}` : undefined);
  let timers: NodeJS.Timeout[] = [];
  const signalRunning = (signal: NodeJS.Signals): void => {
    for (const c of children) if (!c.done) c.proc.kill(signal);
  };

  const result = new Promise<LaunchResult>((resolve) => {
    const settle = (): void => {
      if (children.some((c) => !c.done)) return;
      timers.forEach(clearTimeout);
      timers = [];
      const code = (signal: NodeJS.Signals): number => 128 + (os.constants.signals[signal] ?? 0);
      const exitCode = failed ? (failed.signal ? code(failed.signal) : failed.code || 1) : stopped ? code(stopped) : 0;
      resolve({ exitCode, failed, ...(stopped ? { stopped } : {}) });
    };
    for (let local = 0; local < f.nproc; local++) {
      const rank = f.nodeRank * f.nproc + local;
      // Like torchrun: split the cores between the workers unless the user chose (oversubscribed OpenMP pools crawl).
      const threads = process.env.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(os.availableParallelism() / f.nproc)));
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        OMP_NUM_THREADS: threads,
        RANK: String(rank),
        WORLD_SIZE: String(world),
        LOCAL_RANK: String(local),
        LOCAL_WORLD_SIZE: String(f.nproc),
        MASTER_ADDR: masterAddr,
        MASTER_PORT: String(masterPort),
        // The worker watches this pid: killed launcher, stopped worker (lifecycle.ts: stopWhenLauncherGoes).
        NAS_LAUNCHER_PID: String(process.pid),
      };
      if (jobId) env.NAS_JOB_ID = jobId;
      if (at.storeFile) env.NAS_STORE_FILE = at.storeFile;
      else delete env.NAS_STORE_FILE;
      const proc = spawn(process.execPath, [script, ...args], { env, stdio: 'inherit' });
      const child = { rank, proc, done: false };
      children.push(child);
      log(`worker ${rank} of ${world} started (pid ${proc.pid})`);
      proc.on('exit', (code, signal) => {
        child.done = true;
        // After a stop was asked: a worker that saved its state and exited 130 or 128 + the signal stopped.
        const asked = stopped && (signal === 'SIGINT' || signal === 'SIGTERM' || [130, 129, 143].includes(code ?? -1));
        if ((code !== 0 || signal) && !failed && !asked) {
          failed = { rank, code, signal };
          log(
            `worker ${rank} (pid ${proc.pid}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; the other workers stop (given ${f.grace} s to notice)`,
          );
          timers.push(
            setTimeout(() => signalRunning('SIGTERM'), f.grace * 1000),
            setTimeout(() => signalRunning('SIGKILL'), (f.grace + 15) * 1000),
          );
        }
        settle();
      });
    }
  });
  // Ctrl-C reaches every worker from the terminal (same process group): each stops after the same step. A SIGTERM
  // or SIGHUP (a closed terminal or SSH session) sent to the launcher alone is passed on as SIGTERM.
  const onInt = (): void => {
    stopped ??= 'SIGINT';
    log('SIGINT: the workers stop after the current step (they received it too)');
  };
  const onTerm = (): void => {
    stopped ??= 'SIGTERM';
    signalRunning('SIGTERM');
  };
  const onHup = (): void => {
    stopped ??= 'SIGHUP';
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined); // the terminal is gone
    signalRunning('SIGTERM');
  };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);
  try {
    return await result;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onHup);
  }
}
