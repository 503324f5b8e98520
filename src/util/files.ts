/** Files written so that a crash never leaves a half-written one: temp file, fsync, rename. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NasError } from '../native/errors';

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
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new NasError('ERR_NAS_IO', `${p}: cannot use this folder (${code})`, { path: p, code });
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
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new NasError('ERR_NAS_IO', `${p}: cannot create this folder (${code})`, { path: p, code });
    }
  }
}

/** Writes `text` to `file` atomically. */
export function writeFileAtomic(file: string, text: string | Uint8Array): void {
  makeDir(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    if (typeof text === 'string') fs.writeSync(fd, text);
    else fs.writeSync(fd, text, 0, text.length);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Appends one JSON line and flushes it to disk (a metrics line is never half-written or lost on kill). */
export function appendJsonLine(file: string, value: unknown): void {
  const fd = fs.openSync(file, 'a');
  try {
    fs.writeSync(fd, `${JSON.stringify(value)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a JSONL file; a torn last line (from a kill mid-write) is ignored. */
export function readJsonLines<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  const out: T[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      break;
    }
  }
  return out;
}
