import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type PresetName, parameterCount, presetConfig } from '@grove/model';
import { measureMatmulPeak, measureTrainer } from '@grove/train';
import type { Command } from 'commander';
import { list, positiveInteger, startBackend } from '../options.js';

const TORCH_SCRIPT = fileURLToPath(new URL('../../../../bench/torch_trainer.py', import.meta.url));
/** Debian's interpreter: python3-torch installs for it, not for other Pythons on PATH. */
const SYSTEM_PYTHON = '/usr/bin/python3';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('Measure Grove on this machine.');
  bench
    .command('trainer')
    .description('Training tokens/s and FLOPs utilisation against this backend’s own matmul peak.')
    .option('--presets <list>', 'model presets to measure', list, ['tiny', 'small'])
    .option(
      '--tokens-per-step <n>',
      'tokens per training step; sequences = this / context length',
      positiveInteger,
      2048,
    )
    .option('--steps <n>', 'timed steps per preset (after 2 warm-up steps)', positiveInteger, 5)
    .option('--json', 'print the results as JSON', false)
    .action(async (options: { presets: string[]; tokensPerStep: number; steps: number; json: boolean }) => {
      const backend = await startBackend();
      const peak = measureMatmulPeak();
      const results = options.presets.map((preset) => {
        const config = presetConfig(preset);
        // Equal tokens per step for every preset: the same work, and within the wasm heap for `small`.
        const batchSize = Math.max(1, Math.round(options.tokensPerStep / config.contextLength));
        const grove = measureTrainer(config, batchSize, options.steps, peak);
        const torch = torchTokensPerSecond(preset as PresetName, batchSize, options.steps);
        return { preset, batchSize, parameters: parameterCount(config), ...grove, torchTokensPerSecond: torch };
      });
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ backend, matmulPeakGflops: peak.gflops, results })}\n`);
        return;
      }
      process.stdout.write(`${backend} matmul peak: ${peak.gflops.toFixed(1)} GFLOP/s at [${peak.shape.join('×')}]\n`);
      for (const r of results) {
        const versus = r.torchTokensPerSecond
          ? `  PyTorch (1 thread) ${Math.round(r.torchTokensPerSecond)} tokens/s, Grove at ${(r.tokensPerSecond / r.torchTokensPerSecond).toFixed(2)}×`
          : '  PyTorch not installed (apt-get install python3-torch) — no comparison';
        process.stdout.write(
          `${r.preset.padEnd(6)} ${(r.parameters / 1e6).toFixed(2)} M params, batch ${r.batchSize}  ${Math.round(r.tokensPerSecond)} tokens/s  ` +
            `${r.gflops.toFixed(1)} GFLOP/s  MFU ${(100 * r.utilisation).toFixed(0)} % of peak\n${versus}\n`,
        );
      }
    });
}

/** Tokens/s of the same configuration in PyTorch, or undefined when PyTorch is not installed. */
function torchTokensPerSecond(preset: PresetName, batchSize: number, steps: number): number | undefined {
  const config = presetConfig(preset);
  const args = [
    TORCH_SCRIPT,
    ...['--vocab', config.vocabSize, '--context', config.contextLength, '--layers', config.layers],
    ...['--width', config.width, '--heads', config.heads, '--ffn-width', config.ffnWidth],
    ...['--batch', batchSize, '--steps', steps],
  ].map(String);
  const run = spawnSync(SYSTEM_PYTHON, args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  if (run.error || run.status !== 0) {
    if (run.stderr?.includes('No module named')) return undefined;
    if (run.error) return undefined;
    throw new Error(`The PyTorch comparison failed: ${run.stderr.trim().split('\n').pop()}`);
  }
  return JSON.parse(run.stdout.trim().split('\n').pop() as string).tokensPerSecond;
}
