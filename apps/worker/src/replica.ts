/**
 * Training one replica of an expert that has several: the Local-SGD loop of
 * `@grove/localsgd` wired to this worker's Redis, the artifact store and the job's progress.
 * The group's state is checkpointed after its rounds by the round's lowest rank, so if every
 * replica dies the first one back resumes the group from there.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { artifactPaths, connectRedis, modelConfigOf, type RunSpec, type TrainJobResult } from '@grove/jobs';
import {
  type LocalSgdSettings,
  type NamedArrays,
  PENALTY_DEFAULTS,
  type RoundMetrics,
  runReplica,
} from '@grove/localsgd';
import { type ModelConfig, parameterShapes } from '@grove/model';
import { type GroupState, PeerNode, type PeerTls, parseCodec, Rendezvous, ReplicaGroup } from '@grove/peer';
import {
  type Checkpoint,
  latestCheckpointFolder,
  loadCheckpoint,
  STATE_FILE,
  saveCheckpoint,
  saveNumberedCheckpoint,
  type TensorMap,
} from '@grove/store';
import { Trainer, type TrainingSettings } from '@grove/train';

export interface ReplicaJob {
  runId: string;
  domain: string;
  replica: number;
  replicas: number;
  rendezvousKey: string;
  /** Inner steps of the whole expert, shared by its replicas. */
  steps: number;
}

export interface ReplicaProgress {
  step: number;
  steps: number;
  loss?: number;
  tokensPerSecond?: number;
  replica: number;
  round?: RoundMetrics;
}

export interface ReplicaContext {
  spec: RunSpec;
  stateFolder: string;
  redisUrl: string;
  stream: Uint8Array;
  training: TrainingSettings;
  stopRequested(): boolean;
  report(progress: ReplicaProgress): void;
}

/** Where this replica accepts peer connections; see README "Replicas and peer links". */
function listenOptions() {
  if (process.env.GROVE_PEER_LISTEN === '0') return false as const;
  return { host: process.env.GROVE_PEER_HOST ?? '127.0.0.1', port: Number(process.env.GROVE_PEER_PORT ?? 0) };
}

/**
 * Mutual TLS for peer links, from PEM files: all three of GROVE_PEER_TLS_CERT, _KEY and _CA,
 * or none (plain ws://, still authenticated by the handshake).
 */
function peerTls(): PeerTls | undefined {
  const files = {
    cert: process.env.GROVE_PEER_TLS_CERT,
    key: process.env.GROVE_PEER_TLS_KEY,
    ca: process.env.GROVE_PEER_TLS_CA,
  };
  const given = Object.values(files).filter(Boolean).length;
  if (given === 0) return undefined;
  if (given < 3) throw new Error('Set all of GROVE_PEER_TLS_CERT, GROVE_PEER_TLS_KEY and GROVE_PEER_TLS_CA, or none.');
  return {
    cert: readFileSync(files.cert as string),
    key: readFileSync(files.key as string),
    ca: readFileSync(files.ca as string),
  };
}

/** The host peers dial: given, or this machine's name when listening on every interface. */
function advertiseHost(): string | undefined {
  if (process.env.GROVE_PEER_ADVERTISE) return process.env.GROVE_PEER_ADVERTISE;
  return ['0.0.0.0', '::'].includes(process.env.GROVE_PEER_HOST ?? '') ? hostname() : undefined;
}

export function localSgdSettings(spec: RunSpec): LocalSgdSettings {
  const local = spec.localSgd;
  return {
    mode: local.mode,
    innerSteps: local.innerSteps,
    syncEverySeconds: local.syncEverySeconds,
    outer: { learningRate: local.outerLearningRate, momentum: local.outerMomentum },
    codec: parseCodec(local.codec),
    errorFeedback: local.errorFeedback,
    penalty: {
      anomaly: { ...PENALTY_DEFAULTS.anomaly, enabled: local.penalty.anomaly },
      weighting: { enabled: local.penalty.weighting, temperature: local.penalty.temperature },
      clipNorm: local.penalty.clipNorm,
      weightBySteps: local.mode === 'async' && local.weightBySteps,
    },
    // A test setting for straggler experiments: GROVE_SLOWDOWN=3 makes this worker 3× slower.
    slowdown: Math.max(1, Number(process.env.GROVE_SLOWDOWN ?? 1) || 1),
  };
}

