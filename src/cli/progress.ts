/** Progress output: an in-place bar on a TTY, plain lines otherwise, JSON lines with --json. */
import type { RetrainStepEvent } from '../retrain/retrain';
import type { SearchEvent } from '../search/runSearch';
import type { TrainEvent } from '../train/trainOneShot';
import type { ImageFolderEvent } from '../data/imageFolder';

/** tty: a bar redrawn in place; plain: lines (CI, pipes); json: machine-readable lines. */
export type OutputMode = 'tty' | 'plain' | 'json';

/** The mode for a stream: json when asked, tty on a terminal outside CI, else plain. */
export function outputMode(json: boolean, stream: NodeJS.WriteStream = process.stderr): OutputMode {
  if (json) return 'json';
  return stream.isTTY && !process.env.CI ? 'tty' : 'plain';
}

/** Seconds as `1h02m`, `3m05s` or `42s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

const f3 = (x: number): string => x.toFixed(3);

/**
 * Renders training events. TTY: one line redrawn at most 10 times a second. Plain: a line every `plainEvery` steps
 * and at each evaluation. JSON: the metrics lines (and the final result) on stdout, nothing else there.
 */
export class TrainProgress {
  private lastDraw = 0;
  private plainEvery = 1;
  private data: DataProgress | undefined;

  constructor(
    private readonly mode: OutputMode,
    private readonly err: NodeJS.WriteStream = process.stderr,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {}

  handle(e: TrainEvent): void {
    if (e.type === 'data') {
      this.data ??= new DataProgress(this.mode, this.err);
      this.data.handle(e.event);
      return;
    }
    if (this.mode === 'json') {
      if (e.type === 'eval') {
        const { type: _t, ...line } = e;
        this.out.write(`${JSON.stringify(line)}\n`);
      }
      return;
    }
    switch (e.type) {
      case 'start':
        this.plainEvery = Math.max(1, Math.round(e.totalSteps / 20));
        this.err.write(
          `training on ${e.dataset} (${e.trainExamples} train / ${e.validationExamples} validation), ` +
            `${e.params.toLocaleString('en-US')} parameters, steps ${e.startStep}..${e.totalSteps}\n`,
        );
        break;
      case 'step': {
        const text =
          `step ${e.step}/${e.totalSteps} ep ${e.epoch.toFixed(2)} loss ${f3(e.loss)} acc ${f3(e.accuracy)} ` +
          `lr ${e.lr.toFixed(4)} drop in ${e.dropIn[0].toFixed(2)} op ${e.dropOp.toFixed(2)} ${e.imagesPerSec.toFixed(0)} img/s ETA ${formatDuration(e.etaSeconds)}`;
        if (this.mode === 'tty') {
          const now = Date.now();
          if (now - this.lastDraw < 100 && e.step !== e.totalSteps) return;
          this.lastDraw = now;
          this.err.write(`\r\x1b[2K${bar(e.step / e.totalSteps)} ${text}`);
        } else if (e.step % this.plainEvery === 0 || e.step === e.totalSteps) {
          this.err.write(`${text}\n`); // a log line: no bar (pipes, files, CI)
        }
        break;
      }
      case 'eval':
        if (this.mode === 'tty') this.err.write('\r\x1b[2K');
        this.err.write(
          `epoch ${e.epoch} step ${e.step}: train loss ${f3(e.loss)} acc ${f3(e.trainAccuracy)} | one-shot validation accuracy ${f3(e.valAccuracy)} loss ${f3(e.valLoss)}\n`,
        );
        break;
      case 'checkpoint':
        break;
    }
  }

  /** Clears a half-drawn bar before other output. */
  finish(): void {
    if (this.mode === 'tty') this.err.write('\r\x1b[2K');
  }
}

/**
 * The part of the step and count progress that decides what to write and when: a rate counted from a start (none
 * before a second has passed: one event alone would claim thousands per second), a TTY line redrawn at most 10 times
 * a second, and otherwise a plain or JSON line at least every `everyMs` and at the end.
 */
class ProgressLine {
  private t0 = 0;
  private d0 = 0;
  private lastDraw = 0;
  private lastLine = Date.now();

  constructor(
    readonly mode: OutputMode,
    private readonly err: NodeJS.WriteStream,
    private readonly everyMs: number,
  ) {}

  get started(): boolean {
    return this.t0 > 0;
  }

  /** Rates count from `done` at `now`; a new stage also starts its plain lines over. */
  start(now: number, done: number, newStage = false): void {
    this.t0 = now;
    this.d0 = done;
    if (newStage) this.lastLine = now;
  }

