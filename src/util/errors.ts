/** Error codes of oneshot-nas and its one error class. Native code sets the same codes on the errors it throws (src/native/errors.ts maps them). */
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
