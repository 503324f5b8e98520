// The nasctl command line, run as a user runs it (compiled by `npm test` before vitest starts).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Ran, runProcess, NASCTL } from '../helpers';
import { Supernet } from '../../src/model/Supernet';
import { loadModel, normaliseImages } from '../../src/retrain/exportModel';
import { loadDataset } from '../../src/data/loadDataset';

const nasctl = (...args: string[]): Promise<Ran> => runProcess([NASCTL, ...args]);

// A small, fast run on synthetic data.
const TRAIN = [
  'train',
  '--dataset',
  'synthetic',
  '--filters',
  '4',
  '--stacks',
  '2',
  '--cells-per-stack',
  '1',
  '--batch-size',
  '32',
  '--ghost-batch',
  '16',
  '--threads',
  '1',
  '--eval-archs',
  '2',
  '--eval-limit',
  '64',
  '--seed',
  '5',
];

describe('nasctl arch', () => {
  it("prints docs/model.md's counts as JSON, checked against the native model", async () => {
    const r = await nasctl('arch', '--all-on', '--filters', '16', '--dataset', 'cifar10', '--json', '--verify');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ arch: 'all-on', params: 1_272_314 });
    const fm = await nasctl('arch', '--all-on', '--filters', '8', '--dataset', 'fashion-mnist', '--json');
    expect(JSON.parse(fm.stdout).params).toBe(361_074);
  });

  it('canonicalises, samples with a seed and explains a bad architecture', async () => {
    const one = await nasctl('arch', '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool', '--json', '--verify');
    expect(JSON.parse(one.stdout).arch).toBe('01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool');
    const s1 = await nasctl('arch', '--sample', '3', '--seed', '4', '--json');
    const s2 = await nasctl('arch', '--sample', '3', '--seed', '4', '--json');
    expect(s1.stdout.trim().split('\n')).toHaveLength(3);
    expect(s1.stdout).toBe(s2.stdout);
    const bad = await nasctl('arch', '01:sep3/2:identity/013:sep9/24:conv7x1');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown operation 'sep9'");
    expect(bad.stderr).toContain('ERR_NAS_BAD_ARCH');
    const badFlag = await nasctl('train', '--filters', 'many');
    expect(badFlag.status).toBe(2);
    expect(badFlag.stderr).toContain("option '--filters <F>' argument 'many' is invalid");
    // With --json the option parser's errors are JSON with a code too, and nothing goes to stderr.
    const jsonFlag = await nasctl('train', '--filters', 'many', '--json');
    expect(jsonFlag.status).toBe(2);
    expect(JSON.parse(jsonFlag.stdout).error).toMatchObject({
      code: 'ERR_NAS_BAD_ARG',
      message: expect.stringContaining("'--filters <F>' argument 'many'"),
    });
    expect(jsonFlag.stderr).toBe('');
  });

  it('parses architectures with one parser in every command: 3 operations are refused alike, all-on is accepted alike', async () => {
    const three = '01:sep3+sep5+maxpool/2:identity/013:sep5/24:avgpool';
    const a = await nasctl('arch', three, '--json');
    const r = await nasctl('retrain', three, '--dataset', 'synthetic', '--epochs', '1', '--json');
    expect([a.status, r.status]).toEqual([2, 2]);
    expect(JSON.parse(r.stdout).error).toEqual(JSON.parse(a.stdout).error);
    expect(JSON.parse(a.stdout).error.message).toContain('block 0 selects 3 operations, at most 2 allowed');
    const allOn = await nasctl('arch', 'all-on', '--filters', '16', '--json');
    expect(JSON.parse(allOn.stdout)).toMatchObject({ arch: 'all-on', params: 1_272_314 });
  });
});

