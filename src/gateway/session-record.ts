/**
 * What one authenticated connection did, collected while it is open and
 * written to the audit trail once, when it closes (`gateway.session`): the
 * login time, how long, bytes each way, and the operations (HTTP method,
 * normalized path and status; in TCP mode the upstream it reached). Bounded:
 * at most MAX_OPERATIONS entries of at most MAX_PATH characters each, the rest
 * counted in `more`, so a long kept-alive connection costs a fixed few KiB and
 * no audit row per request.
 */
export const MAX_OPERATIONS = 50;
export const MAX_PATH = 200;

export interface SessionOperation {
  method: string;
  /** The normalized path (request-target.ts), without the query; clipped to MAX_PATH characters. */
  path: string;
  status: number;
}

/** The details of a `gateway.session` audit event (the report reads this shape: keep it stable). */
export interface SessionDetails {
  /** The same id as the connection's `gateway.authenticated` event. */
  connection: string;
  listener: string;
  mode: 'http' | 'tcp';
  client: string;
  /** UTC, milliseconds (the event's `at` is this too: the login time). */
  startedAt: string;
  endedAt: string;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  /** HTTP mode: the requests made, in order. */
  operations?: SessionOperation[];
  /** Operations made beyond those listed. */
  more?: number;
  /** TCP mode: the upstream the bytes went to (host:port). */
  upstream?: string;
  /** "closed" normally; "cut" when a revocation or suspension closed it (reasonCode says which). */
  end: 'closed' | 'cut';
}

export class SessionRecord {
  readonly operations: SessionOperation[] = [];
  more = 0;
  cutReason: string | undefined;
  readonly startedAt: Date;
  readonly #opened: number;

  constructor(
    readonly connection: string,
    now: Date,
  ) {
    this.startedAt = now;
    this.#opened = performance.now();
  }

  note(method: string | undefined, path: string, status: number): void {
    if (this.operations.length >= MAX_OPERATIONS) {
      this.more++;
      return;
    }
    this.operations.push({ method: (method ?? '').slice(0, 16), path: path.length > MAX_PATH ? `${path.slice(0, MAX_PATH)}…` : path, status });
  }

  /** The event details at close; duration from the monotonic clock, so a clock step cannot make it negative. */
  details(o: { listener: string; mode: 'http' | 'tcp'; client: string; bytesIn: number; bytesOut: number; upstream?: string }): SessionDetails {
    const durationMs = Math.max(0, Math.round(performance.now() - this.#opened));
    return {
      connection: this.connection,
      listener: o.listener,
      mode: o.mode,
      client: o.client,
      startedAt: this.startedAt.toISOString(),
      endedAt: new Date(this.startedAt.getTime() + durationMs).toISOString(),
      durationMs,
      bytesIn: o.bytesIn,
      bytesOut: o.bytesOut,
      ...(o.mode === 'http' ? { operations: this.operations, ...(this.more ? { more: this.more } : {}) } : {}),
      ...(o.upstream ? { upstream: o.upstream } : {}),
      end: this.cutReason ? 'cut' : 'closed',
    };
  }
}
