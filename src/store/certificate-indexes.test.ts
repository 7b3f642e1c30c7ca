import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, repositories, type Database, type SqlExecutor } from './index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { needPeer } from '../testing/peers.js';

/**
 * At a million certificates (bench/national.ts), a query the status index
 * alone answers reads every issued or revoked row. These are the queries a
 * gateway runs every second, or the CA before every revocation, listing and
 * renewal: each must be answered by an index that holds its whole condition.
 * The statements are the repositories' own (recorded as they run), and the
 * plan is asked of the database, so a changed query or a dropped index shows.
 * No timing: only which index the planner takes.
 */

const at = '2026-01-01T00:00:00.000Z';

/** An executor that records every statement it runs. */
function recording(db: Database, seen: { sql: string; params: readonly unknown[] }[]): SqlExecutor {
  return {
    dialect: db.dialect,
    inTransaction: false,
    all: (sql, params = []) => (seen.push({ sql, params }), db.all(sql, params)),
    get: (sql, params = []) => (seen.push({ sql, params }), db.get(sql, params)),
    run: (sql, params = []) => (seen.push({ sql, params }), db.run(sql, params)),
  };
}

/** The plan of one statement, as text. PostgreSQL is told not to scan sequentially when any index serves (its plans on a tiny table would otherwise say nothing). */
async function plan(db: Database, sql: string, params: readonly unknown[]): Promise<string> {
  if (db.dialect === 'sqlite') return (await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join(' | ');
  return db.transaction(async (tx) => {
    await tx.run('SET LOCAL enable_seqscan = off');
    return (await tx.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).map((r) => r['QUERY PLAN']).join(' | ');
  });
}

/** Runs `fn` against the repositories over a recording executor; returns the SELECTs on certificates it ran. */
async function statementsOf(db: Database, fn: (r: ReturnType<typeof repositories>) => Promise<unknown>): Promise<{ sql: string; params: readonly unknown[] }[]> {
  const seen: { sql: string; params: readonly unknown[] }[] = [];
  await fn(repositories(recording(db, seen)));
  const selects = seen.filter((s) => /^\s*SELECT/i.test(s.sql) && /FROM certificates/.test(s.sql));
  assert.ok(selects.length > 0, 'the operation reads certificates');
  return selects;
}

const indexOf = (p: string, dialect: string) => (dialect === 'sqlite' ? /INDEX (\w+)/.exec(p)?.[1] : /(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)/.exec(p)?.[1]);

for (const target of STORE_TARGETS) {
  describe(`certificate queries use a fitting index on ${target.name}`, () => {
    async function open(t: import('node:test').TestContext): Promise<Database | undefined> {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return undefined;
      const url = await target.fresh();
      const db = await openStore({ home: tempDir(), ...(url ? { url } : {}) });
      const r = repositories(db);
      await r.facilities.add({ number: '0110113719', name: 'はこだてクリニック', status: 'active', createdAt: at, updatedAt: at });
      for (const serial of ['0a01', '0a02', '0a03']) {
        await r.certificates.reserve({ serial, profile: 'facility', facilityNumber: '0110113719', subject: 'CN=0110113719', spkiSha256: serial, notBefore: at, notAfter: '2028-01-01T00:00:00.000Z', reservedAt: at });
        await r.certificates.markIssued(serial, Buffer.from('00', 'hex'), serial, at);
      }
      await r.certificates.revoke('0a01', at, 1);
      return db;
    }

    /** Asserts each statement's plan uses one of `indexes` and never reads the whole table. */
    async function expectIndex(db: Database, statements: { sql: string; params: readonly unknown[] }[], indexes: string[], what: string): Promise<void> {
      for (const s of statements) {
        const p = await plan(db, s.sql, s.params);
        assert.doesNotMatch(p, /SCAN certificates(?! USING)|Seq Scan on certificates/, `${what}: no full scan (${p})`);
        const used = indexOf(p, db.dialect);
        assert.ok(used && indexes.includes(used), `${what}: ${s.sql.replace(/\s+/g, ' ').slice(0, 120)} uses ${used ?? 'no index'}, expected ${indexes.join(' or ')} (${p})`);
      }
    }

    test("a gateway's poll of changes after N reads only the changed rows (status and change sequence), not every revoked or issued one", async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const statements = await statementsOf(db, (r) => r.feed.changesAfter(0));
        assert.equal(statements.length, 2, 'revoked and due');
        await expectIndex(db, statements, db.dialect === 'sqlite' ? ['certificates_status_change_seq'] : ['certificates_status_change_seq', 'certificates_change_seq'], 'feed follow');
      } finally {
        await db.close();
      }
    });

    test("a gateway's start-up snapshot reads revoked serials from an index that holds them, and due ones by their due time", async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const [revoked, due] = await statementsOf(db, (r) => r.feed.snapshot());
        // On PostgreSQL any index led by status holds them (on a three-row table the planner picks among them freely).
        await expectIndex(db, [revoked!], db.dialect === 'sqlite' ? ['certificates_status_change_seq'] : ['certificates_status_change_seq', 'certificates_status_revoke_due_at', 'certificates_status_reserved_at', 'certificates_status_not_after'], 'snapshot revoked');
        if (db.dialect === 'sqlite') assert.match(await plan(db, revoked!.sql, revoked!.params), /COVERING INDEX/, 'the serials come from the index alone');
        // PostgreSQL's choice between indexes on a three-row table says little (its statistics decide at scale): no full scan is what is asked there.
        await expectIndex(db, [due!], db.dialect === 'sqlite' ? ['certificates_status_revoke_due_at'] : ['certificates_status_revoke_due_at', 'certificates_revoke_due_at', 'certificates_status_change_seq', 'certificates_status_reserved_at', 'certificates_status_not_after'], 'snapshot due');
      } finally {
        await db.close();
      }
    });

    test('the superseded-due check before every revocation and listing reads only issued rows by due time', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const statements = await statementsOf(db, (r) => r.certificates.dueRevocations(at));
        await expectIndex(db, statements, db.dialect === 'sqlite' ? ['certificates_status_revoke_due_at'] : ['certificates_status_revoke_due_at', 'certificates_revoke_due_at', 'certificates_status_not_after'], 'due revocations');
      } finally {
        await db.close();
      }
    });

    test("a renewal's successor lookup uses the renewed_from index (it was a full scan on PostgreSQL)", async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        await expectIndex(db, await statementsOf(db, (r) => r.certificates.successorOf('0a02')), ['certificates_renewed_from'], 'successor');
      } finally {
        await db.close();
      }
    });

    test('listing every certificate goes page by page in index order, without the DER and without sorting the table', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const pages: string[][] = [];
        const statements = await statementsOf(db, async (r) => {
          for await (const page of r.certificates.listPages({}, 2)) pages.push(page.map((c) => c.serial));
        });
        assert.deepEqual(pages, [['0a01', '0a02'], ['0a03']], 'every certificate once, in order, in pages');
        for (const s of statements) assert.doesNotMatch(s.sql, /\bder\b|SELECT \*/, 'no DER in a listing page');
        await expectIndex(db, statements, ['certificates_reserved_at'], 'list pages');
        if (db.dialect === 'sqlite') for (const s of statements) assert.doesNotMatch(await plan(db, s.sql, s.params), /TEMP B-TREE/, 'no sort of the whole table');
        const filtered: string[] = [];
        const byStatus = await statementsOf(db, async (r) => {
          for await (const page of r.certificates.listPages({ status: 'issued' }, 1)) filtered.push(...page.map((c) => c.serial));
        });
        assert.deepEqual(filtered, ['0a02', '0a03'], 'a filtered listing pages the same way');
        // Each page of a status listing is a range of one index: no sort of every revoked row per page (that made the pages quadratic).
        await expectIndex(db, byStatus, db.dialect === 'sqlite' ? ['certificates_status_reserved_at'] : ['certificates_status_reserved_at', 'certificates_reserved_at', 'certificates_status_change_seq', 'certificates_status_revoke_due_at', 'certificates_status_not_after'], 'list pages by status');
        if (db.dialect === 'sqlite') for (const s of byStatus) assert.doesNotMatch(await plan(db, s.sql, s.params), /TEMP B-TREE/, 'no sort per page');
      } finally {
        await db.close();
      }
    });
  });
}
