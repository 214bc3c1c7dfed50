/**
 * Smoke mode: with GROVE_SMOKE=1 every documented command (the CLI, the bench scripts, the
 * run specs they submit) runs end to end in seconds, so CI proves that the commands behind
 * the figures still work. Budgets are capped by their name — training steps, minutes,
 * replicas, bytes scored, repetitions, batch sizes — and nothing else changes, so a smoke
 * run walks the same code as the real one.
 */
const CAPS: readonly [RegExp, number][] = [
  // steps, seedSteps, expertSteps, warmupSteps, innerSteps, seed-steps, and Local-SGD's H.
  [/steps$/i, 2],
  [/^H$/, 2],
  [/^minutes$/i, 0.05],
  [/replicas$/i, 2],
  [/bytes$/i, 1024],
  [/^batch(-?size)?$/i, 4],
  [/^tokens$/i, 16],
  [/^tokens-?per-?step$/i, 256],
  [/^(repeats|repetitions|rounds|runs)$/i, 2],
];

export function smokeMode(): boolean {
  return process.env.GROVE_SMOKE === '1';
}

/** The value, capped in smoke mode when its name is a budget. */
export function smokeCap(name: string, value: number): number {
  if (!smokeMode()) return value;
  const cap = CAPS.find(([pattern]) => pattern.test(name))?.[1];
  return cap === undefined ? value : Math.min(value, cap);
}

/**
 * A copy of a JSON-like value (a run spec, parsed options) with every budget capped in smoke
 * mode: numbers, numeric strings and comma-separated lists of numbers, at any depth. A capped
 * list keeps each distinct value once.
 */
export function smokeBudget<T>(value: T): T {
  if (!smokeMode()) return value;
  return capWithin(value, '') as T;
}

function capWithin(value: unknown, name: string): unknown {
  if (typeof value === 'number') return smokeCap(name, value);
  if (typeof value === 'string' && /^\d+(\.\d+)?(,\d+(\.\d+)?)*$/.test(value)) {
    const capped = value.split(',').map((item) => smokeCap(name, Number(item)));
    return [...new Set(capped)].join(',');
  }
  if (Array.isArray(value)) return value.map((item) => capWithin(item, name));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, capWithin(item, key)]));
  return value;
}
