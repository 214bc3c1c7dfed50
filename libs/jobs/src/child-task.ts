/**
 * CPU-bound work (training, merging, evaluating) runs in a child process so the parent's
 * event loop stays free for BullMQ lock renewal, cancellation checks and signals.
 *
 * Protocol: the parent sends one `start` message with the input; the child sends any number
 * of `progress` messages and ends with `done` or `failed`. SIGTERM asks the child to stop at
 * the next safe point (after a checkpoint) and report `interrupted`. A child whose parent
 * dies exits at once: its last checkpoint stands for whoever retries the job.
 */
import { fork } from 'node:child_process';

export type TaskMessage<Progress, Result> =
  | { type: 'progress'; progress: Progress }
  | { type: 'done'; result: Result }
  | { type: 'interrupted' }
  | { type: 'failed'; message: string; permanent: boolean };

export class TaskInterrupted extends Error {
  constructor() {
    super('The task stopped at a checkpoint before finishing.');
    this.name = 'TaskInterrupted';
  }
}

export class TaskFailed extends Error {
  constructor(
    message: string,
    /** A failure that retrying cannot fix (bad input), as opposed to a crash. */
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'TaskFailed';
  }
}

export interface RunningTask<Result> {
  result: Promise<Result>;
  /** Asks the child to stop at its next checkpoint. */
  interrupt(): void;
  kill(): void;
}

/** Starts `modulePath` (TypeScript, through tsx) in a child process with `input`. */
export function runChildTask<Input, Progress, Result>(
  modulePath: string,
  input: Input,
  onProgress: (progress: Progress) => void,
): RunningTask<Result> {
  const child = fork(modulePath, [], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const result = new Promise<Result>((resolve, reject) => {
    let settled = false;
    child.on('message', (message: TaskMessage<Progress, Result>) => {
      if (message.type === 'progress') onProgress(message.progress);
      else if (message.type === 'done') {
        settled = true;
        resolve(message.result);
      } else if (message.type === 'interrupted') {
        settled = true;
        reject(new TaskInterrupted());
      } else if (message.type === 'failed') {
        settled = true;
        reject(new TaskFailed(message.message, message.permanent));
      }
    });
    child.on('exit', (code, signal) => {
      if (!settled)
        reject(new TaskFailed(`The task process exited unexpectedly (${signal ?? `code ${code}`}).`, false));
    });
    child.send({ type: 'start', input });
  });
  return {
    result,
    interrupt: () => child.kill('SIGTERM'),
    kill: () => child.kill('SIGKILL'),
  };
}

/** Errors a task raises for bad input; reported as permanent so the job is not retried. */
export class PermanentTaskError extends Error {}

/**
 * The child side: runs `work` on the input the parent sends. `work` gets a `stopRequested`
 * probe for SIGTERM and a `report` function for progress; it returns the result, or
 * `undefined` when it stopped early at a checkpoint.
 */
export function serveChildTask<Input, Progress, Result>(
  work: (
    input: Input,
    context: { stopRequested: () => boolean; report: (progress: Progress) => void },
  ) => Promise<Result | undefined>,
): void {
  let stop = false;
  process.on('SIGTERM', () => {
    stop = true;
  });
  // Orphaned by a killed parent: nobody will read our result, and the job will be retried.
  process.on('disconnect', () => process.exit(0));
  const send = (message: TaskMessage<Progress, Result>, then: () => void = () => {}) => process.send?.(message, then);
  process.once('message', async (message: { type: 'start'; input: Input }) => {
    let outcome: TaskMessage<Progress, Result>;
    try {
      const result = await work(message.input, {
        stopRequested: () => stop,
        report: (progress) => send({ type: 'progress', progress }),
      });
      outcome = result === undefined ? { type: 'interrupted' } : { type: 'done', result };
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      outcome = { type: 'failed', message: text, permanent: error instanceof PermanentTaskError };
    }
    // Leave only once the last message is on its way.
    send(outcome, () => process.disconnect());
  });
}
