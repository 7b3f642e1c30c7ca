import type { SqlExecutor } from './database.js';
import { withChangeSeq } from './change-seq.js';

export type FacilityStatus = 'active' | 'suspended';

export interface Facility {
  number: string;
  name: string;
  address?: string;
  contact?: string;
  status: FacilityStatus;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  number: string;
  name: string;
  address: string | null;
  contact: string | null;
  status: FacilityStatus;
  created_at: string;
  updated_at: string;
}

const toFacility = (r: Row): Facility => ({
  number: r.number,
  name: r.name,
  ...(r.address ? { address: r.address } : {}),
  ...(r.contact ? { contact: r.contact } : {}),
  status: r.status,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** The facility registry (医療機関). */
export class FacilityRepository {
  constructor(private readonly x: SqlExecutor) {}

  /** Inserts, with the next change sequence number (gateways follow it); returns false when the number is already registered. */
  async add(f: Facility): Promise<boolean> {
    return withChangeSeq(this.x, async (tx, seq) => {
      const r = await tx.run(
        'INSERT INTO facilities (number, name, address, contact, status, created_at, updated_at, change_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (number) DO NOTHING',
        [f.number, f.name, f.address ?? null, f.contact ?? null, f.status, f.createdAt, f.updatedAt, seq],
      );
      return r.changes === 1;
    });
  }

  async get(number: string): Promise<Facility | undefined> {
    const r = await this.x.get<Row>('SELECT * FROM facilities WHERE number = ?', [number]);
    return r && toFacility(r);
  }

  async list(): Promise<Facility[]> {
    return (await this.x.all<Row>('SELECT * FROM facilities ORDER BY number')).map(toFacility);
  }

  /** Sets the status, with the next change sequence number (gateways follow it). */
  async setStatus(number: string, status: FacilityStatus, at: string): Promise<boolean> {
    return withChangeSeq(this.x, async (tx, seq) => {
      const r = await tx.run('UPDATE facilities SET status = ?, updated_at = ?, change_seq = ? WHERE number = ?', [status, at, seq, number]);
      return r.changes === 1;
    });
  }
}
