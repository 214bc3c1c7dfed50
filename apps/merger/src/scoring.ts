/**
 * Scoring held-out text with several models at once: the shared step of the domain posterior
 * (merge, grow) and of the ensembles (eval).
 */
import { type Domain, evaluationBatches } from '@grove/data';
import type { WindowLosses } from '@grove/merge';
import type { TransformerLM } from '@grove/model';
import { batchTensors } from '@grove/train';
import * as tf from '@tensorflow/tfjs-core';

/** Rows per scoring batch. */
export const EVAL_ROWS = 16;
/** Held-out bytes from the end of each domain's split, for the domain posterior; eval scores from the start. */
export const POSTERIOR_BYTES = 4_096;

/** The last POSTERIOR_BYTES of a text. */
export const posteriorTail = (text: Uint8Array) => text.subarray(Math.max(0, text.length - POSTERIOR_BYTES));

/** Every model's token losses on every window of `text` (up to `bytes`): one WindowLosses per window. */
export function windowLosses(models: TransformerLM[], text: Uint8Array, bytes: number): WindowLosses[] {
  const length = models[0].config.contextLength;
  return evaluationBatches(text, length, EVAL_ROWS, bytes).flatMap((batch) => {
    const perModel = models.map((model) =>
      tf.tidy(() => model.tokenLosses(...batchTensors(batch)).dataSync() as Float32Array),
    );
    return Array.from({ length: batch.rows }, (_, row) =>
      perModel.map((losses) => losses.subarray(row * batch.length, (row + 1) * batch.length)),
    );
  });
}

/**
 * [sequence][expert] log-likelihoods (nats) of the windows at the end of `text`: what BTM's
 * domain posterior takes. `text` defaults to the domain's held-out tail.
 */
export function posteriorSequences(models: TransformerLM[], domain: Domain, text = domain.heldOut): number[][] {
  return windowLosses(models, posteriorTail(text), POSTERIOR_BYTES).map((window) =>
    window.map((losses) => -losses.reduce((sum, loss) => sum + loss, 0)),
  );
}
