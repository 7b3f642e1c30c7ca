import BetterSqlite3 from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { badRequest, internal, notFound, unavailable } from '../errors/index.js';
import { Mutex, type Database, type SqlExecutor } from './database.js';
import { ensurePrivateFile } from '../files/index.js';

type Statement = BetterSqlite3.Statement<unknown[]>;

/**
 * FULL (the default) or EXTRA. SEKISHO_SQLITE_SYNC=NORMAL exists for
 * benchmarks only: it survives a process crash but not a power loss, which
 * could forget a serial already handed out.
 */
function synchronousMode(): 'FULL' | 'EXTRA' | 'NORMAL' {
  const v = (process.env.SEKISHO_SQLITE_SYNC ?? 'FULL').toUpperCase();
  if (v !== 'FULL' && v !== 'EXTRA' && v !== 'NORMAL') throw badRequest('CONFIG_INVALID', `SEKISHO_SQLITE_SYNC must be FULL, EXTRA or NORMAL, not "${v}"`);
  return v;
}

/** SQLite through better-sqlite3 (synchronous underneath, so statements are cheap). */
export class SqliteDatabase implements Database {
  readonly dialect = 'sqlite' as const;
  readonly inTransaction = false;
  readonly description: string;
  readonly #db: BetterSqlite3.Database;
  readonly #mutex = new Mutex();
  readonly #statements = new Map<string, Statement>();
  readonly #direct: SqlExecutor;
  readonly #tx: SqlExecutor;

  constructor(file: string, options: { create?: boolean } = {}) {
    this.description = `SQLite ${file}`;
    // The database and its -wal, -shm and -journal files are the operator's alone, whatever the umask:
    // SQLite gives the files it creates the database file's mode, so the database is made 0600 first
    // (and a home from an older version is narrowed).
    try {
      ensurePrivateFile(file, options.create !== false);
      for (const side of ['-wal', '-shm', '-journal']) ensurePrivateFile(`${file}${side}`, false);
    } catch {
      /* not ours to change (another owner, a read-only place): opening says what is wrong */
    }
    try {
      this.#db = new BetterSqlite3(file, { fileMustExist: options.create === false });
    } catch (e) {
      if (options.create === false && !existsSync(file)) {
        throw notFound('STORE_MISSING', `the database ${file} does not exist; check --home / --db (a CA's SQLite store is made by "sekisho init")`);
      }
      throw internal('STORE_OPEN_FAILED', `cannot open the SQLite database ${file}: ${(e as Error).message}`, { cause: e });
    }
    this.#db.pragma('journal_mode = WAL');
    // FULL: a commit is on disk before issuance goes on (a CA must not forget a serial).
    this.#db.pragma(`synchronous = ${synchronousMode()}`);
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 10000');
    const prepare = (sql: string): Statement => {
      let s = this.#statements.get(sql);
      if (!s) {
        s = this.#db.prepare(sql);
        this.#statements.set(sql, s);
      }
      return s;
    };
    const bind = (params: readonly unknown[]) => params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));
    this.#direct = {
      dialect: 'sqlite',
      inTransaction: false,
      all: async <T>(sql: string, params: readonly unknown[] = []) => prepare(sql).all(...bind(params)) as T[],
      get: async <T>(sql: string, params: readonly unknown[] = []) => prepare(sql).get(...bind(params)) as T | undefined,
      run: async (sql: string, params: readonly unknown[] = []) => ({ changes: prepare(sql).run(...bind(params)).changes }),
    };
    this.#tx = { ...this.#direct, inTransaction: true };
  }

  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.#mutex.lock(() => this.#direct.all<T>(sql, params));
  }
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined> {
    return this.#mutex.lock(() => this.#direct.get<T>(sql, params));
  }
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }> {
    return this.#mutex.lock(() => this.#direct.run(sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#mutex.lock(async () => {
      try {
        this.#db.exec('BEGIN IMMEDIATE');
      } catch (e) {
        if ((e as { code?: string }).code === 'SQLITE_BUSY') {
          throw unavailable('STORE_BUSY', `another process has held ${this.description} for over 10 s (a long bulk run?); retry when it is done`, { cause: e });
        }
        throw e;
      }
      try {
        const result = await fn(this.#tx);
        this.#db.exec('COMMIT');
        return result;
      } catch (e) {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    await this.#mutex.lock(async () => this.#db.close());
  }
}
