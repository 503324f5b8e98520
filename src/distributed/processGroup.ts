/**
 * Data-parallel workers on LibTorch's c10d: one process per worker, configured like torchrun configures workers
 * (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Rank 0 serves the TCPStore; gradients are summed with
 * ProcessGroupGloo; small messages (evaluation and search results) travel through the store.
 */
import { type NativeProcessGroup, loadAddon } from '../native/binding';
import { NasError, invalidParameter } from '../util/errors';
import { awaitNative } from '../native/errors';
import { PACKAGE_VERSION } from '../util/version';

/** A worker's place in a data-parallel group and how to reach rank 0 (torchrun's RANK, WORLD_SIZE, ..). */
export interface DistOptions {
  rank: number;
  worldSize: number;
  /** Rank on this machine (informational; picks the GPU with --device auto on multi-GPU machines). */
  localRank: number;
  /** Host of rank 0, where the store listens. */
  masterAddr: string;
  masterPort: number;
  /** Rendezvous, collective and message timeout (ms). */
  timeoutMs: number;
  /** A worker whose heartbeat stalls this long is reported dead (ms). */
  deadAfterMs: number;
  /**
   * Rendezvous through this file instead of a TCP store (`$NAS_STORE_FILE`; `nasctl launch` on one machine sets it
   * to a file in a private folder): the workers then open no listening port but Gloo's on 127.0.0.1.
   */
  storeFile?: string;
  /**
   * The job this worker belongs to (`--job-id`, `$NAS_JOB_ID`; `nasctl launch` sets one per launch, and train and
   * search default to the command and the absolute --out path): a worker of another job is refused at rendezvous,
   * before it takes a rank (docs/distributed.md#one-job).
   */
  jobId?: string;
}

/** Rendezvous defaults: torchrun's address and port; seconds to wait for workers; when a silent worker is lost. */
export const DIST_DEFAULTS = { masterAddr: '127.0.0.1', masterPort: 29500, timeoutMs: 300_000, deadAfterMs: 5_000 };

function intFrom(field: string, raw: string | number | undefined, min: number): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw invalidParameter(field, `an integer >= ${min}`, raw);
  return v;
}

/**
 * The worker's settings from flags, falling back to torchrun's environment variables. Returns undefined for a
 * single process (no WORLD_SIZE, or WORLD_SIZE=1 without a rank).
 */
export function distOptions(flags: Partial<DistOptions> = {}, env: NodeJS.ProcessEnv = process.env): DistOptions | undefined {
  const worldSize = flags.worldSize ?? intFrom('WORLD_SIZE', env.WORLD_SIZE, 1);
  if (worldSize === undefined || worldSize === 1) return undefined;
  const rank = flags.rank ?? intFrom('RANK', env.RANK, 0);
  if (rank === undefined)
    throw new NasError(
      'ERR_NAS_BAD_CONFIG',
      `RANK: expected the rank of this worker (0..${worldSize - 1}) with WORLD_SIZE=${worldSize}, got nothing (set RANK or --rank)`,
    );
  if (rank >= worldSize) throw invalidParameter('RANK', `an integer in 0..${worldSize - 1} (WORLD_SIZE=${worldSize})`, rank);
  const port = flags.masterPort ?? intFrom('MASTER_PORT', env.MASTER_PORT, 1) ?? DIST_DEFAULTS.masterPort;
  if (port > 65535) throw invalidParameter('MASTER_PORT', 'a TCP port (1..65535)', port);
  return {
    rank,
    worldSize,
    localRank: flags.localRank ?? intFrom('LOCAL_RANK', env.LOCAL_RANK, 0) ?? rank,
    masterAddr: flags.masterAddr ?? (env.MASTER_ADDR || DIST_DEFAULTS.masterAddr),
    masterPort: port,
    timeoutMs: flags.timeoutMs ?? intFrom('NAS_DIST_TIMEOUT_MS', env.NAS_DIST_TIMEOUT_MS, 1) ?? DIST_DEFAULTS.timeoutMs,
    deadAfterMs: flags.deadAfterMs ?? intFrom('NAS_DIST_DEAD_AFTER_MS', env.NAS_DIST_DEAD_AFTER_MS, 100) ?? DIST_DEFAULTS.deadAfterMs,
    ...((flags.storeFile ?? env.NAS_STORE_FILE) ? { storeFile: flags.storeFile ?? env.NAS_STORE_FILE } : {}),
    ...((flags.jobId ?? env.NAS_JOB_ID) ? { jobId: flags.jobId ?? env.NAS_JOB_ID } : {}),
  };
}

