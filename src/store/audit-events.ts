import type { SqlExecutor } from './database.js';

/**
 * One stored audit event with its place in its writer's hash chain. `seq` is
 * the store-wide order of rows (unique, increasing, possibly with gaps: on
 * PostgreSQL it comes from a sequence, so concurrent writers never wait for
 * each other); `writer` names the chain and `writer_seq` is the event's
 * place in it (1, 2, 3, … with no gap: a missing number is a removed event).
 */
export interface AuditRow {
  seq: number;
  /** The chain: "ca" for the CA's own processes (the trail's first chain), a gateway's writer id for its events. */
  writer: string;
  writer_seq: number;
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

/**
 * A stored row's details text as the object the CA writes, or undefined when
 * it is not one (a row altered in the store): readers show or skip such a row,
 * they do not fail on it.
 */
export function detailsOf(text: unknown): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(String(text)) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** A writer's chain head. */
export interface WriterHead extends ChainHead {
  writer: string;
}

/** The chain of the CA's own processes (the chain every trail had before there were several). */
export const CA_WRITER = 'ca';

const GENESIS = '0'.repeat(64);

/** A search of the trail: every term optional, all given terms must hold. */
export interface AuditSearch {
  /** An action ("notice.created"), or a prefix of one ending in "." or "*" ("gateway.", "notice.*"). */
  action?: string;
  /** The actor exactly as recorded ("operator:sato", a facility number, "client:192.0.2.1"). */
  actor?: string;
  /** A facility number: events it is the actor or subject of (facility.add, gateway.*), or that name it in their details ("facility"). */
  facility?: string;
  /** Inclusive, ISO 8601 UTC. */
  from?: string;
  /** Exclusive. */
  to?: string;
  /** Only events before this store-wide seq (the next page of a newest-first listing). */
  beforeSeq?: number;
  limit?: number;
}

const normalize = (r: AuditRow): AuditRow => ({ ...r, seq: Number(r.seq), writer_seq: Number(r.writer_seq) });

/**
 * The append-only audit table and one head row per writer (audit_chains).
 * Appending locks only the writer's own head row, so gateways append side by
 * side; hashing is audit/'s business, this only stores.
 */
export class AuditEventRepository {
  constructor(private readonly x: SqlExecutor) {}

  /** The writer's chain head (genesis for a writer with none yet); inside a transaction in PostgreSQL it is locked until commit. */
  async head(writer = CA_WRITER, options: { lock?: boolean } = {}): Promise<ChainHead> {
    const lock = this.x.dialect === 'postgres' && options.lock !== false && this.x.inTransaction ? ' FOR UPDATE' : '';
    const h = await this.x.get<ChainHead>(`SELECT seq, hash FROM audit_chains WHERE writer = ?${lock}`, [writer]);
    if (h) return { seq: Number(h.seq), hash: h.hash };
    if (writer === CA_WRITER) throw new Error('the audit chain head of the CA is missing: the store was not migrated (migration 10)');
    return { seq: 0, hash: GENESIS };
  }

  /** Every writer's head, in writer order (one statement: one snapshot). */
  async heads(): Promise<WriterHead[]> {
    const rows = await this.x.all<WriterHead>('SELECT writer, seq, hash FROM audit_chains ORDER BY writer');
    return rows.map((r) => ({ writer: r.writer, seq: Number(r.seq), hash: r.hash }));
  }

  /** Makes the writer's head row (genesis) if it has none; call before head(writer) in the transaction that appends. */
  async register(writer: string): Promise<void> {
    await this.x.run('INSERT INTO audit_chains (writer, seq, hash) VALUES (?, 0, ?) ON CONFLICT (writer) DO NOTHING', [writer, GENESIS]);
  }

