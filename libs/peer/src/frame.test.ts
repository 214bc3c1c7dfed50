import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32c } from '@node-rs/crc32';
import { decodeFrame, encodeFrame, FrameError, type FrameHeader, FrameKind } from './frame.js';

const header: FrameHeader = {
  kind: FrameKind.reduce,
  codec: 10,
  run: 'run-1',
  expert: 'fiction',
  round: 7,
  attempt: 1,
  tensor: 'layers.2',
  shard: 1,
  shards: 4,
  elements: 3,
};
const payload = Uint8Array.from([1, 2, 3, 4, 5, 6]);
const LIMIT = 1024;

/** Rewrites the trailing checksum, so a test reaches the check after it. */
function resealed(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(copy.length - 4, crc32c(Buffer.from(copy.buffer, 0, copy.length - 4)), true);
  return copy;
}

const reasonOf = (bytes: Uint8Array) => {
  try {
    decodeFrame(bytes, LIMIT);
  } catch (error) {
    assert.ok(error instanceof FrameError, String(error));
    return error.reason;
  }
  return 'accepted';
};

describe('peer frames', () => {
  it('round-trip every field and the payload', () => {
    const frame = decodeFrame(encodeFrame(header, payload), LIMIT);
    assert.deepEqual(frame.header, header);
    assert.deepEqual(frame.payload, payload);
    const unicode = { ...header, expert: 'ünïcödé', tensor: '' };
    assert.deepEqual(decodeFrame(encodeFrame(unicode, new Uint8Array(0)), LIMIT).header, unicode);
  });

  it('refuse to encode what they could not carry', () => {
    assert.throws(() => encodeFrame({ ...header, run: 'x'.repeat(256) }, payload), /255 bytes/);
    assert.throws(() => encodeFrame({ ...header, round: -1 }, payload), /round must be a u32/);
    assert.throws(() => encodeFrame({ ...header, shard: 4 }, payload), /not below shards/);
    assert.throws(() => encodeFrame({ ...header, kind: 99 as FrameKind }, payload), /Unknown frame kind/);
  });

  it('reject every kind of damage with its reason', () => {
    const good = encodeFrame(header, payload);
    for (const cut of [0, 10, 35, good.length - 5, good.length - 1])
      assert.equal(reasonOf(good.subarray(0, cut)), 'truncated', `cut at ${cut}`);
    const flip = (index: number) => {
      const copy = good.slice();
      copy[index] ^= 0x01;
      return copy;
    };
    assert.equal(reasonOf(flip(0)), 'magic');
    assert.equal(reasonOf(resealed(flip(4))), 'version');
    const kind = good.slice();
    kind[5] = 42;
    assert.equal(reasonOf(resealed(kind)), 'kind');
    assert.equal(reasonOf(flip(good.length - 6)), 'checksum'); // a payload bit
    assert.equal(reasonOf(flip(8)), 'checksum'); // the round
    assert.equal(reasonOf(encodeFrame(header, new Uint8Array(LIMIT + 1))), 'oversized');
    assert.equal(reasonOf(resealed(Uint8Array.from([...good.subarray(0, good.length - 4), 9, 0, 0, 0, 0]))), 'length');
    const shortPayload = good.slice();
    new DataView(shortPayload.buffer).setUint32(28, payload.length + 50, true);
    assert.equal(reasonOf(resealed(shortPayload)), 'truncated');
    const badUtf8 = encodeFrame({ ...header, run: 'ab' }, payload);
    badUtf8[33] = 0xff;
    assert.equal(reasonOf(resealed(badUtf8)), 'string');
    const shard = good.slice();
    new DataView(shard.buffer).setUint32(16, 9, true);
    assert.equal(reasonOf(resealed(shard)), 'length');
    const tensorLength = good.slice();
    new DataView(tensorLength.buffer).setUint16(32 + 1 + 5 + 1 + 7, 60_000, true);
    assert.equal(reasonOf(resealed(tensorLength)), 'truncated');
    const noKind = good.slice();
    noKind[5] = 0;
    assert.equal(reasonOf(resealed(noKind)), 'kind');
    const badTensor = encodeFrame({ ...header, tensor: 'é' }, payload);
    badTensor[32 + 1 + 5 + 1 + 7 + 2] = 0xc3; // a lead byte cut short by the next one
    badTensor[32 + 1 + 5 + 1 + 7 + 2 + 1] = 0x41;
    assert.equal(reasonOf(resealed(badTensor)), 'string');
  });

  it('notice any single flipped bit and any truncation', () => {
    const good = encodeFrame(header, payload);
    for (let bit = 0; bit < good.length * 8; bit++) {
      const copy = good.slice();
      copy[bit >> 3] ^= 1 << (bit & 7);
      assert.notEqual(reasonOf(copy), 'accepted', `bit ${bit}`);
    }
    for (let cut = 0; cut < good.length; cut++) assert.notEqual(reasonOf(good.subarray(0, cut)), 'accepted');
  });

  it('decode a frame that sits at any offset in a larger buffer', () => {
    const good = encodeFrame(header, payload);
    const shifted = new Uint8Array(good.length + 3).subarray(3);
    shifted.set(good);
    assert.deepEqual(decodeFrame(shifted, LIMIT).payload, payload);
    assert.throws(() => decodeFrame(good, Number.NaN), /limit must be a number/);
  });
});
