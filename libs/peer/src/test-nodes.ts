/**
 * For tests: peer nodes of one expert on loopback, each listed in an in-memory directory the
 * way the rendezvous would list it, every pair linked.
 */
import { encodeFrame, type FrameHeader } from './frame.js';
import type { LinkKeys } from './handshake.js';
import type { PeerIdentity } from './identity.js';
import type { PeerLink } from './link.js';
import { PeerNode, type PeerNodeOptions } from './node.js';

/** Who is listed under each rank, as the rendezvous would say. */
export const listed = new Map<number, PeerIdentity>();
const directory = async (rank: number) => listed.get(rank);

export async function startNodes(size: number, options: Partial<PeerNodeOptions> = {}): Promise<PeerNode[]> {
  const group = await Promise.all(
    Array.from({ length: size }, (_, rank) =>
      PeerNode.start({ run: 'run-1', expert: 'press', rank, directory, ...options }),
    ),
  );
  for (const node of group) listed.set(node.rank, node.identity);
  // Every pair linked, each link opened once by the rule in `connect`.
  await Promise.all(group.flatMap((node) => group.filter((peer) => peer !== node).map((peer) => node.connect(peer))));
  return group;
}

/** Seals `header` as `link`'s next frame, bypassing the sender's own checks. */
export function sealedAs(link: PeerLink, header: Omit<FrameHeader, 'sequence'>, payload: Uint8Array): Uint8Array {
  const internals = link as unknown as { keys: LinkKeys; sentFrames: number };
  return encodeFrame({ ...header, sequence: internals.sentFrames++ }, payload, internals.keys.send);
}
