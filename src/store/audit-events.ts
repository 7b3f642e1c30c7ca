import type { SqlExecutor } from './database.js';

/** One stored audit event with its place in the hash chain. */
export interface AuditRow {
  seq: number;
  at: string;
  actor: string;
  action: string;
  outcome: string;
  reason_code: string | null;
  subject: string | null;
  details: string;
  prev_hash: string;
  hash: string;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** The append-only audit table. Hashing is audit/'s business; this only stores. */
export class AuditEventRepository {
  constructor(private readonly x: SqlExecutor) {}

  /** The chain head; inside a transaction in PostgreSQL it is locked until commit. */
  async head(options: { lock?: boolean } = {}): Promise<ChainHead> {
    const lock = this.x.dialect === 'postgres' && options.lock !== false ? ' FOR UPDATE' : '';
    const h = await this.x.get<ChainHead>(`SELECT seq, hash FROM audit_head WHERE id = 1${lock}`);
    if (!h) throw new Error('audit_head row is missing: the store was not migrated');
    return { seq: Number(h.seq), hash: h.hash };
  }

  /** Appends a row and moves the head; call inside a transaction after head(). */
  async append(row: AuditRow): Promise<void> {
    await this.x.run(
      'INSERT INTO audit_events (seq, at, actor, action, outcome, reason_code, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [row.seq, row.at, row.actor, row.action, row.outcome, row.reason_code, row.subject, row.details, row.prev_hash, row.hash],
    );
    await this.x.run('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1', [row.seq, row.hash]);
  }

  async list(options: { afterSeq?: number; limit?: number } = {}): Promise<AuditRow[]> {
    const rows = await this.x.all<AuditRow>('SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?', [options.afterSeq ?? 0, options.limit ?? 1_000_000_000]);
    return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
  }
}