  /** Appends a row (its store-wide seq is assigned here and returned) and moves the writer's head; call inside a transaction after head(). */
  async append(row: Omit<AuditRow, 'seq'>): Promise<number> {
    const next = this.x.dialect === 'postgres' ? "nextval('audit_events_seq')" : '(SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events)';
    const r = await this.x.get<{ seq: number | string }>(
      `INSERT INTO audit_events (seq, writer, writer_seq, at, actor, action, outcome, reason_code, subject, details, prev_hash, hash) VALUES (${next}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
      [row.writer, row.writer_seq, row.at, row.actor, row.action, row.outcome, row.reason_code, row.subject, row.details, row.prev_hash, row.hash],
    );
    const moved = await this.x.run('UPDATE audit_chains SET seq = ?, hash = ? WHERE writer = ?', [row.writer_seq, row.hash, row.writer]);
    if (moved.changes !== 1) throw new Error(`audit writer ${row.writer} has no head row (register it first)`);
    return Number(r!.seq);
  }

  /** Rows in store-wide order (for listing; a row committed late may sort before one already read: follow a chain with listChain). */
  async list(options: { afterSeq?: number; limit?: number } = {}): Promise<AuditRow[]> {
    const rows = await this.x.all<AuditRow>('SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?', [options.afterSeq ?? 0, options.limit ?? 1_000_000_000]);
    return rows.map(normalize);
  }

  /**
   * Newest first: the events matching every term of the search, at most
   * `limit` (default 200). The action and actor terms are answered by the
   * (action, at) and (actor, at) indexes; the facility term also matches
   * `"facility":"<number>"` in the details (a facility number is digits only,
   * so it is never a LIKE pattern).
   */
  async search(q: AuditSearch): Promise<AuditRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.action !== undefined) {
      const prefix = /[.*]$/.test(q.action) ? q.action.replace(/\*$/, '') : undefined;
      if (prefix !== undefined) {
        // The prefix's own underscore, percent sign and backslash stay literal.
        where.push("action LIKE ? ESCAPE '\\'");
        params.push(`${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      } else {
        where.push('action = ?');
        params.push(q.action);
      }
    }
    if (q.actor !== undefined) {
      where.push('actor = ?');
      params.push(q.actor);
    }
    if (q.facility !== undefined) {
      if (!/^\d{10}$/.test(q.facility)) throw new Error('audit search: a facility is 10 digits');
      where.push('(actor = ? OR subject = ? OR details LIKE ?)');
      params.push(q.facility, q.facility, `%"facility":"${q.facility}"%`);
    }
    if (q.from !== undefined) {
      where.push('at >= ?');
      params.push(q.from);
    }
    if (q.to !== undefined) {
      where.push('at < ?');
      params.push(q.to);
    }
    if (q.beforeSeq !== undefined) {
      where.push('seq < ?');
      params.push(q.beforeSeq);
    }
    params.push(Math.max(1, Math.min(q.limit ?? 200, 10_000)));
    const rows = await this.x.all<AuditRow>(`SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`, params);
    return rows.map(normalize);
  }

  /** One writer's rows after its place `after`, in chain order. */
  async listChain(writer: string, after: number, limit = 1_000_000_000): Promise<AuditRow[]> {
    const rows = await this.x.all<AuditRow>('SELECT * FROM audit_events WHERE writer = ? AND writer_seq > ? ORDER BY writer_seq LIMIT ?', [writer, after, limit]);
    return rows.map(normalize);
  }

  /**
   * The rows of a writer at place `writerSeq`, in store order, at most `limit` (more than one only where the chain
   * was forked or a row duplicated: each beyond the first is already a finding, so a pile at one place is not read whole).
   */
  async atPlace(writer: string, writerSeq: number, limit = 1_000): Promise<AuditRow[]> {
    return (await this.x.all<AuditRow>('SELECT * FROM audit_events WHERE writer = ? AND writer_seq = ? ORDER BY seq LIMIT ?', [writer, writerSeq, limit])).map(normalize);
  }

  /** A writer's rows beyond place `seq`, highest first, at most `limit` (rows past a head are no chain's). */
  async beyond(writer: string, seq: number, limit: number): Promise<AuditRow[]> {
    return (await this.x.all<AuditRow>('SELECT * FROM audit_events WHERE writer = ? AND writer_seq > ? ORDER BY writer_seq DESC LIMIT ?', [writer, seq, limit])).map(normalize);
  }

  /** How many rows name no writer or no place (no chain can hold them). */
  async withoutChain(): Promise<number> {
    const r = await this.x.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM audit_events WHERE writer IS NULL OR writer_seq IS NULL');
    return Number(r?.n ?? 0);
  }

  /** Writers that have rows, whether or not they have a head row (a removed head shows). */
  async writersWithEvents(): Promise<string[]> {
    return (await this.x.all<{ writer: string }>('SELECT DISTINCT writer FROM audit_events ORDER BY writer')).map((r) => r.writer);
  }
}
