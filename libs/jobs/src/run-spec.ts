/**
 * The run spec: the one schema for what a run is, shared by the REST API, the CLI, plain
 * BullMQ producers and the workers. Defaults, ranges and descriptions live here only.
 */
import { BROWN_DOMAINS, DEFAULT_DOMAINS, dataRootsFromEnv, FOLDER_REFUSED, folderInsideDataRoots } from '@grove/data';
import { MERGE_METHOD_NAMES, METHOD_OPTIONS, TENSOR_MERGE_METHODS, type TensorMergeMethod } from '@grove/merge';
import { PRESETS } from '@grove/model';
import { z } from 'zod';

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/**
 * A Brown domain name, or `name=folder` for a folder of the user's own documents. A folder
 * must lie inside the data roots of the process that parses the spec (GROVE_DATA_ROOTS): the
 * API refuses it at submission, the worker again when it loads the data.
 */
const DomainReference = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,39}(=.+)?$/i, 'a domain is a Brown domain name or name=folder')
  .refine((ref) => ref.includes('=') || ref in BROWN_DOMAINS, {
    message: `unknown Brown domain; choose from ${Object.keys(BROWN_DOMAINS).join(', ')} or use name=folder`,
  })
  .refine((ref) => !ref.includes('=') || folderInsideDataRoots(domainFolder(ref), dataRootsFromEnv()) !== undefined, {
    message: FOLDER_REFUSED,
  })
  .describe(`A Brown domain (${Object.keys(BROWN_DOMAINS).join(', ')}) or name=folder`);

export const RUN_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const ExpertSpec = z
  .object({
    domain: z.string().describe('Name of one of the run’s domains'),
    steps: int(1, 1_000_000).describe('Optimizer updates for this expert, shared by its replicas'),
    replicas: int(1, 64).default(1).describe('Replica jobs training this expert together'),
  })
  .strict();

const CODEC_PATTERN = /^(fp32|fp16|int8|int4)(\+(shuffle|lz4))*$/;

const PenaltySpec = z
  .object({
    anomaly: z
      .boolean()
      .default(true)
      .describe('Leave out a pseudo-gradient whose norm is an outlier (EMA z-score > 3)'),
    weighting: z.boolean().default(false).describe('Weigh pseudo-gradients by softmax(−‖Δ‖/temperature)'),
    temperature: z.number().gt(0).default(1),
    clipNorm: z.number().min(0).default(0).describe('Scale each pseudo-gradient to at most this norm (0: off)'),
  })
  .strict();

/** How the replicas of one expert train together (only used by experts with more than one replica). */
export const LocalSgdSpec = z
  .object({
    mode: z.enum(['sync', 'async']).default('sync').describe('sync: every innerSteps; async (A-EDiT): on a clock'),
    innerSteps: int(1, 100_000).default(32).describe('Inner steps between synchronisations (sync mode)'),
    syncEverySeconds: z.number().gt(0).max(3600).default(30).describe('Seconds between synchronisations (async mode)'),
    outerLearningRate: z.number().gt(0).max(10).default(0.7),
    outerMomentum: z.number().min(0).lt(1).default(0.9),
    codec: z
      .string()
      .regex(CODEC_PATTERN, 'a codec is fp32, fp16, int8 or int4, optionally followed by +shuffle and/or +lz4')
      .default('int8+lz4')
      .describe('How pseudo-gradients travel: fp32, fp16, int8 or int4, with optional +shuffle and +lz4'),
    errorFeedback: z.boolean().default(false).describe('Carry the quantisation residual into the next round'),
    aggregation: z
      .enum(['mean', 'trimmed-mean', 'centered-clip'])
      .default('mean')
      .describe(
        'How replicas combine pseudo-gradients: the ring mean, or for replicas that do not trust each other a coordinate-wise trimmed mean or centred clipping',
      ),
    weightBySteps: z
      .boolean()
      .default(true)
      .describe('async mode: weigh each pseudo-gradient by the inner steps behind it'),
    penalty: PenaltySpec.default({ anomaly: true, weighting: false, temperature: 1, clipNorm: 0 }),
  })
  .strict();

