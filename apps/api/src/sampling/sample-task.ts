/**
 * One sample in a child process of the API (see pool.ts): generating is seconds of CPU that
 * would otherwise stall every request on the API's event loop.
 */
import { setPriority } from 'node:os';
import { serveChildTask } from '@grove/jobs';
import { Rng, sampleText, selectBackend } from '@grove/model';
import { loadCheckpoint } from '@grove/store';
import { modelFromCheckpoint } from '@grove/train';
import type { SampleInput, SampleResult } from './pool.js';

// Below the API in the scheduler's eyes: a sample may wait for the CPU, a health check should not.
setPriority(10);

serveChildTask<SampleInput, never, SampleResult>(async ({ folder, prompt, tokens, temperature, seed }) => {
  await selectBackend();
  const network = modelFromCheckpoint(loadCheckpoint(folder));
  try {
    return { text: sampleText(network, prompt, { maxNewTokens: tokens, temperature, topK: 40, rng: new Rng(seed) }) };
  } finally {
    network.dispose();
  }
});
