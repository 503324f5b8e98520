/** Files written so that a crash never leaves a half-written one: temp file, fsync, rename. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes `text` to `file` atomically. */
export function writeFileAtomic(file: string, text: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
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
