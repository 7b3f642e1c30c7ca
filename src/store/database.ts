import type { ChangeListener, ChangeListenerOptions } from './change-listener.js';
/**
 * The SQL seam between sekisho and its database. Statements are written once
 * in portable SQL with `?` placeholders; each dialect adapter runs them.
 * Transactions are serialized: in SQLite with BEGIN IMMEDIATE (one writer,
 * no lock upgrade deadlocks), in PostgreSQL on a dedicated pooled client.
 */
export type Dialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  readonly dialect: Dialect;
  /** True for the executor handed to a transaction's function. */
  readonly inTransaction: boolean;
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
}

export interface Database extends SqlExecutor {
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** Where the data lives, without credentials (for messages). */
  readonly description: string;
  /** PostgreSQL: a listener woken by each committed followed change (SQLite has none: its readers poll). */
  listenChanges?(o: ChangeListenerOptions): ChangeListener;
}

/** A promise-chain mutex: one holder at a time, in arrival order. */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();
  async lock<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
