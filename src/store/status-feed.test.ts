import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, repositories, StatusFeedRepository, type Database, type SqlExecutor, type StatusFeedBatch } from './index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { needPeer } from '../testing/peers.js';
import { checkDigit } from '../policy/index.js';

/**
 * The snapshot a gateway reads at start and at every resync comes in pages
 * (keyset, in index order), with the event loop let go between them.
 * Regression: it read everything at once; on SQLite, where a statement runs
 * on the calling thread, a national store (160,000 revoked serials, 230,000
 * facilities) held the gateway's every connection for 0.65–0.85 s at start
 * and at each 10-minute resync. Paged, it must read exactly what one read
 * does (ties in the key included), and a change made between pages is in
 * the snapshot or in the changes after its sequence number, never lost (a
 * check of what paging relies on; the one-read snapshot passed it too). On
 * PostgreSQL every query lets the event loop run anyway: the turns counted
 * are a regression check on SQLite only.
 */

const at = '2026-01-01T00:00:00.000Z';
const due = '2026-03-01T00:00:00.000Z';
const FACILITIES = ['011011371', '011011372', '011011373', '011011374', '011011375', '011011376', '011011377'].map((nine) => nine + checkDigit(nine));

const sorted = (b: StatusFeedBatch) => ({
  seq: b.seq,
  revoked: [...b.revoked].sort(),
  due: [...b.due].sort((x, y) => x.serial.localeCompare(y.serial)),
  facilities: [...b.facilities].sort((x, y) => x.number.localeCompare(y.number)),
});

/** An executor that calls `between` after the `n`th statement it runs (once). */
function interrupting(db: Database, n: number, between: () => Promise<void>): SqlExecutor {
  let count = 0;
  const after = async <T>(r: Promise<T>): Promise<T> => {
    const v = await r;
    if (++count === n) await between();
    return v;
  };
  return { dialect: db.dialect, inTransaction: false, all: (s, p) => after(db.all(s, p)), get: (s, p) => after(db.get(s, p)), run: (s, p) => after(db.run(s, p)) };
}

for (const target of STORE_TARGETS) {
  describe(`the gateway's snapshot is read in pages on ${target.name}`, () => {
    async function open(t: import('node:test').TestContext): Promise<Database | undefined> {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return undefined;
      const url = await target.fresh();
      const db = await openStore({ home: tempDir(), ...(url ? { url } : {}) });
      const r = repositories(db);
      for (const number of FACILITIES) await r.facilities.add({ number, name: `clinic ${number}`, status: 'active', createdAt: at, updatedAt: at });
      for (let i = 1; i <= 12; i++) {
        const serial = `0b${String(i).padStart(2, '0')}`;
        await r.certificates.reserve({ serial, profile: 'facility', facilityNumber: FACILITIES[i % FACILITIES.length]!, subject: `CN=${i}`, spkiSha256: serial, notBefore: at, notAfter: '2028-01-01T00:00:00.000Z', reservedAt: at });
        await r.certificates.markIssued(serial, Buffer.from('00', 'hex'), serial, at);
      }
      await r.facilities.setStatus(FACILITIES[2]!, 'suspended', at);
      for (const serial of ['0b01', '0b02', '0b03', '0b04', '0b05', '0b06', '0b07']) assert.ok(await r.certificates.revoke(serial, at, 1));
      // Ties in both keys: three revoked rows share a change number, three due rows a due time (the serial breaks them).
      await db.run("UPDATE certificates SET change_seq = 3 WHERE serial IN ('0b04', '0b05', '0b06')");
      await db.run("UPDATE certificates SET revoke_due_at = ? WHERE serial IN ('0b08', '0b09', '0b10')", [due]);
      await db.run("UPDATE certificates SET revoke_due_at = ? WHERE serial = '0b11'", ['2026-02-01T00:00:00.000Z']);
      return db;
    }

    test('pages of two rows read exactly what one read does, ties included, and the event loop runs between pages', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const whole = await new StatusFeedRepository(db).snapshot();
        assert.equal(whole.revoked.length, 7);
        assert.equal(whole.due.length, 4);
        assert.equal(whole.facilities.length, FACILITIES.length);
        let turns = 0;
        let reading = true;
        const spin = () => {
          turns++;
          if (reading) setImmediate(spin);
        };
        setImmediate(spin);
        const paged = await new StatusFeedRepository(db, 2).snapshot();
        reading = false;
        assert.deepEqual(sorted(paged), sorted(whole));
        assert.equal(new Set(paged.revoked).size, paged.revoked.length, 'no serial twice');
        // 4 pages of revoked, 3 of due (the last one empty), 4 of facilities: at least 8 turns in between.
        assert.ok(turns >= 8, `the event loop turned ${turns} times while the snapshot was read in 11 pages`);
      } finally {
        await db.close();
      }
    });

    test('a revocation and a suspension committed between two pages are in the snapshot or in the changes after it', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const r = repositories(db);
        // After the head and the first page of revoked serials.
        const reader = new StatusFeedRepository(
          interrupting(db, 2, async () => {
            await r.certificates.revoke('0b12', at, 1);
            await r.facilities.setStatus(FACILITIES[0]!, 'suspended', at);
          }),
          2,
        );
        const snap = await reader.snapshot();
        const next = await new StatusFeedRepository(db).changesAfter(snap.seq);
        assert.ok(snap.revoked.includes('0b12') || next.revoked.includes('0b12'), 'the revocation made mid-read is not lost');
        const status = next.facilities.find((f) => f.number === FACILITIES[0])?.status ?? snap.facilities.find((f) => f.number === FACILITIES[0])?.status;
        assert.equal(status, 'suspended', 'the suspension made mid-read is not lost');
        assert.deepEqual(sorted({ ...snap, revoked: [...new Set([...snap.revoked, ...next.revoked])] }).revoked, ['0b01', '0b02', '0b03', '0b04', '0b05', '0b06', '0b07', '0b12']);
      } finally {
        await db.close();
      }
    });
  });
}
