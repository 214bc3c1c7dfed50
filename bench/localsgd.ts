/**
 * Local-SGD experiments (figures in BENCHMARKS.md):
 *
 *   npx tsx bench/localsgd.ts quality [--from seed|scratch] [--H 1,8,32,128] [--codecs fp32,int8+lz4,int4+lz4]
 *                                     [--replicas 4] [--steps 128] [--batch 4] [--domain press]
 *   npx tsx bench/localsgd.ts stragglers [--replicas 4] [--steps 48] [--slowdown 3] [--H 8] [--every 2]
 *   npx tsx bench/localsgd.ts scaling [--replicas 2,4,8] [--preset tiny] [--rounds 6] [--codec int8+lz4]
 *                                     [--aggregation mean|trimmed-mean|centered-clip]
 *   npx tsx bench/localsgd.ts auth [--replicas 2,4,8] [--preset tiny] [--codec int8+lz4]
 *
 * `quality` runs every replica of a group in this process (the same peer and Local-SGD code,
 * over loopback) and scores the result on held-out text: it measures what the schedule and
 * the codec do to the model and to the bytes. `stragglers` and `scaling` run one process per
 * replica, because there wall-clock time is the point. `auth` measures what the peer
 * handshake and the frames' MAC cost a replica in CPU time: what a round pays for them,
 * whatever else the machine is doing.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Domain, loadDomain, mixtureOf } from '@grove/data';
import { startPrivateRedis } from '@grove/jobs';
import {
  bucketsOf,
  flatten,
  type LocalSgdSettings,
  type NamedArrays,
  PENALTY_DEFAULTS,
  startLocalReplica,
} from '@grove/localsgd';
import { type ModelConfig, parameterShapes, presetConfig, selectBackend, TransformerLM } from '@grove/model';
import {
  type Aggregation,
  type Contribution,
  decodeFrame,
  encode,
  encodeFrame,
  FrameKind,
  frameTag,
  type PeerIdentity,
  PeerNode,
  parseCodec,
  Rendezvous,
  ReplicaGroup,
  shardBounds,
} from '@grove/peer';
import { loadCheckpoint, saveCheckpoint } from '@grove/store';
import {
  bitsPerByte,
  median,
  smokeBudget,
  smokeCap,
  TRAINING_DEFAULTS,
  Trainer,
  type TrainingSettings,
} from '@grove/train';
import { Redis } from 'ioredis';

const RESULTS = join(import.meta.dirname, 'results');
const { positionals, values: given } = parseArgs({
  allowPositionals: true,
  options: {
    from: { type: 'string', default: 'seed' },
    H: { type: 'string', default: '1,8,32,128' },
    codecs: { type: 'string', default: 'fp32,int8+lz4,int4+lz4' },
    replicas: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string', default: '4' },
    domain: { type: 'string', default: 'press' },
    'seed-steps': { type: 'string', default: '400' },
    'eval-bytes': { type: 'string', default: '32768' },
    'outer-lr': { type: 'string', default: '0.7' },
    'outer-momentum': { type: 'string', default: '0.9' },
    slowdown: { type: 'string', default: '3' },
    every: { type: 'string', default: '2' },
    preset: { type: 'string', default: 'tiny' },
    rounds: { type: 'string', default: '6' },
    codec: { type: 'string', default: 'int8+lz4' },
    aggregation: { type: 'string', default: 'mean' },
    cases: { type: 'string' },
    redis: { type: 'string' },
    json: { type: 'string' },
  },
});
// GROVE_SMOKE=1 caps the budgets (steps, replicas, H, bytes, rounds) so the documented commands run in seconds.
const flags = smokeBudget(given);
const command = positionals[0];
const config: ModelConfig = presetConfig(flags.preset as string);
const numbers = (list: string) => list.split(',').map(Number);

function trainingFor(steps: number): TrainingSettings {
  return { ...TRAINING_DEFAULTS, batchSize: Number(flags.batch), learningRate: 3e-3, warmupSteps: 10, steps };
}

function localSgd(
  mode: 'sync' | 'async',
  H: number,
  codec: string,
  extra: Partial<LocalSgdSettings> = {},
): LocalSgdSettings {
  // H = 1 is synchronous training: average the replicas after every step (outer lr 1, no momentum).
  const outer =
    H === 1
      ? { learningRate: 1, momentum: 0 }
      : { learningRate: Number(flags['outer-lr']), momentum: Number(flags['outer-momentum']) };
  return {
    mode,
    innerSteps: H,
    syncEverySeconds: Number(flags.every),
    outer,
    codec: parseCodec(codec),
    errorFeedback: false,
    penalty: PENALTY_DEFAULTS,
    slowdown: 1,
    ...extra,
  };
}

function trainerFactory(stream: Uint8Array, steps: number) {
  return (params: NamedArrays, dataSeed: number) =>
    Trainer.fromArrays(config, params, { ...trainingFor(steps), seed: dataSeed }, stream);
}

/** The seed for "from a seed" runs: trained once on the domain mixture and kept under bench/results. */
function seedParams(from: string): NamedArrays {
  if (from === 'scratch') return TransformerLM.create(config, 1).toArrays();
  const steps = Number(flags['seed-steps']);
  const folder = join(RESULTS, `localsgd-seed-${flags.preset}-${steps}`);
  if (!existsSync(folder)) {
    const mixture = mixtureOf(['press', 'lore', 'learned', 'fiction'].map((name) => loadDomain(name)));
    const trainer = Trainer.fresh(config, { ...TRAINING_DEFAULTS, steps, batchSize: 16, learningRate: 5e-3 }, mixture);
    while (!trainer.finished) trainer.trainStep();
    mkdirSync(RESULTS, { recursive: true });
    const { config: seedConfig, weights } = trainer.checkpoint();
    saveCheckpoint(folder, { config: seedConfig, weights, state: { steps } });
  }
  return new Map([...loadCheckpoint(folder).weights].map(([name, tensor]) => [name, tensor.data]));
}

