import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ringAllReduce, shardBounds } from './allreduce.js';
import { parseCodec } from './codec.js';
import { encodeFrame, FrameKind } from './frame.js';
import { PeerNode } from './node.js';

const SECRET = 'test-secret';
const nodes: PeerNode[] = [];
after(async () => {
  await Promise.all(nodes.map((node) => node.close()));
});

async function startGroup(size: number, options: Partial<Parameters<typeof PeerNode.start>[0]> = {}) {
  const group = await Promise.all(
    Array.from({ length: size }, (_, rank) =>
      PeerNode.start({ run: 'run-1', expert: 'press', rank, secret: SECRET, ...options }),
    ),
  );
  nodes.push(...group);
  // Every pair linked, each link opened once by the rule in `connect`.
  await Promise.all(group.flatMap((node) => group.filter((peer) => peer !== node).map((peer) => node.connect(peer))));
  return group;
}

function randomValues(length: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length }, () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31 - 0.5;
  });
}

describe('ring all-reduce', () => {
  for (const size of [2, 3, 4]) {
    it(`sums exactly with fp32 for ${size} replicas, leaving identical results everywhere`, async () => {
      const group = await startGroup(size);
      const length = 1_001; // not a multiple of the ring size: shards differ in length
      const inputs = group.map((_, rank) => randomValues(length, rank + 1));
      const ring = group.map((node) => node.rank);
      const codec = parseCodec('fp32');
      const sums = await Promise.all(
        group.map((node, i) =>
          ringAllReduce({ node, ring, round: 1, attempt: 0, codec, timeoutMs: 5_000 }, 'layers.0', inputs[i]),
        ),
      );
      // The ring adds in its own order; compare with the exact sum within float32 rounding.
      for (let j = 0; j < length; j++) {
        const exact = inputs.reduce((sum, values) => sum + values[j], 0);
        assert.ok(Math.abs(sums[0][j] - exact) <= 1e-6, `element ${j}: ${sums[0][j]} vs ${exact}`);
      }
      for (const sum of sums.slice(1)) assert.deepEqual(sum, sums[0]);

      // Each replica sent about 2·(R−1)/R of the payload (plus frame headers).
      const payload = length * 4;
      for (const node of group) {
        const sent = node.stats().bytesSent;
        assert.ok(sent >= (2 * (size - 1) * payload) / size, `${sent} bytes sent`);
        assert.ok(sent <= (2 * (size - 1) * payload) / size + 2 * (size - 1) * 200, `${sent} bytes sent`);
      }
      await Promise.all(group.map((node) => node.close()));
    });
  }

  it('leaves bit-identical sums on every replica with a lossy codec', async () => {
    const group = await startGroup(3);
    const inputs = group.map((_, rank) => randomValues(5_000, rank + 7));
    const ring = group.map((node) => node.rank);
    const codec = parseCodec('int8+lz4');
    const sums = await Promise.all(
      group.map((node, i) =>
        ringAllReduce({ node, ring, round: 4, attempt: 0, codec, timeoutMs: 5_000 }, 'layers.1', inputs[i]),
      ),
    );
    assert.deepEqual(sums[1], sums[0]);
    assert.deepEqual(sums[2], sums[0]);
    for (let j = 0; j < 5_000; j++) {
      const exact = inputs[0][j] + inputs[1][j] + inputs[2][j];
      assert.ok(Math.abs(sums[0][j] - exact) < 0.05, `element ${j}`);
    }
    await Promise.all(group.map((node) => node.close()));
  });

  it('splits a tensor into near-equal contiguous shards', () => {
    assert.deepEqual(shardBounds(10, 3), [
      [0, 3],
      [3, 6],
      [6, 10],
    ]);
    assert.deepEqual(shardBounds(2, 4), [
      [0, 0],
      [0, 1],
      [1, 1],
      [1, 2],
    ]);
  });
});

describe('peer links', () => {
  it('refuses a peer with the wrong secret with 401', async () => {
    const [node] = await startGroup(1);
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(node.url as string, { headers: { authorization: 'Bearer wrong', 'x-grove-peer': '5' } });
      ws.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      ws.on('open', () => reject(new Error('an unauthenticated peer was let in')));
      ws.on('error', () => {});
    });
    assert.equal(status, 401);
    await assert.rejects(
      PeerNode.start({ run: 'run-1', expert: 'press', rank: 9, secret: 'wrong' }).then(async (intruder) => {
        nodes.push(intruder);
        return intruder.connect({ rank: node.rank, url: node.url });
      }),
      /refused the connection with HTTP 401/,
    );
    await node.close();
  });

  it('rejects and logs corrupt, foreign and out-of-place frames, and never delivers them', async () => {
    const logs: string[] = [];
    const [a, b] = await startGroup(2, { log: (message) => logs.push(message) });
    const expect = { round: 2, attempt: 0, kind: FrameKind.reduce, tensor: 'layers.0', shard: 0 } as const;
    const header = {
      kind: FrameKind.reduce,
      codec: 0,
      run: 'run-1',
      expert: 'press',
      round: 2,
      attempt: 0,
      tensor: 'layers.0',
      shard: 0,
      shards: 2,
      elements: 2,
    };
    const good = encodeFrame(header, new Uint8Array(8));
    const corrupt = good.slice();
    corrupt[corrupt.length - 6] ^= 0xff; // a payload byte: the checksum no longer matches

    const cases: [string, Uint8Array][] = [
      ['flipped payload byte', corrupt],
      ['truncated', good.slice(0, 20)],
      ['another run', encodeFrame({ ...header, run: 'run-2' }, new Uint8Array(8))],
      ['unexpected shard', encodeFrame({ ...header, shard: 1 }, new Uint8Array(8))],
    ];
    for (const [label, bytes] of cases) {
      const link = b.link(a.rank) ?? (await b.connect(a));
      const waiting = b.receive(a.rank, expect, 2_000);
      // Send raw bytes, bypassing the sender's own checks.
      (a.link(b.rank) as unknown as { socket: WebSocket }).socket.send(bytes);
      await assert.rejects(waiting, /gone|bad frame/i, label);
      assert.equal(link.alive, false, `${label}: the link stays open`);
      // Reconnect for the next case.
      await Promise.all([a.connect(b), b.connect(a)]);
    }
    assert.ok(logs.filter((line) => line.startsWith('rejected a frame')).length >= cases.length, logs.join('\n'));
    await Promise.all([a.close(), b.close()]);
  });

  it('notices a dead peer within seconds', async () => {
    const a = await PeerNode.start({
      run: 'run-1',
      expert: 'press',
      rank: 0,
      secret: SECRET,
      heartbeatMs: 100,
      deadAfterMs: 500,
    });
    nodes.push(a);
    // A peer that connects and then freezes without closing its socket (a hung host).
    const frozen = new WebSocket(a.url as string, {
      headers: { authorization: `Bearer ${SECRET}`, 'x-grove-peer': '1' },
    });
    await new Promise((resolve) => frozen.once('open', resolve));
    (frozen as unknown as { _socket: { pause(): void } })._socket.pause();
    const link = await a.connect({ rank: 1 });
    const started = Date.now();
    await assert.rejects(
      a.receive(1, { round: 1, attempt: 0, kind: FrameKind.meta }, 60_000),
      /silent for more than 500 ms/,
    );
    assert.ok(Date.now() - started < 3_000);
    assert.equal(link.alive, false);
    frozen.terminate();
    await a.close();
  });
});
