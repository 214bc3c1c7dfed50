import type { ScoreRow } from '@grove/jobs';

export type { ScoreRow };

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/**
 * Prints rows as a models × domains grid of bits per byte, with each model's mean and, when the
 * rows carry them, the parameters active per token and the inference tokens per second.
 */
export function printTable(rows: ScoreRow[]): void {
  const models = [...new Set(rows.map((row) => row.model))];
  const domains = [...new Set(rows.map((row) => row.domain))];
  const costs = rows.some((row) => row.activeParameters !== undefined);
  const width = Math.max(5, ...models.map((model) => model.length));
  const cell = (text: string) => text.padStart(Math.max(9, ...domains.map((d) => d.length)) + 2);
  const costHeader = costs ? `${'active params'.padStart(15)}${'tokens/s'.padStart(10)}` : '';
  const lines = [`${'model'.padEnd(width)}${domains.map(cell).join('')}${cell('mean')}${costHeader}`];
  for (const model of models) {
    const own = rows.filter((row) => row.model === model);
    const scores = domains.map((domain) => own.find((row) => row.domain === domain)?.bitsPerByte);
    const present = scores.filter((score): score is number => score !== undefined);
    let line = `${model.padEnd(width)}${scores.map((s) => cell(s === undefined ? '-' : s.toFixed(3))).join('')}${cell(mean(present).toFixed(3))}`;
    if (costs) {
      const active = own.flatMap((row) => (row.activeParameters === undefined ? [] : [row.activeParameters]));
      const speed = own.flatMap((row) => (row.tokensPerSecond === undefined ? [] : [row.tokensPerSecond]));
      line += `${(active.length ? `${(mean(active) / 1e6).toFixed(2)} M` : '-').padStart(15)}`;
      line += `${(speed.length ? Math.round(mean(speed)).toString() : '-').padStart(10)}`;
    }
    lines.push(line);
  }
  process.stdout.write(`bits per byte on held-out text (lower is better)\n${lines.join('\n')}\n`);
}
