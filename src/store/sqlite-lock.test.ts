/**
 * The SQLite store waits for a lock another connection holds between turns
 * of the event loop, never on the thread for more than a few milliseconds.
 * Regression: it waited on the thread (busy_timeout 10 s), so a gateway whose
 * audit writer met the lock of `sekisho serve`, a `cert bulk` run or the CLI
 * answered no client until the lock was released; and a lock held by another
 * connection of the same process could never be released meanwhile (its
 * commit waits for the same thread), so both waited the full 10 s.
 *
 * The other connection is a raw better-sqlite3 connection to the same file,
 * released from a timer of this thread: with a wait on the thread that timer
 * could not fire.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteDatabase } from './sqlite.js';
import { tempDir } from '../testing/stores.js';

describe('SQLite: a lock held by another connection is waited for off the thread', () => {
  let file: string;
  let db: SqliteDatabase;
  let other: BetterSqlite3.Database;

  before(async () => {
    file = join(tempDir('sekisho-sqlite-lock-'), 'store.db');
    db = new SqliteDatabase(file, { lockLimitMs: 600 });
    await db.run('CREATE TABLE t (x INTEGER)');
    other = new BetterSqlite3(file);
  });

  after(async () => {
    other.close();
    await db.close();
  });

  const count = async () => (await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))!.n;

  /** Takes the write lock on the other connection and releases it after `ms` from a timer of this thread; counts this thread's timer ticks meanwhile. */
  function holdLock(ms: number): { released: Promise<void>; ticks: () => number } {
    other.exec('BEGIN IMMEDIATE');
    other.prepare('INSERT INTO t (x) VALUES (0)').run();
    let ticks = 0;
    const tick = setInterval(() => ticks++, 5);
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        clearInterval(tick);
        other.exec('COMMIT');
        resolve();
      }, ms),
    );
    return { released, ticks: () => ticks };
  }

  test('a transaction waits for the lock while the event loop runs, and commits once it is free', async () => {
    const before = await count();
    const held = holdLock(200);
    const started = performance.now();
    await db.transaction(async (tx) => tx.run('INSERT INTO t (x) VALUES (1)'));
    const waited = performance.now() - started;
    assert.ok(waited >= 150, `the transaction committed after ${Math.round(waited)} ms, while the lock was held`);
    assert.ok(held.ticks() >= 20, `only ${held.ticks()} timer ticks of 5 ms ran in ${Math.round(waited)} ms: the thread was blocked`);
    await held.released;
    assert.equal(await count(), before + 2);
  });

  test('a write outside a transaction waits the same way', async () => {
    const before = await count();
    const held = holdLock(200);
    await db.run('INSERT INTO t (x) VALUES (2)');
    assert.ok(held.ticks() >= 20, `only ${held.ticks()} timer ticks of 5 ms ran in 200 ms: the thread was blocked`);
    await held.released;
    assert.equal(await count(), before + 2);
  });

  test("the connection's reads go on while its write waits for the lock", async () => {
    const before = await count();
    const held = holdLock(300);
    let committed = false;
    const write = db.transaction(async (tx) => tx.run('INSERT INTO t (x) VALUES (3)')).then(() => (committed = true));
    await new Promise((r) => setTimeout(r, 20));
    // WAL: a read needs no lock the other connection holds; it is not queued behind the waiting write.
    assert.equal(await count(), before);
    assert.equal(committed, false, 'the write committed while the lock was held');
    await write;
    await held.released;
    assert.equal(await count(), before + 2);
  });

  test('a lock held past the limit: STORE_BUSY, the transaction never ran, nothing written; the thread ran meanwhile', async () => {
    const before = await count();
    const held = holdLock(1000);
    let ran = false;
    const started = performance.now();
    await assert.rejects(
      db.transaction(async (tx) => {
        ran = true;
        return tx.run('INSERT INTO t (x) VALUES (4)');
      }),
      (e: unknown) => (e as { code?: string }).code === 'STORE_BUSY' && /for over 0\.6 s/.test((e as Error).message),
    );
    const waited = performance.now() - started;
    assert.ok(waited >= 550 && waited < 950, `STORE_BUSY after ${Math.round(waited)} ms (limit 600 ms)`);
    assert.equal(ran, false, 'the transaction function ran without the lock');
    assert.ok(held.ticks() >= 100, `only ${held.ticks()} timer ticks of 5 ms ran in 1 s: the thread was blocked`);
    await held.released;
    assert.equal(await count(), before + 1, 'only the other connection wrote');
    // The connection is fine afterwards.
    await db.transaction(async (tx) => tx.run('INSERT INTO t (x) VALUES (5)'));
    assert.equal(await count(), before + 2);
  });

  test('thirty writes waiting for the lock: they commit in the order they were asked for, and the thread stays free (only the oldest one tries)', async () => {
    const before = await count();
    const held = holdLock(300);
    const order: number[] = [];
    // Transactions and plain writes mixed, as a CA's requests and a gateway's audit batches come.
    const writes = Array.from({ length: 30 }, (_, i) =>
      (i % 3 === 0 ? db.run('INSERT INTO t (x) VALUES (?)', [100 + i]) : db.transaction(async (tx) => tx.run('INSERT INTO t (x) VALUES (?)', [100 + i]))).then(() => order.push(i)),
    );
    await Promise.all(writes);
    // Each writer trying on its own, every try spending the busy wait on the thread, held it for 30 of them back to back.
    assert.ok(held.ticks() >= 20, `only ${held.ticks()} timer ticks of 5 ms ran in 300 ms: the thread was blocked`);
    assert.deepEqual(order, Array.from({ length: 30 }, (_, i) => i), 'first asked, first written');
    await held.released;
    assert.equal(await count(), before + 31);
    const xs = (await db.all<{ x: number }>('SELECT x FROM t WHERE x >= 100 ORDER BY rowid')).map((r) => r.x);
    assert.deepEqual(xs, Array.from({ length: 30 }, (_, i) => 100 + i));
  });

  test('closing while a write waits for the lock: the write is done first, then the connection closes', async () => {
    const other2 = new SqliteDatabase(file, { lockLimitMs: 600 });
    const held = holdLock(200);
    const write = other2.run('INSERT INTO t (x) VALUES (6)');
    await new Promise((r) => setTimeout(r, 20));
    const closed = other2.close();
    await write;
    await closed;
    await held.released;
    assert.equal((await db.get<{ n: number }>('SELECT count(*) AS n FROM t WHERE x = 6'))!.n, 1);
  });
});

describe('SQLite: the lock limit a store gets when its opener sets none', () => {
  test('a write outlasted by another connection\'s lock ends STORE_BUSY after 10 s, not before, naming the limit; it wrote nothing', async () => {
    const file = join(tempDir('sekisho-sqlite-default-limit-'), 'store.db');
    const db = new SqliteDatabase(file);
    const other = new BetterSqlite3(file);
    try {
      await db.run('CREATE TABLE t (x INTEGER)');
      other.exec('BEGIN IMMEDIATE');
      other.prepare('INSERT INTO t (x) VALUES (0)').run();
      const started = performance.now();
      // Held until the write gives up, however long that takes: only the lower bound is the limit's.
      await assert.rejects(db.run('INSERT INTO t (x) VALUES (1)'), (e: unknown) => (e as { code?: string }).code === 'STORE_BUSY' && /for over 10 s/.test((e as Error).message));
      const waited = performance.now() - started;
      assert.ok(waited >= 9_990, `STORE_BUSY after ${Math.round(waited)} ms, before the 10 s default`);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
    }
    assert.equal((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))!.n, 0, 'nothing was written');
    await db.close();
  });
});
