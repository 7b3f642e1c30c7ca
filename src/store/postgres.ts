import pg from 'pg';
import { internal, unavailable } from '../errors/index.js';
import type { Database, SqlExecutor } from './database.js';
import { PostgresChangeListener, type ChangeListener, type ChangeListenerOptions } from './change-listener.js';

// BIGINT and NUMERIC come back as strings by default; sekisho's integers fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));

/** `?` → `$1, $2, …` (statements never contain a literal question mark). */
function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

function executor(client: pg.Pool | pg.PoolClient, inTransaction: boolean): SqlExecutor {
  const query = async (sql: string, params: readonly unknown[] = []) => client.query(numbered(sql), params as unknown[]);
  return {
    dialect: 'postgres',
    inTransaction,
    all: async <T>(sql: string, params?: readonly unknown[]) => (await query(sql, params)).rows as T[],
    get: async <T>(sql: string, params?: readonly unknown[]) => (await query(sql, params)).rows[0] as T | undefined,
    run: async (sql: string, params?: readonly unknown[]) => ({ changes: (await query(sql, params)).rowCount ?? 0 }),
  };
}

/** PostgreSQL for operators who run several CA and gateway nodes on one database. */
export class PostgresDatabase implements Database {
  readonly dialect = 'postgres' as const;
  readonly inTransaction = false;
  readonly description: string;
  readonly #pool: pg.Pool;
  readonly #direct: SqlExecutor;
  readonly #url: string;

  constructor(url: string) {
    this.#url = url;
    const u = new URL(url);
    this.description = `PostgreSQL ${u.hostname}:${u.port || 5432}${u.pathname}`;
    this.#pool = new pg.Pool({ connectionString: url, max: 4 });
    this.#pool.on('error', () => undefined); // idle client errors surface on the next query
    this.#direct = executor(this.#pool, false);
  }

  all<T>(sql: string, params?: readonly unknown[]) {
    return this.#wrap(() => this.#direct.all<T>(sql, params));
  }
  get<T>(sql: string, params?: readonly unknown[]) {
    return this.#wrap(() => this.#direct.get<T>(sql, params));
  }
  run(sql: string, params?: readonly unknown[]) {
    return this.#wrap(() => this.#direct.run(sql, params));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.#wrap(() => this.#pool.connect());
    let broken: Error | undefined;
    // A checked-out client has no listener of the pool's: the server ending the connection between two
    // statements (pg_terminate_backend, a failover) would be an unhandled 'error' event, which ends the
    // process. Kept here instead: the next statement fails, and the client is discarded, not reused.
    const onError = (e: Error) => void (broken ??= e);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await fn(executor(client, true));
      const commit = await client.query('COMMIT');
      // PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK, not an error.
      if (commit.command !== 'COMMIT') throw internal('STORE_COMMIT_FAILED', `${this.description} rolled the transaction back at COMMIT; nothing was stored, retry`);
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch((err: Error) => (broken = err));
      throw e;
    } finally {
      client.off('error', onError);
      client.release(broken); // a client that cannot roll back (or was ended) is discarded, not reused
    }
  }

  /** Wakes `onChange` at each committed followed change (LISTEN on a connection of its own, re-established after a drop). */
  listenChanges(o: ChangeListenerOptions): ChangeListener {
    return new PostgresChangeListener(this.#url, o);
  }

  async #wrap<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === '28P01' || code === '3D000') {
        throw unavailable('STORE_UNREACHABLE', `cannot reach ${this.description}: ${(e as Error).message}; check --db and that the server is running`, { cause: e });
      }
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
