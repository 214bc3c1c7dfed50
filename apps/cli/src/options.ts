/** Parsers and helpers shared by the CLI commands. */

import { resolve } from 'node:path';
import { describeBackend, selectBackend } from '@grove/model';
import { InvalidArgumentError } from 'commander';

/** A parser for numeric options: refuses, in the words `expected …`, any value `accepts` turns down. */
function numberOption(accepts: (value: number) => boolean, expected: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!accepts(parsed)) throw new InvalidArgumentError(`expected ${expected}.`);
    return parsed;
  };
}

export const positiveInteger = numberOption((n) => Number.isInteger(n) && n >= 1, 'a positive integer');
export const nonNegativeInteger = numberOption((n) => Number.isInteger(n) && n >= 0, 'a non-negative integer');
export const positiveNumber = numberOption((n) => Number.isFinite(n) && n > 0, 'a positive number');
export const nonNegativeNumber = numberOption((n) => Number.isFinite(n) && n >= 0, 'a number of at least 0');
export const fraction = numberOption((n) => Number.isFinite(n) && n >= 0 && n <= 1, 'a number from 0 to 1');

/** A repeatable `--data-root <dir>`: absolute; GROVE_DATA_ROOTS separates roots with colons, so none may hold one. */
export function dataRoots(value: string, previous: string[]): string[] {
  if (value.includes(':')) throw new InvalidArgumentError('a data root cannot contain ":".');
  return [...previous, resolve(value)];
}

export function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** Selects the compute backend and says which one, as every command that computes must. */
export async function startBackend(): Promise<string> {
  const choice = await selectBackend();
  process.stderr.write(`${describeBackend(choice)}\n`);
  return choice.name;
}

/** A status line that rewrites itself on a terminal; in logs, every `everyCalls`-th update and the last. */
export function progressLine(everyCalls: number) {
  const tty = process.stderr.isTTY;
  let calls = 0;
  return {
    update(last: boolean, text: string) {
      calls++;
      if (tty) process.stderr.write(`\r\x1b[2K${text}`);
      else if (last || calls % everyCalls === 0) process.stderr.write(`${text}\n`);
    },
    /** Makes room for a line of other output. */
    clear() {
      if (tty) process.stderr.write('\r\x1b[2K');
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}
