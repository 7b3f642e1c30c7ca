import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../files/index.js';
import { detailsOf, type AuditChainStore } from '../store/index.js';
import { appendToChain } from './audit-log.js';
import type { AuditSpool } from './spool.js';

export const STORE_CONSUMER = 'store';

/**
 * The audit writer id of the spool in `dir`: made once (host, spool name and
 * 8 random bytes, so two hosts never share one) and kept in `writer-id`
 * beside the spool, so a restarted gateway continues its own chain and can
 * tell which of its spooled events already reached the store.
 */
export function spoolWriterId(dir: string): string {
  const file = join(dir, 'writer-id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[\x21-\x7e]{1,200}$/.test(id)) return id;
  }
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 60) || 'host';
  const id = `gw:${host}:${basename(dir).replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 40)}:${randomBytes(8).toString('hex')}`;
  writeFileAtomic(file, id);
  return id;
}

/**
 * Moves spooled events into this writer's own hash chain in the store (one
 * chain per gateway process: appends lock only its head row, so gateways do
 * not queue behind each other), in spool order, a batch per transaction (every `intervalMs`, or at once when `maxBatch` wait). Each
 * row carries the spool's `details.eventId`. The store's cursor is persisted
 * with the store's head seq after the batch; on start, rows after that seq
 * are read for their eventIds, so a batch that committed just before a crash
 * (cursor not yet on disk) is not written twice. If the store is down, events
 * stay in the spool (bounded, on disk) and are retried.
 */
export class SpoolStoreWriter {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #seen: Set<string> | undefined;
  #off: (() => void) | undefined;
  #stopped = false;
  lastError: string | undefined;
  written = 0;

  constructor(
    private readonly spool: AuditSpool,
    private readonly store: AuditChainStore,
    /** The chain written (spoolWriterId). */
    readonly writer: string,
    private readonly options: { intervalMs?: number; maxBatch?: number; onError?: (message: string) => void } = {},
  ) {}

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
        let seq = this.#place(cursor.extra);
        if (fresh.length) {
          seq = await this.store.appendInTransaction(async (chains) => {
            const events = fresh.map(({ record }) => ({ event: { ...record.event, details: { ...(record.event.details ?? {}), eventId: record.id } }, at: new Date(record.at) }));
            const stored = await appendToChain(chains, this.writer, events);
            return stored[stored.length - 1]!.writerSeq!;
          });
        }
        this.written += fresh.length;
        // The ids seen on start matter only until the spool has moved past them.
        if (this.#seen.size && !batch.some((b) => this.#seen!.has(b.record.id))) this.#seen.clear();
        this.spool.commit(STORE_CONSUMER, batch[batch.length - 1]!.next, { writer: this.writer, writerSeq: seq });
      }
      this.lastError = undefined;
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      this.options.onError?.(this.lastError);
      this.#schedule(1000);
    }
  }

  /** The place in this writer's chain the cursor was committed with (0: none, or a cursor from before chains per writer). */
  #place(extra: Record<string, unknown> | undefined): number {
    return extra?.writer === this.writer && typeof extra.writerSeq === 'number' ? extra.writerSeq : 0;
  }

  /** eventIds of this writer's rows after the persisted cursor's place (a batch committed just before a crash). */
  async #alreadyStored(): Promise<Set<string>> {
    const seen = new Set<string>();
    const cursor = this.spool.cursor(STORE_CONSUMER);
    if (!this.spool.read(cursor, 1).length) return seen;
    let after = this.#place(cursor.extra);
    for (;;) {
      const rows = await this.store.listChain(this.writer, after, 5000);
      for (const r of rows) {
        const id = detailsOf(r.details)?.eventId;
        if (typeof id === 'string') seen.add(id);
      }
      if (rows.length < 5000) break;
      after = rows[rows.length - 1]!.writer_seq;
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
