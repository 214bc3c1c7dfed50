/**
 * A replica's end of the peer network: a WebSocket server other replicas of the same expert
 * dial, links to the peers it dials itself, and typed send/receive of checked frames. Every
 * link opens with the handshake of `handshake.ts`, which proves each side is the rank and
 * session the rendezvous lists; an unauthenticated connection never replaces a link. One
 * node per replica process.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { type Frame, type FrameHeader, FrameKind, MAX_FRAME_OVERHEAD } from './frame.js';
import { type Handshake, HandshakeError, handshake } from './handshake.js';
import { createIdentity, type IdentityKeys, type PeerDirectory, type PeerIdentity } from './identity.js';
import {
  type Expectation,
  type LinkOptions,
  type LinkStats,
  type OutgoingHeader,
  PeerGoneError,
  PeerLink,
  type RoundPosition,
} from './link.js';
import { type RateLimitedLog, rateLimitedLog } from './rate-limited-log.js';
import { RefusalLimiter } from './refusals.js';

export interface PeerNodeOptions {
  run: string;
  expert: string;
  rank: number;
  /** This session's key pair; made afresh when not given. */
  identity?: IdentityKeys;
  /** Where the identities peers must prove are listed (the rendezvous). */
  directory: PeerDirectory;
  /** Where to accept connections; `false` for a replica that can only dial out. */
  listen?: { host: string; port?: number } | false;
  /** The host name peers should dial, when it differs from the listening interface. */
  advertiseHost?: string;
  /**
   * Mutual TLS (`wss://`): this replica's certificate and key, and the CA that must have
   * signed every peer's. Without it links are plain `ws://`, authenticated by the handshake
   * but not encrypted.
   */
  tls?: PeerTls;
  /** Largest frame payload accepted, in bytes. */
  maxPayload?: number;
  heartbeatMs?: number;
  deadAfterMs?: number;
  highWaterMark?: number;
  /** Longest time a connection may take to complete its upgrade, then its handshake, before it is destroyed. */
  handshakeTimeoutMs?: number;
  /** Refused connections are logged once per this interval, with a count of the others (default 60 s). */
  refusalLogIntervalMs?: number;
  log?: (message: string) => void;
}

/** A frame header as the round protocol writes it; the node and link fill in the rest. */
export type PeerHeader = Omit<FrameHeader, 'run' | 'expert' | 'sender' | 'sequence'>;

export interface PeerTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

export interface PeerAddress {
  rank: number;
  url?: string;
}

const PEER_PATH = '/peer';

export const PEER_DEFAULTS = {
  maxPayload: 64 * 1024 * 1024,
  heartbeatMs: 1_000,
  deadAfterMs: 5_000,
  highWaterMark: 8 * 1024 * 1024,
  /** Mailbox budget per link before a round says how much traffic to expect: one largest frame. */
  minQueuedBytes: 1024 * 1024,
  dialTimeoutMs: 10_000,
  handshakeTimeoutMs: 5_000,
};

/** A rank as a peer may write it: a plain decimal integer, nothing Number() would also take. */
export function parseRank(text: string | undefined): number | undefined {
  return text !== undefined && /^(0|[1-9][0-9]{0,8})$/.test(text) ? Number(text) : undefined;
}

export class PeerNode {
  readonly rank: number;
  readonly url: string | undefined;
  /** What the rendezvous must list for this replica: its session and public key. */
  readonly identity: PeerIdentity;
  private readonly keys: IdentityKeys;
  /** Answers `stateRequest` frames; set by the Local-SGD loop once it holds the group's state. */
  stateProvider?: () => { header: PeerHeader; payload: Uint8Array }[] | undefined;
  private readonly links = new Map<number, PeerLink>();
  private readonly arrivals = new Map<number, ((link: PeerLink) => void)[]>();
  private readonly retired: LinkStats = { bytesSent: 0, bytesReceived: 0, stateBytesSent: 0, framesRejected: 0 };
  private readonly linkOptions: LinkOptions;
  private readonly refusals = new RefusalLimiter();
  private readonly refusalLog: RateLimitedLog;
  private readonly maxPayload: number;
  private position?: Omit<RoundPosition, 'attempt'>;