describe('nasctl train', () => {
  it('writes a run directory and JSON lines, and learns above chance', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-run-'));
    const r = await nasctl(...TRAIN, '--steps', '90', '--eval-every', '45', '--filters', '8', '--lr', '0.1', '--out', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ epoch: expect.any(Number), step: 45, loss: expect.any(Number), valAccuracy: expect.any(Number) });
    const result = lines[lines.length - 1].result;
    expect(result.steps).toBe(90);
    // 10 classes: chance is 0.1.
    expect(result.valAccuracy).toBeGreaterThan(0.3);
    for (const f of ['config.json', 'checkpoint.pt', 'metrics.jsonl', 'result.json'])
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    // A second run into the same directory would overwrite it: refused unless --resume.
    const again = await nasctl(...TRAIN, '--steps', '60', '--out', out);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('--resume');
  });

  it('reports a missing dataset by code', async () => {
    const r = await nasctl(
      'train',
      '--dataset',
      'fashion-mnist',
      '--data-dir',
      '/nonexistent',
      '--out',
      fs.mkdtempSync(path.join(os.tmpdir(), 'nas-')),
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('ERR_NAS_DATASET_MISSING');
  });

  it('resumes a killed run to the same result as an uninterrupted one', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-resume-'));
    const args = [...TRAIN, '--steps', '40', '--checkpoint-every', '5', '--eval-every', '10'];
    const ref = await nasctl(...args, '--out', path.join(root, 'ref'));
    expect(ref.status, ref.stderr).toBe(0);

    const out = path.join(root, 'killed');
    const child = spawn(process.execPath, [NASCTL, ...args, '--out', out], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    // Kill hard (no chance to clean up) once a mid-run checkpoint exists.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (fs.existsSync(path.join(out, 'checkpoint.pt'))) {
          child.kill('SIGKILL');
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    await exited;
    expect(fs.existsSync(path.join(out, 'result.json'))).toBe(false); // it really was killed mid-run
    const resumed = await nasctl(...args, '--out', out, '--resume');
    expect(resumed.status, resumed.stderr).toBe(0);

    const strip = (file: string): unknown[] =>
      fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => {
          const { imagesPerSec: _drop, ...rest } = JSON.parse(l);
          return rest;
        });
    expect(strip(path.join(out, 'metrics.jsonl'))).toEqual(strip(path.join(root, 'ref', 'metrics.jsonl')));
    const a = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8'));
    const b = JSON.parse(fs.readFileSync(path.join(root, 'ref', 'result.json'), 'utf8'));
    expect(a.perArch).toEqual(b.perArch);
    expect(a.valLoss).toBe(b.valLoss);
  }, 300_000); // two and a half runs: 117 s were measured with the other core busy
});

describe('output folders', () => {
  it("lets one process at a time write a run directory: a second train into it is refused with the holder's pid", async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-lock-')), 'run');
    const first = spawn(process.execPath, [NASCTL, ...TRAIN, '--steps', '100000', '--out', out]);
    const exited = new Promise((resolve) => first.on('exit', resolve));
    for (let i = 0; i < 300 && !fs.existsSync(path.join(out, 'config.json')); i++) await new Promise((r) => setTimeout(r, 100));
    const second = await nasctl(...TRAIN, '--steps', '100000', '--out', out, '--resume', '--json');
    first.kill('SIGKILL');
    await exited;
    expect(second.status).toBe(1);
    expect(JSON.parse(second.stdout).error).toMatchObject({
      code: 'ERR_NAS_LOCKED',
      message: expect.stringContaining(`in use by process ${first.pid}`),
    });
  });

  it("refuses an output folder it cannot create, at once and naming it (Node's recursive mkdir spins under /proc)", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-out-'));
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, '');
    for (const [out, message] of [
      ['/proc/nas-test/run', '/proc/nas-test: cannot create this folder'],
      [path.join(file, 'run'), `${file}: not a folder`],
    ]) {
      for (const args of [
        ['train', '--dataset', 'synthetic', '--steps', '2', '--filters', '4'],
        ['retrain', '0:sep3/1:identity/2:maxpool/3:avgpool', '--dataset', 'synthetic', '--epochs', '1'],
      ]) {
        const r = await runProcess([NASCTL, ...args, '--out', out], { timeoutMs: 60_000 });
        expect(r.signal, `${args[0]} --out ${out}`).toBeNull(); // not killed by the timeout
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(message);
        expect(r.stderr).toContain('ERR_NAS_IO');
      }
    }
  });
});

/**
 * Starts `nasctl train args` and resolves `afterMs` after it printed "training on" (a native job is running), with the
 * exit to await and its stderr.
 */
