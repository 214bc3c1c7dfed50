/**
 * Loads the compiled addon (build/Release/grove_native.node), or says why it cannot.
 * GROVE_NATIVE=0 turns it off. OpenBLAS runs one thread per process: Grove scales by
 * running several processes, and a thread pool per process would oversubscribe the cores.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Every function takes the wasm heap, then byte offsets into it and sizes (see src/c/addon.c). */
export interface NativeAddon {
  matmul(heap: ArrayBuffer, ...args: number[]): void;
  sum(heap: ArrayBuffer, ...args: number[]): void;
  gatherRows(heap: ArrayBuffer, ...args: number[]): void;
  segmentSumRows(heap: ArrayBuffer, ...args: number[]): void;
  rmsNorm(heap: ArrayBuffer, ...args: number[]): void;
  rmsNormGrad(heap: ArrayBuffer, ...args: number[]): void;
  gelu(heap: ArrayBuffer, ...args: number[]): void;
  geluGrad(heap: ArrayBuffer, ...args: number[]): void;
  rotary(heap: ArrayBuffer, ...args: number[]): void;
  attention(heap: ArrayBuffer, ...args: number[]): void;
  attentionGrad(heap: ArrayBuffer, ...args: number[]): void;
  softmaxCrossEntropy(heap: ArrayBuffer, ...args: number[]): number;
  softmaxCrossEntropyGrad(heap: ArrayBuffer, ...args: number[]): void;
  adamw(heap: ArrayBuffer, ...args: number[]): void;
  setThreads(threads: number): void;
}

export type AddonLoad = { addon: NativeAddon; reason?: undefined } | { addon?: undefined; reason: string };

const BINARY = fileURLToPath(new URL('../build/Release/grove_native.node', import.meta.url));
const BUILD_REASON = fileURLToPath(new URL('../build/unavailable.txt', import.meta.url));

let loaded: AddonLoad | undefined;

export function loadAddon(): AddonLoad {
  if (process.env.GROVE_NATIVE === '0') return { reason: 'native kernels off: GROVE_NATIVE=0' };
  loaded ??= tryLoad();
  return loaded;
}

function tryLoad(): AddonLoad {
  if (!existsSync(BINARY)) {
    const why = existsSync(BUILD_REASON)
      ? readFileSync(BUILD_REASON, 'utf8').trim()
      : 'not compiled (run `npm rebuild @grove/native`)';
    return { reason: `native addon not built: ${why}` };
  }
  // Read by OpenBLAS when the library loads; setThreads below covers a value set elsewhere.
  process.env.OPENBLAS_NUM_THREADS ??= '1';
  try {
    const addon = createRequire(import.meta.url)(BINARY) as NativeAddon;
    addon.setThreads(1);
    return { addon };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { reason: `native addon failed to load: ${message.split('\n')[0]}` };
  }
}
