import { basename } from 'node:path';
import { DEFAULT_DOMAINS, loadDomain } from '@grove/data';
import { loadCheckpoint } from '@grove/store';
import { bitsPerByte, EVALUATION_DEFAULTS, modelFromCheckpoint } from '@grove/train';
import type { Command } from 'commander';
import { list, positiveInteger, startBackend } from '../options.js';
import { printTable, type ScoreRow } from '../table.js';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('Score models on each domain’s held-out text, in bits per byte.')
    .argument('<models...>', 'model folders, optionally named: name=folder')
    .option('--domains <list>', 'domains to score on', list, DEFAULT_DOMAINS)
    .option('--bytes <n>', 'held-out bytes scored per domain', positiveInteger, 65_536)
    .option('--json', 'print {"rows":[{model, domain, bitsPerByte}]} instead of a table', false)
    .action(async (models: string[], options: { domains: string[]; bytes: number; json: boolean }) => {
      await startBackend();
      const domains = options.domains.map((reference) => loadDomain(reference)); // the user's own folders: no roots
      const rows: ScoreRow[] = [];
      for (const reference of models) {
        const equals = reference.indexOf('=');
        const name = equals > 0 ? reference.slice(0, equals) : basename(reference);
        const model = modelFromCheckpoint(loadCheckpoint(equals > 0 ? reference.slice(equals + 1) : reference));
        for (const domain of domains) {
          const score = bitsPerByte(model, domain.heldOut, { ...EVALUATION_DEFAULTS, maxBytes: options.bytes });
          rows.push({ model: name, domain: domain.name, bitsPerByte: score });
        }
        model.dispose();
      }
      if (options.json) process.stdout.write(`${JSON.stringify({ rows })}\n`);
      else printTable(rows);
    });
}
