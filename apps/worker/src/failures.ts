/**
 * Failures of work nobody waits for — progress updates, metric points, metrics publishing,
 * the cancellation poll — are logged, never left as unhandled rejections: at most one line
 * per kind per interval, so a Redis outage shows in the log without flooding it.
 */
export function failureLog(what: string, intervalMs = 10_000) {
  let lastLogged = Number.NEGATIVE_INFINITY;
  let unreported = 0;
  return (work: Promise<unknown>): void => {
    work.catch((error: unknown) => {
      const now = Date.now();
      if (now - lastLogged < intervalMs) {
        unreported++;
        return;
      }
      const more = unreported ? ` (and ${unreported} more times since the last report)` : '';
      console.error(`worker: ${what} failed: ${error instanceof Error ? error.message : String(error)}${more}`);
      lastLogged = now;
      unreported = 0;
    });
  };
}
