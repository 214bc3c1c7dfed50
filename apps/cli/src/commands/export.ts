import { exportHuggingFace } from '@grove/hf';
import { loadCheckpoint } from '@grove/store';
import { type Command, Option } from 'commander';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('Write a model in another library’s layout: hf, a folder transformers loads with from_pretrained.')
    .argument('<model>', 'model folder')
    .addOption(new Option('--format <format>', 'layout to write').choices(['hf']).default('hf'))
    .requiredOption('--out <folder>', 'folder to create')
    .action((folder: string, options: { format: 'hf'; out: string }) => {
      const architecture = exportHuggingFace(loadCheckpoint(folder), options.out);
      process.stdout.write(`wrote ${options.out}: ${architecture}, for AutoModelForCausalLM.from_pretrained\n`);
    });
}
