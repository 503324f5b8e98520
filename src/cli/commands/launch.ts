/**
 * `nasctl launch`: starts N data-parallel workers of one nasctl command on this machine (torchrun's role), with
 * RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set for each. With --nnodes, run it once per machine.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { NasError } from '../../native/errors';
import { nonNegativeInt, positiveInt } from '../parse';

interface LaunchFlags {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  masterAddr?: string;
  masterPort?: number;
  grace: number;
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
  /** The first worker that failed, if any. */
  failed?: { rank: number; code: number | null; signal: NodeJS.Signals | null };
}

/**
 * Runs the workers to completion. When one fails, the others get `graceSeconds` to notice it themselves (they stop
 * with an error naming it), then SIGTERM, then SIGKILL.
 */
export async function launchWorkers(args: string[], f: LaunchFlags): Promise<LaunchResult> {
  if (f.nodeRank >= f.nnodes) throw new NasError('ERR_NAS_BAD_CONFIG', `--node-rank: expected an integer in 0..${f.nnodes - 1} (--nnodes ${f.nnodes}), got ${f.nodeRank}`);
  if (f.nnodes > 1 && !f.masterAddr) throw new NasError('ERR_NAS_BAD_CONFIG', '--master-addr: expected the address of node 0 (reachable from every node) with --nnodes > 1, got nothing');
  if (args.length === 0 || !['train', 'search'].includes(args[0])) {
    throw new NasError('ERR_NAS_BAD_CONFIG', `command: expected \`train ...\` or \`search ...\` after --, got ${args.length ? `"${args[0]}"` : 'nothing'}`);
  }
  const masterAddr = f.masterAddr ?? '127.0.0.1';
  const masterPort = f.masterPort ?? (f.nnodes === 1 ? await freePort() : 29500);
  const world = f.nproc * f.nnodes;
  const script = path.join(__dirname, '..', 'nasctl.js');
  const children: { rank: number; proc: ChildProcess; done: boolean }[] = [];
  let failed: LaunchResult['failed'];
  let timers: NodeJS.Timeout[] = [];

  const result = new Promise<LaunchResult>((resolve) => {
    const settle = (): void => {
      if (children.some((c) => !c.done)) return;
      timers.forEach(clearTimeout);
      timers = [];
      const exitCode = !failed ? 0 : failed.signal ? 128 + (os.constants.signals[failed.signal] ?? 0) : failed.code || 1;
      resolve({ exitCode, failed });
    };
    for (let local = 0; local < f.nproc; local++) {
      const rank = f.nodeRank * f.nproc + local;
      // Like torchrun: split the cores between the workers unless the user chose (oversubscribed OpenMP pools crawl).
      const threads = process.env.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(os.availableParallelism() / f.nproc)));
      const env = { ...process.env, OMP_NUM_THREADS: threads, RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(f.nproc), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort) };
      const proc = spawn(process.execPath, [script, ...args], { env, stdio: 'inherit' });
      const child = { rank, proc, done: false };
      children.push(child);
      log(`worker ${rank} of ${world} started (pid ${proc.pid})`);
      proc.on('exit', (code, signal) => {
        child.done = true;
        if ((code !== 0 || signal) && !failed) {
          failed = { rank, code, signal };
          log(`worker ${rank} (pid ${proc.pid}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; the other workers stop (given ${f.grace} s to notice)`);
          timers.push(setTimeout(() => children.filter((c) => !c.done).forEach((c) => c.proc.kill('SIGTERM')), f.grace * 1000));
          timers.push(setTimeout(() => children.filter((c) => !c.done).forEach((c) => c.proc.kill('SIGKILL')), (f.grace + 15) * 1000));
        }
        settle();
      });
    }
  });
  // Ctrl-C reaches every worker from the terminal (same process group): each stops after the same step. A SIGTERM
  // sent to the launcher alone is passed on.
  const onInt = (): void => log('SIGINT: the workers stop after the current step (they received it too)');
  const onTerm = (): void => children.filter((c) => !c.done).forEach((c) => c.proc.kill('SIGTERM'));
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await result;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** `nasctl launch`: starts data-parallel workers on this machine, like torchrun. */
export function launchCommand(): Command {
  return new Command('launch')
    .description('start N data-parallel workers of `train` or `search` on this machine: nasctl launch --nproc 2 -- train --out runs/dp')
    .usage('[options] -- <train|search> [command options]')
    .option('--nproc <n>', 'workers on this machine', positiveInt, 2)
    .option('--nnodes <n>', 'machines in all (run launch on each)', positiveInt, 1)
    .option('--node-rank <k>', 'index of this machine, 0..nnodes-1', nonNegativeInt, 0)
    .option('--master-addr <host>', 'address of node 0 (default 127.0.0.1; required with --nnodes > 1)')
    .option('--master-port <port>', 'port of the store on node 0 (default: a free port with one node, else 29500)', positiveInt)
    .option('--grace <s>', 'after a worker fails, seconds the others get to stop by themselves', positiveInt, 30)
    .argument('<command...>', 'the nasctl command each worker runs')
    .action(async (args: string[], f: LaunchFlags) => {
      const r = await launchWorkers(args, f);
      if (r.failed) log(`failed: worker ${r.failed.rank} was the first to stop (${r.failed.signal ?? `exit code ${r.failed.code}`})`);
      process.exitCode = r.exitCode;
    });
}
