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

/**
 * How long a statement may wait on this thread for a lock another
 * connection holds (SQLite's busy handler): only briefly, because the whole
 * process (a gateway's every connection) waits with it. Long enough for
 * another process's commit (a WAL write and an fsync) to end.
 */
const BUSY_WAIT_ON_THREAD_MS = 2;
/** How long a write keeps trying for a lock held elsewhere, waiting off the thread between tries, before STORE_BUSY. */
const BUSY_LIMIT_MS = 10_000;

/** SQLITE_BUSY from the statement that takes the lock: nothing was done, try again later. */
class LockHeldElsewhere {
  constructor(readonly cause: unknown) {}
}

/** Runs the statement that takes a lock; SQLITE_BUSY (and its extended codes) becomes LockHeldElsewhere. */
async function takingLock<T>(statement: () => T | Promise<T>): Promise<T> {
  try {
    return await statement();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw typeof code === 'string' && code.startsWith('SQLITE_BUSY') ? new LockHeldElsewhere(e) : e;
  }
}

/**
 * SQLite through better-sqlite3 (synchronous underneath, so statements are
 * cheap). A lock another process holds (`sekisho serve`, a `cert bulk` run,
 * the CLI) is waited for between turns of the event loop, not on the
 * thread: a gateway on the same file keeps answering its clients meanwhile.
 */
export class SqliteDatabase implements Database {
  readonly dialect = 'sqlite' as const;
  readonly inTransaction = false;
  readonly description: string;
  readonly #db: BetterSqlite3.Database;
  readonly #mutex = new Mutex();
  /** Writes in arrival order: only the oldest one tries for a lock held elsewhere, the others wait behind it off the thread. */
  readonly #writers = new Mutex();
  readonly #statements = new Map<string, Statement>();
  readonly #direct: SqlExecutor;
  readonly #tx: SqlExecutor;

  /** How long a write keeps trying for a lock another process holds before STORE_BUSY. */
  readonly #lockLimitMs: number;

  constructor(file: string, options: { create?: boolean; /** default BUSY_LIMIT_MS */ lockLimitMs?: number } = {}) {
    this.#lockLimitMs = options.lockLimitMs ?? BUSY_LIMIT_MS;
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
    // WAL: readers never wait for the writer, and a commit needs no lock another connection holds.
    const journal = String(this.#db.pragma('journal_mode = WAL', { simple: true }));
    if (journal.toLowerCase() !== 'wal') {
      this.#db.close();
      throw internal('STORE_OPEN_FAILED', `cannot use write-ahead logging on the SQLite database ${file} (journal mode stays "${journal}"): put the home on a local file system`);
    }
    // FULL: a commit is on disk before issuance goes on (a CA must not forget a serial).
    this.#db.pragma(`synchronous = ${synchronousMode()}`);
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma(`busy_timeout = ${BUSY_WAIT_ON_THREAD_MS}`);
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

  // Outside a transaction a statement takes its own lock (a write, or a read during recovery): SQLITE_BUSY from it changed nothing.
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.#whenFree(() => takingLock(() => this.#direct.all<T>(sql, params)));
  }
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined> {
    return this.#whenFree(() => takingLock(() => this.#direct.get<T>(sql, params)));
  }
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }> {
    return this.#writers.lock(() => this.#whenFree(() => takingLock(() => this.#direct.run(sql, params))));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#writers.lock(() => this.#whenFree(async () => {
      // The write lock is taken here or not at all: only this statement's SQLITE_BUSY is tried again (fn has not run).
      await takingLock(() => this.#db.exec('BEGIN IMMEDIATE'));
      try {
        const result = await fn(this.#tx);
        this.#db.exec('COMMIT');
        return result;
      } catch (e) {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
        throw e;
      }
    }));
  }

  /**
   * Runs `attempt` holding this connection's mutex. While another connection
   * holds the lock it needs, lets go of the mutex (this connection's reads
   * go on), waits a few milliseconds off the thread and tries again, for up
   * to the lock limit (BUSY_LIMIT_MS unless the opener set another).
   */
  async #whenFree<T>(attempt: () => Promise<T>): Promise<T> {
    const deadline = performance.now() + this.#lockLimitMs;
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      try {
        return await this.#mutex.lock(async () => attempt());
      } catch (e) {
        if (!(e instanceof LockHeldElsewhere)) throw e;
        if (performance.now() >= deadline) {
          throw unavailable('STORE_BUSY', `another process has held ${this.description} for over ${this.#lockLimitMs / 1000} s (a long bulk run?); retry when it is done`, { cause: e.cause });
        }
      }
      await new Promise((r) => setTimeout(r, pause));
    }
  }

  /** After the writes already asked for (one waiting for a lock held elsewhere included). */
  async close(): Promise<void> {
    await this.#writers.lock(() => this.#mutex.lock(async () => this.#db.close()));
  }
}