/** One worker's membership in a group of data-parallel workers. */
export class ProcessGroup {
  private seq = 0;
  private closed = false;

  private constructor(
    readonly options: DistOptions,
    readonly native: NativeProcessGroup,
  ) {}

  /** Joins the group (blocks until every worker has joined, up to timeoutMs). */
  static async connect(options: DistOptions): Promise<ProcessGroup> {
    // A build without Gloo rejects here with ERR_NAS_DIST_UNAVAILABLE and the fix.
    const native = new (loadAddon().ProcessGroup)(options);
    await awaitNative(() => native.connect());
    return new ProcessGroup(options, native);
  }

  get rank(): number {
    return this.options.rank;
  }

  get worldSize(): number {
    return this.options.worldSize;
  }

  /** Rank 0 writes checkpoints, metrics and results; the others only compute. */
  get isWriter(): boolean {
    return this.options.rank === 0;
  }

  /** Every worker's `value` in rank order. Every worker must call exchange in the same order. */
  async exchange<T>(label: string, value: T): Promise<T[]> {
    const tag = `${label}/${this.seq++}`;
    const all = await awaitNative(() => this.native.exchange(tag, JSON.stringify(value ?? null)));
    return all.map((s) => JSON.parse(s) as T);
  }

  async barrier(): Promise<void> {
    await awaitNative(() => this.native.barrier());
  }

  /** Leaves the group after a last barrier (rank 0 keeps serving the store until everyone is done). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await awaitNative(() => this.native.close());
  }
}

/** `value` flattened to `path: JSON` pairs (nested objects by dotted path), for comparing settings field by field. */
function flatten(value: unknown, at = '', out: Record<string, string> = {}): Record<string, string> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) if (v !== undefined) flatten(v, at ? `${at}.${k}` : k, out);
  } else {
    out[at] = JSON.stringify(value);
  }
  return out;
}

/**
 * Checks, before any tensor crosses, that every worker runs the same job: each sends its `kind` (train, search) and
 * the settings that must match; a worker whose differ from worker 0's fails on every worker with ERR_NAS_DIST naming
 * the fields (two jobs started on one master port, or a worker started with another --filters, whose first
 * all-reduce would otherwise mix two models or crash on tensors of another size).
 */
export async function agreeOnJob(group: ProcessGroup, kind: string, settings: Record<string, unknown>): Promise<void> {
  // The package and the LibTorch it runs on are part of every job: another version may compute another model.
  const build = { package: PACKAGE_VERSION, libtorch: loadAddon().torchVersion };
  const all = await group.exchange('job', { kind, settings: flatten({ ...settings, build }) });
  const first = all[0];
  for (const [rank, other] of all.entries()) {
    if (rank === 0) continue;
    const fields = [...new Set([...Object.keys(first.settings), ...Object.keys(other.settings)])].filter(
      (k) => first.settings[k] !== other.settings[k],
    );
    if (other.kind !== first.kind) fields.unshift('(command)');
    if (!fields.length) continue;
    const show = (w: { kind: string; settings: Record<string, string> }, k: string): string =>
      k === '(command)' ? w.kind : (w.settings[k] ?? 'unset');
    throw new NasError(
      'ERR_NAS_DIST',
      `worker ${rank} is not running the job worker 0 runs: ${fields
        .slice(0, 6)
        .map((k) => `${k} ${show(other, k)} (worker 0: ${show(first, k)})`)
        .join(
          ', ',
        )}${fields.length > 6 ? `, and ${fields.length - 6} more` : ''}. Two jobs on one --master-port, or workers started with other settings: give every worker the same command, and each job its own port`,
      { rank, fields },
    );
  }
}
