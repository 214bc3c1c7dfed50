/**
 * One authenticated WebSocket link to one peer: frames in and out, each sealed with the
 * link's MAC key and numbered; application heartbeats (frames, not WebSocket pings, which
 * the library answers by itself) that notice a dead or hung peer in seconds; bounded
 * buffering both ways. Incoming frames wait in a mailbox bounded in bytes until the round
 * protocol asks for them; nothing is applied until it has been checked.
 */
import type WebSocket from 'ws';
import { decodeFrame, encodeFrame, type Frame, type FrameHeader, FrameKind } from './frame.js';
import type { Handshake, LinkKeys } from './handshake.js';

/** Where a frame belongs: the group's epoch, the round, and the attempt at it (bumped when a member fails). */
export interface RoundPosition {
  epoch: number;
  round: number;
  attempt: number;
}

/** The frame a receiver expects next from a peer; kind `state` takes the next `state` or `stateEnd` frame. */
export interface Expectation extends RoundPosition {
  kind: FrameKind;
  tensor?: string;
  shard?: number;
}

export class PeerGoneError extends Error {
  constructor(
    readonly rank: number,
    reason: string,
  ) {
    super(`Peer ${rank} is gone: ${reason}.`);
    this.name = 'PeerGoneError';
  }
}

export class RoundAbortedError extends Error {
  constructor(
    readonly rank: number,
    position: RoundPosition,
    /** The members the aborting peer found dead. */
    readonly failed: number[],
  ) {
    super(`Peer ${rank} abandoned round ${position.round} (attempt ${position.attempt}).`);
    this.name = 'RoundAbortedError';
  }
}

/** An abort frame's payload: the ranks its sender found dead, as a JSON array. */
export function failedRanksOf(payload: Uint8Array): number[] {
  try {
    const ranks = JSON.parse(new TextDecoder().decode(payload));
    return Array.isArray(ranks) ? ranks.filter((rank) => Number.isInteger(rank) && rank >= 0) : [];
  } catch {
    return [];
  }
}

export interface LinkOptions {
  /** This replica's rank, the sender of every frame it sends, and its run and expert. */
  self: number;
  run: string;
  expert: string;
  maxPayload: number;
  heartbeatMs: number;
  deadAfterMs: number;
  /** Bytes `send` may leave queued in the socket before it waits for them to drain. */
  highWaterMark: number;
  /** Bytes of frames a peer may have waiting here before it counts as misbehaving. */
  maxQueuedBytes: number;
  /** The round this replica is in, once it is in one: frames more than one round ahead are refused. */
  currentPosition(): Omit<RoundPosition, 'attempt'> | undefined;
  log: (message: string) => void;
}

export interface LinkStats {
  bytesSent: number;
  bytesReceived: number;
  /** Of bytesSent: group state sent to joiners, outside any round. */
  stateBytesSent: number;
  framesRejected: number;
}

interface Waiter {
  expect: Expectation;
  resolve(frame: Frame): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Kinds that belong to a round (state transfer and requests happen outside rounds). */
const ROUND_KINDS = new Set<number>([FrameKind.reduce, FrameKind.gather, FrameKind.meta, FrameKind.abort]);

export const comparePositions = (a: RoundPosition, b: RoundPosition) =>
  a.epoch - b.epoch || a.round - b.round || a.attempt - b.attempt;

/** What the node fills in; the link adds sender and sequence. */
export type OutgoingHeader = Omit<FrameHeader, 'sender' | 'sequence'>;

const HEARTBEAT = {
  kind: FrameKind.heartbeat,
  epoch: 0,
  round: 0,
  attempt: 0,
  codec: 0,
  tensor: '',
  shard: 0,
  shards: 1,
  elements: 0,
};

export class PeerLink {
  readonly stats: LinkStats = { bytesSent: 0, bytesReceived: 0, stateBytesSent: 0, framesRejected: 0 };
  private readonly mailbox: { frame: Frame; bytes: number }[] = [];
  private queuedBytes = 0;
  private waiter?: Waiter;
  private lastHeard = Date.now();
  private readonly heartbeat: NodeJS.Timeout;
  private failure?: PeerGoneError;
  private sentFrames = 0;
  private receivedFrames = 0;

