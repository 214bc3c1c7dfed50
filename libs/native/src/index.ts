/**
 * Native kernels for the tfjs wasm backend: OpenBLAS products and fused passes that work
 * in place on the wasm heap. Optional: when the addon is off or was not built, nothing is
 * registered and the report says why.
 */
import { loadAddon } from './addon.js';
import { type FUSED_KERNELS, installFusedKernels } from './fused-kernels.js';
import { installIdentityKernel } from './identity-kernel.js';
import { installMatmulKernels } from './matmul-kernels.js';
import { installReduceKernels } from './reduce-kernels.js';
import { installRowKernels } from './row-kernels.js';

export { FUSED_KERNELS } from './fused-kernels.js';
export { nativeCallCounts } from './registry.js';

export interface NativeKernelReport {
  /** Kernels now served natively on the wasm backend (stock ones overridden, then Grove's fused ones). */
  kernels: string[];
  /** Why there are none, when there are none. */
  reason?: string;
}

let report: NativeKernelReport | undefined;

/** Registers every native kernel on the wasm backend, once; call after the backend is registered. */
export function installNativeKernels(): NativeKernelReport {
  if (report) return report;
  const load = loadAddon();
  if (!load.addon) {
    report = { kernels: [], reason: load.reason };
    return report;
  }
  const { addon } = load;
  report = {
    kernels: [
      ...installMatmulKernels(addon),
      ...installReduceKernels(addon),
      ...installRowKernels(addon),
      ...installIdentityKernel(),
      ...installFusedKernels(addon),
    ],
  };
  return report;
}

/** The name of one of Grove's fused kernels. */
export type FusedKernelName = (typeof FUSED_KERNELS)[keyof typeof FUSED_KERNELS];
