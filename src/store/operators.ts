import type { SqlExecutor } from './database.js';

export type OperatorRole = 'admin' | 'clerk' | 'auditor';
export const OPERATOR_ROLES: readonly OperatorRole[] = ['admin', 'clerk', 'auditor'];
export type OperatorStatus = 'active' | 'revoked';

/** A person of the operator's office who signs in to the console with one client certificate. */
export interface OperatorRecord {
  name: string;
  role: OperatorRole;
  status: OperatorStatus;
  /** Serial (hex) of the operator's certificate: the console admits only this one. */
  certificateSerial: string;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  name: string;
  role: OperatorRole;
  status: OperatorStatus;
  certificate_serial: string;
  created_at: string;
  updated_at: string;
}

const toOperator = (r: Row): OperatorRecord => ({ name: r.name, role: r.role, status: r.status, certificateSerial: r.certificate_serial, createdAt: r.created_at, updatedAt: r.updated_at });

/** The console's operators (migration 14). */
export class OperatorRepository {
  constructor(private readonly x: SqlExecutor) {}

  /** Inserts; false when the name is taken. */
  async add(o: OperatorRecord): Promise<boolean> {
    const r = await this.x.run(
      'INSERT INTO operators (name, role, status, certificate_serial, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
      [o.name, o.role, o.status, o.certificateSerial, o.createdAt, o.updatedAt],
    );
    return r.changes === 1;
  }

  async get(name: string): Promise<OperatorRecord | undefined> {
    const r = await this.x.get<Row>('SELECT * FROM operators WHERE name = ?', [name]);
    return r && toOperator(r);
  }

  async bySerial(serial: string): Promise<OperatorRecord | undefined> {
    const r = await this.x.get<Row>('SELECT * FROM operators WHERE certificate_serial = ?', [serial]);
    return r && toOperator(r);
  }

  async list(): Promise<OperatorRecord[]> {
    return (await this.x.all<Row>('SELECT * FROM operators ORDER BY name')).map(toOperator);
  }

  /** Active → revoked, once; false when it was not active. */
  async revoke(name: string, at: string): Promise<boolean> {
    const r = await this.x.run("UPDATE operators SET status = 'revoked', updated_at = ? WHERE name = ? AND status = 'active'", [at, name]);
    return r.changes === 1;
  }
}
