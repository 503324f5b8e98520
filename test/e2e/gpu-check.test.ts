// The prepared GPU run's dry run on the CPU (scripts/gpu-check.sh with GPU_CHECK_DRY=1): every stage with tiny sizes,
// the correlation stage stopped mid-study as a lease would stop it, and a second "window" that continues the study
// from the archive the first one left, in another folder.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FASHION_MNIST_DIR } from '../../src/data/loadDataset';
import { requiredUnderCi } from '../helpers';

const root = path.resolve(__dirname, '../..');
const FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
const haveData = requiredUnderCi(
  FILES.every((f) => fs.existsSync(path.join(FASHION_MNIST_DIR, `${f}.gz`))),
  `Fashion-MNIST (${FASHION_MNIST_DIR})`,
);

/** Runs the script; `watch.file` is polled and `watch.act` called once it holds a line. Resolves with the exit code. */
function gpuCheck(env: Record<string, string>, watch?: { file: string; act: () => void }): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(root, 'scripts/gpu-check.sh')], {
      cwd: root,
      env: { ...process.env, GPU_CHECK_DRY: '1', ...env },
      stdio: 'ignore',
    });
    const timer =
      watch &&
      setInterval(() => {
        if (fs.existsSync(watch.file) && fs.readFileSync(watch.file, 'utf8').includes('\n')) {
          clearInterval(timer);
          watch.act();
        }
      }, 100);
    child.on('error', reject);
    child.on('exit', (code) => {
      if (timer) clearInterval(timer);
      resolve(code ?? -1);
    });
  });
}

/** Sends SIGINT to the `nasctl study correlation` process that writes into `study` (as `timeout -s INT` would). */
function interruptStudy(study: string): void {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes('nasctl.js') && cmd.includes('correlation') && cmd.includes(study)) process.kill(Number(pid), 'SIGINT');
  }
}

const stageLines = (out: string): Record<string, string> =>
  Object.fromEntries(
    fs
      .readFileSync(path.join(out, 'stages.txt'), 'utf8')
      .split('\n')
      .filter((l) => / rc=/.test(l))
      .map((l) => [l.split(' ')[0], l]),
  );

describe.skipIf(!haveData)('scripts/gpu-check.sh, dry run on the CPU', () => {
  it('runs every stage, leaves a stopped study in an archive, and a second window finishes it from there', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-gpucheck-'));
    const pack = path.join(tmp, 'pack');
    fs.mkdirSync(path.join(pack, 'fashion-mnist'), { recursive: true });
    for (const f of FILES)
      execFileSync('bash', ['-c', `gzip -dc '${FASHION_MNIST_DIR}/${f}.gz' | xz -0 -T2 > '${pack}/fashion-mnist/${f}.xz'`]);
    const common = { GPU_CHECK_PACK: pack, GPU_CHECK_DATA: path.join(tmp, 'data') };

    // Window 1: every stage; the study is interrupted once its first stand-alone run is logged.
    const out1 = path.join(tmp, 'out1');
    const study1 = path.join(tmp, 'study1');
    expect(
      await gpuCheck(
        { ...common, OUT: out1, GPU_CHECK_STUDY: study1 },
        { file: path.join(study1, 'retrain', 'retrain.jsonl'), act: () => interruptStudy(study1) },
      ),
    ).toBe(0);
    const s1 = stageLines(out1);
    for (const name of ['gpu', 'build', 'addon', 'tests', 'bench', 'jobs'])
      expect(s1[name], `${name}: ${fs.readFileSync(path.join(out1, 'log.txt'), 'utf8').slice(-3000)}`).toMatch(/ rc=0 /);
    expect(s1.correlation).toMatch(/ rc=130 /); // nasctl's exit status when stopped by SIGINT, its state saved
    expect(fs.readdirSync(out1).sort()).toEqual(['bench-rows.jsonl', 'bench.json', 'jobs.jsonl', 'log.txt', 'stages.txt', 'study.tar.xz']);
    expect(
      fs
        .readFileSync(path.join(out1, 'jobs.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).jobs),
    ).toEqual([1, 2]);
    const listing = execFileSync('tar', ['-tJf', path.join(out1, 'study.tar.xz')], { encoding: 'utf8' });
    expect(listing).toContain('./search.jsonl');
    expect(listing).toContain('./retrain/retrain.jsonl');
    expect(listing).not.toMatch(/checkpoint\.pt|retrain\/checkpoints\/.|\.lock/); // scoring done: no checkpoint travels
    const firstRuns = fs
      .readFileSync(path.join(study1, 'retrain', 'retrain.jsonl'), 'utf8')
      .trim()
      .split('\n');

    // Window 2: the study only, from the archive, in another folder.
    fs.copyFileSync(path.join(out1, 'study.tar.xz'), path.join(pack, 'study.tar.xz'));
    const out2 = path.join(tmp, 'out2');
    const study2 = path.join(tmp, 'study2');
    expect(await gpuCheck({ ...common, OUT: out2, GPU_CHECK_STUDY: study2, GPU_CHECK_STAGES: 'correlation' })).toBe(0);
    const stages2 = fs.readFileSync(path.join(out2, 'stages.txt'), 'utf8');
    expect(stages2, fs.readFileSync(path.join(out2, 'log.txt'), 'utf8').slice(-3000)).toMatch(/correlation rc=0 /);
    expect(stages2).toContain('continuing the study');
    const runs = fs
      .readFileSync(path.join(study2, 'retrain', 'retrain.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(runs.slice(0, firstRuns.length)).toEqual(firstRuns); // the first window's runs kept, not retrained
    expect(runs).toHaveLength(4);
    const result = JSON.parse(fs.readFileSync(path.join(out2, 'correlation.json'), 'utf8'));
    expect(result.rows).toHaveLength(2);
    for (const row of result.rows) expect(row.standaloneRuns).toHaveLength(2);
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 600_000);
});
