import { internal } from '../errors/index.js';
import { repositories, type AuditRow, type Database, type SqlExecutor } from '../store/index.js';
import type { KeyObject } from 'node:crypto';
import type { Signer } from '../pki/index.js';
import { ChainVerifier, eventHash, type ChainProblem } from './chain.js';
import { CHECKPOINT_GENESIS_HASH, checkpointFromRow, checkpointToRow, signCheckpoint, type AuditCheckpoint } from './checkpoint.js';
import type { AuditEvent, RecordedAuditEvent } from './event.js';
import { TrailVerifier, type TrailReport } from './trail-verifier.js';

export interface AuditLogOptions {
  now?: () => Date;
}

/** The hash-chained audit trail in the store. */
export class AuditLog {
  readonly #now: () => Date;

  constructor(private readonly db: Database, options: AuditLogOptions = {}) {
    this.#now = options.now ?? (() => new Date());
  }

  /** Appends inside the caller's transaction, so the event commits with the action it records. */
  async appendIn(tx: SqlExecutor, event: AuditEvent, /** When it happened, if earlier than now (events recorded in batches). */ at?: Date): Promise<RecordedAuditEvent> {
    // Reading the head, inserting and moving the head must be one transaction, or concurrent appends fork the chain.
    if (!tx.inTransaction) throw internal('AUDIT_OUTSIDE_TRANSACTION', 'an audit event was appended outside a transaction; use append() or pass the transaction');
    const repo = repositories(tx).audit;
    const head = await repo.head();
    const base = {
      seq: head.seq + 1,
      at: (at ?? this.#now()).toISOString(),
      actor: event.actor,
      action: event.action,
      outcome: event.outcome,
      reason_code: event.reasonCode ?? null,
      subject: event.subject ?? null,
      details: JSON.stringify(event.details ?? {}),
      prev_hash: head.hash,
    };
    const row: AuditRow = { ...base, hash: eventHash(base) };
    await repo.append(row);
    return { ...event, seq: row.seq, at: row.at, hash: row.hash };
  }

  /** Appends in a transaction of its own. */
  append(event: AuditEvent): Promise<RecordedAuditEvent> {
    return this.db.transaction((tx) => this.appendIn(tx, event));
  }

  /**
   * Signs a checkpoint of the chain's head with the audit key, when events
   * were appended since the last checkpoint (or always, with `force`).
   * Runs in one transaction that holds the head (PostgreSQL: FOR UPDATE;
   * SQLite: the write lock), so concurrent checkpointers and appenders
   * queue, and checkpoint numbers never fork. Returns undefined when there
   * was nothing new to sign.
   */
  async checkpoint(signer: Signer, options: { force?: boolean } = {}): Promise<AuditCheckpoint | undefined> {
    return this.db.transaction(async (tx) => {
      const repos = repositories(tx);
      const head = await repos.audit.head();
      const last = await repos.checkpoints.last();
      if (last && last.seq === head.seq && !options.force) return undefined;
      const c = await signCheckpoint(signer, {
        id: (last?.id ?? 0) + 1,
        seq: head.seq,
        headHash: head.hash,
        at: this.#now().toISOString(),
        prevHash: last?.hash ?? CHECKPOINT_GENESIS_HASH,
      });
      await repos.checkpoints.add(checkpointToRow(c));
      return c;
    });
  }

  /** Signed checkpoints that cover the trail beyond event `seq` (for export beside the events), in order. */
  async checkpointsAfter(seq: number): Promise<AuditCheckpoint[]> {
    return (await repositories(this.db).checkpoints.afterSeq(seq)).map(checkpointFromRow);
  }

  /** The seq of the newest event (0 for an empty trail). */
  async headSeq(): Promise<number> {
    return (await repositories(this.db).audit.head({ lock: false })).seq;
  }

  /** Signed checkpoints numbered after `id`, in order. */
  async checkpointsAfterId(id: number): Promise<AuditCheckpoint[]> {
    return (await repositories(this.db).checkpoints.afterId(id)).map(checkpointFromRow);
  }

  /** Every signed checkpoint, in order. */
  async checkpoints(): Promise<AuditCheckpoint[]> {
    return (await repositories(this.db).checkpoints.list()).map(checkpointFromRow);
  }

  /**
   * Verifies the trail against its signed checkpoints under the audit key's
   * public half (read from the CA home, never from the store): see
   * TrailVerifier. Events appended while it runs are not read.
   */
  async verifyTrail(options: { publicKey: KeyObject; knownLatest?: { id: number; hash: string } }): Promise<TrailReport> {
    const repo = repositories(this.db).audit;
    const head = await repo.head({ lock: false });
    const checkpoints = await this.checkpoints();
    const v = new TrailVerifier({ publicKey: options.publicKey, checkpoints, ...(options.knownLatest ? { knownLatest: options.knownLatest } : {}) });
    await this.#walk(head.seq, (r) => v.add(r));
    return v.finish(head);
  }

  async #walk(toSeq: number, fn: (r: AuditRow) => void): Promise<void> {
    const repo = repositories(this.db).audit;
    const page = 10_000;
    let after = 0;
    while (after < toSeq) {
      const rows = (await repo.list({ afterSeq: after, limit: page })).filter((r) => r.seq <= toSeq);
      for (const r of rows) fn(r);
      if (rows.length === 0) break;
      after = rows[rows.length - 1]!.seq;
    }
  }

  async list(options: { afterSeq?: number; limit?: number } = {}): Promise<RecordedAuditEvent[]> {
    const rows = await repositories(this.db).audit.list(options);
    return rows.map((r) => ({
      seq: r.seq,
      at: r.at,
      actor: r.actor,
      action: r.action,
      outcome: r.outcome as RecordedAuditEvent['outcome'],
      ...(r.reason_code ? { reasonCode: r.reason_code } : {}),
      ...(r.subject ? { subject: r.subject } : {}),
      details: JSON.parse(r.details) as Record<string, unknown>,
      hash: r.hash,
    }));
  }

  /**
   * Walks the chain in pages up to the head read first, so events appended
   * while it runs (by this or another process) are neither missed nor
   * mistaken for tampering; returns how many events it read and every problem.
   */
  async verify(): Promise<{ events: number; problems: ChainProblem[] }> {
    const repo = repositories(this.db).audit;
    const head = await repo.head({ lock: false });
    const v = new ChainVerifier();
    await this.#walk(head.seq, (r) => v.add(r));
    return { events: v.count, problems: v.finish(head) };
  }
}
