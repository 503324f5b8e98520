/** Files written so that a crash never leaves a half-written one: temp file, fsync, rename. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NasError, type NasErrorCode } from './errors';

/**
 * `mkdir -p` that names the path it could not create (ERR_NAS_IO): each missing folder is made in turn. Node's own
 * recursive mkdir spins forever under /proc (issue 11), so it is not used.
 */
export function makeDir(dir: string): void {
  const missing: string[] = [];
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw ioError(err, p, 'use this folder');
    }
    if (st) {
      if (!st.isDirectory()) throw new NasError('ERR_NAS_IO', `${p}: not a folder (needed for ${dir})`, { path: p, code: 'ENOTDIR' });
      break;
    }
    missing.push(p);
    if (path.dirname(p) === p) break;
  }
  for (const p of missing.reverse()) {
    try {
      fs.mkdirSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(err, p, 'create this folder');
    }
  }
}

const IO_WHY: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only filesystem',
  EISDIR: 'it is a folder',
  ENOTDIR: 'a part of the path is not a folder',
  EEXIST: 'it already exists',
  ENOENT: 'no such file or folder',
  EMFILE: 'too many open files',
  ELOOP: 'a loop of symbolic links',
  ENAMETOOLONG: 'the name is too long',
};

/** A filesystem error as ERR_NAS_IO naming the path, what was being done and why (`details.code`: ENOSPC, ...). */
export function ioError(err: unknown, file: string, doing: string): NasError {
  if (err instanceof NasError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
  return new NasError('ERR_NAS_IO', `${file}: cannot ${doing} (${IO_WHY[code] ?? (err as Error).message}, ${code})`, { path: file, code });
}

const KIND_OF = (st: fs.Stats): string =>
  st.isSymbolicLink()
    ? 'a symbolic link'
    : st.isDirectory()
      ? 'a folder'
      : st.isCharacterDevice() || st.isBlockDevice()
        ? 'a device'
        : st.isFIFO()
          ? 'a named pipe'
          : st.isSocket()
            ? 'a socket'
            : 'not a regular file';

/**
 * Refuses to write `what` at `file` unless the path is absent or a regular file that `ours` recognises from its
 * first bytes (when given): a device (`/dev/null`), a folder, a pipe or a symbolic link is never replaced, nor a
 * file of another kind (the run's checkpoint given as a report's --out, say). ERR_NAS_BAD_OUTPUT names the path.
 */
export function checkOutputFile(file: string, what: string, ours?: (head: string) => boolean): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw ioError(err, file, 'check the output path');
  }
  if (!st.isFile()) {
    throw new NasError(
      'ERR_NAS_BAD_OUTPUT',
      `${file}: expected a regular file or nothing for the ${what}, got ${KIND_OF(st)}; refusing to replace it (choose another path)`,
      { path: file },
    );
  }
  if (!ours || st.size === 0) return;
  const head = Buffer.alloc(Math.min(512, st.size));
  try {
    const fd = fs.openSync(file, 'r');
    try {
      fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw ioError(err, file, 'read');
  }
  if (!ours(head.toString('utf8'))) {
    throw new NasError(
      'ERR_NAS_BAD_OUTPUT',
      `${file}: exists and is not a ${what}; refusing to overwrite it (remove it or choose another path)`,
      { path: file },
    );
  }
}

/**
 * Writes `text` to `file` atomically; on failure (a full disk, say) the old file stays and no temp file is left.
 * Only an absent path or a regular file is replaced (checkOutputFile).
 */
export function writeFileAtomic(file: string, text: string | Uint8Array): void {
  checkOutputFile(file, 'file being written');
  makeDir(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      if (typeof text === 'string') fs.writeSync(fd, text);
      else fs.writeSync(fd, text, 0, text.length);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw ioError(err, file, 'write');
  }
}

/**
 * Reads an input file whole. It must be a regular file (after symbolic links): a named pipe, a device or a folder is
 * ERR_NAS_IO naming what it is, never opened (a pipe would block the read forever). Unreadable (permission, a loop of
 * links, ...) is ERR_NAS_IO naming the cause. `missing` (if given) makes the error for a path that does not exist.
 */
export function readInputFile(file: string, doing: string, missing?: () => NasError): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && missing) throw missing();
    throw ioError(err, file, doing);
  }
  if (!st.isFile())
    throw new NasError('ERR_NAS_IO', `${file}: cannot ${doing} (expected a regular file, got ${KIND_OF(st)})`, { path: file });
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw ioError(err, file, doing);
  }
}

/** Text without a leading UTF-8 byte order mark (editors on Windows write one). */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Reads a JSON file; one that cannot be read is ERR_NAS_IO, one that is not JSON is `code` naming the file and
 * `what` it should be (config.json of a run, model.json of a model, ...).
 */
export function readJsonFile(file: string, code: NasErrorCode, what: string): unknown {
  const text = withoutBom(readInputFile(file, `read the ${what}`).toString('utf8'));
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new NasError(code, `${file}: the ${what} is not valid JSON (${(err as Error).message}); the file is damaged`, { path: file });
  }
}

