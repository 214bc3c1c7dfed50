/** Parsers and helpers shared by the CLI commands. */

import { describeBackend, selectBackend } from '@grove/model';
import { InvalidArgumentError } from 'commander';

export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a positive integer.');
  return parsed;
}

export function nonNegativeInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError('expected a non-negative integer.');
  return parsed;
}

export function positiveNumber(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a positive number.');
  return parsed;
}

export function nonNegativeNumber(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError('expected a number of at least 0.');
  return parsed;
}

export function fraction(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1)
    throw new InvalidArgumentError('expected a number from 0 to 1.');
  return parsed;
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
