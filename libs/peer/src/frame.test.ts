import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeFrame, encodeFrame, FrameError, type FrameHeader, FrameKind, frameTag } from './frame.js';

const header: FrameHeader = {
  kind: FrameKind.reduce,
  codec: 10,
  run: 'run-1',
  expert: 'fiction',
  sender: 2,
  epoch: 3,
  round: 7,
  attempt: 1,
  tensor: 'layers.2',
  shard: 1,
  shards: 4,
  elements: 3,
  sequence: 41,
};
const KEY = randomBytes(32);
const NAMES = 48 + 1 + 5 + 1 + 7; // where the tensor name's length sits
const payload = Uint8Array.from([1, 2, 3, 4, 5, 6]);
const LIMIT = 1024;

/** Rewrites the trailing MAC, so a test reaches the check after it. */
function resealed(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  const sequence = Number(new DataView(copy.buffer).getBigUint64(40, true));
  copy.set(frameTag(KEY, sequence, copy.subarray(0, copy.length - 16)), copy.length - 16);
  return copy;
}

const reasonOf = (bytes: Uint8Array) => {
  try {
    decodeFrame(bytes, LIMIT, KEY);
  } catch (error) {
    assert.ok(error instanceof FrameError, String(error));
    return error.reason;
  }
  return 'accepted';
};

describe('peer frames', () => {
  it('round-trip every field and the payload', () => {
    const frame = decodeFrame(encodeFrame(header, payload, KEY), LIMIT, KEY);
    assert.deepEqual(frame.header, header);
    assert.deepEqual(frame.payload, payload);
    const unicode = { ...header, expert: 'ünïcödé', tensor: '' };
    assert.deepEqual(decodeFrame(encodeFrame(unicode, new Uint8Array(0), KEY), LIMIT, KEY).header, unicode);
  });

  it('refuse to encode what they could not carry', () => {
    assert.throws(() => encodeFrame({ ...header, run: 'x'.repeat(256) }, payload, KEY), /255 bytes/);
    assert.throws(() => encodeFrame({ ...header, round: -1 }, payload, KEY), /round must be a u32/);
    assert.throws(() => encodeFrame({ ...header, shard: 4 }, payload, KEY), /not below shards/);
    assert.throws(() => encodeFrame({ ...header, kind: 99 as FrameKind }, payload, KEY), /Unknown frame kind/);
  });

  it('reject every kind of damage with its reason', () => {
    const good = encodeFrame(header, payload, KEY);
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
    assert.equal(reasonOf(flip(good.length - 18)), 'mac'); // a payload bit
    assert.equal(reasonOf(flip(16)), 'mac'); // the round
    assert.equal(reasonOf(flip(8)), 'mac'); // the sender
    assert.equal(reasonOf(flip(40)), 'mac'); // the sequence number
    assert.equal(reasonOf(encodeFrame(header, payload, randomBytes(32))), 'mac'); // another link's key
    assert.equal(reasonOf(encodeFrame(header, new Uint8Array(LIMIT + 1), KEY)), 'oversized');
    assert.equal(
      reasonOf(resealed(Uint8Array.from([...good.subarray(0, good.length - 16), 9, ...new Uint8Array(16)]))),
      'length',
    );
    const shortPayload = good.slice();
    new DataView(shortPayload.buffer).setUint32(36, payload.length + 50, true);
    assert.equal(reasonOf(resealed(shortPayload)), 'truncated');
    const badUtf8 = encodeFrame({ ...header, run: 'ab' }, payload, KEY);
    badUtf8[49] = 0xff;
    assert.equal(reasonOf(resealed(badUtf8)), 'string');
    const shard = good.slice();
    new DataView(shard.buffer).setUint32(24, 9, true);
    assert.equal(reasonOf(resealed(shard)), 'length');
    const tensorLength = good.slice();
    new DataView(tensorLength.buffer).setUint16(NAMES, 60_000, true);
    assert.equal(reasonOf(resealed(tensorLength)), 'truncated');
    const noKind = good.slice();
    noKind[5] = 0;
    assert.equal(reasonOf(resealed(noKind)), 'kind');
    const badTensor = encodeFrame({ ...header, tensor: 'é' }, payload, KEY);
    badTensor[NAMES + 2] = 0xc3; // a lead byte cut short by the next one
    badTensor[NAMES + 2 + 1] = 0x41;
    assert.equal(reasonOf(resealed(badTensor)), 'string');
  });

  it('notice any single flipped bit and any truncation', () => {
    const good = encodeFrame(header, payload, KEY);
    for (let bit = 0; bit < good.length * 8; bit++) {
      const copy = good.slice();
      copy[bit >> 3] ^= 1 << (bit & 7);
      assert.notEqual(reasonOf(copy), 'accepted', `bit ${bit}`);
    }
    for (let cut = 0; cut < good.length; cut++) assert.notEqual(reasonOf(good.subarray(0, cut)), 'accepted');
  });

  it('decode a frame that sits at any offset in a larger buffer', () => {
    const good = encodeFrame(header, payload, KEY);
    const shifted = new Uint8Array(good.length + 3).subarray(3);
    shifted.set(good);
    assert.deepEqual(decodeFrame(shifted, LIMIT, KEY).payload, payload);
    assert.throws(() => decodeFrame(good, Number.NaN, KEY), /limit must be a number/);
  });
});
