import { smokeBudget } from '@grove/train';
import { Command } from 'commander';
import { registerBench } from './commands/bench.js';
import { registerEval } from './commands/eval.js';
import { registerExport } from './commands/export.js';
import { registerGenerate } from './commands/generate.js';
import { registerImport } from './commands/import.js';
import { registerService } from './commands/service.js';
import { registerTrain } from './commands/train.js';

const program = new Command()
  .name('grove')
  .description('Train a forest of expert language models.')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) })
  // GROVE_SMOKE=1 caps every budget option (steps, minutes, bytes, …) so documented commands run in seconds.
  .hook('preAction', (_program, command) => {
    for (const [key, value] of Object.entries(smokeBudget(command.opts())))
      command.setOptionValueWithSource(key, value, command.getOptionValueSource(key));
  });

registerTrain(program);
registerEval(program);
registerGenerate(program);
registerExport(program);
registerImport(program);
registerBench(program);
registerService(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // One line for the user; the stack only when asked for.
  process.stderr.write(`grove: ${error instanceof Error ? error.message : String(error)}\n`);
  if (process.env.GROVE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(1);
}