  rate(now: number, done: number): number {
    const elapsed = (now - this.t0) / 1000;
    return elapsed >= 1 ? (done - this.d0) / elapsed : NaN;
  }

  /** One update: `tty` redrawn in place, or `plain` / `json()` as a line when one is due (always when `final`). */
  write(now: number, final: boolean, line: { tty: string; plain: string; json: () => Record<string, unknown> }): void {
    if (this.mode === 'tty') {
      if (now - this.lastDraw < 100 && !final) return;
      this.lastDraw = now;
      this.err.write(`\r\x1b[2K${line.tty}`);
      return;
    }
    if (now - this.lastLine < this.everyMs && !final) return;
    this.lastLine = now;
    this.err.write(`${this.mode === 'json' ? JSON.stringify(line.json()) : line.plain}\n`);
  }
}

const perSecond = (rate: number): number | null => (Number.isFinite(rate) ? Math.round(rate * 100) / 100 : null);
const wholeSeconds = (eta: number): number | null => (Number.isFinite(eta) ? Math.round(eta) : null);

/**
 * Renders retraining steps over all runs of a call (several may train at once). TTY: one line with the runs finished,
 * the current run's step, loss and accuracy, steps/s and the ETA of the whole call, redrawn at most 10 times a second.
 * Plain (CI, pipes): a line at least every 10 s and at the end of each run. JSON: the same progress as a JSON line on
 * stderr at least every 10 s (stdout keeps the results only).
 */
export class RetrainProgress {
  private readonly line: ProgressLine;

  constructor(
    private readonly mode: OutputMode,
    private readonly err: NodeJS.WriteStream = process.stderr,
    everyMs = 10_000,
  ) {
    this.line = new ProgressLine(mode, err, everyMs);
  }

  step(e: Omit<RetrainStepEvent, 'type'>): void {
    const now = Date.now();
    // Rates count from the first step seen (steps of a resumed call done before it are not this process's).
    if (!this.line.started) this.line.start(now, e.doneSteps);
    const rate = this.line.rate(now, e.doneSteps);
    const eta = (e.allSteps - e.doneSteps) / rate;
    const text =
      `  ${e.allRuns > 1 ? `runs ${e.doneRuns}/${e.allRuns}, ` : ''}step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(3)} acc ${e.accuracy.toFixed(3)} | ` +
      `${Number.isFinite(rate) ? rate.toFixed(1) : '-'} steps/s ETA ${formatDuration(eta)}`;
    this.line.write(now, e.step === e.totalSteps, {
      tty: text,
      plain: text,
      json: () => {
        const { type: _t, ...fields } = e as RetrainStepEvent;
        return { type: 'progress', stage: 'retrain', ...fields, stepsPerSec: perSecond(rate), etaSeconds: wholeSeconds(eta) };
      },
    });
  }

  /** Ends the in-place line before other output. */
  finish(): void {
    if (this.mode === 'tty') this.err.write('\r\x1b[2K');
  }
}

/**
 * Renders the scoring of a search inside a larger job (`nasctl run`, `nasctl study correlation`): TTY: one line
 * redrawn at most 10 times a second; plain: a line every tenth of the architectures and at the end; JSON: nothing
 * (those commands print their own JSON).
 */
export class ScoringProgress {
  private lastDraw = 0;
  private tenths = 0;

  constructor(
    private readonly mode: OutputMode,
    private readonly err: NodeJS.WriteStream = process.stderr,
  ) {}

  /**
   * A racing search's rounds: a line at the start of each (candidates, the images it scores them on), then its
   * progress with the round's leader, the image rate and the ETA of the whole race.
   */
  race(e: SearchEvent): void {
    if (this.mode === 'json') return;
    if (e.type === 'race-round') {
      if (this.mode === 'tty' && this.lastDraw) this.err.write('\n');
      this.lastDraw = 0;
      this.tenths = 0;
      const n = (x: number): string => x.toLocaleString('en-US');
      this.err.write(
        `round ${e.round + 1}/${e.rounds}: ${n(e.candidates)} candidates on validation images ${n(e.from)}..${n(e.to)}${e.done ? ` (${n(e.done)} scored before)` : ''}\n`,
      );
    } else if (e.type === 'raced') {
      const done = e.done === e.candidates;
      const line =
        `round ${e.round + 1}/${e.rounds} ${e.done}/${e.candidates} scored, leader ${e.best.accuracy.toFixed(4)} on ${e.best.examples} images, ` +
        `${e.imagesPerSec.toFixed(0)} img/s, race ETA ${formatDuration(e.etaSeconds)}`;
      if (this.mode === 'tty') {
        if (Date.now() - this.lastDraw < 100 && !done) return;
        this.lastDraw = Date.now();
        this.err.write(`\r\x1b[2K${bar(e.done / e.candidates)} ${line}${done ? '\n' : ''}`);
        if (done) this.lastDraw = 0;
      } else if (Math.floor((10 * e.done) / e.candidates) > this.tenths) {
        this.tenths = Math.floor((10 * e.done) / e.candidates); // plain: a line per tenth of the round
        this.err.write(`${line}\n`);
      }
    }
  }