async function trainingStarted(args: string[], afterMs: number) {
  const child = spawn(process.execPath, [NASCTL, 'train', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const run = {
    child,
    stderr: '',
    // 'close', not 'exit': stderr has then been read to its end.
    exited: new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    ),
  };
  await new Promise<void>((resolve) => {
    child.stderr!.on('data', (d: Buffer) => {
      run.stderr += d.toString();
      if (run.stderr.includes('training on')) setTimeout(resolve, afterMs);
    });
  });
  return run;
}

describe('signals', () => {
  it('quits at once with 130 on a second Ctrl-C while the native job runs (no segfault)', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-sig-')), 'run');
    // Steps of about a second (F=16, batch 768), so that the second signal, 100 ms after the first, lands while the
    // step the first one waits for runs natively. With steps of a few hundred ms (batch 128) the first stop could be
    // over by then, and the second signal met a process already tearing down (killed by SIGINT, seen in CI runs).
    const run = await trainingStarted(
      ['--dataset', 'synthetic', '--filters', '16', '--batch-size', '768', '--steps', '2000', '--threads', '1', '--out', out],
      3000,
    );
    run.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 100));
    run.child.kill('SIGINT');
    const { code, signal } = await run.exited;
    expect(signal).toBeNull(); // 139 would be a segfault
    expect(code).toBe(130);
    expect(run.stderr).toContain('SIGINT again: quitting');
  });
});

describe('a closed terminal (SIGHUP)', () => {
  it('stops train like Ctrl-C: a checkpoint of the step it reached, the lock freed, and --resume continues', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-hup-')), 'run');
    const args = [
      '--dataset',
      'synthetic',
      '--filters',
      '4',
      '--steps',
      '60',
      '--checkpoint-every',
      '1000',
      '--eval-every',
      '1000',
      '--threads',
      '1',
      '--out',
      out,
    ];
    const run = await trainingStarted(args, 1000);
    run.child.kill('SIGHUP');
    const { code, signal } = await run.exited;
    expect(signal).toBeNull(); // SIGHUP's default action would kill it
    expect(code).toBe(130);
    expect(run.stderr).toContain('SIGHUP: stopping after the current step');
    // A checkpoint of the step it stopped at (none was due: checkpoints and evaluations every 1,000 steps), and no
    // lock left behind.
    const meta = (await Supernet.readCheckpointMeta(path.join(out, 'checkpoint.pt'))) as { step: number };
    expect(meta.step).toBeGreaterThan(0);
    expect(meta.step).toBeLessThan(60);
    expect(fs.existsSync(path.join(out, '.lock'))).toBe(false);
    const resumed = await nasctl('train', ...args, '--resume');
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8')).steps).toBe(60);
  }, 180_000);
});

describe('nasctl train --resume', () => {
  it('refuses flags that contradict the saved run by name, and accepts runtime ones', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-resume-')), 'run');
    const first = await nasctl('train', '--dataset', 'synthetic', '--filters', '4', '--steps', '3', '--threads', '1', '--out', out);
    expect(first.status, first.stderr).toBe(0);
    for (const [flag, value, expected] of [
      ['--filters', '8', '4'],
      ['--seed', '3', '1'],
      ['--lr', '0.05', '0.1'],
      ['--dataset', 'fashion-mnist', '"synthetic"'],
    ]) {
      const r = await nasctl('train', '--out', out, '--resume', flag, value);
      expect(r.status, flag).toBe(2);
      expect(r.stderr).toContain(`${flag}: expected ${expected} (what the run in ${out} was started with`);
    }
    const ok = await nasctl('train', '--out', out, '--resume', '--threads', '2', '--filters', '4');
    expect(ok.status, ok.stderr).toBe(0);
  });
});

describe('learning rates that cannot train', () => {
  it('refuses --lr 1e300 before writing anything, and stops a run whose loss becomes NaN with a coded error', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-lr-'));
    const huge = await nasctl(
      'train',
      '--dataset',
      'synthetic',
      '--filters',
      '4',
      '--steps',
      '5',
      '--threads',
      '1',
      '--lr',
      '1e300',
      '--out',
      path.join(root, 'a'),
    );
    expect(huge.status).toBe(2);
    expect(huge.stderr).toContain('lr: expected a positive number (at most 3.4e38, float32), got 1e+300 [ERR_NAS_BAD_CONFIG]');
    expect(fs.existsSync(path.join(root, 'a'))).toBe(false);
    const nan = await nasctl(
      'train',
      '--dataset',
      'synthetic',
      '--filters',
      '4',
      '--steps',
      '30',
      '--threads',
      '1',
      '--lr',
      '1e10',
      '--out',
      path.join(root, 'b'),
    );
    expect(nan.status).toBe(1);
    expect(nan.stderr).toMatch(/the training loss became (NaN|Infinity|-Infinity) at step \d+ .*\[ERR_NAS_DIVERGED\]/);
    expect(fs.existsSync(path.join(root, 'b', 'result.json'))).toBe(false);
  });

  it('points at the bad character in a window, and names a non-ASCII one by code point', async () => {
    const long = await nasctl('arch', `0:sep3/1:identity/2:maxpool/${'x'.repeat(100_000)}`);
    expect(long.status).toBe(2);
    expect(long.stderr.length).toBeLessThan(1000);
    const accent = await nasctl('arch', '0:sep3/1:identity/é2:maxpool/3:avgpool');
    expect(accent.stderr).toContain("U+00E9 ('é') is not an input digit");
  });
});

