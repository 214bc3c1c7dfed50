import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FrameKind } from './frame.js';
import type { PeerNode } from './node.js';
import { startNodes } from './test-nodes.js';

const nodes: PeerNode[] = [];
after(async () => {
  await Promise.all(nodes.map((node) => node.close()));
});

/** Two linked nodes, ranks 0 and 1, logging into `logs`. */
async function pair() {
  const logs: string[] = [];
  const [a, b] = await startNodes(2, { log: (line) => logs.push(line) });
  nodes.push(a, b);
  return { a, b, logs };
}

const reduceHeader = (round: number, shard: number, elements: number) => ({
  kind: FrameKind.reduce,
  codec: 0,
  epoch: 1,
  round,
  attempt: 0,
  tensor: 'layers.0',
  shard,
  shards: 64,
  elements,
});

describe('peer link mailbox', () => {
  it('holds at most its byte budget of frames for the next round, then refuses the peer', async () => {
    const { a, b, logs } = await pair();
    // b is in round 1 of a 1 MiB model: a link may hold about 2 MiB for it.
    b.enterRound({ epoch: 1, round: 1 }, 1024 * 1024);
    const link = b.link(0);
    const frame = new Uint8Array(256 * 1024);
    // Valid frames for round 2, each well under the payload limit: 24 of them are 6 MiB.
    const sends = Array.from({ length: 24 }, (_, i) =>
      a.send(1, reduceHeader(2, i, frame.length / 4), frame).catch(() => {}),
    );
    await Promise.all(sends);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(link?.alive, false, 'the link stays open with 6 MiB waiting');
    assert.ok(
      logs.some((line) => /rejected a frame from peer 0: .*over the \d+-byte budget/.test(line)),
      logs.join('\n'),
    );
    await assert.rejects(b.receive(0, { epoch: 1, round: 2, attempt: 0, kind: FrameKind.reduce }, 500), /gone/);
  });

  it('refuses a frame for a round more than one ahead, and never delivers it', async () => {
    const { a, b, logs } = await pair();
    b.enterRound({ epoch: 1, round: 4 }, 1024);
    const link = b.link(0);
    await a.send(1, reduceHeader(6, 0, 2), new Uint8Array(8));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(link?.alive, false);
    assert.ok(
      logs.some((line) =>
        /rejected a frame from peer 0: a frame for round 6 of epoch 1, more than one ahead of round 4 of epoch 1/.test(
          line,
        ),
      ),
      logs.join('\n'),
    );
    await assert.rejects(
      b.receive(0, { epoch: 1, round: 6, attempt: 0, kind: FrameKind.reduce, shard: 0 }, 500),
      /gone/,
    );
  });

  it('keeps a frame for the next round until that round asks for it', async () => {
    const { a, b } = await pair();
    b.enterRound({ epoch: 1, round: 4 }, 1024);
    await a.send(1, reduceHeader(5, 3, 2), new Uint8Array(8));
    await new Promise((resolve) => setTimeout(resolve, 100));
    b.enterRound({ epoch: 1, round: 5 }, 1024);
    const frame = await b.receive(0, { epoch: 1, round: 5, attempt: 0, kind: FrameKind.reduce, shard: 3 }, 1_000);
    assert.equal(frame.header.shard, 3);
  });

  it('refuses nothing for being ahead while its replica is out of the rounds, copying the state again', async () => {
    const { a, b } = await pair();
    b.enterRound({ epoch: 1, round: 4 }, 1024);
    b.leaveRound();
    const link = b.link(0);
    await a.send(1, reduceHeader(9, 1, 2), new Uint8Array(8));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(link?.alive);
    b.enterRound({ epoch: 1, round: 9 }, 1024);
    const frame = await b.receive(0, { epoch: 1, round: 9, attempt: 0, kind: FrameKind.reduce, shard: 1 }, 1_000);
    assert.equal(frame.header.round, 9);
  });
});
