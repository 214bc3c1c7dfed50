import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseCodec } from './codec.js';
import type { PeerNode } from './node.js';
import { type Aggregation, robustAllReduce } from './robust.js';
import { startNodes } from './test-nodes.js';

const nodes: PeerNode[] = [];
after(async () => {
  await Promise.all(nodes.map((node) => node.close()));
});

const LENGTH = 1_003;
/** Three honest members near 1, and rank 3 sending 10⁶ everywhere. */
const inputs = [0, 1, 2, 3].map((rank) =>
  Float32Array.from({ length: LENGTH }, (_, i) => (rank === 3 ? 1e6 : 1 + 0.01 * Math.sin(i + rank))),
);

async function aggregate(aggregation: Exclude<Aggregation, 'mean'>, previous?: Float32Array) {
  const group = await startNodes(4);
  nodes.push(...group);
  const roster = group.map((node) => node.rank);
  const results = await Promise.all(
    group.map((node, i) =>
      robustAllReduce(
        {
          node,
          ring: roster,
          epoch: 1,
          round: 1,
          attempt: 0,
          codec: parseCodec('fp32'),
          timeoutMs: 5_000,
          aggregation,
          counted: new Set(roster),
          trim: 0.25,
          previous,
        },
        'layers.0',
        inputs[i],
      ),
    ),
  );
  return { group, results };
}

describe('robust aggregation', () => {
  for (const [aggregation, previous] of [
    ['trimmed-mean', undefined],
    ['centered-clip', new Float32Array(LENGTH).fill(1)],
  ] as const) {
    it(`${aggregation} keeps one member's huge values from moving the result, bit-identical everywhere`, async () => {
      const { group, results } = await aggregate(aggregation, previous);
      for (const result of results.slice(1)) assert.deepEqual(result, results[0]);
      for (let i = 0; i < LENGTH; i++) assert.ok(Math.abs(results[0][i] - 1) < 0.05, `[${i}] ${results[0][i]}`);
      // Scatter then gather: 2·(R−1)/R of the payload per member, plus frame headers.
      for (const node of group) {
        const sent = node.stats().bytesSent;
        assert.ok(sent >= (2 * 3 * LENGTH * 4) / 4 && sent < (2 * 3 * LENGTH * 4) / 4 + 3_000, `${sent} bytes`);
      }
    });
  }
});