  scored(s: Extract<SearchEvent, { type: 'scored' }>): void {
    const done = s.done === s.count;
    const line = `${s.done}/${s.count} scored, best ${s.best.accuracy.toFixed(4)}, ${s.archsPerSec.toFixed(2)} arch/s (${s.imagesPerSec.toFixed(0)} img/s) ETA ${formatDuration(s.etaSeconds)}`;
    if (this.mode === 'tty') {
      if (Date.now() - this.lastDraw < 100 && !done) return;
      this.lastDraw = Date.now();
      this.err.write(`\r\x1b[2K${line}${done ? '\n' : ''}`);
    } else if (this.mode === 'plain' && (s.done % Math.max(1, Math.round(s.count / 10)) === 0 || done)) {
      this.err.write(`${line}\n`);
    }
  }
}

/**
 * Progress of a stage counted in items (the KL study's forward passes and scores). TTY: a bar with rate and ETA,
 * redrawn at most 10 times a second. Plain: a line at least every 10 s and at the end of each stage. JSON: the same
 * as a JSON line on stderr (stdout keeps the result only).
 */
export class CountProgress {
  private stage = '';
  private readonly line: ProgressLine;

  constructor(mode: OutputMode, err: NodeJS.WriteStream = process.stderr, everyMs = 10_000) {
    this.line = new ProgressLine(mode, err, everyMs);
  }

  update(e: { stage: string; done: number; total: number; unit: string }): void {
    const now = Date.now();
    if (e.stage !== this.stage) {
      // Rates count from the stage's first event.
      this.stage = e.stage;
      this.line.start(now, e.done, true);
    }
    const rate = this.line.rate(now, e.done);
    const eta = (e.total - e.done) / rate;
    const done = e.done === e.total;
    const text = `${e.stage}: ${e.done}/${e.total} ${e.unit} | ${Number.isFinite(rate) ? rate.toFixed(1) : '-'}/s ETA ${done ? formatDuration(0) : formatDuration(eta)}`;
    this.line.write(now, done, {
      tty: `${bar(e.total ? e.done / e.total : 1)} ${text}${done ? '\n' : ''}`,
      plain: `  ${text}`,
      json: () => ({ type: 'progress', ...e, perSec: perSecond(rate), etaSeconds: wholeSeconds(eta) }),
    });
  }
}

/**
 * Renders the preparation of an image folder (scan, header checks, decode into the cache): the counted phases through
 * CountProgress (a bar with images/s and ETA on a TTY), one line each for the scan, a wait for another process and
 * the result (with how many files were skipped and where the list is).
 */
export class DataProgress {
  private readonly count: CountProgress;

  constructor(
    private readonly mode: OutputMode,
    private readonly err: NodeJS.WriteStream = process.stderr,
  ) {
    this.count = new CountProgress(mode, err);
  }

  handle(e: ImageFolderEvent): void {
    const say = (text: string, json: Record<string, unknown>): void => {
      this.err.write(this.mode === 'json' ? `${JSON.stringify({ type: 'progress', stage: 'data', ...json })}\n` : `${text}\n`);
    };
    switch (e.type) {
      case 'scan':
        // The result line says it all when the cache is current; a scan is news only to machines.
        if (this.mode === 'json') say('', e);
        return;
      case 'wait':
        say(`waiting for another process decoding the same folder: ${e.holder}`, e);
        return;
      case 'probe':
        this.count.update({ stage: 'checking images', done: e.done, total: e.total, unit: 'files' });
        return;
      case 'decode':
        this.count.update({
          stage: e.resumedAt ? `decoding (resumed at ${e.resumedAt})` : 'decoding',
          done: e.done,
          total: e.total,
          unit: 'images',
        });
        return;
      case 'ready':
        say(
          `image folder ${e.cached ? 'cached' : 'decoded'} in ${e.dir}: ${e.counts.train} train / ${e.counts.validation} validation / ${e.counts.test} test` +
            (e.skipped ? `; ${e.skipped} file${e.skipped > 1 ? 's' : ''} skipped (listed in ${e.dir}/manifest.json)` : ''),
          e,
        );
    }
  }
}
