import type { RefusalReason } from './refusal.js';

/** One audit row of the digest: how many refusals of one kind from one address in one interval. */
export interface RefusalSummary {
  listener: string;
  /** The client address (no port), or "*" for the overflow bucket once `maxAddresses` were seen. */
  address: string;
  reason: RefusalReason;
  count: number;
  firstAt: string;
  lastAt: string;
  /** The first refusal's detail, cut to `MAX_DETAIL` characters. */
  detail: string;
}

export interface RefusalDigestOptions {
  /** How long refusals are summed before they are written (ms). */
  intervalMs: number;
  /** Distinct (listener, address, reason) rows per interval; more go to one overflow row per listener and reason. */
  maxAddresses: number;
  emit: (rows: RefusalSummary[]) => void;
  now?: () => Date;
}

/** The longest text a refusal stores from what a client sent (issuer and subject names, error text). */
export const MAX_DETAIL = 256;

/** Cuts a client-supplied string to `max` characters, marking the cut. */
export function clip(s: string, max = MAX_DETAIL): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/**
 * Refusals of clients that proved no identity (no certificate, a certificate
 * from an unknown CA, self-signed or unparsable, a handshake that failed or
 * timed out) are summed per listener, address and reason and written as one
 * audit row per interval with a count: a flood of them costs a bounded
 * number of bounded rows, not a hash-chained row per socket. The number of
 * distinct rows per interval is capped (an overflow row takes the rest).
 * Refusals of certificates that chain to our CA stay individual events.
 */
export class RefusalDigest {
  #rows = new Map<string, RefusalSummary>();
  #since: number;
  readonly #now: () => Date;

  constructor(private readonly o: RefusalDigestOptions) {
    this.#now = o.now ?? (() => new Date());
    this.#since = this.#now().getTime();
  }

  note(listener: string, address: string, reason: RefusalReason, detail: string): void {
    let key = `${listener}\u0000${address}\u0000${reason}`;
    let row = this.#rows.get(key);
    if (!row && this.#rows.size >= this.o.maxAddresses) {
      address = '*';
      key = `${listener}\u0000*\u0000${reason}`;
      row = this.#rows.get(key);
    }
    const at = this.#now().toISOString();
    if (row) {
      row.count++;
      row.lastAt = at;
      return;
    }
    this.#rows.set(key, { listener, address, reason, count: 1, firstAt: at, lastAt: at, detail: clip(detail) });
  }

  /** Writes the interval's rows when it is over (called from the gateway's 1-second tick). */
  tick(): void {
    if (this.#now().getTime() - this.#since >= this.o.intervalMs) this.flush();
  }

  flush(): void {
    this.#since = this.#now().getTime();
    if (!this.#rows.size) return;
    const rows = [...this.#rows.values()];
    this.#rows = new Map();
    this.o.emit(rows);
  }
}
