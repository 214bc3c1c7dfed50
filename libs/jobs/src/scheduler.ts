/**
 * Turns a run into BullMQ jobs. Submitting queues the seed job alone; when the seed is
 * trained, `branch` adds the rest as one flow: eval ← merge ← every expert replica, so
 * merge starts only when all experts are done and eval only after merge. MoE fine-tunes sit
 * between merge and eval (eval ← finetune.btx ← finetune.ds-moe ← merge); the dense baseline
 * is a child of eval of its own, so it trains alongside the experts.
 */
import { type FlowJob, FlowProducer, type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { computePlan } from './compute-plan.js';
import { type JobState, readJobStates } from './job-views.js';
import { type ClusterLimits, clusterLimitsFromEnv, parseRunSpecWithin } from './limits.js';
import {
  CHILD_JOB_OPTIONS,
  DEFAULT_JOB_OPTIONS,
  EVENTS_MAX_LENGTH,
  FINETUNED_METHODS,
  type FinetunedMethod,
  JOB_NAMES,
  jobIds,
  type MergeJobData,
  QUEUES,
  type TrainJobData,
} from './queues.js';
import { domainName, type ExpertSpec, expertsOf, parseGrowRequest, type RunSpec } from './run-spec.js';
import { type RunRecord, RunStore } from './runs.js';

export interface JobView extends JobState {
  id: string;
  name: string;
  domain?: string;
  replica?: number;
  /** The MoE a fine-tune job trains. */
  method?: string;
}

export class RunScheduler {
  readonly runs: RunStore;
  readonly trainQueue: Queue;
  readonly mergeQueue: Queue;
  private readonly flows: FlowProducer;

  constructor(
    readonly connection: Redis,
    /** What one run may ask of this cluster; GROVE_MAX_* by default. */
    readonly limits: ClusterLimits = clusterLimitsFromEnv(),
  ) {
    const options = { connection, streams: { events: { maxLen: EVENTS_MAX_LENGTH } } };
    this.runs = new RunStore(connection);
    this.trainQueue = new Queue(QUEUES.train, options);
    this.mergeQueue = new Queue(QUEUES.merge, options);
    this.flows = new FlowProducer({ connection });
  }

  /** Validates and records a run and queues its seed job; the same id, or key within one scope, twice makes one run. */
  async submit(
    input: unknown,
    idempotencyKey?: string,
    scope?: string,
  ): Promise<{ record: RunRecord; created: boolean }> {
    const spec = parseRunSpecWithin(input, this.limits);
    const result = await this.runs.create(spec, idempotencyKey, scope);
    if (result.created) await this.queueSeed(result.record.id);
    return result;
  }

  private async queueSeed(runId: string): Promise<void> {
    const data: TrainJobData = { runId, role: 'seed' };
    await this.trainQueue.add(JOB_NAMES.seed, data, { ...DEFAULT_JOB_OPTIONS, jobId: jobIds.seed(runId) });
  }

  /** Adds the experts, merge and eval of a run whose seed is trained. Safe to call twice. */
  async branch(runId: string, spec: RunSpec): Promise<void> {
    const experts: FlowJob[] = expertsOf(spec).flatMap((expert) => expertJobs(runId, expert));
    const dense = spec.denseBaseline ? [this.denseJob(runId)] : [];
    await this.flows.add(consolidationFlow(runId, spec, 0, experts, dense));
  }

  /**
   * Grows a completed run by one expert: `grow` builds its start (the posterior-weighted average
   * of the existing experts on the new domain), the expert trains on its domain, and merge, the
   * MoE fine-tunes and eval run again over the larger forest. No existing expert retrains.
   */
  async grow(runId: string, input: unknown): Promise<{ record: RunRecord; generation: number }> {
    const record = await this.runs.get(runId);
    if (!record) throw new RunNotFoundError(runId);
    const request = parseGrowRequest(input);
    // Before building the grown spec: a run that another grow just reopened already lists the domain.
    if (record.status !== 'completed') throw new RunNotFinishedError(runId, record.status);
    const experts = expertsOf(record.spec);
    const spec = parseRunSpecWithin(
      {
        ...record.spec,
        domains: [...record.spec.domains, request.domain],
        experts: [...experts, { domain: domainName(request.domain), steps: request.steps ?? record.spec.expertSteps }],
      },
      this.limits,
    );
    const generation = (record.generation ?? 0) + 1;
    if (!(await this.runs.reopen(runId, spec, generation))) throw new RunNotFinishedError(runId, 'changing');
    const expert = expertsOf(spec)[experts.length];
    const [replica] = expertJobs(runId, expert);
    const grow: FlowJob = {
      name: JOB_NAMES.grow,
      queueName: QUEUES.merge,
      data: { runId, domain: expert.domain } satisfies MergeJobData,
      opts: { ...CHILD_JOB_OPTIONS, jobId: jobIds.grow(runId, expert.domain) },
    };
    await this.flows.add(consolidationFlow(runId, spec, generation, [{ ...replica, children: [grow] }], []));
    return { record: (await this.runs.get(runId)) as RunRecord, generation };
  }

  private denseJob(runId: string): FlowJob {
    const data: TrainJobData = { runId, role: 'dense' };
    return {
      name: JOB_NAMES.dense,
      queueName: QUEUES.train,
      data,
      opts: { ...CHILD_JOB_OPTIONS, jobId: jobIds.dense(runId) },
    };
  }

  /**
   * Every job of a run in pipeline order, including those not created yet, read in one Redis
   * call; pass the run's record when it is at hand to save reading it again.
   */
  async jobs(runId: string, record?: RunRecord): Promise<JobView[]> {
    record ??= await this.runs.get(runId);
    if (!record) return [];
    const generation = record.generation ?? 0;
    const planned: { id: string; name: string; queue: Queue; domain?: string; replica?: number; method?: string }[] = [
      { id: jobIds.seed(runId), name: JOB_NAMES.seed, queue: this.trainQueue },
      ...expertsOf(record.spec).flatMap((expert) =>
        Array.from({ length: expert.replicas }, (_, replica) => ({
          id: jobIds.expert(runId, expert.domain, replica),
          name: JOB_NAMES.expert,
          queue: this.trainQueue,
          domain: expert.domain,
          replica,
        })),
      ),
      ...(record.spec.denseBaseline
        ? [{ id: jobIds.dense(runId), name: JOB_NAMES.dense, queue: this.trainQueue }]
        : []),
      { id: jobIds.merge(runId, generation), name: JOB_NAMES.merge, queue: this.mergeQueue },
      ...finetunedMethods(record.spec)
        .filter((method) => computePlan(record.spec).finetuneSteps[method])
        .map((method) => ({
          id: jobIds.finetune(runId, method, generation),
          name: JOB_NAMES.finetune,
          queue: this.trainQueue,
          method,
        })),
      { id: jobIds.eval(runId, generation), name: JOB_NAMES.eval, queue: this.mergeQueue },
    ];
    const states = await readJobStates(this.connection, planned);
    return planned.map(({ id, name, domain, replica, method }, index) => {
      const view: JobView = { id, name, ...states[index] };
      if (domain !== undefined) Object.assign(view, { domain, replica });
      if (method !== undefined) view.method = method;
      return view;
    });
  }

  /**
   * Cancels a run: running jobs see the flag within a second and stop; jobs not yet running
   * are removed. Nothing half-done is marked complete.
   */
  async cancel(runId: string): Promise<void> {
    await this.runs.cancel(runId);
    for (const view of await this.jobs(runId)) {
      if (!['waiting', 'delayed', 'waiting-children', 'prioritized'].includes(view.state)) continue;
      const queue = view.name === JOB_NAMES.merge || view.name === JOB_NAMES.eval ? this.mergeQueue : this.trainQueue;
      const job: Job | undefined = await queue.getJob(view.id);
      await job?.remove({ removeChildren: true }).catch(() => {
        // A job that started meanwhile is locked; it stops on the flag instead.
      });
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.trainQueue.close(), this.mergeQueue.close(), this.flows.close()]);
  }
}

