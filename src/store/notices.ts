import type { SqlExecutor } from './database.js';

export type NoticeKind = 'letter' | 'est-code';
/**
 * active → claimed (an issuance is under way) → active again while downloads
 * are left, or used once the last is taken; or revoked by the operator.
 */
export type NoticeStatus = 'active' | 'claimed' | 'used' | 'revoked';

/** An issuance notice (証明書発行通知書) or one-time EST code, as stored: no ID in the clear. */
export interface NoticeRecord {
  id: string;
  kind: NoticeKind;
  facilityNumber: string;
  requestLookup: string;
  referenceSalt: string;
  referenceHash: string;
  status: NoticeStatus;
  /** Wrong reference IDs so far (a download never resets them). */
  failures: number;
  /** Finished downloads; serial is the latest one's certificate. */
  downloads: number;
  /** Downloads the notice allows within its window (1 = single-use). */
  maxDownloads: number;
  createdAt: string;
  expiresAt: string;
  usedAt?: string;
  serial?: string;
  revokedAt?: string;
  createdBy: string;
  /** What the notice yields: absent = the facility's own certificate; 'device' with deviceName = that device's certificate. */
  profile?: 'facility' | 'device';
  deviceName?: string;
}

interface Row {
  id: string;
  kind: NoticeKind;
  facility_number: string;
  request_lookup: string;
  reference_salt: string;
  reference_hash: string;
  status: NoticeStatus;
  failures: number | string;
  downloads: number | string;
  max_downloads: number | string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  serial: string | null;
  revoked_at: string | null;
  created_by: string;
  profile?: 'facility' | 'device' | null;
  device_name?: string | null;
}

const toRecord = (r: Row): NoticeRecord => ({
  id: r.id,
  kind: r.kind,
  facilityNumber: r.facility_number,
  requestLookup: r.request_lookup,
  referenceSalt: r.reference_salt,
  referenceHash: r.reference_hash,
  status: r.status,
  failures: Number(r.failures),
  downloads: Number(r.downloads),
  maxDownloads: Number(r.max_downloads),
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  ...(r.used_at ? { usedAt: r.used_at } : {}),
  ...(r.serial ? { serial: r.serial } : {}),
  ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}),
  createdBy: r.created_by,
  ...(r.profile ? { profile: r.profile } : {}),
  ...(r.device_name ? { deviceName: r.device_name } : {}),
});

/**
 * Notices and one-time EST codes. Every state change is a compare-and-set on
 * the expected state, so two concurrent redemptions cannot both win.
 */
export class NoticeRepository {
  constructor(private readonly x: SqlExecutor) {}

  /** The per-store key of the request-ID lookup hash. */
  async lookupKey(): Promise<Buffer> {
    const r = await this.x.get<{ key_hex: string }>('SELECT key_hex FROM notice_key WHERE id = 1');
    if (!r) throw new Error('notice_key row is missing: the store was not migrated');
    return Buffer.from(r.key_hex, 'hex');
  }

  async add(n: NoticeRecord): Promise<boolean> {
    const r = await this.x.run(
      `INSERT INTO notices (id, kind, facility_number, request_lookup, reference_salt, reference_hash, status, failures, downloads, max_downloads, created_at, expires_at, created_by, profile, device_name)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [n.id, n.kind, n.facilityNumber, n.requestLookup, n.referenceSalt, n.referenceHash, n.status, n.failures, n.downloads, n.maxDownloads, n.createdAt, n.expiresAt, n.createdBy, n.profile ?? null, n.deviceName ?? null],
    );
    return r.changes === 1;
  }

  async get(id: string): Promise<NoticeRecord | undefined> {
    const r = await this.x.get<Row>('SELECT * FROM notices WHERE id = ?', [id]);
    return r && toRecord(r);
  }

  /** By request-ID lookup hash; inside a PostgreSQL transaction the row stays locked until commit. */
  async findByLookup(lookup: string, options: { lock?: boolean } = {}): Promise<NoticeRecord | undefined> {
    const lock = this.x.dialect === 'postgres' && this.x.inTransaction && options.lock !== false ? ' FOR UPDATE' : '';
    const r = await this.x.get<Row>(`SELECT * FROM notices WHERE request_lookup = ?${lock}`, [lookup]);
    return r && toRecord(r);
  }

  async list(filter: { facilityNumber?: string; kind?: NoticeKind } = {}): Promise<NoticeRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.facilityNumber) {
      where.push('facility_number = ?');
      params.push(filter.facilityNumber);
    }
    if (filter.kind) {
      where.push('kind = ?');
      params.push(filter.kind);
    }
    const rows = await this.x.all<Row>(`SELECT * FROM notices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`, params);
    return rows.map(toRecord);
  }

  /** Counts one wrong reference ID; returns the new count (undefined when the notice is not active). */
  async countFailure(id: string): Promise<number | undefined> {
    const r = await this.x.run("UPDATE notices SET failures = failures + 1 WHERE id = ? AND status = 'active'", [id]);
    if (r.changes !== 1) return undefined;
    return (await this.get(id))?.failures;
  }

  async resetFailures(id: string): Promise<boolean> {
    return (await this.x.run('UPDATE notices SET failures = 0 WHERE id = ? AND failures > 0', [id])).changes === 1;
  }

  /**
   * active → claimed, only while unexpired, below the failure limit and with a
   * download left: the count is checked by the same statement that claims, so
   * of two racing downloads of the last use only one gets here.
   */
  async claim(id: string, at: string, maxFailures: number): Promise<boolean> {
    const r = await this.x.run("UPDATE notices SET status = 'claimed' WHERE id = ? AND status = 'active' AND failures < ? AND expires_at > ? AND downloads < max_downloads", [id, maxFailures, at]);
    return r.changes === 1;
  }

  /** claimed → active (the issuance failed; no download was spent). */
  async release(id: string): Promise<boolean> {
    return (await this.x.run("UPDATE notices SET status = 'active' WHERE id = ? AND status = 'claimed'", [id])).changes === 1;
  }

  /**
   * claimed → one more download, with the certificate it produced: active
   * again while downloads are left, else used. Call it in the transaction
   * that supersedes the previous certificate, so both happen or neither.
   */
  async redeem(id: string, serial: string, at: string): Promise<boolean> {
    const r = await this.x.run(
      "UPDATE notices SET downloads = downloads + 1, serial = ?, used_at = ?, status = CASE WHEN downloads + 1 >= max_downloads THEN 'used' ELSE 'active' END WHERE id = ? AND status = 'claimed'",
      [serial, at, id],
    );
    return r.changes === 1;
  }

  /** active (or claimed: an issuance that never finished, e.g. a crash) → revoked. */
  async revoke(id: string, at: string): Promise<boolean> {
    return (await this.x.run("UPDATE notices SET status = 'revoked', revoked_at = ? WHERE id = ? AND status IN ('active', 'claimed')", [at, id])).changes === 1;
  }
}
