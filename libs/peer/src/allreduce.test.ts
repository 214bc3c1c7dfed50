import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type WebSocket from 'ws';
import { ringAllReduce, shardBounds } from './allreduce.js';
import { parseCodec } from './codec.js';
import { FrameKind } from './frame.js';
import type { PeerLink } from './link.js';
import type { PeerNode, PeerNodeOptions } from './node.js';
import { sealedAs, startNodes } from './test-nodes.js';

const nodes: PeerNode[] = [];
after(async () => {
  await Promise.all(nodes.map((node) => node.close()));
});

async function startGroup(size: number, options: Partial<PeerNodeOptions> = {}) {
  const group = await startNodes(size, options);
  nodes.push(...group);
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
          ringAllReduce({ node, ring, epoch: 1, round: 1, attempt: 0, codec, timeoutMs: 5_000 }, 'layers.0', inputs[i]),
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
        ringAllReduce({ node, ring, epoch: 1, round: 4, attempt: 0, codec, timeoutMs: 5_000 }, 'layers.1', inputs[i]),
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

  it("refuses a neighbour's non-finite values before adding them, so no honest sum holds NaN", async () => {
    const group = await startGroup(3);
    const ring = group.map((node) => node.rank);
    const codec = parseCodec('int8');
    const inputs = group.map((_, rank) => randomValues(256, rank + 3));
    inputs[2][7] = Number.NaN; // int8: its block of 128 decodes to NaN everywhere
    const results = await Promise.allSettled(
      group.map((node, i) =>
        ringAllReduce({ node, ring, epoch: 1, round: 1, attempt: 0, codec, timeoutMs: 2_000 }, 'layers.0', inputs[i]),
      ),
    );
    for (const [rank, result] of results.entries()) {
      if (rank === 2) continue;
      if (result.status === 'fulfilled') assert.ok(result.value.every(Number.isFinite), `rank ${rank} summed NaN`);
    }
    assert.ok(
      results.some((r) => r.status === 'rejected' && /non-finite value in layers.0/.test(String(r.reason))),
      results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join('\n'),
    );
    await Promise.all(group.map((node) => node.close()));
  });

  it('refuses a shard whose norm is beyond what the members declared', async () => {
    const group = await startGroup(2);
    const ring = group.map((node) => node.rank);
    const codec = parseCodec('fp32');
    const honest = new Float32Array(64).fill(0.01);
    const inflated = new Float32Array(64).fill(1_000);
    const context = (node: PeerNode) => ({ node, ring, epoch: 1, round: 1, attempt: 0, codec, timeoutMs: 2_000 });
    const [a, b] = await Promise.allSettled([
      ringAllReduce({ ...context(group[0]), normBound: 1 }, 'layers.0', honest),
      ringAllReduce({ ...context(group[1]), normBound: 1 }, 'layers.0', inflated),
    ]);
    assert.equal(a.status, 'rejected');
    assert.match(String((a as PromiseRejectedResult).reason), /norm .* over the round's bound/);
    assert.equal(b.status, 'rejected');
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
  it('rejects and logs corrupt, foreign and out-of-place frames, and never delivers them', async () => {
    const logs: string[] = [];
    const [a, b] = await startGroup(2, { log: (message) => logs.push(message) });
    const expect = { epoch: 1, round: 2, attempt: 0, kind: FrameKind.reduce, tensor: 'layers.0', shard: 0 } as const;
    const header = {
      kind: FrameKind.reduce,
      codec: 0,
      run: 'run-1',
      expert: 'press',
      sender: 0,
      epoch: 1,
      round: 2,
      attempt: 0,
      tensor: 'layers.0',
      shard: 0,
      shards: 2,
      elements: 2,
    };
    const corrupt = (link: PeerLink) => {
      const bytes = sealedAs(link, header, new Uint8Array(8));
      bytes[bytes.length - 18] ^= 0xff; // a payload byte: the MAC no longer matches
      return bytes;
    };
    const cases: [string, (link: PeerLink) => Uint8Array][] = [
      ['flipped payload byte', corrupt],
      ['truncated', (link) => sealedAs(link, header, new Uint8Array(8)).slice(0, 20)],
      ['another run', (link) => sealedAs(link, { ...header, run: 'run-2' }, new Uint8Array(8))],
      ['unexpected shard', (link) => sealedAs(link, { ...header, shard: 1 }, new Uint8Array(8))],
      ['another sender', (link) => sealedAs(link, { ...header, sender: 2 }, new Uint8Array(8))],
    ];
    for (const [label, bytesFor] of cases) {
      const link = b.link(a.rank) ?? (await b.connect(a));
      const waiting = b.receive(a.rank, expect, 2_000);
      // Send raw bytes, bypassing the sender's own checks.
      const sender = a.link(b.rank) as PeerLink;
      (sender as unknown as { socket: WebSocket }).socket.send(bytesFor(sender));
      await assert.rejects(waiting, /gone|bad frame/i, label);
      assert.equal(link.alive, false, `${label}: the link stays open`);
      // Reconnect for the next case.
      await Promise.all([a.connect(b), b.connect(a)]);
    }
    assert.ok(logs.filter((line) => line.startsWith('rejected a frame')).length >= cases.length, logs.join('\n'));
    await Promise.all([a.close(), b.close()]);
  });

  it('declares a peer dead when its heartbeats stop, though its socket still answers pings', async () => {
    const [a, b] = await startGroup(2, { heartbeatMs: 100, deadAfterMs: 500 });
    const link = a.link(b.rank) as PeerLink;
    // A hung replica: its process and WebSocket library are alive (pings get pongs), its own code is not.
    clearInterval((b.link(a.rank) as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
    const started = Date.now();
    await assert.rejects(
      a.receive(b.rank, { epoch: 1, round: 1, attempt: 0, kind: FrameKind.meta }, 60_000),
      /silent for more than 500 ms/,
    );
    assert.ok(Date.now() - started < 3_000);
    assert.equal(link.alive, false);
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a frame replayed on its link, or relayed from another rank', async () => {
    const logs: string[] = [];
    const [a, b, c] = await startGroup(3, { log: (message) => logs.push(message) });
    const captured: Uint8Array[] = [];
    const socketOf = (link: PeerLink | undefined) => (link as unknown as { socket: WebSocket }).socket;
    const wire = socketOf(a.link(c.rank));
    const send = wire.send.bind(wire);
    wire.send = ((data: Uint8Array, ...rest: unknown[]) => {
      captured.push(Uint8Array.from(data));
      return (send as (...args: unknown[]) => void)(data, ...rest);
    }) as typeof wire.send;
    const position = { epoch: 1, round: 3, attempt: 0, kind: FrameKind.meta } as const;
    const header = { ...position, codec: 0, tensor: 'meta', shard: 0, shards: 1, elements: 0 };
    await a.send(c.rank, header, new Uint8Array([1, 2, 3]));
    assert.deepEqual((await c.receive(a.rank, position, 2_000)).payload, new Uint8Array([1, 2, 3]));
    const frame = captured.find((bytes) => bytes[5] === FrameKind.meta) as Uint8Array;

    // The same bytes from b: another link, another key.
    const relayed = c.link(b.rank) as PeerLink;
    socketOf(b.link(c.rank)).send(frame);
    await assert.rejects(c.receive(b.rank, position, 2_000), /gone/);
    assert.equal(relayed.alive, false);
    // The same bytes again from a: the sequence number has moved on.
    const replayed = c.link(a.rank) as PeerLink;
    send(frame);
    await assert.rejects(c.receive(a.rank, { ...position, round: 4 }, 2_000), /gone/);
    assert.equal(replayed.alive, false);
    assert.ok(
      logs.some((line) => /peer 1: Bad frame \(mac\)/.test(line)),
      logs.join('\n'),
    );
    assert.ok(
      logs.some((line) => /peer 0: sequence number \d+, expected \d+/.test(line)),
      logs.join('\n'),
    );
    await Promise.all([a.close(), b.close(), c.close()]);
  });
});