/**
 * writeFileAtomic without blocking the event loop, in 16 MiB writes, stopping between them when `signal` aborts:
 * then the temp file is removed, the old file (if any) stays, and the result is false. Temp files of this path left
 * by a killed process are removed first.
 */
export async function writeFileAtomicAsync(file: string, bytes: Uint8Array, signal?: AbortSignal): Promise<boolean> {
  checkOutputFile(file, 'file being written');
  makeDir(path.dirname(file));
  removeStaleTemps(path.dirname(path.resolve(file)), path.basename(file));
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      for (let at = 0; at < bytes.length; at += 1 << 24) {
        if (signal?.aborted) break;
        await fh.write(bytes, at, Math.min(1 << 24, bytes.length - at));
      }
      if (!signal?.aborted) await fh.sync();
    } finally {
      await fh.close();
    }
    if (signal?.aborted) {
      fs.rmSync(tmp, { force: true });
      return false;
    }
    fs.renameSync(tmp, file);
    return true;
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw ioError(err, file, 'write');
  }
}

/** Appends one JSON line and flushes it to disk (a metrics line is never half-written or lost on kill). */
export function appendJsonLine(file: string, value: unknown): void {
  appendJsonLines(file, [value]);
}

/**
 * Appends JSON lines with one write and one flush: a kill leaves a prefix of them, the last perhaps torn, which the
 * readers repair as they do a torn single line. A race appends a whole round's cut candidates at once.
 */
export function appendJsonLines(file: string, values: readonly unknown[]): void {
  if (values.length === 0) return;
  try {
    const fd = fs.openSync(file, 'a');
    try {
      fs.writeSync(fd, values.map((v) => `${JSON.stringify(v)}\n`).join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw ioError(err, file, 'append to');
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes the `<name>.tmp-<pid>` files in `dir` that a killed process left behind (a SIGKILL while a checkpoint was
 * written, say); with `only`, just those of the file named `only`. A temp file of a process that still runs is kept.
 * Returns the paths removed.
 */
export function removeStaleTemps(dir: string, only?: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = /\.tmp-(\d+)$/.exec(name);
    const pid = m ? Number(m[1]) : 0;
    if (!m || (only !== undefined && name !== `${only}.tmp-${pid}`) || pid === process.pid || alive(pid)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}

const held = new Map<string, number>();
let exitHook = false;

/** Who holds a lock file: its process when that still runs (or runs on another host), else undefined. */
interface LockHolder {
  pid: number;
  host?: string;
  since?: string;
  what?: string;
}

function liveHolder(lock: string): LockHolder | undefined {
  let holder: Partial<LockHolder> = {};
  try {
    holder = JSON.parse(fs.readFileSync(lock, 'utf8'));
  } catch {
    return undefined; // absent, or torn or empty: its writer died between create and write
  }
  const sameHost = !holder.host || holder.host === os.hostname();
  return holder.pid && (!sameHost || alive(holder.pid)) ? (holder as LockHolder) : undefined;
}

/**
 * The process that holds `target`'s lock (acquireLock's `kind`), when it is another live process than this one:
 * e.g. a training job writing the run directory a search is about to read.
 */
export function lockHolder(target: string, kind: 'dir' | 'file'): LockHolder | undefined {
  const lock = kind === 'dir' ? path.resolve(target, '.lock') : `${path.resolve(target)}.lock`;
  if (held.has(lock)) return undefined;
  const holder = liveHolder(lock);
  return holder && !(holder.pid === process.pid && (!holder.host || holder.host === os.hostname())) ? holder : undefined;
}

/**
 * Takes an exclusive lock on `target` for this process: a run directory (the lock is `<dir>/.lock`) or a results
 * file (`<file>.lock`), created exclusively and holding the pid. Another process gets ERR_NAS_LOCKED naming the
 * holder's pid; a lock whose process is gone (killed) is taken over. Re-entrant within a process. Returns the
 * release function (also run at exit).
 */
export function acquireLock(target: string, kind: 'dir' | 'file', what: string): () => void {
  const lock = kind === 'dir' ? path.resolve(target, '.lock') : `${path.resolve(target)}.lock`;
  const count = held.get(lock) ?? 0;
  if (count > 0) {
    held.set(lock, count + 1);
    return () => release(lock);
  }
  makeDir(path.dirname(lock));
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lock, `${JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString(), what })}\n`, {
        flag: 'wx',
      });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw ioError(err, lock, 'create the lock file');
      const holder = liveHolder(lock);
      const sameHost = !holder?.host || holder.host === os.hostname();
      if (holder) {
        throw new NasError(
          'ERR_NAS_LOCKED',
          `${target} is in use by process ${holder.pid}${sameHost ? '' : ` on ${holder.host}`} (${holder.what ?? 'a nasctl job'}, since ${holder.since ?? '?'}); ` +
            `wait for it to finish or stop it (a lock left by a killed process is taken over; ${lock})`,
          { path: target, pid: holder.pid, host: holder.host },
        );
      }
      fs.rmSync(lock, { force: true });
    }
  }
  held.set(lock, 1);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const l of held.keys()) fs.rmSync(l, { force: true });
    });
  }
  return () => release(lock);
}