async function quality() {
  await selectBackend();
  const redis = await startPrivateRedis(mkdtempSync(join(tmpdir(), 'grove-bench-')));
  const domain: Domain = loadDomain(flags.domain as string);
  const replicas = smokeCap('replicas', Number(flags.replicas ?? 4));
  const steps = smokeCap('steps', Number(flags.steps ?? 128));
  const start = seedParams(flags.from as string);
  const startScore = score(start, domain);
  console.log(
    `# ${flags.from}: ${replicas} replicas × ${steps} steps × batch ${flags.batch} on ${domain.name}; start ${startScore.toFixed(3)} bits/byte; outer lr ${flags['outer-lr']}, momentum ${flags['outer-momentum']} (H = 1: lr 1, momentum 0)`,
  );
  console.log('| H | codec | bits/byte | vs H = 1 | bytes sent (all replicas) | vs H = 1 | rounds | seconds |');
  console.log('|---|---|---|---|---|---|---|---|');
  const rows: Record<string, number | string>[] = [];
  let counter = 0;
  for (const codec of (flags.codecs as string).split(',')) {
    for (const H of numbers(flags.H as string)) {
      const began = Date.now();
      const key = `bench:${process.pid}:${++counter}`;
      const group = await Promise.all(
        Array.from({ length: replicas }, (_, rank) =>
          startLocalReplica({
            redisUrl: redis.url,
            key,
            rank,
            budget: steps * replicas,
            plannedReplicas: replicas,
            settings: localSgd('sync', H, codec),
            start: { round: 0, steps: 0, params: start, momentum: new Map(), extra: {} },
            trainer: trainerFactory(domain.train, steps),
          }),
        ),
      );
      const outcomes = await Promise.all(group.map((replica) => replica.outcome));
      const final = outcomes[0].kind === 'finished' ? outcomes[0].state : undefined;
      if (!final) throw new Error(`H = ${H} ${codec}: the group did not finish`);
      const bytes = group.reduce((sum, replica) => sum + replica.rounds.reduce((s, r) => s + r.bytesSent, 0), 0);
      const row = {
        from: flags.from as string,
        H,
        codec,
        bitsPerByte: score(final.params, domain),
        bytes,
        rounds: final.round,
        seconds: (Date.now() - began) / 1000,
      };
      rows.push(row);
      for (const replica of group) for (const trainer of replica.trainers) trainer.dispose();
      const base = rows.find((r) => r.H === 1 && r.codec === 'fp32') ?? rows.find((r) => r.H === 1);
      const vs = (value: number, reference?: number) =>
        reference ? `${((value / reference - 1) * 100).toFixed(1)} %` : '';
      const ratio = base ? `${((base.bytes as number) / bytes).toFixed(0)}× fewer` : '';
      console.log(
        `| ${H} | ${codec} | ${row.bitsPerByte.toFixed(3)} | ${vs(row.bitsPerByte, base?.bitsPerByte as number)} | ${(bytes / 1e6).toFixed(1)} MB | ${ratio} | ${row.rounds} | ${row.seconds.toFixed(0)} |`,
      );
    }
  }
  mkdirSync(RESULTS, { recursive: true });
  const tag = `${flags.from}-H${(flags.H as string).replaceAll(',', '_')}-lr${flags['outer-lr']}-m${flags['outer-momentum']}`;
  writeFileSync(join(RESULTS, `localsgd-quality-${tag}.json`), JSON.stringify(rows, null, 2));
  await redis.stop();
}

