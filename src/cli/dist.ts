/** Data-parallel flags shared by `nasctl train` and `nasctl search` (torchrun's environment variables work too). */
import type { Command } from 'commander';
import { DIST_DEFAULTS, type DistOptions, ProcessGroup, distOptions } from '../distributed/processGroup';
import { nonNegativeInt, positiveInt } from './parse';

/** The data-parallel flags as commander parses them (undefined: from the environment, as torchrun sets it). */
export interface DistFlags {
  rank?: number;
  worldSize?: number;
  localRank?: number;
  masterAddr?: string;
  masterPort?: number;
  distTimeout?: number;
  jobId?: string;
}

/** Adds the data-parallel flags (--world-size, --rank, --local-rank, --master-addr, --master-port, --dist-timeout). */
export function addDistOptions(cmd: Command): Command {
  return cmd
    .option('--world-size <n>', 'data-parallel workers in all (default: $WORLD_SIZE, else 1)', positiveInt)
    .option('--rank <r>', "this worker's rank, 0..world-size-1 (default: $RANK)", nonNegativeInt)
    .option('--local-rank <r>', "this worker's rank on its machine (default: $LOCAL_RANK)", nonNegativeInt)
    .option('--master-addr <host>', 'host of rank 0 (default: $MASTER_ADDR, else 127.0.0.1)')
    .option('--master-port <port>', "port of rank 0's store (default: $MASTER_PORT, else 29500)", positiveInt)
    .option(
      '--dist-timeout <s>',
      `seconds to wait for other workers (rendezvous, collectives) before failing (default: ${DIST_DEFAULTS.timeoutMs / 1000})`,
      positiveInt,
    )
    .option(
      '--job-id <id>',
      'the job the workers share; a worker of another job is refused (default: $NAS_JOB_ID, else the command and --out)',
    );
}

/** The worker's settings, or undefined for a single process; `jobId`: the job id when neither flag nor environment gives one. */
export function distFromFlags(f: DistFlags, jobId?: string): DistOptions | undefined {
  const o = distOptions({
    rank: f.rank,
    worldSize: f.worldSize,
    localRank: f.localRank,
    masterAddr: f.masterAddr,
    masterPort: f.masterPort,
    timeoutMs: f.distTimeout === undefined ? undefined : f.distTimeout * 1000,
    jobId: f.jobId,
  });
  return o && { ...o, jobId: o.jobId ?? jobId };
}

/**
 * Runs `job` as a worker of the group the flags or the environment describe (alone when they describe none), of the
 * job `jobId` unless --job-id or $NAS_JOB_ID names another. The
 * group is closed with a last barrier after a success; after a failure this process leaves at once and the other
 * workers see it stop (ERR_NAS_WORKER_LOST naming it).
 */
export async function withGroup<T>(f: DistFlags, jobId: string, job: (group: ProcessGroup | undefined) => Promise<T>): Promise<T> {
  const o = distFromFlags(f, jobId);
  if (!o) return job(undefined);
  const group = await ProcessGroup.connect(o);
  const result = await job(group);
  await group.close();
  return result;
}
