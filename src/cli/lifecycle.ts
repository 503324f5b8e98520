/** Shared plumbing of the CLI: Ctrl-C handling and error reporting. */
import { loadAddon } from '../native/binding';
import { NasError } from '../util/errors';
import { ioError } from '../util/files';

/** The signals that ask a job to stop: Ctrl-C, kill, and a closed terminal or SSH session. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs `job` with an AbortSignal tied to SIGINT, SIGTERM and SIGHUP: the first signal asks the job to stop between
 * steps (it then saves a checkpoint); a second one exits at once. After SIGHUP the terminal is gone: writes to it fail
 * (EIO), and are dropped instead of ending the process before its checkpoint.
 */
export async function withAbortOnSignal<T>(job: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let count = 0;
  const say = (text: string): void => {
    try {
      process.stderr.write(text);
    } catch {
      // a closed terminal
    }
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    count++;
    if (sig === 'SIGHUP') ignoreClosedTerminal();
    if (count > 1) {
      // Quit now, but not with process.exit: its teardown would run under the native job thread (a segfault).
      say(`\n${sig} again: quitting without a new checkpoint (the last saved one is kept)\n`);
      loadAddon().exitNow(130);
    }
    say(`\n${sig}: stopping after the current step and saving a checkpoint (again to quit now)\n`);
    ac.abort();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    return await job(ac.signal);
  } finally {
    // After a first signal the handler stays: a second one while the command winds down (its last writes, the exit)
    // still quits at once with 130, instead of the signal's default action killing the process.
    if (count === 0) for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}

/** After a hang-up: errors of writes to the gone terminal (EIO, EPIPE) are ignored. */
function ignoreClosedTerminal(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

/**
 * A worker started by `nasctl launch` (NAS_LAUNCHER_PID) stops as on SIGTERM when its launcher is gone (killed with
 * SIGKILL, say): its parent is then another process, and nobody would collect its result or stop it.
 */
export function stopWhenLauncherGoes(): void {
  const launcher = Number(process.env.NAS_LAUNCHER_PID);
  if (!Number.isInteger(launcher) || launcher <= 0) return;
  const timer = setInterval(() => {
    if (process.ppid === launcher) return;
    clearInterval(timer);
    try {
      process.stderr.write(`the launcher (pid ${launcher}) is gone: stopping after the current step\n`);
    } catch {
      // its terminal may be gone too
    }
    process.kill(process.pid, 'SIGTERM');
  }, 1000);
  timer.unref();
}

/**
 * Writes to stdout, waiting while its buffer is full (a slow reader of a pipe): a long listing then holds one
 * buffer's worth of lines, not all of them.
 */
export async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

/**
 * A reader that closes stdout early (`nasctl ... | head -1`) ends the command quietly, as grep and jq do, instead
 * of with Node's EPIPE stack trace: the process exits 0 (its 'exit' handlers stop native jobs and free locks).
 */
export function quitOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

/** Prints an error the way a user wants to read it and sets the exit code. */
export function reportError(err: unknown, json: boolean): void {
  // A filesystem error that no stage wrapped (a system error with a path) is still an I/O error naming its path.
  const sys = err as NodeJS.ErrnoException;
  const e =
    !(err instanceof NasError) && typeof sys?.code === 'string' && /^E[A-Z]+$/.test(sys.code) && typeof sys.path === 'string'
      ? ioError(err, sys.path, sys.syscall ? `${sys.syscall}` : 'use this path')
      : (err as Error);
  const code = e instanceof NasError ? e.code : 'ERR_NAS_INTERNAL';
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: { code, message: e?.message ?? String(err) } })}\n`);
  } else {
    process.stderr.write(`nasctl: ${e?.message ?? String(err)} [${code}]\n`);
    if (!(e instanceof NasError) && e?.stack) process.stderr.write(`${e.stack}\n`);
  }
  process.exitCode = exitStatusFor(code);
}

/**
 * nasctl's exit status for an error code (docs/errors.md): 2 for input the user can correct (a bad argument, file or
 * setting, something missing), 1 for everything else. 130 after Ctrl-C is set where the stop is handled.
 */
export function exitStatusFor(code: string): number {
  return /BAD_|MISSING/.test(code) ? 2 : 1;
}