function score(params: NamedArrays, domain: Domain): number {
  const model = TransformerLM.fromArrays(config, params);
  const value = bitsPerByte(model, domain.heldOut, { maxBytes: Number(flags['eval-bytes']), rows: 16 });
  model.dispose();
  return value;
}

/** One process per replica; resolves with each child's JSON output. */
async function spawnReplicas(jobs: object[]): Promise<unknown[]> {
  return Promise.all(
    jobs.map(
      (job) =>
        new Promise<unknown>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            ['--import', 'tsx', import.meta.filename, 'child', '--json', JSON.stringify(job)],
            {
              stdio: ['ignore', 'pipe', 'inherit'],
            },
          );
          let out = '';
          child.stdout.on('data', (chunk) => {
            out += chunk;
          });
          child.on('exit', (code) =>
            code === 0
              ? resolve(JSON.parse(out.trim().split('\n').at(-1) as string))
              : reject(new Error(`replica exited ${code}`)),
          );
        }),
    ),
  );
}

async function stragglers() {
  const redis = await startPrivateRedis(mkdtempSync(join(tmpdir(), 'grove-bench-')));
  const replicas = smokeCap('replicas', Number(flags.replicas ?? 4));
  const steps = smokeCap('steps', Number(flags.steps ?? 48));
  const H = smokeCap('H', Number(given.H === '1,8,32,128' ? 8 : given.H));
  console.log(
    `# ${replicas} replica processes, ${steps * replicas} inner steps in all, batch ${flags.batch}; straggler ${flags.slowdown}× slower; sync H = ${H}, async every ${flags.every} s`,
  );
  console.log('| mode | straggler | wall-clock s | vs no straggler | rounds | steps by the straggler |');
  console.log('|---|---|---|---|---|---|');
  const baseline: Record<string, number> = {};
  let counter = 0;
  const cases = ((flags.cases as string | undefined) ?? 'sync:1,sync:3,async:1,async:3').split(',');
  for (const mode of ['sync', 'async'] as const) {
    for (const slow of [false, true]) {
      if (!cases.includes(`${mode}:${slow ? flags.slowdown : 1}`)) continue;
      const key = `bench:stragglers:${process.pid}:${++counter}`;
      const began = Date.now();
      const results = (await spawnReplicas(
        Array.from({ length: replicas }, (_, rank) => ({
          role: 'train',
          redisUrl: redis.url,
          key,
          rank,
          replicas,
          steps,
          mode,
          H,
          slowdown: slow && rank === replicas - 1 ? Number(flags.slowdown) : 1,
          batch: flags.batch,
          domain: flags.domain,
        })),
      )) as { rounds: number; steps: number }[];
      const seconds = (Date.now() - began) / 1000;
      if (!slow) baseline[mode] = seconds;
      console.log(
        `| ${mode} | ${slow ? `${flags.slowdown}×` : 'none'} | ${seconds.toFixed(1)} | ${(seconds / baseline[mode]).toFixed(2)}× | ${results[0].rounds} | ${results[replicas - 1].steps} |`,
      );
    }
  }
  await redis.stop();
}

