import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../files/index.js';
import { CA_WRITER, detailsOf, type AuditChainStore } from '../store/index.js';
import { checkpointFromRow } from './checkpoint.js';
import type { AuditEvent } from './event.js';
import type { AuditSpool } from './spool.js';

/**
 * Brings the events other producers commit straight to the store (CA
 * actions: issue, revoke, notices, CRLs — acknowledged when their
 * transaction commits, from `serve` or any CLI command on the home) into
 * this spool, so collectors get them too. It follows the CA's chain ("ca")
 * by its place in that chain, which commits in order (its head row is
 * locked by each append), never the store-wide seq, which other writers'
 * transactions may commit out of order. Events that came through a spool
 * (they carry `details.eventId`; older trails held them in the CA's chain)
 * are skipped: their own gateway sends them.
 * The position (place in the CA chain) is kept in `follow-store.json` beside the spool,
 * written after the events are spooled: a crash in between spools at most
 * one page again (collectors may see those twice). On the very first start it
 * begins at the store's head: earlier history is not sent.
 */
export class StoreFollower {
  readonly #file: string;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  followed = 0;
  /** Rows that could not be read as the CA writes them (sent on as `audit.record-unreadable` alerts). */
  unreadable = 0;
  lastError: string | undefined;

  constructor(
    private readonly spool: AuditSpool,
    private readonly store: AuditChainStore,
    private readonly options: { dir: string; intervalMs?: number; onError?: (message: string) => void },
  ) {
    this.#file = join(options.dir, 'follow-store.json');
  }

  async start(): Promise<void> {
    if (!existsSync(this.#file)) {
      const head = await this.store.head(CA_WRITER);
      const last = await this.store.lastCheckpoint();
      this.#save({ seq: head.seq, checkpoint: last?.id ?? 0 });
    }
    await this.poll();
    const tick = () => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => void this.poll().finally(tick), this.options.intervalMs ?? 1000).unref();
    };
    tick();
  }

  /** Where following stands: the last event seq and the last signed checkpoint sent on. */
  #position(): { seq: number; checkpoint: number } {
    const p = JSON.parse(readFileSync(this.#file, 'utf8')) as { seq: number; checkpoint?: number };
    return { seq: p.seq, checkpoint: p.checkpoint ?? 0 };
  }

  #save(p: { seq: number; checkpoint: number }): void {
    writeFileAtomic(this.#file, JSON.stringify(p));
  }

  poll(): Promise<void> {
    this.#running ??= this.#follow().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #follow(): Promise<void> {
    try {
      for (;;) {
        const position = this.#position();
        const rows = await this.store.listChain(CA_WRITER, position.seq, 500);
        if (!rows.length) break;
        for (const r of rows) {
          const details = detailsOf(r.details);
          const at = storedTime(r.at);
          if (!details || !at) {
            // Not a row the CA wrote (altered in the store): the collectors get an alert in its place, and following goes on.
            this.spool.appendStored(unreadable(`audit event ${r.writer_seq}`, !at ? 'its time' : 'its details', r.at, r.action), new Date(), { seq: r.seq, hash: r.hash });
            this.followed++;
            this.unreadable++;
            continue;
          }
          if (typeof details.eventId === 'string') continue;
          const event: AuditEvent = { actor: r.actor, action: r.action, outcome: r.outcome as AuditEvent['outcome'], ...(r.reason_code ? { reasonCode: r.reason_code } : {}), ...(r.subject ? { subject: r.subject } : {}), details };
          this.spool.appendStored(event, at, { seq: r.seq, hash: r.hash });
          this.followed++;
        }
        this.#save({ ...position, seq: rows[rows.length - 1]!.writer_seq });
      }
      // Signed checkpoints go out too, so a copy outside the machine can prove what the trail held.
      const position = this.#position();
      const fresh = (await this.store.checkpointsAfterId(position.checkpoint)).map(checkpointFromRow);
      for (const c of fresh) {
        const { at, seq, headHash, ...signed } = c;
        const when = storedTime(at);
        if (when) this.spool.appendStored({ actor: 'ca', action: 'audit.checkpoint', outcome: 'success', subject: String(c.id), details: { ...signed, seq, headHash } }, when, { seq, hash: headHash });
        else {
          this.spool.appendStored(unreadable(`signed checkpoint ${c.id}`, 'its time', at, 'audit.checkpoint'), new Date(), { seq, hash: headHash });
          this.unreadable++;
        }
        this.followed++;
      }
      if (fresh.length) this.#save({ ...position, checkpoint: fresh[fresh.length - 1]!.id });
      this.lastError = undefined;
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      this.options.onError?.(this.lastError);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }
}

/** The time of a stored row, if a syslog message can carry it (RFC 5424 §6.2.3: a four-digit year). */
function storedTime(raw: unknown): Date | undefined {
  if (typeof raw !== 'string') return undefined;
  const t = new Date(raw);
  return !Number.isNaN(t.getTime()) && /^\d{4}-/.test(t.toISOString()) ? t : undefined;
}

/** The alert sent in place of a row that cannot be read: it was altered in the store (`sekisho audit verify` names it). */
function unreadable(what: string, field: string, at: unknown, action: unknown): AuditEvent {
  return {
    actor: 'audit-follower',
    action: 'audit.record-unreadable',
    outcome: 'seriousFailure',
    reasonCode: 'AUDIT_RECORD_UNREADABLE',
    details: { detail: `${what} of the CA chain cannot be read from the store (${field} is not valid): it was altered there; "sekisho audit verify" names it`, recordedAt: String(at).slice(0, 100), action: String(action).slice(0, 100) },
  };
}
