import type { SqlExecutor } from './database.js';

/**
 * The database server's clock, in milliseconds since 1970: PostgreSQL's
 * clock_timestamp() (the time of the call, not of the transaction's start
 * like now()). SQLite runs in this process, so its clock is the host's and
 * says nothing: undefined.
 */
export async function databaseClockMs(x: SqlExecutor): Promise<number | undefined> {
  if (x.dialect !== 'postgres') return undefined;
  const r = await x.get<{ ms: number | string }>('SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::float8 AS ms');
  return r ? Number(r.ms) : undefined;
}
