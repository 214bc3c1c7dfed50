/**
 * A log that says each kind of trouble at most once per interval: the first line at once,
 * then, at the end of the interval, one summary line counting what it held back. A peer (or
 * an outage) that fails a thousand times a second costs two lines a minute, and nothing
 * goes unsaid.
 */
export type RateLimitedLog = (kind: string, message: string) => void;

export function rateLimitedLog(log: (message: string) => void, intervalMs = 60_000): RateLimitedLog {
  const held = new Map<string, { count: number; last: string }>();
  return (kind, message) => {
    const entry = held.get(kind);
    if (entry) {
      entry.count++;
      entry.last = message;
      return;
    }
    log(message);
    const window = { count: 0, last: message };
    held.set(kind, window);
    setTimeout(() => {
      held.delete(kind);
      if (window.count > 0) log(`${kind}: ${window.count} more in the last ${intervalMs} ms, the last: ${window.last}`);
    }, intervalMs).unref();
  };
}
