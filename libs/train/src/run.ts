/** Drives a Trainer to its step budget with periodic held-out evaluation and checkpoints. */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Domain } from '@grove/data';
import { saveNumberedCheckpoint } from '@grove/store';
import { bitsPerByte, EVALUATION_DEFAULTS, type EvaluationSettings } from './evaluate.js';
import type { StepReport, Trainer } from './trainer.js';

export interface DomainScore {
  domain: string;
  bitsPerByte: number;
}

export interface EvaluationReport {
  step: number;
  tokensSeen: number;
  scores: DomainScore[];
}

export interface TrainingLoopOptions {
  /** Held-out sets scored every `evaluateEvery` steps and at the end. */
  evaluationDomains: Domain[];
  evaluateEvery: number;
  evaluation?: EvaluationSettings;
  /** Where numbered checkpoints go; none are written without it. */
  checkpointRoot?: string;
  checkpointEvery?: number;
  /** Kept in every checkpoint's state beside the trainer's own, for whoever resumes it. */
  checkpointState?: Record<string, unknown>;
  onStep?: (report: StepReport, tokensPerSecond: number) => void;
  onEvaluation?: (report: EvaluationReport) => void;
  /** Checked between steps: stop early (after a checkpoint) when it turns true. */
  shouldStop?: () => boolean;
}

export function evaluateDomains(trainer: Trainer, domains: Domain[], settings = EVALUATION_DEFAULTS): EvaluationReport {
  return {
    step: trainer.step,
    tokensSeen: trainer.tokensSeen,
    scores: domains.map((domain) => ({
      domain: domain.name,
      bitsPerByte: bitsPerByte(trainer.model, domain.heldOut, settings),
    })),
  };
}

/** Trains until the budget is spent or `shouldStop`; returns every evaluation made. */
export async function runTraining(trainer: Trainer, options: TrainingLoopOptions): Promise<EvaluationReport[]> {
  const evaluations: EvaluationReport[] = [];
  const evaluate = () => {
    const report = evaluateDomains(trainer, options.evaluationDomains, options.evaluation);
    evaluations.push(report);
    options.onEvaluation?.(report);
  };
  const checkpoint = () => {
    if (!options.checkpointRoot) return;
    saveNumberedCheckpoint(options.checkpointRoot, trainer.step, trainer.checkpoint(options.checkpointState));
  };
  if (trainer.step === 0 && options.evaluationDomains.length) evaluate();
  let lastCheckpointStep = trainer.step;
  while (!trainer.finished) {
    const started = performance.now();
    const report = trainer.trainStep();
    options.onStep?.(report, report.tokens / ((performance.now() - started) / 1000));
    if (options.evaluateEvery > 0 && trainer.step % options.evaluateEvery === 0 && !trainer.finished) evaluate();
    if (options.checkpointEvery && trainer.step % options.checkpointEvery === 0) {
      checkpoint();
      lastCheckpointStep = trainer.step;
    }
    // Let signals, timers and progress output through between steps.
    await yieldToEventLoop();
    if (options.shouldStop?.()) break;
  }
  if (trainer.step !== lastCheckpointStep) checkpoint();
  if (trainer.finished && options.evaluationDomains.length) evaluate();
  return evaluations;
}
