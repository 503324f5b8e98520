/** Option parsers for commander that name the flag, what was expected and what came. */
import { InvalidArgumentError } from 'commander';

/** commander parser: an integer, or an error naming what came. */
export function int(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
  return n;
}

/** commander parser: an integer >= 1. */
export function positiveInt(value: string): number {
  const n = int(value);
  if (n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

/** commander parser: an integer >= 0. */
export function nonNegativeInt(value: string): number {
  const n = int(value);
  if (n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return n;
}

/** commander parser: a finite number. */
export function num(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

/** commander parser: one of `choices`. */
export function oneOf<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got "${value}"`);
    return value as T;
  };
}

/**
 * The "(default: ...)" of a flag whose default a preset sets, from the presets themselves: `(default: 0.9)` when they
 * agree, else each preset's (`(default: quick: 2 epochs, paper: 228 epochs)`). `show` writes a value (undefined: its
 * meaning for that flag, `none` unless given).
 */
export function presetDefault<P>(presets: Record<string, P>, get: (p: P) => unknown, show: (v: unknown) => string = String): string {
  const text = (v: unknown): string => (v === undefined ? 'none' : show(v));
  const shown = Object.entries(presets).map(([name, p]) => [name, text(get(p))]);
  const same = shown.every(([, v]) => v === shown[0][1]);
  return `(default: ${same ? shown[0][1] : shown.map(([name, v]) => `${name}: ${v}`).join(', ')})`;
}