function release(lock: string): void {
  const count = held.get(lock) ?? 0;
  if (count > 1) {
    held.set(lock, count - 1);
    return;
  }
  if (count === 1) {
    held.delete(lock);
    fs.rmSync(lock, { force: true });
  }
}

/**
 * Checks one parsed line of a JSON-lines file and returns it typed, or returns a string saying what is wrong with it
 * (the reader adds file:line).
 */
export type LineCheck<T> = (value: unknown) => T | string;

/** What {@link readJsonLines} found: the lines, and the byte length of the intact part (before a torn last line). */
export interface JsonLines<T> {
  rows: T[];
  /** Bytes up to and including the last newline: a torn last line starts here (equal to the size when none). */
  intactBytes: number;
  /** The file ends with a line cut by a kill mid-write (no newline, and not a valid line). */
  torn: boolean;
}

/**
 * The one strict reader of every results file (search.jsonl, retrain.jsonl, metrics.jsonl, ...). Every line must
 * be JSON that `check` accepts; anything else is ERR_NAS_BAD_RESULTS naming file:line and what is wrong. The only
 * exception is a torn last line: the file does not end with a newline and its last line is not valid (a write cut
 * by a kill), which is left out (see {@link repairTornLine}). Blank lines are skipped. A missing file has no lines.
 */
export function readJsonLinesStrict<T>(file: string, check: LineCheck<T>): JsonLines<T> {
  let text: string;
  const absent = new NasError('ERR_NAS_IO', `${file}: absent`);
  try {
    text = readInputFile(file, 'read', () => absent).toString('utf8');
  } catch (err) {
    if (err === absent) return { rows: [], intactBytes: 0, torn: false };
    throw err;
  }
  const lines = text.split('\n');
  lines[0] = withoutBom(lines[0]); // a byte order mark before the first line, as an architecture list accepts
  const last = lines.length - 1; // the segment after the last newline ('' when the file ends with one)
  const rows: T[] = [];
  let torn = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trim()) continue;
    let problem: string;
    try {
      const value = JSON.parse(line) as unknown;
      const r = check(value);
      if (typeof r !== 'string') {
        rows.push(r);
        continue;
      }
      problem = r;
    } catch (err) {
      problem = err instanceof NasError ? err.message : 'not a line of JSON';
    }
    if (i === last && line.startsWith('{')) {
      torn = true; // a line of ours cut by a kill mid-write: no newline after it
      break;
    }
    throw new NasError(
      'ERR_NAS_BAD_RESULTS',
      `${file}:${i + 1}: ${problem}; the file is damaged or not of this kind ` +
        '(only a torn last line, from a killed run, is repaired; fix or remove this line)',
      { path: file, line: i + 1 },
    );
  }
  const intactBytes = torn ? Buffer.byteLength(text) - Buffer.byteLength(lines[last]) : Buffer.byteLength(text);
  return { rows, intactBytes, torn };
}

/** The rows of {@link readJsonLinesStrict}. */
export function readJsonLines<T>(file: string, check: LineCheck<T>): T[] {
  return readJsonLinesStrict(file, check).rows;
}

/**
 * Cuts a torn last line (a write cut by a kill) off a JSON-lines file that is about to be appended to, so that the
 * next line starts on a line of its own. Only the torn bytes are removed; nothing else is rewritten.
 */
export function repairTornLine<T>(file: string, read: JsonLines<T>): void {
  if (!read.torn) return;
  try {
    fs.truncateSync(file, read.intactBytes);
  } catch (err) {
    throw ioError(err, file, 'cut the torn last line off');
  }
}

/**
 * Line checks: a JSON object whose `numbers` are finite numbers, `strings` strings and `nullable` finite numbers or
 * null (JSON's form of a NaN loss); returns the object or what is wrong.
 */
export function objectLine(
  value: unknown,
  numbers: readonly string[],
  strings: readonly string[] = [],
  nullable: readonly string[] = [],
): Record<string, unknown> | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'expected a JSON object';
  const o = value as Record<string, unknown>;
  const shown = (k: string): string => JSON.stringify(o[k]) ?? 'nothing';
  for (const k of numbers) {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) return `"${k}": expected a finite number, got ${shown(k)}`;
  }
  for (const k of nullable) {
    if (o[k] !== null && (typeof o[k] !== 'number' || !Number.isFinite(o[k]))) return `"${k}": expected a number or null, got ${shown(k)}`;
  }
  for (const k of strings) {
    if (typeof o[k] !== 'string') return `"${k}": expected a string, got ${shown(k)}`;
  }
  return o;
}
