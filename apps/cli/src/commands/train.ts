import { join } from 'node:path';
import { DEFAULT_DOMAINS, loadDomain, mixtureOf } from '@grove/data';
import { type ModelConfig, parameterCount, presetConfig, validateModelConfig } from '@grove/model';
import { type Checkpoint, latestCheckpointFolder, loadCheckpoint, saveCheckpoint } from '@grove/store';
import {
  EVALUATION_DEFAULTS,
  runTraining,
  smokeCap,
  stepsWithinBudget,
  TRAINING_DEFAULTS,
  Trainer,
  type TrainingSettings,
} from '@grove/train';
import { type Command, Option } from 'commander';
import {
  fraction,
  list,
  nonNegativeInteger,
  positiveInteger,
  positiveNumber,
  progressLine,
  startBackend,
} from '../options.js';
import { printTable } from '../table.js';

interface TrainOptions {
  preset: string;
  positions?: 'learned' | 'rotary';
  activation?: 'gelu' | 'swiglu';
  domains: string[];
  steps: number;
  batchSize: number;
  accumulation: number;
  lr: number;
  warmup: number;
  lrFloor: number;
  seed: number;
  out: string;
  evalEvery: number;
  evalBytes: number;
  checkpointEvery: number;
  resume: boolean;
  minutes?: number;
}

/** Steps timed during warm-up before a --minutes run fixes its length. */
const CALIBRATION_STEPS = smokeCap('calibrationSteps', 30);
/**
 * Later steps run a little slower than the first ones timed (a larger heap, a busier
 * machine): plan for this much more time per step so the budget holds.
 */
const STEP_TIME_MARGIN = 1.08;
/** Options that fix how a run trains: a resumed run keeps the ones it started with. */
const FIXED_AT_START = [
  ...['preset', 'positions', 'activation', 'steps', 'batchSize', 'accumulation'],
  ...['lr', 'warmup', 'lrFloor', 'seed', 'minutes'],
];

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('Train a language model on one or more domains and save it as safetensors.')
    .option('--preset <name>', 'model shape: tiny or small', 'tiny')
    .addOption(
      new Option('--positions <kind>', 'override the preset: learned or rotary positions').choices([
        'learned',
        'rotary',
      ]),
    )
    .addOption(new Option('--activation <kind>', 'override the preset: gelu or swiglu').choices(['gelu', 'swiglu']))
    .option('--domains <list>', 'Brown domains or name=folder user data, comma-separated', list, DEFAULT_DOMAINS)
    .option('--steps <n>', 'optimizer updates', positiveInteger, TRAINING_DEFAULTS.steps)
    .option('--batch-size <n>', 'sequences per micro-batch', positiveInteger, TRAINING_DEFAULTS.batchSize)
    .option('--accumulation <n>', 'micro-batches per update', positiveInteger, TRAINING_DEFAULTS.accumulation)
    .option('--lr <rate>', 'peak learning rate', positiveNumber, TRAINING_DEFAULTS.learningRate)
    .option('--warmup <steps>', 'warm-up steps', nonNegativeInteger, TRAINING_DEFAULTS.warmupSteps)
    .option(
      '--lr-floor <fraction>',
      'the cosine schedule ends at lr × this',
      fraction,
      TRAINING_DEFAULTS.finalLearningRateFraction,
    )
    .option('--seed <n>', 'seed for weights and data order', nonNegativeInteger, TRAINING_DEFAULTS.seed)
    .option('--out <folder>', 'where the model and its checkpoints go', join('.grove', 'models', 'latest'))
    .option('--eval-every <steps>', 'held-out evaluation interval (0: only at the end)', nonNegativeInteger, 200)
    .option('--eval-bytes <n>', 'held-out bytes scored per domain', positiveInteger, EVALUATION_DEFAULTS.maxBytes)
    .option('--checkpoint-every <steps>', 'resumable checkpoint interval', positiveInteger, 100)
    .option('--minutes <m>', 'fit --steps to this wall-clock budget (timed during warm-up)', positiveNumber)
    .option('--resume', 'continue from the newest checkpoint in --out', false)
    .action(async (options: TrainOptions, command: Command) => {
      // Everything a user can get wrong is checked before the backend spends time starting.
      const given = (name: string) => command.getOptionValueSource(name) === 'cli';
      const checkpointRoot = join(options.out, 'checkpoints');
      const resumeFrom = options.resume ? latestCheckpointFolder(checkpointRoot) : undefined;
      if (options.resume && !resumeFrom) throw new Error(`Nothing to resume: ${checkpointRoot} holds no checkpoint.`);
      if (options.minutes && !options.resume && options.warmup < CALIBRATION_STEPS) {
        throw new Error(`--minutes needs a fresh run with at least ${CALIBRATION_STEPS} warm-up steps to time.`);
      }
      const resumed = resumeFrom ? loadCheckpoint(resumeFrom) : undefined;
      if (resumed) refuseChangedSettings(given);
      const domainNames = resumed
        ? resumedDomains(resumed, given('domains') ? options.domains : undefined)
        : options.domains;
      const modelConfig = resumed ? undefined : validateModelConfig(modelConfigFrom(options));
      const domains = domainNames.map((reference) => loadDomain(reference)); // the user's own folders: no roots
      const stream = mixtureOf(domains);
      await startBackend();
      const trainer = resumed
        ? Trainer.resume(resumed, stream)
        : Trainer.fresh(modelConfig as ModelConfig, settingsFrom(options), stream);
      const config = trainer.model.config;
      process.stderr.write(
        `model: ${parameterCount(config).toLocaleString('en')} parameters, ${config.layers} layers × ${config.width} wide, context ${config.contextLength}\n` +
          `data: ${domains.map((d) => `${d.name} ${(d.train.length / 1e6).toFixed(2)} MB`).join(', ')}\n` +
          (resumeFrom ? `resuming from ${resumeFrom} at step ${trainer.step}\n` : ''),
      );

      const progress = progressLine(10);
      const started = performance.now();
      const tokensAtStart = trainer.tokensSeen;
      const budget = options.minutes
        ? fitToBudget(trainer, options.minutes * 60, options.evalEvery, started)
        : undefined;
      let stopRequested = false;
      const stop = () => {
        stopRequested = true;
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const evaluations = await runTraining(trainer, {
        evaluationDomains: domains,
        evaluateEvery: options.evalEvery,
        evaluation: { ...EVALUATION_DEFAULTS, maxBytes: options.evalBytes },
        checkpointRoot,
        checkpointEvery: options.checkpointEvery,
        checkpointState: { domains: domainNames },
        shouldStop: () => stopRequested,
        onStep: (report) => {
          budget?.onStep(report.step);
          const elapsed = (performance.now() - started) / 1000;
          const rate = (trainer.tokensSeen - tokensAtStart) / elapsed;
          progress.update(
            report.step === trainer.settings.steps,
            `step ${report.step}/${trainer.settings.steps}  loss ${report.loss.toFixed(3)}  ` +
              `${(report.loss / Math.LN2).toFixed(3)} bits/byte  lr ${report.learningRate.toExponential(2)}  ` +
              `${Math.round(rate)} tokens/s  ${elapsed.toFixed(0)} s`,
          );
        },
        onEvaluation: (report) => {
          budget?.onEvaluation();
          progress.clear();
          const scores = report.scores.map((s) => `${s.domain} ${s.bitsPerByte.toFixed(3)}`).join('  ');
          process.stderr.write(`held-out bits/byte at step ${report.step} (${report.tokensSeen} tokens): ${scores}\n`);
        },
      });
      progress.done();
      if (stopRequested) {
        process.stderr.write(`stopped at step ${trainer.step}; continue with --resume --out ${options.out}\n`);
        return;
      }
      const final = trainer.checkpoint();
      const last = evaluations[evaluations.length - 1];
      saveCheckpoint(options.out, {
        config: final.config,
        weights: final.weights,
        state: { kind: 'model', domains: domainNames, trainingSettings: trainer.settings, evaluations },
      });
      if (last) {
        printTable(last.scores.map((s) => ({ model: options.out, domain: s.domain, bitsPerByte: s.bitsPerByte })));
      }
      process.stderr.write(`saved ${options.out}\n`);
    });
}

