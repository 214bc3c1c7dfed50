import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type PrivateRedis, startPrivateRedis } from '@grove/jobs';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { FrameKind } from './frame.js';
import { handshake } from './handshake.js';
import { createIdentity, type IdentityKeys } from './identity.js';
import { PeerNode } from './node.js';
import { Rendezvous } from './rendezvous.js';

let redis: PrivateRedis;
const closers: (() => Promise<void> | void)[] = [];
before(async () => {
  redis = await startPrivateRedis(mkdtempSync(join(tmpdir(), 'grove-peer-handshake-')));
});
after(async () => {
  for (const close of closers.reverse()) await close();
  await redis?.stop();
});

const KEY = 'grove:test:handshake';
const logs: string[] = [];

/** A replica registered in the rendezvous under `rank`, with its own identity. */
async function replica(rank: number, refusalLogIntervalMs = 1) {
  const connection = new Redis(redis.url);
  const rendezvous = new Rendezvous(connection, KEY, rank, { ttlMs: 5_000 });
  const identity = createIdentity();
  const node = await PeerNode.start({
    run: 'run-1',
    expert: 'press',
    rank,
    identity,
    directory: (peer) => rendezvous.identityOf(peer),
    handshakeTimeoutMs: 500,
    refusalLogIntervalMs,
    log: (message) => logs.push(`${rank}: ${message}`),
  });
  await rendezvous.register(node.url, node.identity);
  closers.push(async () => {
    await node.close();
    await rendezvous.leave();
    connection.disconnect();
  });
  return { node, rendezvous, identity };
}

/**
 * Opens a raw connection to `node` claiming `rank` and runs the handshake as `identity`:
 * `accepted` when the node keeps the connection open after it, else why not.
 */
function claim(node: PeerNode, rank: string, identity: IdentityKeys, directory: Rendezvous) {
  const ws = new WebSocket(node.url as string, { headers: { 'x-grove-peer': rank } });
  return new Promise<number | string>((resolve) => {
    // The handshake listens from the moment the socket opens: the node says hello at once.
    ws.once('open', () =>
      handshake(ws, {
        run: 'run-1',
        expert: 'press',
        rank: Number(rank),
        identity,
        peerRank: node.rank,
        directory: (peer) => directory.identityOf(peer),
        timeoutMs: 2_000,
      }).then(
        () => {
          // This side checked the node's proof; the node may still refuse this side's.
          const timer = setTimeout(() => resolve('accepted'), 300);
          ws.once('close', () => {
            clearTimeout(timer);
            resolve('closed by the node');
          });
        },
        (error: Error) => resolve(error.message),
      ),
    );
    ws.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    ws.once('error', () => resolve(0));
  });
}

describe('peer handshake', () => {
  it('lets no member speak for another, and never gives up a real link to an impostor', async () => {
    const a = await replica(0);
    const b = await replica(1);
    const mallory = await replica(2);
    const link = await b.node.connect({ rank: 0, url: a.node.url });
    const real = a.node.link(1);
    assert.ok(real?.alive);
    // Mallory is a member (rank 2) and reads Redis: she knows rank 1's session and public key.
    const listed = await a.rendezvous.identityOf(1);
    const impostor = { ...mallory.identity, session: listed?.session as string };
    for (let i = 0; i < 4; i++) {
      const outcome = await claim(a.node, '1', impostor, mallory.rendezvous);
      assert.notEqual(outcome, 'accepted');
    }
    assert.equal(a.node.link(1), real, 'the real link was replaced');
    assert.ok(real.alive && link.alive);
    assert.ok(
      logs.some((line) => /0: refused .*proof is not signed by the key the rendezvous lists for rank 1/.test(line)),
      logs.join('\n'),
    );
    // The real link still carries frames both ways.
    const position = { epoch: 1, round: 1, attempt: 0, kind: FrameKind.meta } as const;
    const header = { ...position, codec: 0, tensor: 'meta', shard: 0, shards: 1, elements: 0 };
    await b.node.send(0, header, new Uint8Array([7]));
    assert.deepEqual((await a.node.receive(1, position, 2_000)).payload, new Uint8Array([7]));

    // Her own rank with her own key is fine; another's session with her key, or an unlisted rank, is not.
    assert.equal(await claim(a.node, '2', mallory.identity, mallory.rendezvous), 'accepted');
    assert.match(String(await claim(a.node, '7', mallory.identity, mallory.rendezvous)), /gone|closed|failed/);
    assert.ok(logs.some((line) => /no replica of rank 7 is registered/.test(line)));
  });

  it('parses the claimed rank strictly', async () => {
    const a = await replica(10);
    for (const rank of ['1e3', '01', '-1', '1.0', '0x1', '1,2', '', '10']) {
      assert.equal(await claim(a.node, rank, createIdentity(), a.rendezvous), 400, `rank ${JSON.stringify(rank)}`);
    }
  });

  it('destroys a connection that does not complete the handshake in time', async () => {
    const a = await replica(20);
    await replica(21);
    const ws = new WebSocket(a.node.url as string, { headers: { 'x-grove-peer': '21' } });
    await new Promise((resolve) => ws.once('open', resolve));
    const started = Date.now();
    // Says nothing: the node gives up on it after its 500 ms handshake timeout.
    await new Promise((resolve) => ws.once('close', resolve));
    assert.ok(Date.now() - started < 2_000, `closed after ${Date.now() - started} ms`);
    assert.ok(logs.some((line) => /20: refused .*not completed within 500 ms/.test(line)));
  });

  it('logs refused connections once per interval, and cuts off an address refused too often', async () => {
    const a = await replica(30, 60_000);
    const before = logs.length;
    const statuses: (number | string)[] = [];
    for (let i = 0; i < 100; i++) statuses.push(await claim(a.node, '1e3', createIdentity(), a.rendezvous));
    // The first 20 get their 400; after that the address is cut off before its request is read.
    assert.deepEqual(statuses.slice(0, 20), Array(20).fill(400));
    assert.ok(
      statuses.slice(20).every((status) => status === 0),
      String(statuses.slice(20)),
    );
    const lines = logs.slice(before).filter((line) => line.startsWith('30: '));
    assert.equal(lines.length, 1, lines.join('\n'));
  });

  it('destroys sockets that never upgrade', async () => {
    const a = await replica(40);
    const { port } = new URL(a.node.url as string);
    const started = Date.now();
    const closed = Array.from(
      { length: 100 },
      () =>
        new Promise<number>((resolve) => {
          const socket = connect(Number(port), '127.0.0.1');
          socket.on('error', () => {});
          socket.on('close', () => resolve(Date.now() - started));
        }),
    );
    const times = await Promise.all(closed);
    assert.ok(Math.max(...times) < 3_000, `the last silent socket closed after ${Math.max(...times)} ms`);
  });
});
