// nasctl search / select on a small supernet trained here: streaming results, resume after SIGKILL, selection.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Ran, runProcess, NASCTL } from '../helpers';
import { NativeData, Supernet } from '../../src/model/Supernet';
import { syntheticSet } from '../../src/data/synthetic';
import { dropTables } from '../../src/schedule/dropout';

const nasctl = (...args: string[]): Promise<Ran> => runProcess([NASCTL, ...args]);
/** A search results line like the ones `nasctl search` writes, with `over` changed (undefined: left out). */
const row = (over: Record<string, unknown>): string =>
  JSON.stringify({
    index: 0,
    arch: '0:sep3/1:identity/2:maxpool/3:avgpool',
    accuracy: 0.9,
    loss: 0.3,
    params: 100,
    madds: 1000,
    examples: 48,
    ...over,
  });
const lines = (file: string): { arch: string; accuracy: number; index: number }[] =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('nasctl search', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-search-'));
  const run = path.join(root, 'run');
  const SEARCH = [
    'search',
    '--supernet',
    run,
    '--count',
    '60',
    '--val-limit',
    '48',
    '--threads',
    '1',
    '--strategy',
    'evolution',
    '--population',
    '8',
    '--tournament',
    '3',
    '--seed',
    '2',
  ];

  beforeAll(async () => {
    const r = await nasctl(
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
      '--steps',
      '30',
      '--eval-archs',
      '1',
      '--eval-limit',
      '32',
      '--out',
      run,
    );
    expect(r.status, r.stderr).toBe(0);
  });

  it('resumes a killed search without scoring an architecture twice or losing one', async () => {
    const ref = await nasctl(...SEARCH, '--out', path.join(root, 'ref.jsonl'), '--json');
    expect(ref.status, ref.stderr).toBe(0);
    const expected = lines(path.join(root, 'ref.jsonl'));
    expect(expected).toHaveLength(60);
    expect(new Set(expected.map((l) => l.arch)).size).toBe(60);

    const out = path.join(root, 'killed.jsonl');
    const child = spawn(process.execPath, [NASCTL, ...SEARCH, '--out', out], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (fs.existsSync(out) && fs.readFileSync(out, 'utf8').split('\n').length > 4) {
          child.kill('SIGKILL');
          clearInterval(poll);
          resolve();
        }
      }, 2);
    });
    await exited;
    const partial = lines(out).length;
    expect(partial).toBeLessThan(60);
    const resumed = await nasctl(...SEARCH, '--out', out);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`${partial}/60 scored so far`);
    expect(lines(out)).toEqual(expected);
  });

  it('scores a given list (--archs) as the sampled search did, resumes it, and names a bad line', async () => {
    const ref = lines(path.join(root, 'ref.jsonl')); // written by the first test
    const list = path.join(root, 'list.txt');
    fs.writeFileSync(
      list,
      `# from the sampled search\n${ref
        .slice(0, 12)
        .map((r) => r.arch)
        .join('\n')}\n${ref[0].arch}\n`,
    );
    const out = path.join(root, 'list.jsonl');
    const given = ['search', '--supernet', run, '--val-limit', '48', '--threads', '1', '--archs'];
    const first = await nasctl(...given, list, '--count', '5', '--out', out);
    expect(first.status, first.stderr).toBe(0);
    const rest = await nasctl(...given, list, '--out', out); // the whole list: 12 distinct architectures
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.stderr).toContain('5/12 scored so far');
    const got = lines(out);
    expect(got.map((r) => r.arch)).toEqual(ref.slice(0, 12).map((r) => r.arch));
    got.forEach((r, i) => {
      expect(r.accuracy).toBe(ref[i].accuracy);
    });
    // JSON lines with an "arch" field (a previous results file) are a list too; another list does not resume this one.
    const other = await nasctl(...given, path.join(root, 'ref.jsonl'), '--out', out);
    expect(other.status).toBe(2);
    expect(other.stderr).toContain('archsDigest');
    const bad = path.join(root, 'bad.txt');
    fs.writeFileSync(bad, `${ref[0].arch}\n\n01:sep3/1:bogus/2:maxpool/3:avgpool\n`);
    const refused = await nasctl(...given, bad, '--out', path.join(root, 'bad.jsonl'));
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`${bad}:3:11: bad architecture`);
    expect(refused.stderr).toContain('ERR_NAS_BAD_ARCH');
    expect(fs.existsSync(path.join(root, 'bad.jsonl')) || fs.existsSync(path.join(root, 'bad.search.json'))).toBe(false);
  });

  it('refuses to resume with other settings, and selects from the results', async () => {
    const other = await nasctl(...SEARCH.map((a) => (a === '2' ? '3' : a)), '--out', path.join(root, 'ref.jsonl'));
    expect(other.status).toBe(2);
    expect(other.stderr).toContain('seed: expected 2');
    const top = await nasctl('select', '--from', path.join(root, 'ref.jsonl'), '--select', 'top', '--count', '3', '--json');
    const picked = top.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const best = lines(path.join(root, 'ref.jsonl')).sort((a, b) => b.accuracy - a.accuracy)[0];
    expect(picked).toHaveLength(3);
    expect(picked[0].accuracy).toBe(best.accuracy);
  });

  it('ties results to the checkpoint that scored them: resuming them on another one is refused, naming both steps', async () => {
    const copy = path.join(root, 'run-more');
    fs.cpSync(run, copy, { recursive: true });
    const out = path.join(root, 'tied.jsonl');
    const first = await nasctl('search', '--supernet', copy, '--count', '3', '--val-limit', '16', '--threads', '1', '--out', out);
    expect(first.status, first.stderr).toBe(0);
    const settings = JSON.parse(fs.readFileSync(path.join(root, 'tied.search.json'), 'utf8'));
    expect(settings.checkpoint).toMatch(/^30:[0-9a-f]{16}$/);
    // The run trains on (what `train --resume` with more steps would write): one more step, saved over the checkpoint.
    const net = await Supernet.create(
      { ...JSON.parse(fs.readFileSync(path.join(copy, 'config.json'), 'utf8')).net, threads: 1 },
      { batchSize: 32 },
    );
    await net.load(path.join(copy, 'checkpoint.pt'));
    const set = syntheticSet({ n: 64, size: 16, channels: 1, classes: 10, seed: 1 });
    const { dropIn, dropOp } = dropTables({ kind: 'constant', rate: 0 }, { steps: 1 });
    await net.train(new NativeData(set, [0.5], [0.25]), { steps: 1, lr: Float64Array.of(0.01), dropIn, dropOp });
    await net.save(
      path.join(copy, 'checkpoint.pt'),
      (await Supernet.readCheckpointMeta(path.join(copy, 'checkpoint.pt'))) as Record<string, unknown>,
    );
    net.dispose();
    const again = await nasctl('search', '--supernet', copy, '--count', '6', '--val-limit', '16', '--threads', '1', '--out', out);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(
      /tied\.jsonl was scored on the one-shot model at step 30 .*now holds step 31 .*rows of two models would mix/,
    );
    expect(again.stderr).toContain('ERR_NAS_BAD_CONFIG');
    expect(lines(out)).toHaveLength(3); // nothing appended
  });

  it('refuses a supernet whose run a training job is writing, unless --while-training, which warns', async () => {
    const copy = path.join(root, 'run-training');
    fs.cpSync(run, copy, { recursive: true });
    // The lock a `train --resume` of this run holds (this test's process stands in for the live trainer).
    fs.writeFileSync(
      path.join(copy, '.lock'),
      JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString(), what: `training ${copy}` }),
    );
    const args = ['search', '--supernet', copy, '--count', '2', '--val-limit', '16', '--threads', '1'];
    const refused = await nasctl(...args);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`${copy} is being written by process ${process.pid}`);
    expect(refused.stderr).toContain('--while-training');
    expect(refused.stderr).toContain('ERR_NAS_LOCKED');
    expect(fs.existsSync(path.join(copy, 'search.jsonl'))).toBe(false);
    const allowed = await nasctl(...args, '--while-training');
    expect(allowed.status, allowed.stderr).toBe(0);
    expect(allowed.stderr).toMatch(/nasctl: warning: .* is being written by process \d+ .*scoring its checkpoint as it is now/);
    expect(lines(path.join(copy, 'search.jsonl'))).toHaveLength(2);
    // The flag is how the search was let run, not what it scored: resuming without it (training over) goes on.
    fs.rmSync(path.join(copy, '.lock'));
    const resumed = await nasctl(...args.slice(0, 3), '--count', '3', '--val-limit', '16', '--threads', '1');
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(lines(path.join(copy, 'search.jsonl'))).toHaveLength(3);
  });

  it('selects only from valid results: a bad line is named, an empty file is an error, a torn last line is skipped', async () => {
    const good = fs.readFileSync(path.join(root, 'ref.jsonl'), 'utf8').split('\n').slice(0, 3).join('\n');
    const cases: [string, string, string][] = [
      ['bad-arch.jsonl', `${good}\n${row({ arch: '01:sep3/1:bogus/2:maxpool/3:avgpool' })}\n`, ':4: "arch": '],
      ['not-json.jsonl', `${good}\nhello\n${row({})}\n`, ':4: not a line of JSON'],
      ['no-acc.jsonl', `${row({ accuracy: undefined })}\n`, ':1: "accuracy": expected a finite number, got nothing'],
      ['high.jsonl', `${good}\n${row({ accuracy: 'high' })}\n`, ':4: "accuracy": expected a finite number, got "high"'],
      ['shape.jsonl', `${good}\n[1,2,3]\n`, ':4: expected a JSON object'],
      ['empty.jsonl', '', 'no results in it'],
    ];
    for (const [name, text, message] of cases) {
      fs.writeFileSync(path.join(root, name), text);
      const r = await nasctl('select', '--from', path.join(root, name), '--count', '2');
      expect(r.status, name).toBe(2);
      expect(r.stderr, name).toContain(message);
      expect(r.stdout, name).toBe('');
    }
    fs.writeFileSync(path.join(root, 'torn.jsonl'), `${good}\n{"arch":"0:sep3/1:ide`);
    const torn = await nasctl('select', '--from', path.join(root, 'torn.jsonl'), '--count', '5', '--json');
    expect(torn.status, torn.stderr).toBe(0);
    expect(torn.stdout.trim().split('\n')).toHaveLength(3);
    // retrain --from reads the same file the same way: the "high" row is refused before anything is trained.
    const retrain = await nasctl('retrain', '--from', path.join(root, 'high.jsonl'), '--count', '1', '--out', path.join(root, 'rt'));
    expect(retrain.status).toBe(2);
    expect(retrain.stderr).toContain('high.jsonl:4: "accuracy": expected a finite number, got "high"');
    expect(retrain.stderr).toContain('[ERR_NAS_BAD_RESULTS]');
    expect(fs.existsSync(path.join(root, 'rt', 'retrain.jsonl'))).toBe(false);
  });

  it('refuses to resume over a damaged line in the middle of the results, naming it, and changes nothing', async () => {
    const rows = fs.readFileSync(path.join(root, 'ref.jsonl'), 'utf8').split('\n').slice(0, 10);
    rows[4] = rows[4].slice(0, 20); // damaged, with valid rows after it
    const out = path.join(root, 'damaged.jsonl');
    const text = `${rows.join('\n')}\n`;
    fs.writeFileSync(out, text);
    fs.copyFileSync(path.join(root, 'ref.search.json'), path.join(root, 'damaged.search.json'));
    const r = await nasctl(...SEARCH, '--out', out);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${out}:5: not a line of JSON`);
    expect(r.stderr).toContain('[ERR_NAS_BAD_RESULTS]');
    expect(fs.readFileSync(out, 'utf8')).toBe(text);
    // A torn last line (a kill mid-write) is the one thing repaired: cut off, and the search goes on from there.
    fs.writeFileSync(out, `${rows.slice(0, 4).join('\n')}\n${rows[4]}`);
    const resumed = await nasctl(...SEARCH, '--out', out);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(lines(out)).toEqual(lines(path.join(root, 'ref.jsonl')));
  });

  it('writes no settings for a search refused before it scored anything', async () => {
    const out = path.join(root, 'refused.jsonl');
    const refused = await nasctl(
      'search',
      '--supernet',
      run,
      '--count',
      '3',
      '--max-params',
      '1',
      '--val-limit',
      '16',
      '--threads',
      '1',
      '--out',
      out,
    );
    expect(refused.status).toBe(2);
    expect(fs.existsSync(path.join(root, 'refused.search.json'))).toBe(false);
    const fixed = await nasctl('search', '--supernet', run, '--count', '3', '--val-limit', '16', '--threads', '1', '--out', out);
    expect(fixed.status, fixed.stderr).toBe(0);
    expect(lines(out)).toHaveLength(3);
  });

  it("--out never replaces a device, pipe, link, folder or a file of another kind (the run's own checkpoint)", async () => {
    const checkpoint = path.join(run, 'checkpoint.pt');
    const before = fs.readFileSync(checkpoint);
    const fifo = path.join(root, 'out-fifo');
    execFileSync('mkfifo', [fifo]);
    const link = path.join(root, 'out-link.jsonl');
    fs.symlinkSync(path.join(root, 'ref.jsonl'), link);
    for (const [out, why] of [
      [checkpoint, 'is not a search results file'],
      [fifo, 'got a named pipe'],
      [link, 'got a symbolic link'],
      [root, 'got a folder'],
    ] as const) {
      const r = await nasctl('search', '--supernet', run, '--count', '3', '--val-limit', '16', '--threads', '1', '--out', out);
      expect(r.status, out).toBe(2);
      expect(r.stderr, out).toContain(`${out}: `);
      expect(r.stderr, out).toContain(why);
      expect(r.stderr, out).toContain('[ERR_NAS_BAD_OUTPUT]');
      expect(fs.existsSync(`${out}.lock`), out).toBe(false);
    }
    expect(fs.readFileSync(checkpoint).equals(before)).toBe(true);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
  });
});
