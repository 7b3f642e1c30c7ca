import type { Database } from '../store/index.js';
import { AuditLog } from './audit-log.js';
import type { AuditSpool } from './spool.js';

export const STORE_CONSUMER = 'store';

/**
 * Moves spooled events into the store's hash chain, in spool order, a batch
 * per transaction (every `intervalMs`, or at once when `maxBatch` wait). Each
 * row carries the spool's `details.eventId`. The store's cursor is persisted
 * with the store's head seq after the batch; on start, rows after that seq
 * are read for their eventIds, so a batch that committed just before a crash
 * (cursor not yet on disk) is not written twice. If the store is down, events
 * stay in the spool (bounded, on disk) and are retried.
 */
export class SpoolStoreWriter {
  readonly #log: AuditLog;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #seen: Set<string> | undefined;
  #off: (() => void) | undefined;
  #stopped = false;
  lastError: string | undefined;
  written = 0;

  constructor(
    private readonly spool: AuditSpool,
    private readonly db: Database,
    private readonly options: { intervalMs?: number; maxBatch?: number; onError?: (message: string) => void } = {},
  ) {
    this.#log = new AuditLog(db);
  }

  /** Replays what the store does not have yet, then follows the spool. */
  async start(): Promise<void> {
    await this.flush();
    this.#off = this.spool.onAppend(() => this.#schedule(this.options.intervalMs ?? 200));
  }

  #schedule(ms: number): void {
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, ms).unref();
  }

  /** Writes everything spooled so far; resolves when it is in the store (or the store failed: retried later). */
  flush(): Promise<void> {
    if (this.#running) return this.#running.then(() => this.flush());
    this.#running = this.#drain().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #drain(): Promise<void> {
    const max = this.options.maxBatch ?? 500;
    try {
      this.#seen ??= await this.#alreadyStored();
      for (;;) {
        const cursor = this.spool.cursor(STORE_CONSUMER);
        const batch = this.spool.read(cursor, max);
        if (!batch.length) break;
        const fresh = batch.filter((b) => !b.record.stored && !this.#seen!.has(b.record.id));
        let seq = typeof cursor.extra?.storeSeq === 'number' ? cursor.extra.storeSeq : 0;
        if (fresh.length) {
          seq = await this.db.transaction(async (tx) => {
            let last = seq;
            for (const { record } of fresh) {
              const r = await this.#log.appendIn(tx, { ...record.event, details: { ...(record.event.details ?? {}), eventId: record.id } }, new Date(record.at));
              last = r.seq;
            }
            return last;
          });
        }
        this.written += fresh.length;
        // The ids seen on start matter only until the spool has moved past them.
        if (this.#seen.size && !batch.some((b) => this.#seen!.has(b.record.id))) this.#seen.clear();
        this.spool.commit(STORE_CONSUMER, batch[batch.length - 1]!.next, { storeSeq: seq });
      }
      this.lastError = undefined;
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      this.options.onError?.(this.lastError);
      this.#schedule(1000);
    }
  }

  /** eventIds of rows written after the persisted cursor's store seq (a batch committed just before a crash). */
  async #alreadyStored(): Promise<Set<string>> {
    const seen = new Set<string>();
    const cursor = this.spool.cursor(STORE_CONSUMER);
    if (!this.spool.read(cursor, 1).length) return seen;
    let after = typeof cursor.extra?.storeSeq === 'number' ? cursor.extra.storeSeq : 0;
    for (;;) {
      const rows = await this.#log.list({ afterSeq: after, limit: 5000 });
      for (const r of rows) if (typeof r.details?.eventId === 'string') seen.add(r.details.eventId);
      if (rows.length < 5000) break;
      after = rows[rows.length - 1]!.seq;
    }
    return seen;
  }

  /** Events spooled but not yet in the store (bytes). */
  pendingBytes(): number {
    return this.spool.behind()[STORE_CONSUMER] ?? 0;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#off?.();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    await this.#drain();
  }
}
