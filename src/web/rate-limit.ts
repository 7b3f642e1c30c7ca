export interface RateLimitOptions {
  /** Attempts allowed per address in one window (default 20). */
  attempts?: number;
  /** Window length in seconds (default 600). */
  windowSeconds?: number;
  now?: () => Date;
}

/**
 * Counts notice attempts per client address in fixed windows. `take` returns
 * 0 when the attempt may go ahead, else the seconds until the window ends.
 * Memory is bounded: expired windows are dropped as new ones start.
 */
export class AttemptLimiter {
  readonly attempts: number;
  readonly windowMs: number;
  readonly #now: () => Date;
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(o: RateLimitOptions = {}) {
    this.attempts = o.attempts ?? 20;
    this.windowMs = (o.windowSeconds ?? 600) * 1000;
    if (!Number.isInteger(this.attempts) || this.attempts < 1) throw new RangeError('rate limit attempts must be a positive integer');
    if (!(this.windowMs > 0)) throw new RangeError('rate limit window must be positive');
    this.#now = o.now ?? (() => new Date());
  }

  take(address: string): number {
    const now = this.#now().getTime();
    if (this.#windows.size > 10_000) for (const [k, w] of this.#windows) if (now - w.start >= this.windowMs) this.#windows.delete(k);
    const w = this.#windows.get(address);
    if (!w || now - w.start >= this.windowMs) {
      this.#windows.set(address, { start: now, count: 1 });
      return 0;
    }
    if (w.count >= this.attempts) return Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000));
    w.count++;
    return 0;
  }
}
