import { addressKey } from '../listener/index.js';

export interface RateLimitOptions {
  /** Attempts allowed per address in one window (default 20). */
  attempts?: number;
  /** Window length in seconds (default 600). */
  windowSeconds?: number;
  now?: () => Date;
}

/** Where attempts are counted: the store (`IssuanceNotices.countAttempt`), atomic per attempt. */
export interface AttemptCounter {
  countAttempt(address: string, nowMs: number, windowMs: number): Promise<{ windowStart: number; count: number }>;
  expireAttempts(nowMs: number, windowMs: number): Promise<number>;
}

/**
 * Counts notice attempts per client address in fixed windows, in the store:
 * a restart of the server does not reset them, and concurrent attempts never
 * lose a count. `take` resolves 0 when the attempt may go ahead, else the
 * seconds until the window ends. Ended windows are deleted at most once per
 * window length.
 */
export class AttemptLimiter {
  readonly attempts: number;
  readonly windowMs: number;
  readonly #now: () => Date;
  readonly #counter: AttemptCounter;
  #lastExpiry = 0;

  constructor(counter: AttemptCounter, o: RateLimitOptions = {}) {
    this.attempts = o.attempts ?? 20;
    this.windowMs = (o.windowSeconds ?? 600) * 1000;
    if (!Number.isInteger(this.attempts) || this.attempts < 1) throw new RangeError('rate limit attempts must be a positive integer');
    if (!(this.windowMs > 0)) throw new RangeError('rate limit window must be positive');
    this.#now = o.now ?? (() => new Date());
    this.#counter = counter;
  }

  async take(address: string): Promise<number> {
    const now = this.#now().getTime();
    if (now - this.#lastExpiry >= this.windowMs) {
      this.#lastExpiry = now;
      await this.#counter.expireAttempts(now, this.windowMs);
    }
    // An IPv6 host is counted by its /64: it can rotate source addresses within it.
    const w = await this.#counter.countAttempt(addressKey(address), now, this.windowMs);
    if (w.count <= this.attempts) return 0;
    return Math.max(1, Math.ceil((w.windowStart + this.windowMs - now) / 1000));
  }
}
