/**
 * Structured logs (pino, one JSON object a line) for every Grove process, with what a log must
 * never hold taken out: credentials in headers and cookies, tokens, passwords, and the password
 * part of a Redis URL wherever it appears in a message.
 */
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'token',
  'tokens',
  'password',
  '*.token',
  '*.tokens',
  '*.password',
];

/** `redis://user:secret@host` → `redis://user:[Redacted]@host`; `?token=…` in a URL likewise. */
export function redactSecrets(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]+@/gi, '$1[Redacted]@')
    .replace(/([?&]token=)[^&\s#]+/gi, '$1[Redacted]');
}

/** A logger for process `name`, writing JSON lines to stdout (or `destination`). */
export function createLogger(name: string, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    name,
    level: process.env.GROVE_LOG_LEVEL ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
    serializers: {
      req: (request: { method: string; url: string; id?: string }) => ({
        method: request.method,
        url: redactSecrets(request.url),
        id: request.id,
      }),
      res: (reply: { statusCode: number }) => ({ statusCode: reply.statusCode }),
      err: (error: Error) => {
        const serialized = pino.stdSerializers.err(error);
        return { ...serialized, message: redactSecrets(serialized.message), stack: redactSecrets(serialized.stack) };
      },
    },
    hooks: {
      // Messages are free text: a URL with a password can be anywhere in them.
      logMethod(args, method) {
        method.apply(
          this,
          args.map((arg) => (typeof arg === 'string' ? redactSecrets(arg) : arg)) as Parameters<typeof method>,
        );
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
