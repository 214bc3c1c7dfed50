/**
 * What the merge service hands its child processes, one per job: the job's input, its progress
 * reports and its result. Each job's entry point is in jobs/.
 */
import type { Domain } from '@grove/data';
import { type RunSpec, type ScoreRow, serveChildTask } from '@grove/jobs';
import { selectBackend } from '@grove/model';
import { loadDomains } from './domains.js';

export interface MergerInput {
  runId: string;
  /** grow: the new expert's domain. */
  domain?: string;
  spec: RunSpec;
  stateFolder: string;
}

export interface MergerProgress {
  stage: string;
  done: number;
  total: number;
}

export interface MergerResult {
  /** merge, grow: each merged model's weights over the experts, by model (and target domain for posterior). */
  weights?: Record<string, Record<string, number>>;
  /** eval: the table. */
  rows?: ScoreRow[];
}

export type Report = (progress: MergerProgress) => void;

/** Serves one job kind in this child process: the backend selected and the run's domains loaded first. */
export function serveMergerTask(work: (input: MergerInput, domains: Domain[], report: Report) => MergerResult): void {
  serveChildTask<MergerInput, MergerProgress, MergerResult>(async (input, { report }) => {
    await selectBackend();
    return work(input, loadDomains(input.spec), report);
  });
}