async function scaling() {
  const redis = await startPrivateRedis(mkdtempSync(join(tmpdir(), 'grove-bench-')));
  const parameters = [...parameterShapes(config).values()].reduce(
    (n, shape) => n + shape.reduce((a, b) => a * b, 1),
    0,
  );
  console.log(
    `# ${flags.preset} (${(parameters / 1e6).toFixed(2)} M parameters), codec ${flags.codec}, aggregation ${flags.aggregation}, ${flags.rounds} rounds, one process per replica on this machine's loopback`,
  );
  console.log('| replicas | median s per round | MB sent per replica per round | × the fp32 model size |');
  console.log('|---|---|---|---|');
  let counter = 0;
  for (const replicas of numbers(smokeBudget({ replicas: flags.replicas ?? '2,4,8' }).replicas)) {
    const key = `bench:scaling:${process.pid}:${++counter}`;
    const results = (await spawnReplicas(
      Array.from({ length: replicas }, (_, rank) => ({
        role: 'reduce',
        redisUrl: redis.url,
        key,
        rank,
        replicas,
        codec: flags.codec,
        aggregation: flags.aggregation,
      })),
    )) as { seconds: number[]; bytes: number[] }[];
    const perRound = median(results.flatMap((r) => r.seconds.slice(1)));
    const bytes = median(results.flatMap((r) => r.bytes.slice(1)));
    console.log(
      `| ${replicas} | ${perRound.toFixed(3)} | ${(bytes / 1e6).toFixed(2)} | ${(bytes / (parameters * 4)).toFixed(3)} |`,
    );
  }
  await redis.stop();
}

/** CPU milliseconds `work` takes, per call, over `times` calls. */
async function cpuMs(times: number, work: () => unknown): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < times; i++) await work();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / times;
}

/** MB/s of the two MAC candidates over frames of each size, a fresh object per frame as the link does. */
function macCandidates(key: Uint8Array) {
  console.log('| frame | HMAC-SHA256 MB/s | Poly1305 MB/s |');
  console.log('|---|---|---|');
  for (const size of [1024, 64 * 1024, 1024 * 1024, 8 * 1024 * 1024]) {
    const frame = randomBytes(size);
    const times = Math.max(5, Math.floor((64 * 1024 * 1024) / size));
    const rate = (work: () => void) => {
      const start = performance.now();
      for (let i = 0; i < times; i++) work();
      return (size * times) / ((performance.now() - start) * 1e3);
    };
    const hmac = rate(() => createHmac('sha256', key).update(frame).digest().subarray(0, 16));
    const poly = rate(() => frameTag(key, 1, frame));
    console.log(`| ${size / 1024} KiB | ${hmac.toFixed(0)} | ${poly.toFixed(0)} |`);
  }
}

async function auth() {
  const listed = new Map<number, PeerIdentity>();
  const directory = async (rank: number) => listed.get(rank);
  const pairs = 20;
  const handshake = await cpuMs(pairs, async () => {
    const [a, b] = await Promise.all(
      [0, 1].map((rank) => PeerNode.start({ run: 'bench', expert: 'auth', rank, directory })),
    );
    for (const node of [a, b]) listed.set(node.rank, node.identity);
    await b.connect(a);
    await Promise.all([a.close(), b.close()]);
  });
  // One round's frames as a replica of a ring of R sends them: 2·(R − 1) shards per bucket.
  const lengths = bucketsOf(
    new Map(
      [...parameterShapes(config)].map(([name, shape]) => [name, new Float32Array(shape.reduce((a, b) => a * b, 1))]),
    ),
  ).map((bucket) => bucket.length);
  const codec = parseCodec(flags.codec as string);
  const key = new Uint8Array(32).fill(7);
  console.log(`# ${flags.preset}, codec ${flags.codec}; CPU ms per replica (2 cores shared with other work)`);
  console.log(`handshake (both sides, two fresh nodes included): ${handshake.toFixed(2)} ms per link`);
  console.log(
    '| replicas | frames sent per round | MAC ms per round (seal + check) | all framing ms per round | handshakes per job |',
  );
  console.log('|---|---|---|---|---|');
  for (const replicas of numbers((flags.replicas as string | undefined) ?? '2,4,8')) {
    const frames = lengths.flatMap((length) => {
      const [start, end] = shardBounds(length, replicas)[0];
      const payload = encode(
        new Float32Array(end - start).map(() => Math.random() - 0.5),
        codec,
      );
      return Array.from({ length: 2 * (replicas - 1) }, () => payload);
    });
    const header = {
      kind: FrameKind.reduce,
      codec: 0,
      run: 'bench',
      expert: 'auth',
      sender: 1,
      epoch: 1,
      round: 1,
      attempt: 0,
      tensor: 'layers.0',
      shard: 0,
      shards: replicas,
      elements: 0,
      sequence: 0,
    };
    const sealed = frames.map((payload) => encodeFrame(header, payload, key));
    // The MAC alone, computed twice a frame (the sender seals, the receiver checks)...
    const mac = await cpuMs(20, () => {
      for (const bytes of sealed) for (let i = 0; i < 2; i++) frameTag(key, 0, bytes.subarray(0, bytes.length - 16));
    });
    // ...and all of framing for comparison: encode, decode with every check.
    const framing = await cpuMs(20, () => {
      for (const payload of frames) decodeFrame(encodeFrame(header, payload, key), payload.length, key);
    });
    console.log(`| ${replicas} | ${frames.length} | ${mac.toFixed(2)} | ${framing.toFixed(2)} | ${replicas - 1} |`);
  }
  macCandidates(key);
}

