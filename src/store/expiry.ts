import type { SqlExecutor } from './database.js';

/** A facility's own certificate that is live and ends inside a window, with what the store knows of its renewal. */
export interface ExpiringRow {
  serial: string;
  facilityNumber: string;
  facilityName: string;
  facilityStatus: 'active' | 'suspended';
  address?: string;
  contact?: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  /** A newer live facility certificate of the same facility (ends later), if any. */
  newerSerial?: string;
  /** This certificate was claimed by a renewal (EST re-enrolment), pending or done. */
  supersededBy?: string;
  /** An open (active or claimed, unexpired) notice or EST code for the facility's own certificate, if any. */
  openNotice?: string;
}

interface Row {
  serial: string;
  facility_number: string;
  name: string;
  status: 'active' | 'suspended';
  address: string | null;
  contact: string | null;
  subject: string;
  not_before: string;
  not_after: string;
  superseded_by: string | null;
  newer: string | null;
  open_notice: string | null;
}

/**
 * Read-only: the facility certificates that are issued, already valid and end
 * in (at, until], soonest first, served by the index (status, not_after) of
 * migration 16; each with the renewal already under way (a newer live
 * certificate, a renewal claim, an open notice), looked up per row by the
 * facility indexes.
 */
export class ExpiryReader {
  constructor(private readonly x: SqlExecutor) {}

  async expiring(at: string, until: string, facilities?: readonly string[]): Promise<ExpiringRow[]> {
    const params: unknown[] = [at, at, at, until, at];
    let only = '';
    if (facilities) {
      if (facilities.length === 0) return [];
      only = ` AND c.facility_number IN (${facilities.map(() => '?').join(', ')})`;
      params.push(...facilities);
    }
    const rows = await this.x.all<Row>(
      `SELECT c.serial, c.facility_number, f.name, f.status, f.address, f.contact, c.subject, c.not_before, c.not_after, c.superseded_by,
         (SELECT MIN(n.serial) FROM certificates n WHERE n.facility_number = c.facility_number AND n.profile = 'facility' AND n.status = 'issued'
            AND n.serial <> c.serial AND n.not_after > c.not_after AND n.not_after > ?) AS newer,
         (SELECT MIN(o.id) FROM notices o WHERE o.facility_number = c.facility_number AND o.status IN ('active', 'claimed') AND o.expires_at > ?
            AND (o.profile IS NULL OR o.profile = 'facility')) AS open_notice
       FROM certificates c JOIN facilities f ON f.number = c.facility_number
       WHERE c.status = 'issued' AND c.profile = 'facility' AND c.not_after > ? AND c.not_after <= ? AND c.not_before <= ?${only}
       ORDER BY c.not_after, c.serial`,
      params,
    );
    return rows.map((r) => ({
      serial: r.serial,
      facilityNumber: r.facility_number,
      facilityName: r.name,
      facilityStatus: r.status,
      ...(r.address ? { address: r.address } : {}),
      ...(r.contact ? { contact: r.contact } : {}),
      subject: r.subject,
      notBefore: r.not_before,
      notAfter: r.not_after,
      ...(r.newer ? { newerSerial: r.newer } : {}),
      ...(r.superseded_by ? { supersededBy: r.superseded_by } : {}),
      ...(r.open_notice ? { openNotice: r.open_notice } : {}),
    }));
  }
}
