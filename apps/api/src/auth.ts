/**
 * Who may call the API. Every route needs a token unless its config says `public: true`
 * (decided on the route Fastify matched, after decoding, so no spelling of a path skips it).
 * API clients send `Authorization: Bearer <token>`. A browser cannot: `/ui?token=…` trades
 * the token for a session (a random id in an HttpOnly, SameSite=Strict cookie, its record in
 * Redis with an expiry; the token itself is never stored in the browser), and a state-changing
 * request carried by that cookie must also send `x-grove-ui: 1`, which a cross-site form cannot.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without a token (health checks only). */
    public?: boolean;
  }
  interface FastifyRequest {
    /** A digest of the caller's token (hex), '' when the API is open: what rate limits and idempotency keys are scoped by. */
    caller: string;
  }
}

export const SESSION_COOKIE = 'grove_session';
export const UI_HEADER = 'x-grove-ui';
export const SESSION_SECONDS = 8 * 3600;
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const digest = (text: string) => createHash('sha256').update(text).digest();
const sessionKey = (id: string) => `grove:session:${digest(id).toString('hex')}`;

/** The digest (hex) of the matching token; every token is compared, in constant time, whatever matches. */
function matchToken(digests: Buffer[], candidate: string): string | undefined {
  const presented = digest(candidate);
  let match: Buffer | undefined;
  for (const known of digests) if (timingSafeEqual(known, presented)) match = known;
  return match?.toString('hex');
}

export async function registerAuth(app: FastifyInstance, tokens: string[], redis: Redis): Promise<void> {
  await app.register(cookie);
  app.decorateRequest('caller', '');
  if (tokens.length === 0) return;
  const digests = tokens.map(digest);
  const known = new Set(digests.map((d) => d.toString('hex')));

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.public) return;
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) {
      const caller = matchToken(digests, bearer);
      if (!caller) return unauthorized(reply);
      request.caller = caller;
      return;
    }
    const { token } = request.query as { token?: unknown };
    if (request.method === 'GET' && request.routeOptions.url === '/ui' && typeof token === 'string')
      return startSession(request, reply, matchToken(digests, token));
    const session = request.cookies[SESSION_COOKIE];
    const caller = session ? await redis.get(sessionKey(session)) : null;
    if (!caller || !known.has(caller)) return unauthorized(reply);
    if (UNSAFE_METHODS.has(request.method) && request.headers[UI_HEADER] !== '1')
      return reply
        .code(403)
        .send({ error: `A request signed by the dashboard session must send the ${UI_HEADER}: 1 header.` });
    request.caller = caller;
  });

  async function startSession(request: FastifyRequest, reply: FastifyReply, caller: string | undefined) {
    if (!caller) return unauthorized(reply);
    const id = randomBytes(32).toString('base64url');
    await redis.set(sessionKey(id), caller, 'EX', SESSION_SECONDS);
    reply.setCookie(SESSION_COOKIE, id, {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      secure: request.protocol === 'https',
      maxAge: SESSION_SECONDS,
    });
    // Out of the address bar and the history: the token was only the way in.
    return reply.redirect('/ui', 303);
  }
}

function unauthorized(reply: FastifyReply) {
  return reply.code(401).send({
    error:
      'A valid token is required: send Authorization: Bearer <token>, or open the dashboard link that `grove up` printed.',
  });
}
