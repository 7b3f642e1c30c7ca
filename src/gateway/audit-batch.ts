import { AuditLog, type AuditEvent } from '../audit/index.js';
import type { Database } from '../store/index.js';

/**
 * Every authentication, accepted or refused, goes to the hash-chained audit
 * trail. A busy gateway sees thousands a second, so events are appended in
 * batches (one transaction every `intervalMs`, or sooner at `maxBatch`), each
 * with the time it happened. If the store is unreachable the events wait in
 * memory (up to `maxQueued`; beyond that the oldest are dropped and counted,
 * and the log says so) and are written when it is back.
 */
export class AuditBatch {
  #queue: { event: AuditEvent; at: Date }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  readonly #log: AuditLog;
  dropped = 0;
  lastError: string | undefined;

  constructor(
    private readonly db: Database,
    private readonly options: { intervalMs?: number; maxBatch?: number; maxQueued?: number; onError?: (message: string) => void } = {},
  ) {
    this.#log = new AuditLog(db);
  }

  record(event: AuditEvent, at = new Date()): void {
    const max = this.options.maxQueued ?? 100_000;
    if (this.#queue.length >= max) {
      this.#queue.shift();
      this.dropped++;
    }
    this.#queue.push({ event, at });
    if (this.#queue.length >= (this.options.maxBatch ?? 500)) void this.flush();
    else if (!this.#timer) this.#timer = setTimeout(() => void this.flush(), this.options.intervalMs ?? 200).unref();
  }

  /** Writes what is queued; resolves when it is in the store (or failed and stays queued). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#flushing) return this.#flushing.then(() => (this.#queue.length ? this.flush() : undefined));
    const batch = this.#queue.splice(0, this.options.maxBatch ?? 500);
    if (!batch.length) return Promise.resolve();
    this.#flushing = this.db
      .transaction(async (tx) => {
        for (const b of batch) await this.#log.appendIn(tx, b.event, b.at);
      })
      .then(
        () => {
          this.lastError = undefined;
        },
        (e: unknown) => {
          this.#queue.unshift(...batch);
          this.lastError = e instanceof Error ? e.message : String(e);
          this.options.onError?.(this.lastError);
          if (!this.#timer) this.#timer = setTimeout(() => void this.flush(), 1000).unref();
        },
      )
      .finally(() => {
        this.#flushing = undefined;
        if (this.#queue.length && !this.#timer) this.#timer = setTimeout(() => void this.flush(), this.options.intervalMs ?? 200).unref();
      });
    return this.#flushing;
  }

  pending(): number {
    return this.#queue.length;
  }
}
