/** Error codes of oneshot-nas. Native code sets the same codes on the errors it throws. */
export type NasErrorCode =
  | 'ERR_NAS_BAD_ARCH'
  | 'ERR_NAS_BAD_CONFIG'
  | 'ERR_NAS_BAD_ARG'
  | 'ERR_NAS_BAD_DATA'
  | 'ERR_NAS_BAD_BATCH'
  | 'ERR_NAS_DATASET_MISSING'
  | 'ERR_NAS_CHECKPOINT'
  | 'ERR_NAS_IO'
  | 'ERR_NAS_LOCKED'
  | 'ERR_NAS_BUSY'
  | 'ERR_NAS_DISPOSED'
  | 'ERR_NAS_DIVERGED'
  | 'ERR_NAS_TORCH'
  | 'ERR_NAS_OUT_OF_MEMORY'
  | 'ERR_NAS_CUDA_UNAVAILABLE'
  | 'ERR_NAS_NATIVE'
  | 'ERR_NAS_ADDON_MISSING'
  | 'ERR_NAS_DIST'
  | 'ERR_NAS_DIST_UNAVAILABLE'
  | 'ERR_NAS_WORKER_LOST'
  | 'ERR_NAS_BAD_RESULTS'
  | 'ERR_NAS_BAD_MODEL'
  | 'ERR_NAS_BAD_OUTPUT'
  | 'ERR_NAS_INTERNAL';

/**
 * The one error class of oneshot-nas. `code` is stable and meant for programs; `message` is for people.
 * Errors from native code keep the stack of the JavaScript call that started the work.
 */
export class NasError extends Error {
  /** A stable code such as `ERR_NAS_BAD_ARCH`. */
  readonly code: NasErrorCode;
  /** Extra facts (the field, the position of a bad character, ...). */
  readonly details: Record<string, unknown>;

  constructor(code: NasErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'NasError';
    this.code = code;
    this.details = details;
  }
}

/** A NasError naming the field, what was expected and what came (sharp's invalidParameterError). */
export function invalidParameter(field: string, expected: string, actual: unknown, code: NasErrorCode = 'ERR_NAS_BAD_CONFIG'): NasError {
  const shown = typeof actual === 'string' ? JSON.stringify(actual) : typeof actual === 'object' ? JSON.stringify(actual) : String(actual);
  return new NasError(code, `${field}: expected ${expected}, got ${shown}`, { field, expected, actual });
}

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