/** A replica process for `stragglers` (training) or `scaling` (all-reduce only). */
async function child() {
  const job = JSON.parse(flags.json as string);
  if (job.role === 'train') {
    await selectBackend();
    const domain = loadDomain(job.domain);
    const replica = await startLocalReplica({
      redisUrl: job.redisUrl,
      key: job.key,
      rank: job.rank,
      budget: job.steps * job.replicas,
      plannedReplicas: job.replicas,
      settings: {
        ...localSgd(job.mode, job.H, 'int8+lz4'),
        slowdown: job.slowdown,
        penalty: { ...PENALTY_DEFAULTS, weightBySteps: job.mode === 'async' },
      },
      start: { round: 0, steps: 0, params: TransformerLM.create(config, 1).toArrays(), momentum: new Map(), extra: {} },
      trainer: trainerFactory(domain.train, job.steps),
      connectTimeoutMs: 10_000,
    });
    await replica.outcome;
    if (process.env.GROVE_BENCH_LOGS) for (const line of replica.logs) console.error(`[${job.rank}] ${line}`);
    const steps = replica.rounds.reduce((n, r) => n + r.innerSteps, 0);
    console.log(JSON.stringify({ rounds: replica.rounds.at(-1)?.round ?? 0, steps }));
    return;
  }
  const redis = new Redis(job.redisUrl);
  const rendezvous = new Rendezvous(redis, job.key, job.rank);
  const node = await PeerNode.start({
    run: 'bench',
    expert: job.key,
    rank: job.rank,
    directory: (rank) => rendezvous.identityOf(rank),
  });
  await rendezvous.register(node.url, node.identity);
  await rendezvous.setActive(true, 1);
  while ((await rendezvous.liveMembers()).length < job.replicas) await new Promise((r) => setTimeout(r, 50));
  const group = new ReplicaGroup(node, rendezvous, {
    codec: parseCodec(job.codec),
    aggregation: job.aggregation as Aggregation,
    contributionTimeoutMs: 60_000,
    frameTimeoutMs: 60_000,
    maxAttempts: 1,
    log: (message) => console.error(message),
  });
  const delta: NamedArrays = new Map(
    [...parameterShapes(config)].map(([name, shape]) => {
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < values.length; i++) values[i] = (Math.random() - 0.5) * 1e-3;
      return [name, values];
    }),
  );
  const buckets = bucketsOf(delta).map((bucket) => {
    const values = flatten(bucket, delta);
    return { name: bucket.name, length: bucket.length, values: () => values };
  });
  const seconds: number[] = [];
  const bytes: number[] = [];
  for (let round = 1; round <= Number(flags.rounds); round++) {
    const contribution: Contribution = { rank: job.rank, norm: 1, steps: 1, finite: true, baseRound: round - 1 };
    const before = node.stats().bytesSent;
    const began = performance.now();
    await group.round({
      epoch: 1,
      round,
      contribution,
      buckets,
      scales: (all) => new Map(all.map((c) => [c.rank, 1 / all.length])),
    });
    seconds.push((performance.now() - began) / 1000);
    bytes.push(node.stats().bytesSent - before);
  }
  await rendezvous.leave();
  await node.close();
  redis.disconnect();
  console.log(JSON.stringify({ seconds, bytes }));
}

const commands: Record<string, () => Promise<void>> = { quality, stragglers, scaling, auth, child };
if (!command || !(command in commands)) {
  console.error('usage: npx tsx bench/localsgd.ts quality|stragglers|scaling|auth [flags] (see the top of this file)');
  process.exit(2);
}
await commands[command]();
