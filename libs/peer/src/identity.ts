/**
 * A replica's identity: an Ed25519 key pair made for one session (one process's membership
 * of the group). The public half is registered with its rank in the rendezvous, which is the
 * trust anchor; the private half never leaves the process. A peer proves it is the rank it
 * claims by signing the handshake with the key listed for that rank and session.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';

/** What the rendezvous lists for a rank: everything a peer needs to authenticate it. */
export interface PeerIdentity {
  /** Random per session: tells a restarted replica from its dead predecessor of the same rank. */
  session: string;
  /** The raw 32-byte Ed25519 public key, base64url. */
  publicKey: string;
}

export interface IdentityKeys extends PeerIdentity {
  privateKey: KeyObject;
}

export function createIdentity(): IdentityKeys {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    session: randomBytes(8).toString('hex'),
    publicKey: publicKey.export({ format: 'jwk' }).x as string,
    privateKey,
  };
}

/** The listed public key as a key object; throws on anything that is not one. */
export function publicKeyOf(identity: PeerIdentity): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: identity.publicKey }, format: 'jwk' });
}

/** Where a node looks up the identity a rank has registered; `undefined` when none is. */
export type PeerDirectory = (rank: number) => Promise<PeerIdentity | undefined>;
