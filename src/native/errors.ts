import { NasError, type NasErrorCode } from '../util/errors';

function toNasError(err: unknown): NasError {
  if (err instanceof NasError) return err;
  const e = err as { code?: string; message?: string };
  const code = typeof e?.code === 'string' && e.code.startsWith('ERR_NAS_') ? (e.code as NasErrorCode) : 'ERR_NAS_NATIVE';
  return new NasError(code, e?.message ?? String(err));
}

/** Calls a synchronous native function, turning its errors into NasErrors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const ne = toNasError(err);
    Error.captureStackTrace(ne, callNative);
    throw ne;
  }
}

/**
 * Awaits a native promise; a rejection becomes a NasError whose stack is the caller's (captured here, before the
 * work left the JavaScript thread), like sharp's `nativeError`. With `abortOn`, an abort of its signal while the job
 * runs calls its `abort` (the native object's stop-between-steps flag), as does a signal already aborted at the start.
 */
export async function awaitNative<T>(start: () => Promise<T>, abortOn?: { signal?: AbortSignal; abort: () => void }): Promise<T> {
  const caller = new Error();
  Error.captureStackTrace(caller, awaitNative);
  const onAbort = (): void => abortOn?.abort();
  abortOn?.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // A synchronous throw from start() lands here too.
    const job = start();
    // A signal aborted before the job started fires no event: stop the job as soon as it runs (it then ends at its
    // first check, between steps or batches, and returns what it finished: nothing).
    if (abortOn?.signal?.aborted) abortOn.abort();
    return await job;
  } catch (err) {
    const ne = toNasError(err);
    ne.stack = `${ne.name}: ${ne.message}\n${(caller.stack ?? '').split('\n').slice(1).join('\n')}`;
    throw ne;
  } finally {
    abortOn?.signal?.removeEventListener('abort', onAbort);
  }
}
