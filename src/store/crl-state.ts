import type { SqlExecutor } from './database.js';

/** The CRL number counter (RFC 5280 §5.2.3: monotonically increasing). */
export class CrlStateRepository {
  constructor(private readonly x: SqlExecutor) {}

  /** Takes the next CRL number and records the CRL's dates; call inside a transaction. */
  async next(thisUpdate: string, nextUpdate: string): Promise<bigint> {
    const row = await this.x.get<{ number: number | string }>(`SELECT number FROM crl_state WHERE id = 1${this.x.dialect === 'postgres' ? ' FOR UPDATE' : ''}`);
    const n = BigInt(row?.number ?? 0) + 1n;
    await this.x.run('UPDATE crl_state SET number = ?, this_update = ?, next_update = ? WHERE id = 1', [Number(n), thisUpdate, nextUpdate]);
    return n;
  }
}