  private constructor(
    private readonly options: PeerNodeOptions,
    private readonly server: Server | undefined,
    private readonly wss: WebSocketServer | undefined,
    url: string | undefined,
  ) {
    this.rank = options.rank;
    this.url = url;
    this.keys = options.identity ?? createIdentity();
    this.identity = { session: this.keys.session, publicKey: this.keys.publicKey };
    this.maxPayload = options.maxPayload ?? PEER_DEFAULTS.maxPayload;
    this.linkOptions = {
      self: options.rank,
      run: options.run,
      expert: options.expert,
      maxPayload: this.maxPayload,
      heartbeatMs: options.heartbeatMs ?? PEER_DEFAULTS.heartbeatMs,
      deadAfterMs: options.deadAfterMs ?? PEER_DEFAULTS.deadAfterMs,
      highWaterMark: options.highWaterMark ?? PEER_DEFAULTS.highWaterMark,
      maxQueuedBytes: this.maxPayload + MAX_FRAME_OVERHEAD,
      currentPosition: () => this.position,
      log: options.log ?? (() => {}),
    };
    this.refusalLog = rateLimitedLog(this.linkOptions.log, options.refusalLogIntervalMs);
  }

  static async start(options: PeerNodeOptions): Promise<PeerNode> {
    const listen = options.listen ?? { host: '127.0.0.1', port: 0 };
    if (listen === false) return new PeerNode(options, undefined, undefined, undefined);
    const maxPayload = (options.maxPayload ?? PEER_DEFAULTS.maxPayload) + MAX_FRAME_OVERHEAD;
    const answer = (_request: IncomingMessage, response: ServerResponse) =>
      response.writeHead(426).end('WebSocket peers only\n');
    const tls = options.tls;
    const handshakeTimeout = options.handshakeTimeoutMs ?? PEER_DEFAULTS.handshakeTimeoutMs;
    const server: Server = tls
      ? createTlsServer({ ...tls, requestCert: true, rejectUnauthorized: true, handshakeTimeout }, answer)
      : createServer(answer);
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port ?? 0, listen.host, resolve);
    });
    const { port } = server.address() as AddressInfo;
    const host = options.advertiseHost ?? listen.host;
    const node = new PeerNode(
      options,
      server,
      wss,
      `${tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}${PEER_PATH}`,
    );
    // Over TLS the upgrade clock starts once the TLS handshake is done (it has its own timeout).
    server.on('connection', (socket: Socket) => node.gate(socket, !tls));
    if (tls) {
      server.on('secureConnection', (socket: Socket) => node.gate(socket, true));
      server.on('tlsClientError', (error: Error, socket: Socket) =>
        node.refuseFrom(socket.remoteAddress ?? 'unknown', `TLS: ${error.message}`),
      );
    }
    server.on('upgrade', (request, socket, head) => node.upgrade(request, socket as Socket, head));
    return node;
  }

  /**
   * A live link to `peer`. Of two replicas the higher rank dials the lower one when that
   * one listens (otherwise the other way round), so a pair never opens two links.
   */
  async connect(peer: PeerAddress, timeoutMs = PEER_DEFAULTS.dialTimeoutMs, initiate = false): Promise<PeerLink> {
    const existing = this.links.get(peer.rank);
    if (existing?.alive) return existing;
    // `initiate`: this side has news for a peer that cannot know it (a joiner asking for state).
    const dial = peer.url !== undefined && (initiate || this.rank > peer.rank || this.url === undefined);
    if (dial) return this.dial(peer.rank, peer.url as string, timeoutMs);
    if (this.url === undefined) throw new PeerGoneError(peer.rank, 'neither replica accepts connections');
    return this.awaitArrival(peer.rank, timeoutMs);
  }

  link(rank: number): PeerLink | undefined {
    const link = this.links.get(rank);
    return link?.alive ? link : undefined;
  }

  async send(rank: number, header: PeerHeader, payload: Uint8Array): Promise<void> {
    const link = this.links.get(rank);
    if (!link) throw new PeerGoneError(rank, 'not connected');
    await link.send(this.outgoing(header), payload);
  }

  async receive(rank: number, expect: Expectation, timeoutMs: number): Promise<Frame> {
    const link = this.links.get(rank);
    if (!link) throw new PeerGoneError(rank, 'not connected');
    return link.next(expect, timeoutMs);
  }

  /**
   * Enters `round`, whose Δ is `roundBytes` as float32: frames more than one round ahead are
   * refused from now on, and each link's mailbox may hold twice what a round can bring from
   * one peer (reduce plus gather, at most the whole Δ each), at least `minQueuedBytes`.
   */
  enterRound(position: Omit<RoundPosition, 'attempt'>, roundBytes: number): void {
    this.position = { epoch: position.epoch, round: position.round };
    this.linkOptions.maxQueuedBytes = Math.max(PEER_DEFAULTS.minQueuedBytes, 2 * roundBytes) + MAX_FRAME_OVERHEAD;
  }

  /**
   * Leaves the round protocol (this replica was left out and copies the group's state
   * again): it cannot know which round the others are in until it rejoins, so no frame is
   * refused for being ahead meanwhile; the byte budget still holds.
   */
  leaveRound(): void {
    this.position = undefined;
  }

  /** Bytes sent and received over every link this node has had. */
  stats(): LinkStats {
    const total = { ...this.retired };
    for (const link of this.links.values()) {
      total.bytesSent += link.stats.bytesSent;
      total.bytesReceived += link.stats.bytesReceived;
      total.stateBytesSent += link.stats.stateBytesSent;
      total.framesRejected += link.stats.framesRejected;
    }
    return total;
  }

  /**
   * Raises how long a peer may stay silent before it counts as dead (never below the
   * default): a peer busy with a long training step answers pings only between steps.
   */
  tolerateSilence(ms: number): void {
    this.linkOptions.deadAfterMs = Math.max(this.options.deadAfterMs ?? PEER_DEFAULTS.deadAfterMs, Math.ceil(ms));
  }

  /** Rejects a pending `receive` from `rank` with `error`. */
  interrupt(rank: number, error: Error): void {
    this.links.get(rank)?.interrupt(error);
  }

  disconnect(rank: number, reason: string): void {
    this.links.get(rank)?.close(reason);
  }

  async close(): Promise<void> {
    for (const link of this.links.values()) link.close('replica leaving');
    this.wss?.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
  }

  private outgoing(header: PeerHeader): OutgoingHeader {
    return { ...header, run: this.options.run, expert: this.options.expert };
  }

  private checkFrame = (frame: Frame): void => {
    if (frame.header.run !== this.options.run || frame.header.expert !== this.options.expert) {
      throw new Error(`frame for ${frame.header.run}/${frame.header.expert}, not this expert`);
    }
  };

  /**
   * Every accepted socket: one from an address refused too often is destroyed at once, and
   * any socket has the handshake timeout to complete its upgrade (the handshake then has
   * its own), so a silent connection does not hold a socket open.
   */
  gate(socket: Socket, timed: boolean): void {
    const address = socket.remoteAddress ?? 'unknown';
    if (this.refusals.blocked(address)) {
      socket.destroy();
      return;
    }
    if (!timed) return;
    const timeoutMs = this.options.handshakeTimeoutMs ?? PEER_DEFAULTS.handshakeTimeoutMs;
    socket.setTimeout(timeoutMs, () =>
      // After the I/O a long training step may have held back: an upgrade waiting there clears the timeout.
      setImmediate(() => {
        if (socket.timeout === 0 || socket.destroyed) return;
        this.refuseFrom(address, `no upgrade within ${timeoutMs} ms`);
        socket.destroy();
      }),
    );
  }

  /** Counts a refusal against `address` and logs it, at most a line (and a summary) a minute. */
  refuseFrom(address: string, why: string): void {
    this.refusals.refused(address);
    this.refusalLog('refused peer connections', `refused a peer connection from ${address}: ${why}`);
  }

  private upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const address = socket.remoteAddress ?? 'unknown';
    const refuse = (status: string, why: string) => {
      this.refuseFrom(address, why);
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    };
    const path = new URL(request.url ?? '/', 'ws://peer').pathname;
    if (path !== PEER_PATH) {
      refuse('404 Not Found', `unknown path ${path}`);
      return;
    }
    const header = request.headers['x-grove-peer'];
    const rank = parseRank(Array.isArray(header) ? undefined : header);
    if (rank === undefined || rank === this.rank) {
      refuse('400 Bad Request', 'missing or invalid x-grove-peer rank');
      return;
    }
    this.wss?.handleUpgrade(request, socket, head, (ws) => {
      socket.setTimeout(0); // Upgraded: the handshake's own timeout takes over.
      this.authenticate(rank, ws).catch((error) => this.refuseFrom(address, error.message));
    });
  }

  private async authenticate(rank: number, ws: WebSocket, timeoutMs?: number): Promise<PeerLink> {
    const done = await handshake(ws, {
      run: this.options.run,
      expert: this.options.expert,
      rank: this.rank,
      identity: this.keys,
      peerRank: rank,
      directory: this.options.directory,
      timeoutMs: timeoutMs ?? this.options.handshakeTimeoutMs ?? PEER_DEFAULTS.handshakeTimeoutMs,
    });
    return this.adopt(rank, ws, done);
  }

  private dial(rank: number, url: string, timeoutMs: number): Promise<PeerLink> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        headers: { 'x-grove-peer': String(this.rank) },
        ...this.options.tls,
        perMessageDeflate: false,
        maxPayload: this.maxPayload + MAX_FRAME_OVERHEAD,
        handshakeTimeout: timeoutMs,
      });
      ws.once('open', () =>
        // The dialer waits as long as it would for the connection itself: the peer may be mid-step.
        this.authenticate(rank, ws, timeoutMs).then(resolve, (error) =>
          reject(error instanceof HandshakeError ? new PeerGoneError(rank, error.message) : error),
        ),
      );
      ws.once('unexpected-response', (_request, response) => {
        ws.terminate();
        reject(new PeerGoneError(rank, `it refused the connection with HTTP ${response.statusCode}`));
      });
      ws.once('error', (error) => reject(new PeerGoneError(rank, `could not connect to ${url} (${error.message})`)));
    });
  }

  /** Only an authenticated connection gets here, so only the peer itself can replace its link. */
  private adopt(rank: number, ws: WebSocket, done: Handshake): PeerLink {
    const previous = this.links.get(rank);
    if (previous) {
      previous.close('replaced by a new connection');
      this.retire(previous);
    }
    const link = new PeerLink(rank, ws, this.linkOptions, done.keys, done.detach, this.checkFrame, (from, frame) =>
      this.answerStateRequest(from, frame),
    );
    this.links.set(rank, link);
    for (const waiting of this.arrivals.get(rank) ?? []) waiting(link);
    this.arrivals.delete(rank);
    return link;
  }

  private retire(link: PeerLink): void {
    this.retired.bytesSent += link.stats.bytesSent;
    this.retired.bytesReceived += link.stats.bytesReceived;
    this.retired.stateBytesSent += link.stats.stateBytesSent;
    this.retired.framesRejected += link.stats.framesRejected;
  }

  private awaitArrival(rank: number, timeoutMs: number): Promise<PeerLink> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.arrivals.get(rank) ?? [];
        this.arrivals.set(
          rank,
          list.filter((entry) => entry !== arrive),
        );
        reject(new PeerGoneError(rank, `it did not connect within ${timeoutMs} ms`));
      }, timeoutMs);
      const arrive = (link: PeerLink) => {
        clearTimeout(timer);
        resolve(link);
      };
      this.arrivals.set(rank, [...(this.arrivals.get(rank) ?? []), arrive]);
    });
  }

  private answerStateRequest(link: PeerLink, request: Frame): void {
    const state = this.stateProvider?.();
    const send = async () => {
      for (const { header, payload } of state ?? []) await link.send(this.outgoing(header), payload);
    };
    if (!state) {
      // Joining itself: say so at once, and the asker tries another peer.
      const { sender: _sender, sequence: _sequence, ...header } = request.header;
      link.send({ ...header, kind: FrameKind.abort }, new Uint8Array(0)).catch(() => {});
      return;
    }
    send().catch((error) => this.linkOptions.log(`could not send state to peer ${link.rank}: ${error.message}`));
  }
}
