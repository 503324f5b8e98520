// The HTML report takes values from user files (config.json, search.jsonl, kl.json): none may run as markup, and
// the report's --out never replaces anything but a report.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReport, raceNote } from '../../src/report/buildReport';
import type { NasError } from '../../src/util/errors';

const XSS = '<img src=x onerror=alert(1)>';
const row = (over: Record<string, unknown> = {}): string =>
  `${JSON.stringify({ index: 0, arch: '0:sep3/1:identity/2:maxpool/3:avgpool', accuracy: 0.5, loss: 1, params: 100, madds: 1000, examples: 8, ...over })}\n`;

function runDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nas-report-'));
  const config = {
    dataset: { name: XSS },
    net: { filters: XSS, ghostBatch: XSS },
    batchSize: XSS,
    seed: XSS,
    dropout: { kind: XSS, rate: XSS },
    learningRate: { kind: XSS, base: XSS },
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  fs.writeFileSync(path.join(dir, 'search.jsonl'), row());
  fs.mkdirSync(path.join(dir, 'study-kl'));
  fs.writeFileSync(
    path.join(dir, 'study-kl', 'kl.json'),
    JSON.stringify({ rows: [{ kl: 1, accuracy: 0.5, arch: XSS }], spearman: XSS, kendall: XSS }),
  );
  return dir;
}

const errorOf = async (f: () => Promise<unknown>): Promise<NasError> => {
  try {
    await f();
  } catch (e) {
    return e as NasError;
  }
  throw new Error('expected an error');
};

describe('report', () => {
  it('escapes every value from config.json, search rows and the KL study: no markup of theirs reaches the page', async () => {
    const dir = runDir();
    const { file } = await buildReport(dir);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/onerror=alert\(1\)>/);
    // Each payload is shown as text: dataset, filters, ghost batch, batch, dropout kind and rate, lr kind and base, seed,
    // spearman, kendall (the arch in kl.json lands in the plot as SVG text, escaped by the renderer).
    expect(html.split('&lt;img src=x onerror=alert(1)&gt;').length - 1).toBeGreaterThanOrEqual(11);
  }, 60_000);

  it('says when the search is unfinished (rows of planned) and which checkpoint step scored it', async () => {
    const dir = runDir();
    fs.appendFileSync(path.join(dir, 'search.jsonl'), row({ index: 1 }));
    fs.writeFileSync(path.join(dir, 'search.search.json'), JSON.stringify({ count: 100, checkpoint: '300:0123456789abcdef' }));
    const unfinished = fs.readFileSync((await buildReport(dir)).file, 'utf8');
    expect(unfinished).toContain(
      'Unfinished search: 2 of 100 planned architectures scored (the same `nasctl search` command continues it). Scored on the one-shot model&#39;s checkpoint at step 300.',
    );
    fs.writeFileSync(path.join(dir, 'search.search.json'), JSON.stringify({ count: 2, checkpoint: '300:0123456789abcdef' }));
    const finished = fs.readFileSync((await buildReport(dir)).file, 'utf8');
    expect(finished).not.toContain('Unfinished');
    expect(finished).toContain('2 architectures scored. Scored on the one-shot model&#39;s checkpoint at step 300.');
  }, 60_000);

  it('refuses a search row whose numbers are not numbers, naming file and line', async () => {
    const dir = runDir();
    fs.appendFileSync(path.join(dir, 'search.jsonl'), row({ params: XSS }));
    const e = await errorOf(() => buildReport(dir));
    expect(e.code).toBe('ERR_NAS_BAD_RESULTS');
    expect(e.message).toContain('search.jsonl:2: "params": expected a finite number');
  });

  it('writes --out only over nothing or a report: a folder, a pipe, a link or another file is refused and kept', async () => {
    const dir = runDir();
    const other = path.join(dir, 'checkpoint.pt');
    fs.writeFileSync(other, 'PK\u0003\u0004 a zip archive');
    const folder = path.join(dir, 'a-folder');
    fs.mkdirSync(folder);
    const fifo = path.join(dir, 'a-fifo');
    execFileSync('mkfifo', [fifo]);
    const link = path.join(dir, 'a-link.html');
    fs.symlinkSync(other, link);
    for (const [out, why] of [
      [other, 'is not a HTML report'],
      [folder, 'got a folder'],
      [fifo, 'got a named pipe'],
      [link, 'got a symbolic link'],
    ] as const) {
      const e = await errorOf(() => buildReport(dir, { out }));
      expect([e.code, e.message]).toEqual(['ERR_NAS_BAD_OUTPUT', expect.stringContaining(`${out}:`)]);
      expect(e.message).toContain(why);
    }
    expect(fs.readFileSync(other, 'utf8')).toBe('PK\u0003\u0004 a zip archive');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    // A report is replaced by a new one.
    const report = path.join(dir, 'mine.html');
    await buildReport(dir, { out: report });
    const first = fs.statSync(report).mtimeMs;
    await buildReport(dir, { out: report });
    expect(fs.statSync(report).mtimeMs).toBeGreaterThanOrEqual(first);
  }, 60_000);
});

describe('the report of a racing search', () => {
  const result = (index: number, examples: number, accuracy: number) => ({
    index,
    arch: `0:sep3/1:identity/2:maxpool/${index}:avgpool`,
    accuracy,
    loss: 1,
    params: 100 + index,
    madds: 1000,
    examples,
  });

  it('says how many candidates reached each round; full scoring has no such note', () => {
    const raced = [result(0, 256, 0.9), result(1, 256, 0.8), result(2, 1024, 0.7), result(3, 5000, 0.6), result(4, 5000, 0.65)];
    expect(raceNote(raced)).toMatch(/^Scored by racing: 5 reached 256 images, 3 reached 1,024 images, 2 reached 5,000 images;/);
    expect(raceNote([result(0, 5000, 0.9), result(1, 5000, 0.8)])).toBeUndefined();
  });
});
