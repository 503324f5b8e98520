// Run directories and results files: exclusive locks, temp files of killed processes, filesystem errors by path.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NasError } from '../../src/util/errors';
import { acquireLock, removeStaleTemps, writeFileAtomic } from '../../src/util/files';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-files-'));
const files = path.resolve(__dirname, '../../dist/util/files.js');

/** A pid that no process has now: a child that has exited. */
const deadPid = (): number =>
  Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);

describe('locks', () => {
  it("refuse a second process by the holder's pid, and are taken over when the holder was killed", async () => {
    const dir = path.join(root, 'run');
    const child = spawn(process.execPath, [
      '-e',
      `require(${JSON.stringify(files)}).acquireLock(${JSON.stringify(dir)}, 'dir', 'test'); console.log('locked'); setInterval(() => {}, 1000);`,
    ]);
    await new Promise<void>((resolve) => child.stdout.on('data', () => resolve()));
    let err: unknown;
    try {
      acquireLock(dir, 'dir', 'second');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NasError);
    expect((err as NasError).code).toBe('ERR_NAS_LOCKED');
    expect((err as NasError).message).toContain(`in use by process ${child.pid}`);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(true); // SIGKILL leaves it behind...
    const release = acquireLock(dir, 'dir', 'after'); // ...and it is taken over
    expect(JSON.parse(fs.readFileSync(path.join(dir, '.lock'), 'utf8')).pid).toBe(process.pid);
    const again = acquireLock(dir, 'dir', 're-entrant');
    again();
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(true);
    release();
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(false);
  });

  it('lock a results file beside it', () => {
    const file = path.join(root, 'search.jsonl');
    const release = acquireLock(file, 'file', 'search');
    expect(fs.existsSync(`${file}.lock`)).toBe(true);
    release();
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
  });
});

describe('temp files and filesystem errors', () => {
  it('removes the temp files of dead processes only', () => {
    const dir = path.join(root, 'temps');
    fs.mkdirSync(dir);
    const dead = path.join(dir, `checkpoint.pt.tmp-${deadPid()}`);
    const mine = path.join(dir, `result.json.tmp-${process.pid}`);
    const other = path.join(dir, 'notes.txt');
    for (const f of [dead, mine, other]) fs.writeFileSync(f, 'x');
    expect(removeStaleTemps(dir)).toEqual([dead]);
    expect([dead, mine, other].map((f) => fs.existsSync(f))).toEqual([false, true, true]);
  });

  it('names the path and the reason, and leaves no temp file when a write fails', () => {
    const dir = path.join(root, 'isdir');
    fs.mkdirSync(path.join(dir, 'result.json'), { recursive: true });
    let err: unknown;
    try {
      writeFileAtomic(path.join(dir, 'result.json'), '{}');
    } catch (e) {
      err = e;
    }
    // A folder where the file should go is never renamed over: refused before any temp file is made.
    expect((err as NasError).code).toBe('ERR_NAS_BAD_OUTPUT');
    expect((err as NasError).message).toMatch(/result\.json: expected a regular file or nothing for the file being written, got a folder/);
    expect(fs.readdirSync(dir)).toEqual(['result.json']);
    const file = path.join(root, 'plain');
    fs.writeFileSync(file, 'x');
    expect(() => writeFileAtomic(path.join(file, 'x.json'), '{}')).toThrow(/not a folder/);
  });
});
