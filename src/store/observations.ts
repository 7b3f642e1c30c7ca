import type { Database, SqlExecutor } from './database.js';

/**
 * Connection observations (migration 11): per day, who connected with what
 * (protocol, suite, the ClientHello's offer, the certificate's signature and
 * key) and the verdict under the policy in force and under the coming one,
 * summed. The gateway upserts in batches; the migration readiness report
 * reads by day range.
 */
export interface ObservationRow {
  day: string;
  subject: string;
  serial: string;
  protocol: string;
  suite: string;
  hello: string;
  verdictNow: string;
  verdictComing: string;
  comingProfile: string;
  profileNow: string;
  facility: string | null;
  address: string | null;
  offeredVersions: string;
  offeredSuites: string;
  groupsOffered: string;
  certSignature: string;
  certKey: string;
  certRule: string;
  exceptions: string;
  refusal: string;
  connections: number;
  firstSeen: string;
  lastSeen: string;
}

const COLUMNS: readonly [keyof ObservationRow, string][] = [
  ['day', 'day'],
  ['subject', 'subject'],
  ['serial', 'serial'],
  ['protocol', 'protocol'],
  ['suite', 'suite'],
  ['hello', 'hello'],
  ['verdictNow', 'verdict_now'],
  ['verdictComing', 'verdict_coming'],
  ['comingProfile', 'coming_profile'],
  ['profileNow', 'profile_now'],
  ['facility', 'facility'],
  ['address', 'address'],
  ['offeredVersions', 'offered_versions'],
  ['offeredSuites', 'offered_suites'],
  ['groupsOffered', 'groups_offered'],
  ['certSignature', 'cert_signature'],
  ['certKey', 'cert_key'],
  ['certRule', 'cert_rule'],
  ['exceptions', 'exceptions'],
  ['refusal', 'refusal'],
  ['connections', 'connections'],
  ['firstSeen', 'first_seen'],
  ['lastSeen', 'last_seen'],
];
const KEY = 'day, subject, serial, protocol, suite, hello, verdict_now, verdict_coming, coming_profile';
/** Rows per INSERT statement (23 parameters each: well under SQLite's and PostgreSQL's limits). */
const ROWS_PER_STATEMENT = 400;

export class ObservationRepository {
  constructor(private readonly x: SqlExecutor) {}

  /** Adds the counts of `rows` to the stored ones (first/last seen widened), in one transaction when given the database. */
  async upsert(rows: readonly ObservationRow[]): Promise<void> {
    if (!rows.length) return;
    // One order for every writer (workers, gateways sharing a PostgreSQL store): row locks are taken in key order, so two batches never deadlock.
    const keyOf = (r: ObservationRow) => [r.day, r.subject, r.serial, r.protocol, r.suite, r.hello, r.verdictNow, r.verdictComing, r.comingProfile].join('\u0000');
    const sorted = [...rows].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
    // PostgreSQL refuses a statement that updates one row twice: equal keys are summed first.
    const merged: ObservationRow[] = [];
    for (const r of sorted) {
      const last = merged.at(-1);
      if (last && keyOf(last) === keyOf(r)) {
        merged[merged.length - 1] = { ...last, connections: last.connections + r.connections, firstSeen: r.firstSeen < last.firstSeen ? r.firstSeen : last.firstSeen, lastSeen: r.lastSeen > last.lastSeen ? r.lastSeen : last.lastSeen };
      } else merged.push(r);
    }
    rows = merged;
    const write = async (x: SqlExecutor) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const part = rows.slice(i, i + ROWS_PER_STATEMENT);
        const one = `(${COLUMNS.map(() => '?').join(', ')})`;
        const sql = `INSERT INTO observations (${COLUMNS.map(([, c]) => c).join(', ')}) VALUES ${part.map(() => one).join(', ')}
          ON CONFLICT (${KEY}) DO UPDATE SET
            connections = observations.connections + excluded.connections,
            first_seen = CASE WHEN excluded.first_seen < observations.first_seen THEN excluded.first_seen ELSE observations.first_seen END,
            last_seen = CASE WHEN excluded.last_seen > observations.last_seen THEN excluded.last_seen ELSE observations.last_seen END,
            groups_offered = CASE WHEN observations.groups_offered = '' THEN excluded.groups_offered ELSE observations.groups_offered END`;
        await x.run(sql, part.flatMap((r) => COLUMNS.map(([k]) => r[k])));
      }
    };
    const db = this.x as Partial<Database>;
    if (typeof db.transaction === 'function' && !this.x.inTransaction) await db.transaction(write);
    else await write(this.x);
  }

  /** Rows of days `from`..`to` (inclusive, YYYY-MM-DD), oldest first. */
  async list(from: string, to: string): Promise<ObservationRow[]> {
    const rows = await this.x.all<Record<string, unknown>>(`SELECT * FROM observations WHERE day >= ? AND day <= ? ORDER BY day, subject, serial, protocol, suite`, [from, to]);
    return rows.map((r) => {
      const o = {} as Record<string, unknown>;
      for (const [k, c] of COLUMNS) o[k] = r[c];
      o.connections = Number(r.connections);
      return o as unknown as ObservationRow;
    });
  }

  /** The last time each facility was seen before day `before` (for "not seen since"). */
  async lastSeenBefore(before: string): Promise<Map<string, string>> {
    const rows = await this.x.all<{ facility: string; last: string }>('SELECT facility, MAX(last_seen) AS last FROM observations WHERE facility IS NOT NULL AND day < ? GROUP BY facility', [before]);
    return new Map(rows.map((r) => [r.facility, r.last]));
  }

  /** Deletes the days before `day` (the gateway's retention); returns how many rows went. */
  async prune(before: string): Promise<number> {
    return (await this.x.run('DELETE FROM observations WHERE day < ?', [before])).changes;
  }
}
