import type { SqlExecutor } from './database.js';
import { withChangeSeq } from './change-seq.js';

export type CertificateStatus = 'reserved' | 'issued' | 'revoked';

export interface CertificateRecord {
  serial: string;
  status: CertificateStatus;
  profile: string;
  facilityNumber?: string;
  subject: string;
  spkiSha256: string;
  notBefore: string;
  notAfter: string;
  reservedAt: string;
  issuedAt?: string;
  fingerprintSha256?: string;
  der?: Buffer;
  revokedAt?: string;
  revocationReason?: number;
  /** The certificate this one renewed. */
  renewedFrom?: string;
  /** The renewal that replaced this one ('pending' while it is being issued). */
  supersededBy?: string;
  /** When that renewal was claimed. */
  supersededAt?: string;
  /** When this superseded certificate is revoked (reason superseded), unless it already is. */
  revokeDueAt?: string;
}

/** Every column but the DER (listings). */
const LIST_COLUMNS =
  'serial, status, profile, facility_number, subject, spki_sha256, not_before, not_after, reserved_at, issued_at, fingerprint_sha256, revoked_at, revocation_reason, renewed_from, superseded_by, superseded_at, revoke_due_at';

/** superseded_by while the renewal that claimed a certificate is being issued. */
export const RENEWAL_PENDING = 'pending';

interface Row {
  serial: string;
  status: CertificateStatus;
  profile: string;
  facility_number: string | null;
  subject: string;
  spki_sha256: string;
  not_before: string;
  not_after: string;
  reserved_at: string;
  issued_at: string | null;
  fingerprint_sha256: string | null;
  der: Buffer | null;
  revoked_at: string | null;
  revocation_reason: number | null;
  renewed_from?: string | null;
  superseded_by?: string | null;
  superseded_at?: string | null;
  revoke_due_at?: string | null;
}

function toRecord(r: Row): CertificateRecord {
  const rec: CertificateRecord = {
    serial: r.serial,
    status: r.status,
    profile: r.profile,
    subject: r.subject,
    spkiSha256: r.spki_sha256,
    notBefore: r.not_before,
    notAfter: r.not_after,
    reservedAt: r.reserved_at,
  };
  if (r.facility_number !== null) rec.facilityNumber = r.facility_number;
  if (r.issued_at !== null) rec.issuedAt = r.issued_at;
  if (r.fingerprint_sha256 !== null) rec.fingerprintSha256 = r.fingerprint_sha256;
  if (r.der !== null) rec.der = Buffer.from(r.der);
  if (r.revoked_at !== null) rec.revokedAt = r.revoked_at;
  if (r.revocation_reason !== null) rec.revocationReason = r.revocation_reason;
  if (r.renewed_from) rec.renewedFrom = r.renewed_from;
  if (r.superseded_by) rec.supersededBy = r.superseded_by;
  if (r.superseded_at) rec.supersededAt = r.superseded_at;
  if (r.revoke_due_at) rec.revokeDueAt = r.revoke_due_at;
  return rec;
}

export interface CertificateFilter {
  facilityNumber?: string;
  status?: CertificateStatus;
}

export interface RevokedSerial {
  serial: string;
  revokedAt: string;
  reason: number;
}

/** Certificates, from serial reservation to revocation. */
/** The WHERE terms of a listing filter (facility, status), with their parameters. */
function filterClause(filter: CertificateFilter): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.facilityNumber) {
    where.push('facility_number = ?');
    params.push(filter.facilityNumber);
  }
  if (filter.status) {
    where.push('status = ?');
    params.push(filter.status);
  }
  return { where, params };
}

export class CertificateRepository {
  constructor(private readonly x: SqlExecutor) {}

