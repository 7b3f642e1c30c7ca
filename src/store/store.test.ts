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
        assert.deepEqual(rows.map((r) => Number(r.version)).sort(), MIGRATIONS.map((m) => m.version));
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
