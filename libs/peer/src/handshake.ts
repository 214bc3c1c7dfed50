/**
 * The handshake that opens every peer link (docs/protocol.md, "Handshake"): each side says
 * who it is (`hello`: run, expert, rank, session, a nonce, an ephemeral X25519 key), looks the
 * other's rank up in the rendezvous, and proves its own claim by signing the whole exchange
 * with its session's Ed25519 key (`proof`). Both sides then derive one MAC key per direction
 * from the X25519 shared secret, so no member can speak for another or replay one's frames.
 */
import {
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import type WebSocket from 'ws';
import { PROTOCOL_VERSION } from './frame.js';
import { type IdentityKeys, type PeerDirectory, type PeerIdentity, publicKeyOf } from './identity.js';

export interface HandshakeOptions {
  run: string;
  expert: string;
  rank: number;
  identity: IdentityKeys;
  /** The rank the other side must prove it is. */
  peerRank: number;
  directory: PeerDirectory;
  timeoutMs: number;
}

/** One key per direction, for the frames' MACs. */
export interface LinkKeys {
  send: Buffer;
  receive: Buffer;
}

export interface Handshake {
  keys: LinkKeys;
  /**
   * Stops listening and hands `into` the messages that arrived after the peer's proof, in
   * order, now and any still in the handshake's queue later.
   */
  detach(into: (data: Buffer) => void): void;
}

export class HandshakeError extends Error {
  constructor(
    readonly rank: number,
    reason: string,
  ) {
    super(`Handshake with peer ${rank} failed: ${reason}.`);
    this.name = 'HandshakeError';
  }
}

interface Hello {
  type: 'hello';
  version: number;
  run: string;
  expert: string;
  rank: number;
  session: string;
  nonce: string;
  ephemeral: string;
}

const BASE64URL_32 = /^[A-Za-z0-9_-]{43}$/;

export function handshake(ws: WebSocket, options: HandshakeOptions): Promise<Handshake> {
  const { rank, peerRank, identity } = options;
  const ephemeral = generateKeyPairSync('x25519');
  const mine: Hello = {
    type: 'hello',
    version: PROTOCOL_VERSION,
    run: options.run,
    expert: options.expert,
    rank,
    session: identity.session,
    nonce: randomBytes(32).toString('base64url'),
    ephemeral: ephemeral.publicKey.export({ format: 'jwk' }).x as string,
  };
  return new Promise((resolve, reject) => {
    let theirs: Hello | undefined;
    let listed: PeerIdentity | undefined;
    let keys: LinkKeys | undefined;
    let settled = false;
    const early: Buffer[] = [];
    let sink: ((data: Buffer) => void) | undefined;
    let queue = Promise.resolve();

    const detach = () => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
    };
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      detach();
      ws.terminate();
      reject(new HandshakeError(peerRank, reason));
    };
    // A timer can fire before the I/O that arrived while a training step held the event loop:
    // let that I/O through first (immediates run after the poll phase), then decide.
    const timer = setTimeout(
      () => setImmediate(() => fail(`not completed within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    timer.unref();

    const step = async (data: Buffer, isBinary: boolean) => {
      // The peer may send frames as soon as it has checked this side's proof.
      if (keys) {
        if (sink) sink(data);
        else early.push(data);
        return;
      }
      if (settled) return;
      if (isBinary) return fail('a binary message before the handshake completed');
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(data.toString('utf8'));
      } catch {
        return fail('a handshake message that is not JSON');
      }
      if (!theirs) {
        const problem = helloProblem(message, options);
        if (problem) return fail(problem);
        const hello = message as unknown as Hello;
        listed = await options.directory(peerRank);
        if (settled) return;
        if (!listed) return fail(`no replica of rank ${peerRank} is registered`);
        if (listed.session !== hello.session)
          return fail(`session ${hello.session} is not the one the rendezvous lists for rank ${peerRank}`);
        theirs = hello;
        const signature = sign(null, transcript(rank, mine, theirs), identity.privateKey);
        ws.send(JSON.stringify({ type: 'proof', signature: signature.toString('base64url') }));
        return;
      }
      if (message.type !== 'proof' || typeof message.signature !== 'string') return fail('expected a proof');
      let valid = false;
      try {
        const key = publicKeyOf(listed as PeerIdentity);
        valid = verify(null, transcript(peerRank, mine, theirs), key, Buffer.from(message.signature, 'base64url'));
      } catch {
        valid = false;
      }
      if (!valid) return fail(`the proof is not signed by the key the rendezvous lists for rank ${peerRank}`);
      keys = linkKeys(ephemeral.privateKey, mine, theirs);
      settled = true;
      clearTimeout(timer);
      resolve({
        keys,
        detach: (into) => {
          detach();
          sink = into;
          for (const data of early.splice(0)) into(data);
        },
      });
    };
    const onMessage = (data: Buffer, isBinary: boolean) => {
      queue = queue.then(() => step(data, isBinary)).catch((error) => fail(String(error?.message ?? error)));
    };
    const onClose = () => fail('the connection closed');
    const onError = (error: Error) => fail(error.message);
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
    ws.send(JSON.stringify(mine));
  });
}

function helloProblem(message: Record<string, unknown>, options: HandshakeOptions): string | undefined {
  if (message.type !== 'hello') return 'expected a hello';
  if (message.version !== PROTOCOL_VERSION)
    return `protocol version ${message.version}, this peer speaks ${PROTOCOL_VERSION}`;
  if (message.run !== options.run || message.expert !== options.expert) return 'a hello for another run or expert';
  if (message.rank !== options.peerRank) return `a hello from rank ${message.rank} on a link to ${options.peerRank}`;
  if (typeof message.session !== 'string' || message.session.length > 64) return 'a malformed session';
  if (typeof message.nonce !== 'string' || !BASE64URL_32.test(message.nonce)) return 'a malformed nonce';
  if (typeof message.ephemeral !== 'string' || !BASE64URL_32.test(message.ephemeral))
    return 'a malformed ephemeral key';
  return undefined;
}

/** What `signer` signs: both hellos, lower rank first, so both sides build the same bytes. */
function transcript(signer: number, a: Hello, b: Hello): Buffer {
  const [low, high] = a.rank < b.rank ? [a, b] : [b, a];
  const fields = (h: Hello) => [h.rank, h.session, h.nonce, h.ephemeral];
  return Buffer.from(
    JSON.stringify(['grove-peer', PROTOCOL_VERSION, signer, low.run, low.expert, ...fields(low), ...fields(high)]),
  );
}

function linkKeys(ephemeral: ReturnType<typeof generateKeyPairSync>['privateKey'], mine: Hello, theirs: Hello) {
  const peerKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: theirs.ephemeral }, format: 'jwk' });
  const shared = diffieHellman({ privateKey: ephemeral, publicKey: peerKey });
  const salt = createHash('sha256')
    .update(transcript(-1, mine, theirs))
    .digest();
  const key = (from: number, to: number) =>
    Buffer.from(hkdfSync('sha256', shared, salt, `grove-peer frames ${from}->${to}`, 32));
  return { send: key(mine.rank, theirs.rank), receive: key(theirs.rank, mine.rank) };
}
