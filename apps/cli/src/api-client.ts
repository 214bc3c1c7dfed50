/** A small client for the Grove REST API, used by `grove submit`, `status` and `demo`. */

import { type JobView, type RunRecord, stateFolder } from '@grove/jobs';
import { smokeBudget } from '@grove/train';
import { readApiToken } from './api-token.js';

export type RunView = RunRecord & { jobs: JobView[]; latestMetrics: Record<string, { loss?: number; step: number }> };

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new Error(
        `Cannot reach the Grove API at ${this.baseUrl}; start one with \`grove up\` or set GROVE_API_URL.`,
      );
    }
    const payload = (await response.json().catch(() => ({}))) as {
      error?: string;
      fields?: { path: string; message: string }[];
    };
    if (!response.ok) {
      const fields = payload.fields?.map((f) => `\n  ${f.path || '(spec)'}: ${f.message}`).join('') ?? '';
      throw new Error(`${payload.error ?? `HTTP ${response.status}`}${fields}`);
    }
    return payload as T;
  }

  submit(spec: unknown): Promise<{ id: string; status: string; created: boolean }> {
    // In smoke mode (GROVE_SMOKE=1) the spec's budgets are capped, as the CLI's options are.
    return this.request('POST', '/v1/runs', smokeBudget(spec));
  }

  run(id: string): Promise<RunView> {
    return this.request('GET', `/v1/runs/${encodeURIComponent(id)}`);
  }

  runs(): Promise<{ runs: RunRecord[] }> {
    return this.request('GET', '/v1/runs');
  }

  grow(id: string, request: { domain: string; steps?: number }): Promise<{ id: string; generation: number }> {
    return this.request('POST', `/v1/runs/${encodeURIComponent(id)}/experts`, request);
  }

  /** The run's server-sent events (`run` and `points`) until the run is over. */
  async *events(id: string): AsyncGenerator<{ event: string; data: unknown }> {
    const headers: Record<string, string> = this.token ? { authorization: `Bearer ${this.token}` } : {};
    const response = await fetch(`${this.baseUrl}/v1/runs/${encodeURIComponent(id)}/events`, { headers }).catch(() => {
      throw new Error(
        `Cannot reach the Grove API at ${this.baseUrl}; start one with \`grove up\` or set GROVE_API_URL.`,
      );
    });
    if (!response.ok || !response.body) {
      const payload = (await response.json().catch(() => ({}))) as { error?: string };
      throw new Error(payload.error ?? `HTTP ${response.status}`);
    }
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const field = (name: string) =>
          message
            .split('\n')
            .find((line) => line.startsWith(`${name}: `))
            ?.slice(name.length + 2);
        const data = field('data');
        if (data !== undefined) yield { event: field('event') ?? 'message', data: JSON.parse(data) };
      }
    }
  }

  cancel(id: string): Promise<{ id: string; status: string }> {
    return this.request('DELETE', `/v1/runs/${encodeURIComponent(id)}`);
  }
}

/** GROVE_API_TOKEN, else the token `grove up` wrote into the state folder (GROVE_STATE_DIR). */
export function apiClientFromEnv(url?: string): ApiClient {
  const token = process.env.GROVE_API_TOKEN || readApiToken(stateFolder());
  return new ApiClient(url ?? process.env.GROVE_API_URL ?? 'http://127.0.0.1:8080', token);
}
