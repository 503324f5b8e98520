/**
 * `nasctl launch`: starts N data-parallel workers of one nasctl command on this machine (torchrun's role), with
 * RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set for each. With --nnodes, run it once per machine.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { validateTrainOptions } from '../../train/trainOptions';
import { searchCommand } from './search';
import { TrainFlags, trainCommand, trainOptionsFromFlags } from './train';
import { DIST_DEFAULTS } from '../../distributed/processGroup';
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
 * Parses the workers' command as each worker will and checks its options, once, before any worker starts: a bad
 * flag is one coded error here instead of N failing LibTorch processes.
 */
export async function checkWorkerCommand(args: string[]): Promise<void> {
  const cmd = args[0] === 'train' ? trainCommand() : searchCommand();
  let flags: Record<string, unknown> | undefined;
  const quiet = (): void => undefined;
  cmd.exitOverride().configureOutput({ writeErr: quiet, writeOut: quiet, outputError: quiet });
  cmd.action((f: Record<string, unknown>) => {
    flags = f;
  });
  try {
    await cmd.parseAsync(args.slice(1), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return; // --help: each worker prints it
      throw new NasError('ERR_NAS_BAD_ARG', `${args[0]}: ${err.message.replace(/^error: /, '')} (no worker was started)`);
    }
    throw err;
  }
  if (args[0] === 'train' && flags) validateTrainOptions(trainOptionsFromFlags(flags as unknown as TrainFlags));
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
  await checkWorkerCommand(args);
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

async function runWorkers(args: string[], f: LaunchFlags, at: { masterAddr: string; masterPort: number; storeFile?: string }): Promise<LaunchResult> {
  const { masterAddr, masterPort } = at;
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
      const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: threads, RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(f.nproc), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort) };
      if (at.storeFile) env.NAS_STORE_FILE = at.storeFile;
      else delete env.NAS_STORE_FILE;
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
