/**
 * Sampling runs in child processes, a bounded number at a time: a request over the cap is
 * refused at once (503), a sample past its time is killed (504), and a client that leaves
 * takes its child with it. One child per sample: the backend loads in about a second, small
 * next to the generation itself.
 */
import { join } from 'node:path';
import { runChildTask, settingsFromEnv } from '@grove/jobs';
import { z } from 'zod';

const SAMPLE_TASK = join(import.meta.dirname, 'sample-task.ts');

export interface SampleInput {
  /** The model's checkpoint folder. */
  folder: string;
  prompt: string;
  tokens: number;
  temperature: number;
  seed: number;
}

export interface SampleResult {
  text: string;
}

export const SamplingLimits = z.object({
  concurrency: z.coerce.number().int().min(1).max(64).default(2),
  timeoutMs: z.coerce.number().int().min(100).max(600_000).default(60_000),
});
export type SamplingLimits = z.output<typeof SamplingLimits>;

export const samplingLimitsFromEnv = (env: NodeJS.ProcessEnv = process.env): SamplingLimits =>
  settingsFromEnv(
    SamplingLimits,
    { concurrency: 'GROVE_SAMPLE_CONCURRENCY', timeoutMs: 'GROVE_SAMPLE_TIMEOUT_MS' },
    env,
  );

export class SamplerBusyError extends Error {
  /** A typical sample's length: when trying again is worthwhile. */
  readonly retryAfterSeconds = 5;
  constructor(concurrency: number) {
    super(`All ${concurrency} sampling slots are busy; try again in a few seconds.`);
    this.name = 'SamplerBusyError';
  }
}

export class SampleTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`Sampling took longer than ${timeoutMs / 1000} s and was stopped; ask for fewer tokens.`);
    this.name = 'SampleTimeoutError';
  }
}

export class SampleAbortedError extends Error {
  constructor() {
    super('The client left before the sample was done.');
    this.name = 'SampleAbortedError';
  }
}

export class SamplingPool {
  private running = 0;

  constructor(private readonly limits: SamplingLimits) {}

  /** Samples in a child process; `signal` (the client leaving) kills it. */
  async sample(input: SampleInput, signal: AbortSignal): Promise<string> {
    if (signal.aborted) throw new SampleAbortedError();
    if (this.running >= this.limits.concurrency) throw new SamplerBusyError(this.limits.concurrency);
    this.running += 1;
    const task = runChildTask<SampleInput, never, SampleResult>(SAMPLE_TASK, input, () => {});
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      task.kill();
    }, this.limits.timeoutMs);
    const abort = () => task.kill();
    signal.addEventListener('abort', abort, { once: true });
    try {
      // A killed child settles this once it has exited, so its slot frees only when it is gone.
      return (await task.result).text;
    } catch (error) {
      if (timedOut) throw new SampleTimeoutError(this.limits.timeoutMs);
      if (signal.aborted) throw new SampleAbortedError();
      throw error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      this.running -= 1;
    }
  }
}
