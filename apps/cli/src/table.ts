import type { ScoreRow } from '@grove/jobs';

export type { ScoreRow };

/** Prints rows as a models × domains grid of bits per byte, with each model's mean. */
export function printTable(rows: ScoreRow[]): void {
  const models = [...new Set(rows.map((row) => row.model))];
  const domains = [...new Set(rows.map((row) => row.domain))];
  const width = Math.max(5, ...models.map((model) => model.length));
  const cell = (text: string) => text.padStart(Math.max(9, ...domains.map((d) => d.length)) + 2);
  const lines = [`${'model'.padEnd(width)}${domains.map(cell).join('')}${cell('mean')}`];
  for (const model of models) {
    const scores = domains.map(
      (domain) => rows.find((row) => row.model === model && row.domain === domain)?.bitsPerByte,
    );
    const present = scores.filter((score): score is number => score !== undefined);
    const mean = present.reduce((a, b) => a + b, 0) / present.length;
    lines.push(
      `${model.padEnd(width)}${scores.map((s) => cell(s === undefined ? '-' : s.toFixed(3))).join('')}${cell(mean.toFixed(3))}`,
    );
  }
  process.stdout.write(`bits per byte on held-out text (lower is better)\n${lines.join('\n')}\n`);
}
