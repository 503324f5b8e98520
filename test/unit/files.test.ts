// Run directories and results files: exclusive locks, temp files of killed processes, filesystem errors by path.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NasError } from '../../src/util/errors';
import { acquireLock, objectLine, readJsonFile, readJsonLines, removeStaleTemps, writeFileAtomic } from '../../src/util/files';
import { loadDataset } from '../../src/data/loadDataset';

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

describe('input files', () => {
  const codeOf = (f: () => unknown): NasError => {
    try {
      f();
    } catch (e) {
      return e as NasError;
    }
    throw new Error('expected an error');
  };

  it('refuses a named pipe or a folder where a file is read, by what it is, without opening it (a pipe would block)', () => {
    const fifo = path.join(root, 'sidecar.search.json');
    spawnSync('mkfifo', [fifo]);
    expect(fs.statSync(fifo).isFIFO()).toBe(true);
    const e = codeOf(() => readJsonFile(fifo, 'ERR_NAS_BAD_CONFIG', 'search settings'));
    expect(e.code).toBe('ERR_NAS_IO');
    expect(e.message).toBe(`${fifo}: cannot read the search settings (expected a regular file, got a named pipe)`);
    const rows = path.join(root, 'rows.jsonl');
    spawnSync('mkfifo', [rows]);
    expect(codeOf(() => readJsonLines(rows, (v) => objectLine(v, ['accuracy']))).message).toMatch(/got a named pipe/);
    expect(codeOf(() => readJsonFile(root, 'ERR_NAS_BAD_CONFIG', 'run configuration')).message).toMatch(/got a folder/);
  });

  it('names a loop of symbolic links as such, and gives the install advice only for a data set that is not there', () => {
    const loop = path.join(root, 'loop');
    fs.symlinkSync(loop, loop);
    const e = codeOf(() => readJsonFile(loop, 'ERR_NAS_BAD_CONFIG', 'run configuration'));
    expect(e.message).toMatch(/a loop of symbolic links, ELOOP/);
    const loopDir = path.join(root, 'data-loop');
    fs.symlinkSync(loopDir, loopDir);
    const looped = codeOf(() => loadDataset({ name: 'fashion-mnist', dataDir: loopDir }));
    expect(looped.code).toBe('ERR_NAS_IO');
    expect(looped.message).toMatch(/a loop of symbolic links, ELOOP/);
    expect(looped.message).not.toContain('apt-get');
    const absent = codeOf(() => loadDataset({ name: 'fashion-mnist', dataDir: path.join(root, 'absent') }));
    expect(absent.code).toBe('ERR_NAS_DATASET_MISSING');
    expect(absent.message).toContain('apt-get install -y dataset-fashion-mnist');
  });

  it('reads a results file or a JSON file that starts with a UTF-8 byte order mark, as an architecture list', () => {
    const rows = path.join(root, 'bom.jsonl');
    fs.writeFileSync(rows, '\ufeff{"accuracy":0.5}\n{"accuracy":0.25}\n');
    expect(readJsonLines(rows, (v) => objectLine(v, ['accuracy']))).toEqual([{ accuracy: 0.5 }, { accuracy: 0.25 }]);
    const json = path.join(root, 'bom.json');
    fs.writeFileSync(json, '\ufeff{"a":1}');
    expect(readJsonFile(json, 'ERR_NAS_BAD_CONFIG', 'x')).toEqual({ a: 1 });
  });
});