export const LOCAL_SGD_DEFAULTS: z.output<typeof LocalSgdSpec> = {
  mode: 'sync',
  innerSteps: 32,
  syncEverySeconds: 30,
  outerLearningRate: 0.7,
  outerMomentum: 0.9,
  codec: 'int8+lz4',
  errorFeedback: false,
  aggregation: 'mean',
  weightBySteps: true,
  penalty: { anomaly: true, weighting: false, temperature: 1, clipNorm: 0 },
};

/** An MoE fine-tune after assembly: its share of the run's compute, what it trains and how it balances. */
const MoeFinetune = (training: 'sparse' | 'dense') =>
  z
    .object({
      computeFraction: z
        .number()
        .min(0)
        .max(0.9)
        .default(0.2)
        .describe("Share of the run's total training compute (seed + experts + this) spent fine-tuning; 0 skips it"),
      steps: int(1, 1_000_000).optional().describe('Fine-tune updates, instead of computeFraction'),
      parameters: z.enum(['router', 'all']).default('all').describe('Train only the routers, or every parameter'),
      learningRate: z.number().gt(0).max(1).default(1e-3),
      balanceCoefficient: z
        .number()
        .min(0)
        .max(10)
        .default(0.01)
        .describe(
          training === 'sparse'
            ? 'α of the switch load-balancing loss α · N · Σ u_i · p̄_i'
            : 'Weight of the mutual-information loss −H(p̄) + mean H(p(e|x))',
        ),
    })
    .strict()
    .prefault({});

