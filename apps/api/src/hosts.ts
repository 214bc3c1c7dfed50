/**
 * The Host header allowlist: a page on another site that rebinds its DNS name to 127.0.0.1
 * reaches the API with its own name in Host, and is refused before anything else runs.
 */
import type { FastifyInstance } from 'fastify';

export const LOOPBACK_HOSTS = ['127.0.0.1', '::1', 'localhost'];
const WILDCARD_HOSTS = ['0.0.0.0', '::'];

/** Loopback names, the address the API listens on (unless a wildcard), and the extra names given. */
export function allowedHosts(boundHost: string, extra: string[]): Set<string> {
  const names = [...LOOPBACK_HOSTS, ...(WILDCARD_HOSTS.includes(boundHost) ? [] : [boundHost]), ...extra];
  return new Set(names.map((name) => name.toLowerCase()));
}

/** `example.org:8080` → `example.org`, `[::1]:8080` → `::1`. */
export function hostName(header: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(header);
  if (bracketed) return bracketed[1].toLowerCase();
  return header.replace(/:\d+$/, '').toLowerCase();
}

export function registerHostCheck(app: FastifyInstance, hosts: Set<string>): void {
  app.addHook('onRequest', async (request, reply) => {
    const name = hostName(request.headers.host ?? '');
    if (hosts.has(name)) return;
    return reply.code(421).send({
      error: `This API does not answer to the host name "${name}": add it to GROVE_API_HOSTS to serve it.`,
    });
  });
}
