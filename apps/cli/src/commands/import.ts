import { importHuggingFace } from '@grove/hf';
import { refuseOccupiedFolder, saveCheckpoint } from '@grove/store';
import type { Command } from 'commander';

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('Read a Hugging Face LLaMA, Arcee or Mixtral folder (as grove export writes) into a model folder.')
    .argument('<folder>', 'Hugging Face model folder')
    .requiredOption('--out <model>', 'model folder to create')
    .action((folder: string, options: { out: string }) => {
      refuseOccupiedFolder(options.out);
      const checkpoint = importHuggingFace(folder);
      saveCheckpoint(options.out, checkpoint);
      process.stdout.write(`wrote ${options.out}\n`);
    });
}
