import type { ChangeListener, ChangeListenerOptions, FacilityStatus, StatusFeedBatch, StatusFeedReader } from '../store/index.js';
import { serialKey } from './serial-key.js';
import { SerialSet } from './serial-set.js';
import { setImmediate } from 'node:timers/promises';

export interface StatusFeedOptions {
  /** How often to ask for changes (default 1 s). */
  intervalMs?: number;
  /** How often to read everything again instead, correcting anything a follow could have missed (default 10 min). */
  resyncMs?: number;
  /** The gateway's own clock, for "last read" only: it never decides what is new (the resync is timed on the monotonic clock). */
  now?: () => Date;
  /**
   * PostgreSQL: starts listening for the store's change notifications; each
   * one wakes a read from the cursor at once (push). While listening, the
   * poll slows to `pollWhileListeningMs`, a safety net; while not, it runs
   * every `intervalMs` as without push.
   */
  listen?: (o: ChangeListenerOptions) => ChangeListener;
  /** The safety-net poll while notifications arrive (default 10 s). */
  pollWhileListeningMs?: number;
  /** Told when the notification connection comes up or drops. */
  onListenState?: (listening: boolean, error?: string) => void;
}

/** Entries added to a state being built before the thread is let go once. */
const BUILD_SLICE = 20_000;

/** Calls `each` on every item, letting the event loop run (I/O, timers) after every BUILD_SLICE. */
async function sliced<T>(items: readonly T[], each: (item: T) => unknown): Promise<void> {
  for (let i = 0; i < items.length; i++) {
    each(items[i]!);
    if (i % BUILD_SLICE === BUILD_SLICE - 1) await setImmediate();
  }
}

/**
 * Revocations and facility status as the gateway follows them from the CA's
 * store: everything once, then "changes after sequence N" when the store
 * announces a change (PostgreSQL LISTEN/NOTIFY: within a second) and every
 * interval as a safety net (the only way on SQLite), with
 * N the store-assigned change sequence (store/change-seq.ts), never a time.
 * A revocation written by a host whose clock is minutes off is as new as any
 * other. A failed read leaves the cursor where it was, so the next good read
 * catches up on everything in between; a full read every resyncMs (or when the
 * store's sequence goes back, as after a restore) replaces the state outright.
 *
 * One feed serves both faces the gateway uses (revocation source and facility
 * directory), so they share one cursor, one read per interval, one staleness.
 */
export class StoreStatusFeed {
  #revoked = new SerialSet();
  /** Superseded certificates whose revocation is due at a time (ms): revoked from then on, even before a CA process records it. */
  #due = new Map<string, number>();
  #facilities = new Map<string, { status: FacilityStatus; name: string }>();
  #cursor = -1;
  #lastFullAt = -Infinity;
  #started: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #revokedListeners: ((serials: readonly string[]) => void)[] = [];
  #suspendedListeners: ((numbers: readonly string[]) => void)[] = [];
  readonly #intervalMs: number;
  readonly #slowMs: number;
  readonly #resyncMs: number;
  readonly #listenFactory: StatusFeedOptions['listen'];
  readonly #onListenState: StatusFeedOptions['onListenState'];
  #listener: ChangeListener | undefined;
  #reading = false;
  #again = false;
  /** Reads woken by a notification (for /status and tests). */
  wakes = 0;
  readonly #now: () => Date;
  /** When the store was last read successfully (gateway clock). */
  refreshedAt: Date | undefined;
  /** Why the last read failed, until one succeeds. */
  lastError: string | undefined;