  constructor(
    readonly rank: number,
    private readonly socket: WebSocket,
    private readonly options: LinkOptions,
    private readonly keys: LinkKeys,
    /** Takes over the messages that arrived between the peer's handshake proof and this link. */
    handover: Handshake['detach'],
    /** Throws when an authenticated frame is still not for this link (another run or expert). */
    private readonly check: (frame: Frame) => void,
    /** Frames that are requests rather than round traffic (a late joiner asking for state). */
    private readonly onRequest: (link: PeerLink, frame: Frame) => void,
  ) {
    socket.binaryType = 'nodebuffer';
    socket.on('message', (data: Buffer, isBinary) => this.receive(data, isBinary));
    socket.on('close', (code, reason) => this.fail(`connection closed (${code}${reason.length ? ` ${reason}` : ''})`));
    socket.on('error', (error) => this.fail(error.message));
    // Only this replica's own frames count as a sign of life: a hung process whose kernel and
    // WebSocket library still answer pings is dead once its heartbeats stop.
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > options.deadAfterMs) {
        this.fail(`silent for more than ${options.deadAfterMs} ms`);
        return;
      }
      // A congested socket carries frames already, and those count as heartbeats too.
      if (socket.bufferedAmount <= options.highWaterMark)
        this.write({ ...HEARTBEAT, run: options.run, expert: options.expert });
    }, options.heartbeatMs);
    this.heartbeat.unref();
    handover((data) => this.receive(data, true));
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  /**
   * Queues one encoded frame, first waiting while the socket holds more than the high-water
   * mark: what a link buffers stays bounded, and a burst of small frames goes out at once.
   */
  async send(header: OutgoingHeader, payload: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.socket.bufferedAmount > this.options.highWaterMark) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (this.failure) throw this.failure;
    }
    const bytes = this.write(header, payload);
    if (header.kind === FrameKind.state || header.kind === FrameKind.stateEnd)
      this.stats.stateBytesSent += bytes.byteLength;
  }

  /** Seals and sends one frame at once: sequence numbers go out in the order they are given. */
  private write(header: OutgoingHeader, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    const sequence = this.sentFrames++;
    const bytes = encodeFrame({ ...header, sender: this.options.self, sequence }, payload, this.keys.send);
    this.stats.bytesSent += bytes.byteLength;
    this.socket.send(bytes, { binary: true }, (error) => {
      if (error) this.fail(error.message);
    });
    return bytes;
  }

  /**
   * The next frame of `expect`'s round from this peer. Frames of earlier rounds or attempts
   * are stale and dropped; one of this round that is not the expected frame is a protocol
   * violation and ends the link; an `abort` of this round rejects with RoundAbortedError.
   */
  next(expect: Expectation, timeoutMs: number): Promise<Frame> {
    // A wait left over from an abandoned attempt gives way to the new one.
    if (this.waiter) this.settle(this.waiter, new Error(`A newer wait on peer ${this.rank} replaced this one.`));
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new PeerGoneError(this.rank, `no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { expect, resolve, reject, timer };
      this.deliver();
    });
  }

  /** Ends a pending wait with `error` (the peer left the group another way). */
  interrupt(error: Error): void {
    if (this.waiter) this.settle(this.waiter, error);
  }

  close(reason = 'closing'): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(1000);
    this.fail(reason);
  }

  private receive(data: Buffer, isBinary: boolean): void {
    if (this.failure) return;
    this.stats.bytesReceived += data.byteLength;
    if (!isBinary) {
      this.reject('a text message');
      return;
    }
    let frame: Frame;
    try {
      frame = decodeFrame(
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        this.options.maxPayload,
        this.keys.receive,
      );
      this.check(frame);
    } catch (error) {
      this.reject(error instanceof Error ? error.message : String(error));
      return;
    }
    // Authenticated under this link's key, so it comes from this peer: it must also say so,
    // and come next in its sequence (a replayed frame does not).
    if (frame.header.sender !== this.rank) {
      this.reject(`a frame that says it is from rank ${frame.header.sender}`);
      return;
    }
    if (frame.header.sequence !== this.receivedFrames) {
      this.reject(`sequence number ${frame.header.sequence}, expected ${this.receivedFrames}`);
      return;
    }
    this.receivedFrames++;
    this.lastHeard = Date.now();
    if (frame.header.kind === FrameKind.heartbeat) return;
    if (frame.header.kind === FrameKind.stateRequest) {
      this.onRequest(this, frame);
      return;
    }
    const { kind, epoch, round } = frame.header;
    const current = this.options.currentPosition();
    const ahead = current && (epoch > current.epoch || (epoch === current.epoch && round > current.round + 1));
    if (ROUND_KINDS.has(kind) && ahead) {
      this.reject(
        `a frame for round ${round} of epoch ${epoch}, more than one ahead of round ${current.round} of epoch ${current.epoch}`,
      );
      return;
    }
    if (this.queuedBytes + data.byteLength > this.options.maxQueuedBytes) {
      this.reject(
        `${this.queuedBytes + data.byteLength} bytes waiting, over the ${this.options.maxQueuedBytes}-byte budget`,
      );
      return;
    }
    this.queuedBytes += data.byteLength;
    this.mailbox.push({ frame, bytes: data.byteLength });
    this.deliver();
  }

  /** A frame that fails a check is never applied: log it and end the link, which fails the round attempt. */
  private reject(reason: string): void {
    this.stats.framesRejected++;
    this.options.log(`rejected a frame from peer ${this.rank}: ${reason}`);
    this.close(`sent a bad frame (${reason})`);
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    if (this.failure) {
      this.settle(waiter, this.failure);
      return;
    }
    if (waiter.expect.kind === FrameKind.state) {
      // State answers a request, outside any round: take the next state frame wherever it waits.
      const index = this.mailbox.findIndex(({ frame }) =>
        [FrameKind.state, FrameKind.stateEnd, FrameKind.abort].includes(frame.header.kind as 5 | 6 | 7),
      );
      if (index < 0) return;
      const frame = this.take(index);
      if (frame.header.kind === FrameKind.abort)
        this.settle(waiter, new PeerGoneError(this.rank, 'it has no state yet'));
      else this.settle(waiter, frame);
      return;
    }
    while (this.mailbox.length > 0) {
      const order = comparePositions(this.mailbox[0].frame.header, waiter.expect);
      if (order > 0) return; // A later round: keep it for then.
      const frame = this.take(0);
      if (order < 0) {
        this.options.log(`dropped a stale frame from peer ${this.rank} (round ${frame.header.round})`);
        continue;
      }
      if (frame.header.kind === FrameKind.abort) {
        this.settle(waiter, new RoundAbortedError(this.rank, waiter.expect, failedRanksOf(frame.payload)));
        return;
      }
      const { kind, tensor, shard } = waiter.expect;
      const matches =
        frame.header.kind === kind &&
        (tensor === undefined || frame.header.tensor === tensor) &&
        (shard === undefined || frame.header.shard === shard);
      if (!matches) {
        this.reject(
          `expected kind ${kind} ${tensor ?? ''}#${shard ?? ''}, got kind ${frame.header.kind} ${frame.header.tensor}#${frame.header.shard}`,
        );
        return;
      }
      this.settle(waiter, frame);
      return;
    }
  }

  private take(index: number): Frame {
    const [{ frame, bytes }] = this.mailbox.splice(index, 1);
    this.queuedBytes -= bytes;
    return frame;
  }

  private settle(waiter: Waiter, outcome: Frame | Error): void {
    clearTimeout(waiter.timer);
    this.waiter = undefined;
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }

  private fail(reason: string): PeerGoneError {
    if (!this.failure) {
      this.failure = new PeerGoneError(this.rank, reason);
      clearInterval(this.heartbeat);
      this.mailbox.length = 0;
      this.queuedBytes = 0;
      if (this.socket.readyState === this.socket.OPEN) this.socket.terminate();
    }
    if (this.waiter) this.settle(this.waiter, this.failure);
    return this.failure;
  }
}
