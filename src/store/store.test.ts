import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, repositories, migrate, type Database } from './index.js';
import { MIGRATIONS } from './migrations.js';
import { AuditLog } from '../audit/index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { needPeer } from '../testing/peers.js';

const at = '2026-01-01T00:00:00.000Z';
const facility = { number: '0110113719', name: 'はこだてクリニック', status: 'active' as const, createdAt: at, updatedAt: at };
const cert = (serial: string) => ({ serial, profile: 'facility', facilityNumber: '0110113719', subject: 'CN=0110113719', spkiSha256: 'ab'.repeat(32), notBefore: at, notAfter: '2028-01-01T00:00:00.000Z', reservedAt: at });

for (const target of STORE_TARGETS) {
  describe(`store on ${target.name}`, () => {
    async function open(t: import('node:test').TestContext): Promise<Database | undefined> {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return undefined;
      const url = await target.fresh();
      return openStore({ home: tempDir(), ...(url ? { url } : {}) });
    }

    test('migrations are applied once and can be re-run', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        assert.equal(await migrate(db), 0);
        const rows = await db.all<{ version: number }>('SELECT version FROM schema_migrations');
        assert.deepEqual(rows.map((r) => Number(r.version)).sort((a, b) => a - b), MIGRATIONS.map((m) => m.version)); // numeric order: 9 before 13
      } finally {
        await db.close();
      }
    });

    test('facilities: add once, read back in Japanese, change status', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const f = repositories(db).facilities;
        assert.equal(await f.add(facility), true);
        assert.equal(await f.add(facility), false, 'a second add of the same number is refused');
        assert.equal((await f.get('0110113719'))?.name, 'はこだてクリニック');
        assert.equal(await f.setStatus('0110113719', 'suspended', at), true);
        assert.equal((await f.list())[0]?.status, 'suspended');
      } finally {
        await db.close();
      }
    });

    test('serials: reserved once, issued from reserved only, revoked from issued only', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const r = repositories(db);
        await r.facilities.add(facility);
        const c = r.certificates;
        assert.equal(await c.reserve(cert('01aa')), 'reserved');
        assert.equal(await c.reserve(cert('01aa')), 'serial-exists', 'a serial never repeats');
        await r.facilities.setStatus('0110113719', 'suspended', at);
        assert.equal(await c.reserve(cert('01bb')), 'facility-not-active', 'no serial is reserved for a suspended facility');
        await r.facilities.setStatus('0110113719', 'active', at);
        assert.equal(await c.revoke('01aa', at, 1), false, 'a reserved serial cannot be revoked');
        assert.equal(await c.markIssued('01aa', Buffer.from([1, 2, 3]), 'FP', at), true);
        assert.equal(await c.markIssued('01aa', Buffer.from([9]), 'FP', at), false, 'an issued certificate is not overwritten');
        assert.deepEqual((await c.get('01aa'))?.der, Buffer.from([1, 2, 3]));
        assert.equal(await c.revoke('01aa', at, 1), true);
        assert.equal(await c.revoke('01aa', at, 1), false);
        assert.deepEqual(await c.revokedSerials('2027-01-01T00:00:00.000Z'), [{ serial: '01aa', revokedAt: at, reason: 1 }]);
        assert.deepEqual(await c.revokedSerials('2029-01-01T00:00:00.000Z'), [], 'expired certificates leave the CRL');
        assert.deepEqual(await c.countByStatus(), { reserved: 0, issued: 0, revoked: 1 });
      } finally {
        await db.close();
      }
    });

    test('regression: the database ends the connection between two statements of a transaction (pg_terminate_backend, a failover): the transaction fails, the process lives, the next one works', async (t) => {
      if (target.name !== 'postgres') return;
      const db = await open(t);
      if (!db) return;
      try {
        await repositories(db).facilities.add(facility);
        const killed = db.transaction(async (tx) => {
          await repositories(tx).certificates.reserve(cert('03aa'));
          const me = await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          // Between statements, with no query running on this connection: the server ends it.
          await db.get('SELECT pg_terminate_backend($1)', [me!.pid]);
          await new Promise((r) => setTimeout(r, 300));
          return repositories(tx).certificates.reserve(cert('03bb'));
        });
        await assert.rejects(killed);
        assert.equal(await repositories(db).certificates.get('03aa'), undefined, 'nothing of the ended transaction was kept');
        assert.equal(await db.transaction((tx) => repositories(tx).certificates.reserve(cert('03cc'))), 'reserved', 'the next transaction gets a working connection');
      } finally {
        await db.close();
      }
    });

    test('serials reserved inside a transaction (the issuer\'s group commit): the same answers, the facility\'s status read in the same transaction', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        await repositories(db).facilities.add(facility);
        const inTx = (rec: Parameters<ReturnType<typeof repositories>['certificates']['reserve']>[0]) => db.transaction((tx) => repositories(tx).certificates.reserve(rec));
        assert.equal(await inTx(cert('02aa')), 'reserved');
        assert.equal(await inTx(cert('02aa')), 'serial-exists', 'a serial never repeats');
        // A suspension earlier in the same transaction is seen.
        assert.equal(
          await db.transaction(async (tx) => {
            await repositories(tx).facilities.setStatus(facility.number, 'suspended', at);
            return repositories(tx).certificates.reserve(cert('02bb'));
          }),
          'facility-not-active',
        );
        assert.equal(await inTx(cert('02bb')), 'facility-not-active', 'no serial is reserved for a suspended facility');
        assert.equal(await inTx(cert('02aa')), 'serial-exists', 'an existing serial is named as such, whatever the facility');
        await repositories(db).facilities.setStatus(facility.number, 'active', at);
        assert.equal(await inTx(cert('02bb')), 'reserved');
        assert.equal(await inTx({ ...cert('02cc'), facilityNumber: '0110000000' }), 'facility-not-active', 'an unknown facility is not active');
        const { facilityNumber: _f, ...noFacility } = cert('02dd');
        assert.equal(await inTx(noFacility), 'reserved', 'a certificate of no facility (server, device) needs no facility check');
        assert.deepEqual(await repositories(db).certificates.countByStatus(), { reserved: 3, issued: 0, revoked: 0 });
      } finally {
        await db.close();
      }
    });

    test('status feed: each followed change takes the next store sequence number with it; changes after N are exactly the later ones, whatever their time stamps', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const r = repositories(db);
        assert.deepEqual(await r.feed.snapshot(), { seq: 0, revoked: [], due: [], facilities: [] });
        await r.facilities.add(facility);
        for (const serial of ['01aa', '01bb', '01cc']) {
          await r.certificates.reserve(cert(serial));
          await r.certificates.markIssued(serial, Buffer.from('der'), 'cd'.repeat(32), at);
        }
        // A revocation stamped a minute in the past (a host whose clock is behind) is still the newest change.
        await r.certificates.revoke('01aa', '2025-12-31T23:59:00.000Z', 1);
        assert.deepEqual(await r.feed.changesAfter(1), { seq: 2, revoked: ['01aa'], due: [], facilities: [] });
        await r.facilities.setStatus(facility.number, 'suspended', '2020-01-01T00:00:00.000Z');
        assert.deepEqual(await r.feed.changesAfter(2), { seq: 3, revoked: [], due: [], facilities: [{ number: facility.number, name: facility.name, status: 'suspended' }] });
        assert.deepEqual(await r.feed.changesAfter(3), { seq: 3, revoked: [], due: [], facilities: [] });
        assert.deepEqual(await r.feed.snapshot(), { seq: 3, revoked: ['01aa'], due: [], facilities: [{ number: facility.number, name: facility.name, status: 'suspended' }] });
        // A rolled-back change takes nothing with it.
        await assert.rejects(
          db.transaction(async (tx) => {
            await repositories(tx).certificates.revoke('01bb', at, 1);
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.deepEqual(await r.feed.changesAfter(3), { seq: 3, revoked: [], due: [], facilities: [] });
        // While one change holds its number uncommitted, the next waits for it: numbers commit in order, so a reader never skips one.
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        let holding!: () => void;
        const holds = new Promise<void>((resolve) => (holding = resolve));
        const first = db.transaction(async (tx) => {
          await repositories(tx).certificates.revoke('01bb', at, 1);
          holding();
          await held;
        });
        await holds;
        const second = r.certificates.revoke('01cc', '2030-01-01T00:00:00.000Z', 1);
        if (db.dialect === 'postgres') {
          await new Promise((resolve) => setTimeout(resolve, 200));
          assert.deepEqual(await r.feed.changesAfter(3), { seq: 3, revoked: [], due: [], facilities: [] }, 'an uncommitted number is not visible');
        }
        release();
        await first;
        assert.equal(await second, true);
        assert.deepEqual(await r.feed.changesAfter(3), { seq: 5, revoked: ['01bb', '01cc'], due: [], facilities: [] });
        const seqs = await db.all<{ serial: string; change_seq: number | string }>("SELECT serial, change_seq FROM certificates WHERE serial IN ('01bb', '01cc') ORDER BY serial");
        assert.deepEqual(seqs.map((x) => Number(x.change_seq)), [4, 5]);
      } finally {
        await db.close();
      }
    });

    test('a failed transaction leaves nothing behind', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        await assert.rejects(
          db.transaction(async (tx) => {
            await repositories(tx).facilities.add(facility);
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal(await repositories(db).facilities.get(facility.number), undefined);
      } finally {
        await db.close();
      }
    });

    test('audit chain: concurrent appends stay one chain; edits and deletions are named', async (t) => {
      const db = await open(t);
      if (!db) return;
      try {
        const log = new AuditLog(db);
        await Promise.all(Array.from({ length: 20 }, (_, i) => log.append({ actor: 'test', action: 'facility.add', outcome: 'success', subject: String(i) })));
        assert.deepEqual(await log.verify(), { events: 20, problems: [] });

        await db.run("UPDATE audit_events SET subject = 'forged' WHERE seq = 7");
        let v = await log.verify();
        assert.deepEqual(v.problems.map((p) => [p.seq, p.kind]), [[7, 'altered']]);

        await db.run('DELETE FROM audit_events WHERE seq = 12');
        v = await log.verify();
        assert.ok(v.problems.some((p) => p.seq === 12 && p.kind === 'deleted'), JSON.stringify(v.problems));

        await db.run('DELETE FROM audit_events WHERE seq = 20');
        v = await log.verify();
        assert.ok(v.problems.some((p) => p.kind === 'deleted' && /20/.test(p.message)), 'deleting the last event shows against the head');
      } finally {
        await db.close();
      }
    });
  });
}

test('audit verify does not mistake events appended during the walk for tampering (regression: false "deleted at the end" alarms)', async () => {
  const db = await openStore({ home: tempDir() });
  try {
    const log = new AuditLog(db);
    for (let i = 0; i < 50; i++) await log.append({ actor: 't', action: 'x', outcome: 'success' });
    const writer = (async () => {
      for (let i = 0; i < 200; i++) await log.append({ actor: 't', action: 'y', outcome: 'success' });
    })();
    for (let i = 0; i < 20; i++) assert.deepEqual((await log.verify()).problems, []);
    await writer;
    assert.deepEqual((await log.verify()).problems, []);
  } finally {
    await db.close();
  }
});