  constructor(
    private readonly reader: StatusFeedReader,
    o: StatusFeedOptions = {},
  ) {
    this.#intervalMs = o.intervalMs ?? 1000;
    this.#slowMs = Math.max(this.#intervalMs, o.pollWhileListeningMs ?? 10_000);
    this.#listenFactory = o.listen;
    this.#onListenState = o.onListenState;
    this.#resyncMs = o.resyncMs ?? 600_000;
    this.#now = o.now ?? (() => new Date());
    if (!(this.#intervalMs > 0) || !(this.#resyncMs > 0)) throw new RangeError('the feed interval and resync interval must be positive');
  }

  /** First full read (throws when the store cannot be read: fail at start-up), then follows. Idempotent. */
  start(): Promise<void> {
    this.#started ??= (async () => {
      await this.#full();
      this.refreshedAt = this.#now();
      if (this.#closed) return;
      if (this.#listenFactory) {
        this.#listener = this.#listenFactory({
          onChange: () => this.#wake(),
          onState: (listening, error) => {
            this.#onListenState?.(listening, error);
            // Not listening: poll at the fast interval again until notifications are back.
            if (!listening) this.#wake();
          },
        });
      }
      this.#schedule();
    })();
    return this.#started;
  }

  /** True while store notifications wake this feed (PostgreSQL push); false: it polls. */
  get listening(): boolean {
    return this.#listener?.listening ?? false;
  }

  /** How the feed learns of changes, for /status. */
  state(): Record<string, unknown> {
    return {
      mode: this.#listener ? (this.#listener.listening ? 'push' : 'poll (push reconnecting)') : 'poll',
      cursor: this.#cursor,
      wakes: this.wakes,
      ...(this.#listener?.lastError ? { listenError: this.#listener.lastError } : {}),
      pollSeconds: (this.listening ? this.#slowMs : this.#intervalMs) / 1000,
    };
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), this.listening ? this.#slowMs : this.#intervalMs).unref();
  }

  /** A notification (or listening restarted): read from the cursor now; one read at a time, one more if woken meanwhile. */
  #wake(): void {
    if (this.#closed || this.#cursor < 0) return;
    this.wakes++;
    if (this.#reading) {
      this.#again = true;
      return;
    }
    void this.#tick();
  }

  /** The change sequence number the state reflects (-1 before the first read). */
  get cursor(): number {
    return this.#cursor;
  }

  isRevoked(serialHex: string): boolean {
    if (this.#revoked.has(serialHex)) return true;
    const due = this.#due.get(serialHex);
    return due !== undefined && due <= this.#now().getTime();
  }

  revokedCount(): number {
    return this.#revoked.size;
  }

  facility(number: string): { status: FacilityStatus; name: string } | undefined {
    return this.#facilities.get(number);
  }

  /** Told the serials (sets' form) newly revoked after the first read. */
  onRevoked(listener: (serials: readonly string[]) => void): void {
    this.#revokedListeners.push(listener);
  }

  /** Told the facility numbers newly suspended after the first read. */
  onSuspended(listener: (numbers: readonly string[]) => void): void {
    this.#suspendedListeners.push(listener);
  }

  /** Reads now (a follow, or a full read when due); for the timer and for tests. */
  async refresh(): Promise<void> {
    if (performance.now() - this.#lastFullAt >= this.#resyncMs) await this.#full();
    else await this.#follow();
    this.refreshedAt = this.#now();
    this.lastError = undefined;
  }

  async #tick(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#reading = true;
    try {
      do {
        this.#again = false;
        try {
          await this.refresh();
        } catch (e) {
          this.lastError = e instanceof Error ? e.message : String(e);
        }
      } while (this.#again && !this.#closed);
    } finally {
      this.#reading = false;
    }
    this.#schedule();
  }

  /**
   * A full read. The new state is built apart, letting the thread go every
   * BUILD_SLICE entries (a national store's 160,000 serials and 230,000
   * facilities held it for a third of a second more after the read), and put
   * in place at once: lookups meanwhile see the old state whole.
   */
  async #full(): Promise<void> {
    const batch = await this.reader.snapshot();
    const first = this.#cursor < 0;
    const revoked = new SerialSet(batch.revoked.length);
    await sliced(batch.revoked, (s) => revoked.add(s));
    revoked.trim();
    const facilities = new Map<string, { status: FacilityStatus; name: string }>();
    await sliced(batch.facilities, (f) => facilities.set(f.number, { status: f.status, name: f.name }));
    if (this.#closed) return; // closed while building: nothing to put in place, no one to tell
    const fresh = first ? [] : revoked.missingFrom(this.#revoked);
    const before = this.#facilities;
    const suspended = first ? [] : batch.facilities.filter((f) => f.status === 'suspended' && before.has(f.number) && before.get(f.number)!.status !== 'suspended').map((f) => f.number);
    this.#revoked = revoked;
    this.#due = new Map();
    this.#addDue(batch);
    fresh.push(...this.#promoteDue(first));
    this.#facilities = facilities;
    this.#cursor = batch.seq;
    this.#lastFullAt = performance.now();
    this.#tell(fresh, suspended);
  }

  async #follow(): Promise<void> {
    const batch = await this.reader.changesAfter(this.#cursor);
    // The store's sequence went back (restored from a backup, or another database): start over.
    if (batch.seq < this.#cursor) return this.#full();
    const fresh: string[] = [];
    for (const s of batch.revoked) if (this.#revoked.add(s)) fresh.push(serialKey(s));
    this.#addDue(batch);
    fresh.push(...this.#promoteDue(false));
    const suspended = this.#applyFacilities(batch);
    this.#cursor = batch.seq;
    this.#tell(fresh, suspended);
  }

  #addDue(batch: StatusFeedBatch): void {
    for (const d of batch.due) {
      const s = serialKey(d.serial);
      const at = Date.parse(d.dueAt);
      if (!this.#revoked.has(s) && Number.isFinite(at)) this.#due.set(s, at);
    }
  }

  /** Moves superseded certificates whose due time has passed to the revoked set; returns them (none on the first read, like revocations). */
  #promoteDue(first: boolean): string[] {
    if (this.#due.size === 0) return [];
    const now = this.#now().getTime();
    const fresh: string[] = [];
    for (const [s, at] of this.#due) {
      if (at > now) continue;
      this.#due.delete(s);
      if (this.#revoked.add(s) && !first) fresh.push(s);
    }
    return fresh;
  }

  /** Writes changed facilities into the current map; returns those that went from not suspended to suspended. */
  #applyFacilities(batch: StatusFeedBatch): string[] {
    const suspended: string[] = [];
    for (const f of batch.facilities) {
      const was = this.#facilities.get(f.number);
      if (f.status === 'suspended' && was && was.status !== 'suspended') suspended.push(f.number);
      this.#facilities.set(f.number, { status: f.status, name: f.name });
    }
    return suspended;
  }

  #tell(revoked: string[], suspended: string[]): void {
    if (revoked.length) for (const l of this.#revokedListeners) l(revoked);
    if (suspended.length) for (const l of this.#suspendedListeners) l(suspended);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.#listener?.close();
  }
}