  /**
   * Records a serial before anything is signed; for a facility's certificate
   * only while that facility is active (checked in the same statement, so a
   * suspension that commits first always wins). Returns 'reserved', or why not.
   */
  async reserve(rec: Omit<CertificateRecord, 'status'>): Promise<'reserved' | 'serial-exists' | 'facility-not-active'> {
    const params = [rec.serial, rec.profile, rec.facilityNumber ?? null, rec.subject, rec.spkiSha256, rec.notBefore, rec.notAfter, rec.reservedAt, rec.renewedFrom ?? null];
    // Inside a SQLite transaction (BEGIN IMMEDIATE: it holds the only write lock until it ends) the
    // facility's status cannot change between two statements, so the check is a separate lookup and the
    // row a plain INSERT … VALUES: SQLite runs INSERT … SELECT … WHERE EXISTS about twice as slowly
    // (one statement per issuance, on the thread that commits). Elsewhere (PostgreSQL, or outside a
    // transaction) the check stays in the INSERT's own statement.
    const separateCheck = this.x.dialect === 'sqlite' && this.x.inTransaction && Boolean(rec.facilityNumber);
    if (separateCheck && !(await this.x.get("SELECT 1 AS ok FROM facilities WHERE number = ? AND status = 'active'", [rec.facilityNumber]))) {
      return (await this.get(rec.serial)) ? 'serial-exists' : 'facility-not-active';
    }
    const r = rec.facilityNumber && !separateCheck
      ? await this.x.run(
          `INSERT INTO certificates (serial, status, profile, facility_number, subject, spki_sha256, not_before, not_after, reserved_at, renewed_from)
           SELECT ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM facilities WHERE number = ? AND status = 'active')
           ON CONFLICT (serial) DO NOTHING`,
          [...params, rec.facilityNumber],
        )
      : await this.x.run(
          `INSERT INTO certificates (serial, status, profile, facility_number, subject, spki_sha256, not_before, not_after, reserved_at, renewed_from)
           VALUES (?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`,
          params,
        );
    if (r.changes === 1) return 'reserved';
    return (await this.get(rec.serial)) ? 'serial-exists' : 'facility-not-active';
  }

  /** Stores the signed certificate for a reserved serial. */
  async markIssued(serial: string, der: Buffer, fingerprintSha256: string, issuedAt: string): Promise<boolean> {
    const r = await this.x.run(
      "UPDATE certificates SET status = 'issued', der = ?, fingerprint_sha256 = ?, issued_at = ? WHERE serial = ? AND status = 'reserved'",
      [der, fingerprintSha256, issuedAt, serial],
    );
    return r.changes === 1;
  }

  async get(serial: string): Promise<CertificateRecord | undefined> {
    const r = await this.x.get<Row>('SELECT * FROM certificates WHERE serial = ?', [serial]);
    return r && toRecord(r);
  }

  async list(filter: CertificateFilter = {}): Promise<CertificateRecord[]> {
    const { where, params } = filterClause(filter);
    const sql = `SELECT * FROM certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY reserved_at, serial`;
    return (await this.x.all<Row>(sql, params)).map(toRecord);
  }

  /**
   * The same list in pages of `limit`, in the same order (reserved_at, serial),
   * each after the last row of the one before (keyset: the index on
   * (reserved_at, serial) answers every page, however deep), without the DER.
   * For listings of a national-size store, which must not hold a million
   * certificates in memory at once.
   */
  async *listPages(filter: CertificateFilter = {}, limit = 5000): AsyncGenerator<CertificateRecord[]> {
    const { where, params } = filterClause(filter);
    let after: { reservedAt: string; serial: string } | undefined;
    for (;;) {
      const page = after ? [...where, '(reserved_at, serial) > (?, ?)'] : where;
      const pageParams = after ? [...params, after.reservedAt, after.serial] : params;
      const rows = await this.x.all<Row>(
        `SELECT ${LIST_COLUMNS} FROM certificates ${page.length ? `WHERE ${page.join(' AND ')}` : ''} ORDER BY reserved_at, serial LIMIT ${Math.max(1, Math.floor(limit))}`,
        pageParams,
      );
      if (rows.length === 0) return;
      yield rows.map((r) => toRecord({ ...r, der: null }));
      const last = rows[rows.length - 1]!;
      after = { reservedAt: last.reserved_at, serial: last.serial };
      if (rows.length < limit) return;
    }
  }

  /** The newest facility certificate (issued or revoked) for this public key and facility, if one exists. */
  async findBySpki(spkiSha256: string, facilityNumber: string): Promise<CertificateRecord | undefined> {
    const r = await this.x.get<Row>(
      "SELECT * FROM certificates WHERE spki_sha256 = ? AND facility_number = ? AND profile = 'facility' AND status IN ('issued', 'revoked') ORDER BY issued_at DESC",
      [spkiSha256, facilityNumber],
    );
    return r && toRecord(r);
  }

  /**
   * Marks an issued certificate revoked, with the next change sequence number
   * (gateways follow it); returns false if it is not in the 'issued' state.
   */
  async revoke(serial: string, revokedAt: string, reason: number): Promise<boolean> {
    return withChangeSeq(this.x, async (tx, seq) => {
      const r = await tx.run(
        "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?, change_seq = ? WHERE serial = ? AND status = 'issued'",
        [revokedAt, reason, seq, serial],
      );
      return r.changes === 1;
    });
  }

