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
