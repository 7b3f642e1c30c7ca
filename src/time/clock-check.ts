import type { AuditEvent } from '../audit/index.js';
import { isSekishoError } from '../errors/index.js';

/**
 * The host clock checked against a reference (an NTP server, the database's
 * clock) at start and every `checkSeconds`: MHLW asks that access records
 * carry the time of a trusted, synchronized clock. When the offset passes
 * `maxOffsetMs` it raises an alarm once (an error log line, the metric, an
 * audit event `time.offset-exceeded`), and says so again when it is back
 * (`time.offset-recovered`); a reference that cannot be read is logged and
 * audited the same way (`time.check-failed`, then recovered). It never
 * changes the clock: setting it is the host's NTP daemon's job.
 */
export interface ClockSource {
  /** e.g. "ntp 192.0.2.1:123" or "database". */
  name: string;
  /** How far the reference is ahead of this host's clock, in milliseconds. */
  offsetMs(): Promise<number>;
}

export interface ClockReading {
  source: string;
  offsetMs?: number;
  error?: string;
  state: 'ok' | 'exceeded' | 'failed';
}

type Level = 'info' | 'warn' | 'error';

export interface ClockCheckOptions {
  sources: ClockSource[];
  maxOffsetMs: number;
  checkSeconds: number;
  log: (level: Level, msg: string, fields: Record<string, unknown>) => void;
  audit?: (event: AuditEvent) => void;
  /** Every reading (for metrics). */
  onReading?: (r: ClockReading) => void;
  /** The component named as the audit actor (default "sekisho"). */
  actor?: string;
}

export class ClockCheck {
  readonly #state = new Map<string, ClockReading['state']>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<ClockReading[]> | undefined;

  constructor(private readonly o: ClockCheckOptions) {}

  /** Checks once (awaited, so the start-up log says where the clock stands), then every checkSeconds. */
  async start(): Promise<ClockReading[]> {
    const first = await this.check();
    this.#timer = setInterval(() => void this.check(), this.o.checkSeconds * 1000).unref();
    return first;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Readings of every source, now; one check at a time. */
  check(): Promise<ClockReading[]> {
    this.#running ??= Promise.all(this.o.sources.map((s) => this.#read(s))).finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** The last state of each source. */
  states(): Record<string, ClockReading['state']> {
    return Object.fromEntries(this.#state);
  }

  async #read(s: ClockSource): Promise<ClockReading> {
    let r: ClockReading;
    try {
      const offsetMs = Math.round(await s.offsetMs());
      r = { source: s.name, offsetMs, state: Math.abs(offsetMs) > this.o.maxOffsetMs ? 'exceeded' : 'ok' };
    } catch (e) {
      r = { source: s.name, error: isSekishoError(e) || e instanceof Error ? e.message : String(e), state: 'failed' };
    }
    this.o.onReading?.(r);
    const before = this.#state.get(s.name);
    this.#state.set(s.name, r.state);
    const fields = { source: r.source, offsetMs: r.offsetMs, maxOffsetMs: this.o.maxOffsetMs, ...(r.error ? { error: r.error } : {}) };
    const audit = (action: string, outcome: AuditEvent['outcome'], reasonCode?: string) =>
      this.o.audit?.({ actor: this.o.actor ?? 'sekisho', action, outcome, ...(reasonCode ? { reasonCode } : {}), details: { source: r.source, ...(r.offsetMs !== undefined ? { offsetMs: r.offsetMs } : {}), maxOffsetMs: this.o.maxOffsetMs, ...(r.error ? { error: r.error } : {}) } });
    // Quiet while nothing changes (the metric shows every reading); loud on each change.
    if (r.state === before) return r;
    if (r.state === 'exceeded') {
      this.o.log('error', 'CLOCK OFFSET EXCEEDS THE LIMIT: audit times are not trustworthy until the host clock is synchronized', fields);
      audit('time.offset-exceeded', 'seriousFailure', 'CLOCK_OFFSET_EXCEEDED');
    } else if (r.state === 'failed') {
      this.o.log('error', 'the clock could not be checked', fields);
      audit('time.check-failed', 'minorFailure', 'CLOCK_CHECK_FAILED');
    } else {
      this.o.log(before ? 'warn' : 'info', before ? 'clock back within the limit' : 'clock checked', fields);
      if (before) audit('time.offset-recovered', 'success');
    }
    return r;
  }
}
