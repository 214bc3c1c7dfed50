/** Turning byte streams into training batches and held-out evaluation windows. */

/** The randomness a sampler needs; the trainer's generator provides it and saves its state. */
export interface RandomSource {
  below(bound: number): number;
}

export interface TokenBatch {
  /** Row-major [rows, length] inputs. */
  inputs: Int32Array;
  /** The same windows shifted by one token. */
  targets: Int32Array;
  rows: number;
  length: number;
}

/** `rows` windows of `length + 1` bytes starting at uniformly random offsets of `stream`. */
export function sampleBatch(stream: Uint8Array, rows: number, length: number, random: RandomSource): TokenBatch {
  if (stream.length < length + 1) {
    throw new Error(`Training text has ${stream.length} bytes, fewer than one window of ${length + 1}.`);
  }
  const inputs = new Int32Array(rows * length);
  const targets = new Int32Array(rows * length);
  for (let row = 0; row < rows; row++) {
    const start = random.below(stream.length - length);
    for (let i = 0; i < length; i++) {
      inputs[row * length + i] = stream[start + i];
      targets[row * length + i] = stream[start + i + 1];
    }
  }
  return { inputs, targets, rows, length };
}

/**
 * Consecutive non-overlapping windows over the first `maxBytes` of held-out text,
 * grouped into batches of `rows`. Deterministic: the same text always scores the same.
 */
export function evaluationBatches(stream: Uint8Array, length: number, rows: number, maxBytes: number): TokenBatch[] {
  const usable = Math.min(stream.length - 1, maxBytes);
  const windows = Math.floor(usable / length);
  if (windows === 0)
    throw new Error(`Held-out text has ${stream.length} bytes, fewer than one window of ${length + 1}.`);
  const batches: TokenBatch[] = [];
  for (let first = 0; first < windows; first += rows) {
    const count = Math.min(rows, windows - first);
    const inputs = new Int32Array(count * length);
    const targets = new Int32Array(count * length);
    for (let row = 0; row < count; row++) {
      const start = (first + row) * length;
      for (let i = 0; i < length; i++) {
        inputs[row * length + i] = stream[start + i];
        targets[row * length + i] = stream[start + i + 1];
      }
    }
    batches.push({ inputs, targets, rows: count, length });
  }
  return batches;
}