export async function trainReplica(job: ReplicaJob, context: ReplicaContext): Promise<TrainJobResult | undefined> {
  const { spec, stateFolder } = context;
  const paths = artifactPaths(stateFolder, job.runId);
  const output = paths.expert(job.domain);
  const groupCheckpoints = join(output, 'checkpoints');
  const config = modelConfigOf(spec);
  const shapes = parameterShapes(config);
  const log = (message: string) => console.error(`[${job.domain}#${job.replica}] ${message}`);

  const redis = connectRedis(context.redisUrl);
  const rendezvous = new Rendezvous(redis, job.rendezvousKey, job.replica, { log });
  const node = await PeerNode.start({
    run: job.runId,
    expert: job.domain,
    rank: job.replica,
    directory: (rank) => rendezvous.identityOf(rank),
    listen: listenOptions(),
    advertiseHost: advertiseHost(),
    tls: peerTls(),
    log,
  });
  const group = new ReplicaGroup(node, rendezvous, {
    codec: parseCodec(spec.localSgd.codec),
    aggregation: spec.localSgd.aggregation,
    // A ceiling: the wait is ten times this replica's compute time for the round, at least
    // 30 s, and ends as soon as the member's heartbeats stop.
    contributionTimeoutMs: 30 * 60_000,
    frameTimeoutMs: 60_000,
    maxAttempts: 8,
    log,
  });
  const perReplicaSteps = Math.ceil(job.steps / job.replicas);
  const tokensPerStep = context.training.batchSize * context.training.accumulation * config.contextLength;
  let lastStepAt = performance.now();
  let lastSavedSteps = -1;

  try {
    const outcome = await runReplica({
      group,
      settings: localSgdSettings(spec),
      budget: job.steps,
      plannedReplicas: job.replicas,
      shapes,
      hooks: {
        coldStart: () => coldStart(output, groupCheckpoints, paths.seed),
        trainer: (params, dataSeed) =>
          Trainer.fromArrays(
            config,
            params,
            {
              ...context.training,
              steps: perReplicaSteps,
              warmupSteps: Math.min(context.training.warmupSteps, perReplicaSteps),
              seed: dataSeed,
            },
            context.stream,
          ),
        saveGroupState: (state) => {
          const every = spec.training.checkpointEvery;
          if (Math.floor(state.steps / every) === Math.floor(lastSavedSteps / every)) return;
          lastSavedSteps = state.steps;
          saveNumberedCheckpoint(groupCheckpoints, state.steps, groupCheckpoint(config, state));
        },
        saveFinal: (state) => {
          saveCheckpoint(output, {
            config: { ...config },
            weights: tensorsOf(state.params, shapes),
            state: {
              kind: 'model',
              role: 'expert',
              domain: job.domain,
              steps: state.steps,
              tokens: state.steps * tokensPerStep,
              rounds: state.round,
              replicas: job.replicas,
              evaluations: [],
            },
          });
          rmSync(groupCheckpoints, { recursive: true, force: true });
        },
        shouldStop: context.stopRequested,
        onStep: (report, groupSteps) => {
          const now = performance.now();
          const tokensPerSecond = report.tokens / ((now - lastStepAt) / 1000);
          lastStepAt = now;
          context.report({
            step: Math.min(groupSteps, job.steps),
            steps: job.steps,
            loss: report.loss,
            tokensPerSecond,
            replica: job.replica,
          });
        },
        onRound: (metrics) =>
          context.report({
            step: Math.min(metrics.groupSteps, job.steps),
            steps: job.steps,
            replica: job.replica,
            round: metrics,
          }),
        log,
      },
    });
    if (outcome.kind === 'stopped') return undefined;
    const steps = outcome.state?.steps ?? job.steps;
    return { artifact: relative(stateFolder, output), steps, tokens: steps * tokensPerStep };
  } finally {
    await node.close();
    redis.disconnect();
  }
}

/**
 * The group's starting point: the finished expert if another replica completed it a moment
 * ago, else the group's last checkpoint, else the seed model at round 0.
 */
function coldStart(output: string, groupCheckpoints: string, seedFolder: string): Omit<GroupState, 'epoch'> {
  if (existsSync(join(output, STATE_FILE))) {
    const finished = loadCheckpoint(output);
    const state = finished.state as { kind?: string; steps: number; rounds?: number };
    if (state.kind === 'model') {
      return {
        round: state.rounds ?? 0,
        steps: state.steps,
        params: arraysOf(finished.weights),
        momentum: new Map(),
        extra: {},
      };
    }
  }
  const latest = latestCheckpointFolder(groupCheckpoints);
  const checkpoint = loadCheckpoint(latest ?? seedFolder);
  const params = arraysOf(checkpoint.weights);
  if (!latest) return { round: 0, steps: 0, params, momentum: new Map(), extra: {} };
  const state = checkpoint.state as { round: number; steps: number; extra?: Record<string, unknown> };
  return {
    round: state.round,
    steps: state.steps,
    params,
    momentum: arraysOf(checkpoint.optimizer ?? new Map()),
    extra: state.extra ?? {},
  };
}

/** The group's state as a checkpoint: weights, the outer momentum as its optimizer state. */
function groupCheckpoint(config: ModelConfig, state: GroupState): Checkpoint {
  const shapes = parameterShapes(config);
  return {
    config: { ...config },
    weights: tensorsOf(state.params, shapes),
    optimizer: tensorsOf(state.momentum, shapes),
    state: { kind: 'group', round: state.round, steps: state.steps, epoch: state.epoch, extra: state.extra },
  };
}

function arraysOf(tensors: TensorMap): NamedArrays {
  return new Map([...tensors].map(([name, tensor]) => [name, tensor.data]));
}

function tensorsOf(arrays: NamedArrays, shapes: Map<string, number[]>): TensorMap {
  return new Map([...arrays].map(([name, data]) => [name, { shape: shapes.get(name) ?? [data.length], data }]));
}
