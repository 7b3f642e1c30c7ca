import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, ObservationRepository, type ObservationRow } from './index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';

const row = (o: Partial<ObservationRow> = {}): ObservationRow => ({
  day: '2026-12-07',
  subject: '0110113710',
  serial: 'ab01',
  protocol: 'TLSv1.2',
  suite: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
  hello: '',
  verdictNow: 'accepted',
  verdictComing: 'SUITE_NOT_ALLOWED',
  comingProfile: 'high',
  profileNow: 'recommended',
  facility: '0110113710',
  address: null,
  offeredVersions: '',
  offeredSuites: '',
  groupsOffered: 'x25519',
  certSignature: 'ecdsa-with-SHA256',
  certKey: 'EC prime256v1',
  certRule: '',
  exceptions: '',
  refusal: '',
  connections: 3,
  firstSeen: '2026-12-07T01:00:00.000Z',
  lastSeen: '2026-12-07T02:00:00.000Z',
  ...o,
});

for (const target of STORE_TARGETS) {
  describe(`observations (migration 11) on ${target.name}`, () => {
    test('an upsert adds counts to the stored row and widens first/last seen; other keys are rows of their own; prune drops old days', async (t) => {
      if (!target.available) return t.skip('no PostgreSQL');
      const url = await target.fresh();
      const db = await openStore({ home: tempDir(), ...(url ? { url } : {}) });
      try {
        const repo = new ObservationRepository(db);
        await repo.upsert([row(), row({ day: '2026-12-01', connections: 1 })]);
        await repo.upsert([row({ connections: 2, firstSeen: '2026-12-07T00:30:00.000Z', lastSeen: '2026-12-07T03:00:00.000Z' }), row({ verdictComing: 'accepted', suite: 'TLS_AES_128_GCM_SHA256', protocol: 'TLSv1.3' })]);
        const rows = await repo.list('2026-12-07', '2026-12-07');
        assert.equal(rows.length, 2);
        const cbc = rows.find((r) => r.protocol === 'TLSv1.2')!;
        assert.equal(cbc.connections, 5);
        assert.equal(cbc.firstSeen, '2026-12-07T00:30:00.000Z');
        assert.equal(cbc.lastSeen, '2026-12-07T03:00:00.000Z');
        assert.equal(cbc.facility, '0110113710');
        assert.equal((await repo.lastSeenBefore('2026-12-07')).get('0110113710'), '2026-12-07T02:00:00.000Z');
        // Many rows in one batch (several statements, one transaction).
        await repo.upsert(Array.from({ length: 1000 }, (_, i) => row({ subject: `addr:192.0.2.${i}`, facility: null, serial: '', address: `192.0.2.${i}`, connections: 1 })));
        assert.equal((await repo.list('2026-12-07', '2026-12-07')).length, 1002);
        // Equal keys in one batch are summed (PostgreSQL would refuse to update one row twice in a statement).
        await repo.upsert([row({ connections: 1 }), row({ connections: 1 })]);
        assert.equal((await repo.list('2026-12-07', '2026-12-07')).find((r) => r.protocol === 'TLSv1.2' && r.subject === '0110113710')!.connections, 7);
        assert.equal(await repo.prune('2026-12-07'), 1);
        assert.equal((await repo.list('2026-01-01', '2026-12-06')).length, 0);
      } finally {
        await db.close();
      }
    });
  });
}
