/**
 * Counts refused connections per remote address: an address refused more than `limit`
 * times within `windowMs` is cut off at once, before its request is even read, until its
 * window ends. A misbehaving or scanning host costs a socket accept, not a handshake.
 */
export class RefusalLimiter {
  private readonly windows = new Map<string, { count: number; until: number }>();

  constructor(
    private readonly limit = 20,
    private readonly windowMs = 10_000,
  ) {}

  refused(address: string): void {
    const now = Date.now();
    const window = this.windows.get(address);
    if (window && now < window.until) window.count++;
    else this.windows.set(address, { count: 1, until: now + this.windowMs });
    // Old windows go when new refusals come: the map stays as small as the set of offenders.
    if (this.windows.size > 1_000) for (const [key, w] of this.windows) if (now >= w.until) this.windows.delete(key);
  }

  blocked(address: string): boolean {
    const window = this.windows.get(address);
    return window !== undefined && Date.now() < window.until && window.count >= this.limit;
  }
}