/** The replica jobs of one expert. */
function expertJobs(runId: string, expert: ExpertSpec): FlowJob[] {
  return Array.from({ length: expert.replicas }, (_, replica) => {
    const data: TrainJobData = {
      runId,
      role: 'expert',
      domain: expert.domain,
      replica,
      replicas: expert.replicas,
      rendezvousKey: `grove:run:${runId}:expert:${expert.domain}`,
    };
    const opts = { ...CHILD_JOB_OPTIONS, jobId: jobIds.expert(runId, expert.domain, replica) };
    return { name: JOB_NAMES.expert, queueName: QUEUES.train, data, opts };
  });
}

/** eval ← [fine-tunes ←] merge ← `experts`, with `others` (the dense baseline) as further children of eval. */
function consolidationFlow(
  runId: string,
  spec: RunSpec,
  generation: number,
  experts: FlowJob[],
  others: FlowJob[],
): FlowJob {
  const mergeData: MergeJobData = { runId };
  let consolidated: FlowJob = {
    name: JOB_NAMES.merge,
    queueName: QUEUES.merge,
    data: mergeData,
    opts: { ...CHILD_JOB_OPTIONS, jobId: jobIds.merge(runId, generation) },
    children: experts,
  };
  const plan = computePlan(spec);
  for (const method of finetunedMethods(spec)) {
    const data: TrainJobData = { runId, role: 'finetune', method };
    const opts = { ...CHILD_JOB_OPTIONS, jobId: jobIds.finetune(runId, method, generation) };
    if (plan.finetuneSteps[method])
      consolidated = { name: JOB_NAMES.finetune, queueName: QUEUES.train, data, opts, children: [consolidated] };
  }
  return {
    name: JOB_NAMES.eval,
    queueName: QUEUES.merge,
    data: mergeData,
    opts: { ...DEFAULT_JOB_OPTIONS, jobId: jobIds.eval(runId, generation) },
    children: [consolidated, ...others],
  };
}

export class RunNotFoundError extends Error {
  constructor(runId: string) {
    super(`No run with id "${runId}".`);
    this.name = 'RunNotFoundError';
  }
}

/** Growing needs a finished forest: its experts and merge must not be changing underneath. */
export class RunNotFinishedError extends Error {
  constructor(runId: string, status: string) {
    super(`Run ${runId} is ${status}; only a completed run can grow a new expert.`);
    this.name = 'RunNotFinishedError';
  }
}

/** Fine-tuned methods in the order their jobs run (ds-moe first, nearest the merge). */
function finetunedMethods(spec: RunSpec): FinetunedMethod[] {
  return FINETUNED_METHODS.filter((method) => spec.merge.methods.includes(method)).reverse();
}
