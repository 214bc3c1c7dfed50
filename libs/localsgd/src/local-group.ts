/**
 * A whole Local-SGD group in one process: R replicas, each with its own peer node on
 * loopback and its own Redis connection, running the same code as replicas on separate
 * machines. The replicas take turns on the one thread, so this measures what the
 * algorithm does (loss, bytes, rounds), not how fast separate machines would be.
 */
import { type GroupState, PeerNode, Rendezvous, ReplicaGroup } from '@grove/peer';
import type { Trainer } from '@grove/train';
import { Redis } from 'ioredis';
import type { NamedArrays } from './outer.js';
import {
  type LocalSgdSettings,
  type ReplicaHooks,
  type ReplicaOutcome,
  type RoundMetrics,
  runReplica,
} from './replica.js';

export interface LocalReplica {
  rank: number;
  rounds: RoundMetrics[];
  logs: string[];
  trainers: Trainer[];
  finals: GroupState[];
  node: PeerNode;
  rendezvous: Rendezvous;
  /** Set to make the replica stop at its next step. */
  stop: boolean;
  outcome: Promise<ReplicaOutcome>;
}

export interface LocalReplicaOptions {
  redisUrl: string;
  /** The expert's rendezvous key; one per group. */
  key: string;
  rank: number;
  budget: number;
  plannedReplicas: number;
  settings: LocalSgdSettings;
  start: Omit<GroupState, 'epoch'>;
  trainer(params: NamedArrays, dataSeed: number): Trainer;
  /** Replaces or adds hooks, e.g. to inject a failure. */
  hooks?: (replica: LocalReplica) => Partial<ReplicaHooks>;
  connectTimeoutMs?: number;
}

export async function startLocalReplica(options: LocalReplicaOptions): Promise<LocalReplica> {
  const redis = new Redis(options.redisUrl);
  const rendezvous = new Rendezvous(redis, options.key, options.rank, { ttlMs: 5_000 });
  const node = await PeerNode.start({
    run: 'local',
    expert: options.key,
    rank: options.rank,
    directory: (rank) => rendezvous.identityOf(rank),
    // Replicas sharing one thread wait on each other's steps; only a closed socket means dead here.
    deadAfterMs: 120_000,
  });
  const replica = {
    rank: options.rank,
    rounds: [],
    logs: [],
    trainers: [],
    finals: [],
    node,
    rendezvous,
    stop: false,
  } as Omit<LocalReplica, 'outcome'> as LocalReplica;
  const log = (message: string) => replica.logs.push(message);
  const group = new ReplicaGroup(node, rendezvous, {
    codec: options.settings.codec,
    contributionTimeoutMs: 10 * 60_000,
    frameTimeoutMs: 60_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 2_000,
    maxAttempts: 6,
    log,
  });
  replica.outcome = runReplica({
    group,
    settings: options.settings,
    budget: options.budget,
    plannedReplicas: options.plannedReplicas,
    shapes: new Map([...options.start.params].map(([name, values]) => [name, [values.length]])),
    hooks: {
      coldStart: () => options.start,
      trainer: (params, dataSeed) => {
        const trainer = options.trainer(params, dataSeed);
        replica.trainers.push(trainer);
        return trainer;
      },
      saveGroupState: () => {},
      saveFinal: (state) => replica.finals.push(state),
      shouldStop: () => replica.stop,
      onRound: (metrics) => replica.rounds.push(metrics),
      log,
      ...options.hooks?.(replica),
    },
  }).finally(async () => {
    await node.close();
    redis.disconnect();
  });
  return replica;
}