/** Runs nasctl with stdout read until `lines` lines arrived, then closed (as `| head -n lines` does). */
function readThenClose(
  args: string[],
  lines: number,
): Promise<{ head: string[]; status: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [NASCTL, ...args]);
    let out = '';
    let err = '';
    let head: string[] = [];
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const got = out.split('\n');
      if (got.length > lines && !head.length) {
        head = got.slice(0, lines);
        child.stdout.destroy();
      }
    });
    child.on('close', (status, signal) => resolve({ head, status, signal, stderr: err }));
  });
}

describe('stdout closed by the reader', () => {
  it('ends `arch --sample 10000000 | head -3` at once and quietly: the samples are streamed, not built first', async () => {
    const r = await readThenClose(['arch', '--sample', '10000000', '--seed', '4', '--json'], 3);
    expect(r.head.map((l) => JSON.parse(l).arch)).toHaveLength(3);
    expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    // The stream is the same sequence as a short listing of the same seed.
    const short = await nasctl('arch', '--sample', '3', '--seed', '4', '--json');
    expect(short.stdout.trim().split('\n')).toEqual(r.head);
  }, 60_000);

  it('ends `train --json | head -1` quietly while training runs, and frees the run directory', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-epipe-'));
    const r = await readThenClose([...TRAIN, '--steps', '100000', '--json', '--out', out], 1);
    expect(JSON.parse(r.head[0])).toHaveProperty('step');
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    expect(r.stderr).not.toContain('EPIPE');
    expect(fs.existsSync(path.join(out, '.lock'))).toBe(false);
  }, 120_000);
});

describe('run directories record what the run used', () => {
  it("a --dataset synthetic run records its own image size, training set and evaluation interval, not the preset's", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-config-'));
    const r = await nasctl(...TRAIN, '--steps', '2', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    // synthetic: 1200 images of 16x16x1: 200 test, 1000 for training of which 166 are held out for validation.
    expect(config.dataset).toEqual({ name: 'synthetic' });
    expect(config.net).toMatchObject({ inChannels: 1, imageSize: 16, classes: 10 });
    expect(config.evalEvery).toBe(Math.floor(834 / 32)); // an epoch at batch 32 (the preset's 47 was for its own data)
    expect(config.evalLimit).toBe(64);
  }, 60_000);

  it('names a damaged config.json when resuming, with a code', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-config-'));
    expect((await nasctl(...TRAIN, '--steps', '2', '--out', out)).status).toBe(0);
    fs.writeFileSync(path.join(out, 'config.json'), '{"dataset": ');
    const r = await nasctl(...TRAIN, '--steps', '4', '--out', out, '--resume');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${path.join(out, 'config.json')}: the run configuration is not valid JSON`);
    expect(r.stderr).toContain('[ERR_NAS_BAD_CONFIG]');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // Valid JSON of another shape: named by file and field (it was "Cannot read properties of undefined").
    for (const [text, field] of [
      ['{}', 'net: expected an object, got null'],
      ['[]', '(the whole file): expected a run configuration'],
      ['{"net": {}, "dataset": 5, "learningRate": {}, "dropout": {}}', 'dataset: expected an object, got 5'],
    ]) {
      fs.writeFileSync(path.join(out, 'config.json'), text);
      const bad = await nasctl(...TRAIN, '--steps', '4', '--out', out, '--resume');
      expect(bad.status, text).toBe(2);
      expect(bad.stderr, text).toContain(`${path.join(out, 'config.json')}: ${field}`);
      expect(bad.stderr, text).toContain('[ERR_NAS_BAD_CONFIG]');
      expect(bad.stderr, text).not.toMatch(/\n\s+at /);
    }
  }, 60_000);
});

describe('too little address space', () => {
  const underLimit = (kib: number, args: string[], out: string) =>
    runProcess(
      ['-c', `ulimit -v ${kib}; exec "${process.execPath}" "${NASCTL}" ${TRAIN.join(' ')} ${args.join(' ')} --steps 2 --out "${out}"`],
      {
        command: 'bash',
      },
    );

  // 1,500,000 KiB: LibTorch loads, then hung in its thread pool, aborted or crashed (SIGSEGV) at 1.5 to 1.8 million
  // KiB before the check; 1,000,000: it does not load. Either way a coded error naming the limit and what is needed,
  // before the run takes a lock or makes its folder.
  it.each([
    [1_000_000, 977],
    [1_500_000, 1465],
    [1_750_000, 1709],
  ])(
    'refuses ulimit -v %d with ERR_NAS_OUT_OF_MEMORY naming the limit (%d MiB) and the need, not a crash',
    async (kib, mib) => {
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-ulimit-')), 'run');
      const r = await underLimit(kib, ['--threads', '2'], out);
      expect(r.signal).toBeNull();
      expect(r.status).toBe(1);
      // Checked before LibTorch loads, for the least any run needs (one thread).
      expect(r.stderr).toContain(
        `this process's address-space limit (ulimit -v) is ${mib} MiB; LibTorch with 1 thread needs at least 1777 MiB (about 1.6 GiB to load, 140 MiB more per thread): raise the limit`,
      );
      expect(r.stderr).toContain('[ERR_NAS_OUT_OF_MEMORY]');
      expect(r.stderr).not.toContain('scripts/setup');
      expect(fs.existsSync(out)).toBe(false);
    },
    60_000,
  );

  it('runs at the measured need: 1.82 million KiB with one thread', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nas-ulimit-')), 'run');
    const r = await underLimit(1_820_000, ['--threads', '1'], out);
    expect(r.status, r.stderr).toBe(0);
    const refused = await underLimit(1_820_000, ['--threads', '2'], `${out}2`);
    expect(refused.stderr).toMatch(/LibTorch with 2 threads needs at least 1914 MiB .*or use fewer --threads/);
  }, 60_000);
});

