import { Rng, sampleText } from '@grove/model';
import { loadCheckpoint } from '@grove/store';
import { modelFromCheckpoint } from '@grove/train';
import type { Command } from 'commander';
import { nonNegativeInteger, nonNegativeNumber, positiveInteger, startBackend } from '../options.js';

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('Sample text from a trained model.')
    .argument('<model>', 'model folder')
    .option('--prompt <text>', 'text to continue', 'The ')
    .option('--tokens <n>', 'bytes to generate', positiveInteger, 300)
    .option('--temperature <t>', 'sampling temperature (0: greedy)', nonNegativeNumber, 0.8)
    .option('--top-k <k>', 'sample among the k likeliest bytes (0: all)', nonNegativeInteger, 40)
    .option('--seed <n>', 'sampling seed', nonNegativeInteger, 1)
    .action(
      async (
        folder: string,
        options: { prompt: string; tokens: number; temperature: number; topK: number; seed: number },
      ) => {
        await startBackend();
        const model = modelFromCheckpoint(loadCheckpoint(folder));
        const text = sampleText(model, options.prompt, {
          maxNewTokens: options.tokens,
          temperature: options.temperature,
          topK: options.topK,
          rng: new Rng(options.seed),
        });
        process.stdout.write(`${options.prompt}${text}\n`);
      },
    );
}