  // ---- renewal lineage ----

  /**
   * Claims an issued, never-renewed certificate for one renewal (compare-and-set:
   * of many concurrent renewals exactly one wins). Returns false if it is
   * revoked, not issued, or already renewed (or being renewed).
   */
  async claimRenewal(serial: string, at: string): Promise<boolean> {
    const r = await this.x.run(
      "UPDATE certificates SET superseded_by = ?, superseded_at = ? WHERE serial = ? AND status = 'issued' AND superseded_by IS NULL",
      [RENEWAL_PENDING, at, serial],
    );
    return r.changes === 1;
  }

  /** The renewal was issued: the old certificate is superseded by `by` and revoked at `dueAt`. */
  async completeRenewal(serial: string, by: string, dueAt: string): Promise<boolean> {
    // A followed change: gateways learn the due time from the status feed and refuse the certificate once it has passed.
    return withChangeSeq(this.x, async (tx, seq) => {
      const r = await tx.run('UPDATE certificates SET superseded_by = ?, revoke_due_at = ?, change_seq = ? WHERE serial = ? AND superseded_by = ?', [by, dueAt, seq, serial, RENEWAL_PENDING]);
      return r.changes === 1;
    });
  }

  /** The certificate signed as this one's renewal (issued, or revoked since), if any. */
  async successorOf(serial: string): Promise<CertificateRecord | undefined> {
    const r = await this.x.get<Row>("SELECT * FROM certificates WHERE renewed_from = ? AND status IN ('issued', 'revoked') ORDER BY issued_at DESC LIMIT 1", [serial]);
    return r && toRecord(r);
  }

  /** The renewal failed before anything was issued: the certificate may renew again. */
  async releaseRenewal(serial: string): Promise<boolean> {
    const r = await this.x.run('UPDATE certificates SET superseded_by = NULL, superseded_at = NULL WHERE serial = ? AND superseded_by = ?', [serial, RENEWAL_PENDING]);
    return r.changes === 1;
  }

  /**
   * Renewals of this facility's certificates claimed at or after `since`
   * (pending ones included), and the oldest of them. Inside a PostgreSQL
   * transaction the facility's row stays locked until commit, so concurrent
   * renewals of one facility count one after another.
   */
  async renewalsSince(facilityNumber: string, since: string): Promise<{ count: number; oldest?: string }> {
    if (this.x.dialect === 'postgres' && this.x.inTransaction) await this.x.get('SELECT number FROM facilities WHERE number = ? FOR UPDATE', [facilityNumber]);
    const r = await this.x.get<{ n: number | string; oldest: string | null }>('SELECT COUNT(*) AS n, MIN(superseded_at) AS oldest FROM certificates WHERE facility_number = ? AND superseded_at >= ?', [facilityNumber, since]);
    return { count: Number(r?.n ?? 0), ...(r?.oldest ? { oldest: r.oldest } : {}) };
  }

  /** Superseded certificates still issued whose revocation is due at `at`. */
  async dueRevocations(at: string): Promise<{ serial: string; supersededBy: string; revokeDueAt: string }[]> {
    const rows = await this.x.all<{ serial: string; superseded_by: string; revoke_due_at: string }>(
      "SELECT serial, superseded_by, revoke_due_at FROM certificates WHERE status = 'issued' AND revoke_due_at IS NOT NULL AND revoke_due_at <= ? ORDER BY revoke_due_at, serial",
      [at],
    );
    return rows.map((r) => ({ serial: r.serial, supersededBy: r.superseded_by, revokeDueAt: r.revoke_due_at }));
  }

  /** Every revoked serial still within validity at `at` (expired ones may leave the CRL, RFC 5280 §3.3). */
  async revokedSerials(at: string): Promise<RevokedSerial[]> {
    const rows = await this.x.all<{ serial: string; revoked_at: string; revocation_reason: number }>(
      "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE status = 'revoked' AND not_after > ?",
      [at],
    );
    return rows.map((r) => ({ serial: r.serial, revokedAt: r.revoked_at, reason: r.revocation_reason }));
  }

  async countByStatus(): Promise<Record<CertificateStatus, number>> {
    const rows = await this.x.all<{ status: CertificateStatus; n: number | string }>('SELECT status, COUNT(*) AS n FROM certificates GROUP BY status');
    const out: Record<CertificateStatus, number> = { reserved: 0, issued: 0, revoked: 0 };
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }
}
