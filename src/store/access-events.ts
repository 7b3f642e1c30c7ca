import type { SqlExecutor } from './database.js';
import type { AuditRow } from './audit-events.js';

/** The gateway's audit events an access review reads. */
export const ACCESS_ACTIONS = ['gateway.authenticated', 'gateway.session', 'gateway.refused', 'gateway.request-refused', 'gateway.connection-cut', 'gateway.refused.unidentified'] as const;

export interface AccessEventQuery {
  /** Inclusive, ISO 8601 UTC with milliseconds. */
  from: string;
  /** Exclusive. */
  to: string;
  /** Only events whose actor is this facility number. */
  actor?: string;
}

/**
 * Read-only: the gateway's access events in a time range, oldest first,
 * served by the indexes (action, at) and (actor, at) of migration 9. Reads
 * in pages by (at, seq), so a long range never holds the database in one
 * statement.
 */
export class AccessEventReader {
  constructor(private readonly x: SqlExecutor) {}

  async list(q: AccessEventQuery, page = 5000): Promise<AuditRow[]> {
    const out: AuditRow[] = [];
    const actions = ACCESS_ACTIONS.map(() => '?').join(', ');
    let after: { at: string; seq: number } | undefined;
    for (;;) {
      const params: unknown[] = [...ACCESS_ACTIONS, q.from, q.to];
      let sql = `SELECT * FROM audit_events WHERE action IN (${actions}) AND at >= ? AND at < ?`;
      if (q.actor !== undefined) {
        sql += ' AND actor = ?';
        params.push(q.actor);
      }
      if (after) {
        sql += ' AND (at > ? OR (at = ? AND seq > ?))';
        params.push(after.at, after.at, after.seq);
      }
      sql += ' ORDER BY at, seq LIMIT ?';
      params.push(page);
      const rows = (await this.x.all<AuditRow>(sql, params)).map((r) => ({ ...r, seq: Number(r.seq) }));
      out.push(...rows);
      if (rows.length < page) return out;
      const last = rows[rows.length - 1]!;
      after = { at: last.at, seq: last.seq };
    }
  }
}
