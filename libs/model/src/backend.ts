/**
 * Compute backend selection: one setting, GROVE_BACKEND=auto|tensorflow|wasm|cpu.
 *
 * `auto` prefers native TensorFlow (GPU build, then CPU build) when its package is
 * installed and loads, then WebAssembly (SIMD), then plain JavaScript. On wasm, the
 * OpenBLAS kernels of @grove/native replace the stock ones when built (GROVE_NATIVE=0: off).
 */
import { installNativeKernels } from '@grove/native';

export { nativeCallCounts } from '@grove/native';

import * as tf from '@tensorflow/tfjs-core';
import './gradients.js';
import { installWasmKernels } from './wasm-kernels.js';

export const BACKEND_PREFERENCES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

export interface BackendChoice {
  /** The tfjs backend name now active: `tensorflow`, `wasm` or `cpu`. */
  name: string;
  /** The package that provides it. */
  source: string;
  /** Why earlier candidates were passed over (empty when the first one loaded). */
  skipped: string[];
  kernels: KernelReport;
}

export interface KernelReport {
  /** Kernels served by @grove/native on this backend; empty when none are. */
  native: string[];
  /** Why none are, when none are. */
  reason?: string;
}

/** What computes, in a form to log or save beside a model. */
export interface BackendSummary {
  name: string;
  kernels: KernelReport;
}

/** Loads a module by name; injectable so the fallback order can be tested. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

interface Candidate {
  name: string;
  source: string;
  load: (importer: ModuleImporter) => Promise<void>;
}

const nativeCandidate = (source: string): Candidate => ({
  name: 'tensorflow',
  source,
  load: async (importer) => {
    await importer(source);
  },
});

const CANDIDATES: Record<Exclude<BackendPreference, 'auto'>, Candidate[]> = {
  tensorflow: [nativeCandidate('@tensorflow/tfjs-node-gpu'), nativeCandidate('@tensorflow/tfjs-node')],
  wasm: [
    {
      name: 'wasm',
      source: '@tensorflow/tfjs-backend-wasm',
      load: async (importer) => {
        await importer('@tensorflow/tfjs-backend-wasm');
      },
    },
  ],
  cpu: [
    {
      name: 'cpu',
      source: '@tensorflow/tfjs-backend-cpu',
      load: async (importer) => {
        await importer('@tensorflow/tfjs-backend-cpu');
      },
    },
  ],
};

export function parseBackendPreference(value: string | undefined): BackendPreference {
  const preference = (value ?? 'auto').trim().toLowerCase() || 'auto';
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(preference)) {
    throw new Error(`GROVE_BACKEND must be one of ${BACKEND_PREFERENCES.join(', ')}; got "${value}".`);
  }
  return preference as BackendPreference;
}

/**
 * Activates the preferred backend, falling back in order under `auto`.
 * An explicit preference that cannot load is an error, never a silent fallback.
 */
export async function selectBackend(
  preference: BackendPreference = parseBackendPreference(process.env.GROVE_BACKEND),
  importer: ModuleImporter = (specifier) => import(specifier),
): Promise<BackendChoice> {
  const candidates =
    preference === 'auto' ? [...CANDIDATES.tensorflow, ...CANDIDATES.wasm, ...CANDIDATES.cpu] : CANDIDATES[preference];
  const skipped: string[] = [];
  for (const candidate of candidates) {
    try {
      await candidate.load(importer);
      if (!(await tf.setBackend(candidate.name)))
        throw new Error(`tfjs could not initialise the ${candidate.name} backend`);
      await tf.ready();
      active = { name: candidate.name, source: candidate.source, skipped, kernels: kernelsFor(candidate.name) };
      return active;
    } catch (error) {
      skipped.push(`${candidate.source}: ${firstLine(error)}`);
    }
  }
  throw new Error(`No compute backend could load for GROVE_BACKEND=${preference} (${skipped.join('; ')}).`);
}

let active: BackendChoice | undefined;

function kernelsFor(backend: string): KernelReport {
  if (backend !== 'wasm') return { native: [], reason: `native kernels need the wasm backend, not ${backend}` };
  installWasmKernels();
  const report = installNativeKernels();
  return { native: report.kernels, ...(report.reason ? { reason: report.reason } : {}) };
}

export function describeBackend(choice: BackendChoice): string {
  const passedOver = choice.skipped.length ? ` (passed over: ${choice.skipped.join('; ')})` : '';
  const { native, reason } = choice.kernels;
  const kernels = native.length ? `native kernels: ${native.join(', ')}` : reason;
  return `backend: ${choice.name} via ${choice.source}${passedOver}; ${kernels}`;
}

/** The backend the last `selectBackend` activated and its kernels, for logs and saved models. */
export function backendSummary(): BackendSummary {
  if (!active) throw new Error('No compute backend is selected yet: call selectBackend() first.');
  return { name: active.name, kernels: active.kernels };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}