export const RunSpec = z
  .object({
    id: z
      .string()
      .regex(RUN_ID_PATTERN, 'lowercase letters, digits and dashes, at most 63')
      .optional()
      .describe('Client-chosen run id: submitting the same id again returns the existing run'),
    name: z.string().max(200).optional().describe('A label for people'),
    model: z
      .object({
        preset: z.enum(Object.keys(PRESETS) as [keyof typeof PRESETS]).default('tiny'),
        positions: z.enum(['learned', 'rotary']).optional().describe('Override the preset’s positions'),
        activation: z.enum(['gelu', 'swiglu']).optional().describe('Override the preset’s feed-forward'),
      })
      .strict()
      .default({ preset: 'tiny' }),
    domains: z
      .array(DomainReference)
      .min(1)
      .max(64)
      .default(DEFAULT_DOMAINS)
      .describe('Data domains; the seed trains on their mixture'),
    seed: z
      .object({ steps: int(1, 1_000_000).default(300).describe('Updates on the domain mixture before branching') })
      .strict()
      .default({ steps: 300 }),
    experts: z
      .array(ExpertSpec)
      .max(64)
      .optional()
      .describe('One entry per expert; by default one expert per domain with expertSteps updates'),
    expertSteps: int(1, 1_000_000).default(200).describe('Updates per expert when `experts` is not given'),
    denseBaseline: z
      .boolean()
      .default(false)
      .describe(
        "Also train a compute-matched dense model: from scratch on the mixture, with the run's total training compute (seed, experts and the BTX fine-tune)",
      ),
    expertReplicas: int(1, 64)
      .default(1)
      .describe('Replicas per expert when `experts` is not given; they share the expert’s updates (Local-SGD)'),
    training: z
      .object({
        batchSize: int(1, 1024).default(16),
        learningRate: z.number().gt(0).max(1).default(3e-3),
        warmupSteps: int(0, 100_000).default(30),
        checkpointEvery: int(1, 1_000_000).default(25).describe('Steps between resumable checkpoints'),
        seed: int(0, 2 ** 31 - 1)
          .default(1)
          .describe('Seeds weights and data order'),
      })
      .strict()
      .default({ batchSize: 16, learningRate: 3e-3, warmupSteps: 30, checkpointEvery: 25, seed: 1 }),
    localSgd: LocalSgdSpec.default(LOCAL_SGD_DEFAULTS),
    merge: z
      .object({
        methods: z
          .array(z.enum(MERGE_METHOD_NAMES))
          .min(1)
          .default(['linear', 'posterior'])
          .describe(`Merges to build from the experts: ${MERGE_METHOD_NAMES.join(', ')}`),
        ...METHOD_OPTIONS,
        btx: z
          .object({
            topK: int(1, 64).default(2).describe('Experts each token runs through'),
            router: z
              .enum(['random', 'hidden'])
              .default('hidden')
              .describe(
                "Router initialisation: random, or each domain's mean hidden state (mergekit-moe's hidden mode)",
              ),
            keepSeed: z.boolean().default(false).describe('Keep the seed as one more expert'),
            finetune: MoeFinetune('sparse'),
          })
          .strict()
          .prefault({}),
        dsMoe: z
          .object({
            topK: int(1, 64).default(1).describe('Experts run per token at inference'),
            threshold: z
              .number()
              .min(0)
              .lt(1)
              .default(0)
              .describe('Run the experts with router probability at least this at inference (0: use topK)'),
            finetune: MoeFinetune('dense'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    eval: z
      .object({ bytes: int(1024, 10_000_000).default(32_768).describe('Held-out bytes scored per domain') })
      .strict()
      .default({ bytes: 32_768 }),
  })
  .strict()
  .superRefine((spec, context) => {
    const names = spec.domains.map(domainName);
    const expertCount = spec.experts?.length ?? names.length;
    const moeExperts = expertCount + (spec.merge.btx.keepSeed ? 1 : 0);
    for (const [method, path, topK, experts] of [
      ['btx', ['merge', 'btx', 'topK'], spec.merge.btx.topK, moeExperts],
      ['ds-moe', ['merge', 'dsMoe', 'topK'], spec.merge.dsMoe.topK, expertCount],
    ] as const) {
      if (spec.merge.methods.includes(method) && topK > experts)
        context.addIssue({
          code: 'custom',
          path: [...path],
          message: `top-k is ${topK} but the run has ${experts} experts`,
        });
    }

    const experts = expertsOf(spec).map((expert) => expert.domain);
    for (const method of tensorMethodsOf(spec)) {
      const merged = expertsMergedBy(spec, method, experts);
      const path = ['merge', method.key];
      for (const domain of merged)
        if (!experts.includes(domain))
          context.addIssue({
            code: 'custom',
            path,
            message: `${method.name} names "${domain}", which is not an expert`,
          });
      if (new Set(merged).size < merged.length)
        context.addIssue({ code: 'custom', path, message: `${method.name} names one expert twice` });
      if (merged.length < method.minExperts)
        context.addIssue({
          code: 'custom',
          path: ['merge', 'methods'],
          message: `${method.name} needs at least ${method.minExperts} experts; the run has ${merged.length}`,
        });
    }

    names.forEach((name, index) => {
      if (names.indexOf(name) !== index)
        context.addIssue({ code: 'custom', path: ['domains', index], message: `domain "${name}" is listed twice` });
    });
    spec.experts?.forEach((expert, index) => {
      if (!names.includes(expert.domain)) {
        context.addIssue({
          code: 'custom',
          path: ['experts', index, 'domain'],
          message: `"${expert.domain}" is not one of the run's domains`,
        });
      }
      if (spec.experts?.findIndex((other) => other.domain === expert.domain) !== index) {
        context.addIssue({
          code: 'custom',
          path: ['experts', index, 'domain'],
          message: `a second expert for "${expert.domain}"`,
        });
      }
    });
  });

/** What a client sends: every field with a default may be left out. */
export type RunSpecInput = z.input<typeof RunSpec>;
/** A validated spec with every default filled in. */
export type RunSpec = z.output<typeof RunSpec>;
export type ExpertSpec = z.output<typeof ExpertSpec>;
export type LocalSgdSpec = z.output<typeof LocalSgdSpec>;

export function domainName(reference: string): string {
  const equals = reference.indexOf('=');
  return equals > 0 ? reference.slice(0, equals) : reference;
}

function domainFolder(reference: string): string {
  return reference.slice(reference.indexOf('=') + 1);
}

/** The experts a spec asks for, defaults applied. */
export function expertsOf(spec: RunSpec): ExpertSpec[] {
  return (
    spec.experts ??
    spec.domains.map((reference) => ({
      domain: domainName(reference),
      steps: spec.expertSteps,
      replicas: spec.expertReplicas,
    }))
  );
}

/** The tensor merge methods a spec asks for, in registry order. */
export function tensorMethodsOf(spec: RunSpec): TensorMergeMethod[] {
  return (TENSOR_MERGE_METHODS as readonly TensorMergeMethod[]).filter((method) =>
    spec.merge.methods.includes(method.name as RunSpec['merge']['methods'][number]),
  );
}

/** A method's options from `merge.<key>` (defaults filled in); `{}` for a method without any. */
export function methodOptionsOf(spec: RunSpec, method: TensorMergeMethod): Record<string, unknown> {
  return (spec.merge as unknown as Record<string, Record<string, unknown> | undefined>)[method.key] ?? {};
}

/** The experts (by domain) `method` merges: all of `experts` unless the method picks some. */
export function expertsMergedBy(spec: RunSpec, method: TensorMergeMethod, experts: string[]): string[] {
  return method.selectExperts?.(experts, methodOptionsOf(spec, method)) ?? experts;
}

export interface FieldError {
  /** Dotted path of the field, e.g. `experts.1.replicas`; empty for the spec as a whole. */
  path: string;
  message: string;
}

export class InvalidRunSpecError extends Error {
  readonly errors: FieldError[];
  constructor(errors: FieldError[]) {
    super(`Invalid run spec: ${errors.map((e) => `${e.path || '(spec)'}: ${e.message}`).join('; ')}.`);
    this.name = 'InvalidRunSpecError';
    this.errors = errors;
  }
}

/** Validates and completes a spec; throws InvalidRunSpecError naming every wrong field. */
export function parseRunSpec(input: unknown): RunSpec {
  const result = RunSpec.safeParse(input);
  if (!result.success) {
    throw new InvalidRunSpecError(
      result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    );
  }
  return result.data;
}

/** A request to grow a finished run by one expert (`POST /v1/runs/:id/experts`, `grove grow`). */
export const GrowRequest = z
  .object({
    domain: z.string().describe('The new domain: a Brown domain name or name=folder'),
    steps: z.number().int().min(1).max(1_000_000).optional().describe("The new expert's updates (default expertSteps)"),
  })
  .strict();

export function parseGrowRequest(input: unknown): z.output<typeof GrowRequest> {
  const result = GrowRequest.safeParse(input);
  if (!result.success) {
    throw new InvalidRunSpecError(
      result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    );
  }
  return result.data;
}

/**
 * The built-in demo: the Brown Corpus's four default domains, the tiny preset, budgets that
 * finish in about ten minutes on a two-core machine with one worker per core.
 */
export const DEMO_RUN: RunSpecInput = {
  name: 'demo: seed → 4 Brown experts × 2 replicas → merge → eval',
  model: { preset: 'tiny' },
  domains: DEFAULT_DOMAINS,
  seed: { steps: 200 },
  expertSteps: 100,
  // Two replicas per expert, meeting every 10 inner steps over peer links. Five rounds are
  // too few for DiLoCo's outer momentum to settle: plain averaging does better (BENCHMARKS.md).
  expertReplicas: 2,
  localSgd: { innerSteps: 10, outerLearningRate: 1, outerMomentum: 0 },
  training: { batchSize: 16, learningRate: 3e-3, warmupSteps: 30, checkpointEvery: 25, seed: 1 },
  merge: { methods: ['linear', 'posterior'] },
  eval: { bytes: 16_384 },
};
