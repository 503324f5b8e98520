// Small helpers for plain objects.

/** A copy of `o` without its undefined fields (so that they do not override defaults when spread). */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