/** A resumed run goes on with the settings it was started with; giving others is a mistake, not a change. */
function refuseChangedSettings(given: (name: string) => boolean): void {
  const changed = FIXED_AT_START.find(given);
  if (changed) {
    const flag = `--${changed.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
    throw new Error(`${flag} cannot change a resumed run, which keeps the settings it was started with; leave it out.`);
  }
}

/** The domains a resumed run trains on: those its checkpoint records, which --domains may only repeat. */
function resumedDomains(checkpoint: Checkpoint, given: string[] | undefined): string[] {
  const recorded = (checkpoint.state as { domains?: unknown } | undefined)?.domains;
  if (!Array.isArray(recorded)) {
    if (given) return given;
    throw new Error('That checkpoint does not record its domains; give --domains as the run was started.');
  }
  if (given && given.join(',') !== recorded.join(',')) {
    throw new Error(
      `--domains ${given.join(',')} differs from the run's domains ${recorded.join(',')}; leave --domains out to resume.`,
    );
  }
  return recorded as string[];
}

/** Times the first steps and the first evaluation, then fixes the run's length to the budget. */
function fitToBudget(trainer: Trainer, budgetSeconds: number, evaluateEvery: number, started: number) {
  let evaluationSeconds = 0;
  let lastEvaluationEnd = started;
  const stepEnds: number[] = [];
  return {
    onEvaluation() {
      const now = performance.now();
      if (evaluationSeconds === 0) evaluationSeconds = (now - lastEvaluationEnd) / 1000;
      lastEvaluationEnd = now;
    },
    onStep(step: number) {
      stepEnds.push(performance.now());
      if (step !== CALIBRATION_STEPS) return;
      // The first steps pay for compilation and warm caches; time the last two thirds.
      const timed = stepEnds.slice(CALIBRATION_STEPS / 3);
      const secondsPerStep = (STEP_TIME_MARGIN * (timed[timed.length - 1] - timed[0])) / 1000 / (timed.length - 1);
      const steps = stepsWithinBudget({
        budgetSeconds,
        elapsedSeconds: (performance.now() - started) / 1000,
        stepsDone: step,
        secondsPerStep,
        evaluationSeconds,
        evaluateEvery,
      });
      trainer.setTotalSteps(steps);
      process.stderr.write(
        `\nbudget: ${(budgetSeconds / 60).toFixed(1)} min at ${secondsPerStep.toFixed(2)} s/step → ${steps} steps\n`,
      );
    },
  };
}

function modelConfigFrom(options: TrainOptions): ModelConfig {
  const config = presetConfig(options.preset);
  return {
    ...config,
    positions: options.positions ?? config.positions,
    activation: options.activation ?? config.activation,
  };
}

function settingsFrom(options: TrainOptions): TrainingSettings {
  return {
    ...TRAINING_DEFAULTS,
    // A budgeted run starts long and is cut to size during warm-up.
    steps: options.minutes ? 1_000_000 : options.steps,
    batchSize: options.batchSize,
    accumulation: options.accumulation,
    learningRate: options.lr,
    warmupSteps: Math.min(options.warmup, options.steps),
    finalLearningRateFraction: options.lrFloor,
    seed: options.seed,
  };
}