describe('nasctl predict', () => {
  /** Runs predict in-process (for its peak memory): the JSON lines and the process's maxRSS in MB afterwards. */
  const predict = (model: string, limit: number): Promise<Ran> =>
    runProcess([
      '-e',
      `const { main } = require(${JSON.stringify(NASCTL)});
      main(['node', 'nasctl', 'predict', '--model', ${JSON.stringify(model)}, '--limit', '${limit}', '--json'])
        .then(() => process.stderr.write('maxRSS ' + process.resourceUsage().maxRSS / 1024 + '\\n'));`,
    ]);

  it('classifies in batches: the answers of one big forward, and memory flat in --limit', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-predict-'));
    const arch = '01:sep3+maxpool/2:identity/013:sep5/24:conv7x1+avgpool';
    const r = await nasctl(
      'retrain',
      arch,
      '--dataset',
      'fashion-mnist',
      '--filters',
      '8',
      '--epochs',
      '1',
      '--train-limit',
      '128',
      '--batch-size',
      '64',
      '--runs',
      '1',
      '--threads',
      '1',
      '--export',
      '--out',
      out,
    );
    expect(r.status, r.stderr).toBe(0);
    const model = path.join(out, 'models', '0');
    const small = await predict(model, 300);
    const big = await predict(model, 3000);
    for (const p of [small, big]) expect(p.status, p.stderr).toBe(0);
    const rows = big.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(3000);
    expect(rows.map((x) => x.index)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    // The first 300 answers equal those of one forward over all 300 images (BN on running statistics).
    const test = loadDataset({ name: 'fashion-mnist' }).test;
    const { model: m, info } = loadModel(model, { threads: 1 });
    const probs = m.predict(
      normaliseImages(test.images, { count: 300, size: test.height, channels: test.channels, mean: info.mean, std: info.std }),
      300,
    );
    m.dispose();
    for (let i = 0; i < 300; i++) {
      const p = Array.from(probs.subarray(i * 10, i * 10 + 10));
      expect(rows[i].predicted).toBe(p.indexOf(Math.max(...p)));
      expect(rows[i].probability).toBeCloseTo(p[rows[i].predicted], 5);
    }
    // One forward over 3000 images would hold ~1.3 GB of activations at F = 8 (the issue measured 4.3 GB for 10,000).
    const rss = (p: Ran): number => Number(/maxRSS ([\d.]+)/.exec(p.stderr)![1]);
    expect(rss(big) - rss(small)).toBeLessThan(200);
  }, 180_000);
});
