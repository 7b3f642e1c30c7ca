import { internal } from '../errors/index.js';
import type { Database, SqlExecutor } from './database.js';

/**
 * The store's change sequence: every change a gateway follows (a certificate
 * revoked, a facility added, suspended or resumed) takes the next number from
 * the one-row change_counter, in the same transaction as the change.
 *
 * The number is taken with an UPDATE of that row, which holds the row's lock
 * until the transaction ends (PostgreSQL; SQLite has one writer anyway), so
 * changes commit in the order of their numbers: once a reader sees the counter
 * at N, every change numbered N or less is committed and visible. A reader that
 * reads the counter first and then asks for "changes after its cursor, up to N"
 * can therefore never skip one (a plain sequence could: its values commit out
 * of order across concurrent transactions). No wall clock is involved.
 *
 * On PostgreSQL the same transaction also sends a notification on
 * CHANGE_CHANNEL (pg_notify), which PostgreSQL delivers at commit and only
 * if it commits: a gateway that LISTENs (change-listener.ts) wakes and reads
 * from its cursor at once instead of waiting for its next poll. The
 * notification carries no authority: it only wakes a read of the feed, so a
 * forged or lost one changes nothing but when that read happens.
 */
export async function withChangeSeq<T>(x: SqlExecutor, fn: (tx: SqlExecutor, seq: number) => Promise<T>): Promise<T> {
  if (!x.inTransaction) {
    // A change outside a transaction still needs its number and itself to commit together.
    if (!isDatabase(x)) throw internal('STORE_NOT_TRANSACTION', 'a followed change must run in a transaction');
    return x.transaction((tx) => withChangeSeq(tx, fn));
  }
  const row = await x.get<{ seq: number | string }>('UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq');
  if (!row) throw internal('STORE_SCHEMA', 'the change counter row is missing (migration 5)');
  const seq = Number(row.seq);
  if (x.dialect === 'postgres') await x.get('SELECT pg_notify(?, ?)', [CHANGE_CHANNEL, String(seq)]);
  return fn(x, seq);
}

/** The PostgreSQL notification channel a committed followed change is announced on (payload: its sequence number, informative only). */
export const CHANGE_CHANNEL = 'sekisho_changes';

function isDatabase(x: SqlExecutor): x is Database {
  return typeof (x as Partial<Database>).transaction === 'function';
}
