import { addressKey } from '../listener/index.js';
import { isAuditedRefusal, NOTICE_ERRORS, type AttemptSource, type IssuanceNotices } from '../ca/index.js';

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
    return (await this.admit(address)).wait;
  }

  /**
   * Counts one attempt: `wait` as `take` gives it, and `refused`, the how-many-th
   * refused attempt of the address's window this one is (1 for the first over
   * the limit; 0 when admitted). The count is atomic, so concurrent refusals
   * never share a number.
   */
  async admit(address: string): Promise<{ wait: number; refused: number; windowEnds: Date }> {
    const now = this.#now().getTime();
    if (now - this.#lastExpiry >= this.windowMs) {
      this.#lastExpiry = now;
      await this.#counter.expireAttempts(now, this.windowMs);
    }
    // An IPv6 host is counted by its /64: it can rotate source addresses within it.
    const w = await this.#counter.countAttempt(addressKey(address), now, this.windowMs);
    const windowEnds = new Date(w.windowStart + this.windowMs);
    if (w.count <= this.attempts) return { wait: 0, refused: 0, windowEnds };
    return { wait: Math.max(1, Math.ceil((windowEnds.getTime() - now) / 1000)), refused: w.count - this.attempts, windowEnds };
  }
}

/**
 * Counts one notice attempt (portal and EST) and throws RATE_LIMITED over the
 * limit. Of an address's refusals in one window, the 1st, 2nd, 4th, 8th …
 * are audited, each with its number (`refusedInWindow`), the limit and when
 * the window ends: an auditor sees how hard an address tried in a number of
 * rows that grows with its logarithm. An attempt refused here touched no
 * notice, and a hash-chained row for each would let one client grow the audit
 * trail at the speed of its requests.
 */
export async function admitNoticeAttempt(limiter: AttemptLimiter, notices: IssuanceNotices, source: AttemptSource): Promise<void> {
  const { wait, refused, windowEnds } = await limiter.admit(source.client);
  if (wait === 0) return;
  const err = NOTICE_ERRORS.rateLimited(wait);
  if (isAuditedRefusal(refused)) {
    await notices.refuse(source, err, { refusedInWindow: refused, limit: limiter.attempts, windowSeconds: limiter.windowMs / 1000, windowEnds: windowEnds.toISOString() });
  }
  throw err;
}
