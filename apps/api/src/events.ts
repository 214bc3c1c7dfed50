/**
 * Server-sent events of runs: one poller per run, shared by every client that follows it, so
 * a thousand dashboards cost Redis what one does. Clients are capped in total and per caller;
 * one that does not read fast enough is dropped rather than buffered without bound. A poller
 * stops when its last client leaves, and ends every stream once the run is final.
 */
import type { ServerResponse } from 'node:http';
import { type RunMetric, type RunStore, settingsFromEnv } from '@grove/jobs';
import { z } from 'zod';

export const EventLimits = z.object({
  maxClients: z.coerce.number().int().min(1).max(100_000).default(200),
  maxClientsPerCaller: z.coerce.number().int().min(1).max(100_000).default(16),
  /** Bytes a client may leave unread before it is dropped. */
  bufferBytes: z.coerce
    .number()
    .int()
    .min(1_024)
    .default(1024 * 1024),
  intervalMs: z.coerce.number().int().min(50).max(60_000).default(1_000),
});
export type EventLimits = z.output<typeof EventLimits>;

export const eventLimitsFromEnv = (env: NodeJS.ProcessEnv = process.env): EventLimits =>
  settingsFromEnv(
    EventLimits,
    {
      maxClients: 'GROVE_EVENTS_MAX_CLIENTS',
      maxClientsPerCaller: 'GROVE_EVENTS_MAX_PER_CALLER',
      bufferBytes: 'GROVE_EVENTS_BUFFER_BYTES',
      intervalMs: 'GROVE_EVENTS_INTERVAL_MS',
    },
    env,
  );

const FINAL = ['completed', 'failed', 'cancelled'];

/** What a stream sends as `run` events: anything with a status. */
export type ViewOf = (runId: string) => Promise<{ status: string } | undefined>;

interface Client {
  caller: string;
  response: ServerResponse;
}

export class RunEventHub {
  private readonly pollers = new Map<string, RunPoller>();
  private readonly perCaller = new Map<string, number>();
  private clients = 0;

  constructor(
    private readonly runs: RunStore,
    private readonly viewOf: ViewOf,
    readonly limits: EventLimits,
  ) {}

  /** Why `caller` may not open another stream now, or undefined when it may. */
  refusal(caller: string): string | undefined {
    if (this.clients >= this.limits.maxClients)
      return `The server follows ${this.limits.maxClients} event streams already; try again later.`;
    if ((this.perCaller.get(caller) ?? 0) >= this.limits.maxClientsPerCaller)
      return `You have ${this.limits.maxClientsPerCaller} event streams open already; close one first.`;
    return undefined;
  }

  /** Streams run `runId` to `response` (its headers sent) until the run is final or the client leaves. */
  subscribe(runId: string, caller: string, response: ServerResponse): void {
    const client: Client = { caller, response };
    this.clients += 1;
    this.perCaller.set(caller, (this.perCaller.get(caller) ?? 0) + 1);
    let poller = this.pollers.get(runId);
    if (!poller) {
      poller = new RunPoller(runId, this.runs, this.viewOf, this.limits, () => this.pollers.delete(runId));
      this.pollers.set(runId, poller);
    }
    poller.add(client);
    const current = poller;
    response.once('close', () => {
      this.clients -= 1;
      const left = (this.perCaller.get(caller) ?? 1) - 1;
      if (left > 0) this.perCaller.set(caller, left);
      else this.perCaller.delete(caller);
      current.remove(client);
    });
  }

  /** Ends every stream (the server is closing). */
  close(): void {
    for (const poller of [...this.pollers.values()]) poller.stop();
  }
}

/** Follows one run for its clients: each tick reads Redis once and writes the same bytes to all. */
class RunPoller {
  private readonly clients = new Set<Client>();
  /** Clients that still need the run's history before the next points. */
  private joining: Client[] = [];
  /** The last metric entry sent; undefined until the first tick. */
  private cursor: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly runId: string,
    private readonly runs: RunStore,
    private readonly viewOf: ViewOf,
    private readonly limits: EventLimits,
    private readonly onStop: () => void,
  ) {
    this.timer = setTimeout(() => this.tick(), 0);
  }

  add(client: Client): void {
    this.joining.push(client);
  }

  remove(client: Client): void {
    this.clients.delete(client);
    this.joining = this.joining.filter((other) => other !== client);
    if (this.clients.size === 0 && this.joining.length === 0) this.stop();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.onStop();
    for (const client of [...this.clients, ...this.joining]) client.response.end();
  }

  private async tick(): Promise<void> {
    try {
      await this.sendHistory();
      const fresh = await this.runs.metricsSince(this.runId, this.cursor ?? '0');
      if (this.stopped) return;
      if (fresh.length > 0) {
        this.cursor = fresh[fresh.length - 1].id;
        this.broadcast([...this.clients], pointsEvent(fresh));
      }
      const view = await this.viewOf(this.runId);
      if (this.stopped) return;
      this.broadcast([...this.clients], event('run', view ?? null));
      const done = !view || (FINAL.includes(view.status) && fresh.length === 0);
      if (done && this.joining.length === 0) return this.stop();
    } catch {
      // Redis away for a moment: the clients keep their streams and the next tick tries again.
    }
    if (!this.stopped) this.timer = setTimeout(() => this.tick(), this.limits.intervalMs);
  }

  /** Newcomers get every point up to the cursor, read once for all of them. */
  private async sendHistory(): Promise<void> {
    const joining = this.joining;
    if (joining.length === 0) return;
    this.joining = [];
    const history = await this.runs.metricsUntil(this.runId, this.cursor ?? '+');
    this.cursor ??= history.at(-1)?.id ?? '0';
    const open = joining.filter((client) => !client.response.destroyed);
    for (const client of open) this.clients.add(client);
    if (history.length > 0) this.broadcast(open, pointsEvent(history));
  }

  /** One buffer for every client; one that has not read what it was sent before is dropped. */
  private broadcast(clients: Client[], chunk: Buffer): void {
    for (const client of clients) {
      if (client.response.writableLength > this.limits.bufferBytes) client.response.destroy();
      else client.response.write(chunk);
    }
  }
}

const event = (name: string, data: unknown) => Buffer.from(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
const pointsEvent = (points: { point: RunMetric }[]) =>
  event(
    'points',
    points.map((entry) => entry.point),
  );
