import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeBackend, type PresetName, presetConfig, selectBackend } from '@grove/model';
import { measureMatmulPeak, measureTrainer } from '@grove/train';
import type { Command } from 'commander';
import { list, positiveInteger } from '../options.js';

const TORCH_SCRIPT = fileURLToPath(new URL('../../../../bench/torch_trainer.py', import.meta.url));
/** Debian's interpreter: python3-torch installs for it, not for other Pythons on PATH. */
const SYSTEM_PYTHON = '/usr/bin/python3';

interface TrainerOptions {
  presets: string[];
  tokensPerStep: number;
  steps: number;
  stock: boolean;
  torch: boolean;
  json: boolean;
}

export interface TrainerRow {
  preset: string;
  /** `wasm+native` when the native kernels ran, else the backend's name. */
  backend: string;
  tokensPerSecond: number;
  /** Model FLOPs utilisation against this configuration's own measured matmul peak. */
  mfu: number;
  torchTokensPerSecond: number | null;
  ratio: number | null;
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('Measure Grove on this machine.');
  bench
    .command('trainer')
    .description('Training tokens/s and FLOPs utilisation against this backend’s own matmul peak, beside PyTorch’s.')
    .option('--presets <list>', 'model presets to measure', list, ['tiny', 'small'])
    .option(
      '--tokens-per-step <n>',
      'tokens per training step; sequences = this / context length',
      positiveInteger,
      2048,
    )
    .option('--steps <n>', 'timed steps per preset (after 2 warm-up steps)', positiveInteger, 5)
    .option('--stock', 'also measure the stock wasm kernels (GROVE_NATIVE=0, in a child process)', false)
    .option('--no-torch', 'skip the PyTorch comparison')
    .option('--json', 'print the results as JSON', false)
    .action(async (options: TrainerOptions) => {
      const choice = await selectBackend();
      process.stderr.write(`${describeBackend(choice)}\n`);
      const backend = choice.kernels.native.length ? `${choice.name}+native` : choice.name;
      const peak = measureMatmulPeak();
      const rows: TrainerRow[] = [];
      // Preset by preset, each configuration right after the other: the machine's load drifts.
      for (const preset of options.presets) {
        const config = presetConfig(preset);
        // Equal tokens per step for every preset: the same work, and within the wasm heap for `small`.
        const batchSize = Math.max(1, Math.round(options.tokensPerStep / config.contextLength));
        const grove = measureTrainer(config, batchSize, options.steps, peak);
        const torch = options.torch
          ? (torchTokensPerSecond(preset as PresetName, batchSize, options.steps) ?? null)
          : null;
        rows.push(row(preset, backend, grove.tokensPerSecond, grove.utilisation, torch));
        if (options.stock && choice.kernels.native.length) {
          const stock = stockRow(preset, options);
          rows.push(row(preset, stock.backend, stock.tokensPerSecond, stock.mfu, torch));
        }
      }
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ rows })}\n`);
        return;
      }
      process.stdout.write(`${backend} matmul peak: ${peak.gflops.toFixed(1)} GFLOP/s at [${peak.shape.join('×')}]\n`);
      for (const r of rows) {
        const versus =
          r.torchTokensPerSecond === null
            ? 'PyTorch not measured (apt-get install python3-torch)'
            : `PyTorch (1 thread) ${Math.round(r.torchTokensPerSecond)} tokens/s, Grove at ${(r.ratio as number).toFixed(2)}×`;
        process.stdout.write(
          `${r.preset.padEnd(6)} ${r.backend.padEnd(12)} ${Math.round(r.tokensPerSecond)} tokens/s  ` +
            `MFU ${(100 * r.mfu).toFixed(0)} % of peak  ${versus}\n`,
        );
      }
    });
}

function row(preset: string, backend: string, tokensPerSecond: number, mfu: number, torch: number | null): TrainerRow {
  const ratio = torch === null ? null : tokensPerSecond / torch;
  return { preset, backend, tokensPerSecond, mfu, torchTokensPerSecond: torch, ratio };
}

/** The same measurement on the stock wasm kernels: a fresh process, since kernels register once per process. */
function stockRow(preset: string, options: TrainerOptions): TrainerRow {
  const args = [
    ...[process.argv[1], 'bench', 'trainer', '--presets', preset, '--json', '--no-torch'],
    ...['--tokens-per-step', String(options.tokensPerStep), '--steps', String(options.steps)],
  ];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, GROVE_NATIVE: '0' } });
  if (run.status !== 0) throw new Error(`The stock wasm measurement failed: ${run.stderr.trim().split('\n').pop()}`);
  return (JSON.parse(run.stdout.trim().split('\n').pop() as string) as { rows: TrainerRow[] }).rows[0];
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
