import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, AccessEventReader } from './index.js';
import { AuditLog } from '../audit/index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { needPeer } from '../testing/peers.js';

for (const target of STORE_TARGETS) {
  describe(`access events on ${target.name}`, () => {
    test('a time range and facility select gateway events in time order, read in pages, others left out; the index serves it', async (t) => {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
      const url = await target.fresh();
      const db = await openStore({ home: tempDir(), ...(url ? { url } : {}) });
      try {
        const log = new AuditLog(db);
        const at = (m: number) => new Date(Date.UTC(2026, 11, 7, 0, m));
        await db.transaction(async (tx) => {
          for (let m = 0; m < 12; m++) await log.appendIn(tx, { actor: m % 2 ? '0110113717' : '2712345673', action: m === 5 ? 'facility.add' : 'gateway.session', outcome: 'success' }, at(11 - m));
        });
        const reader = new AccessEventReader(db);
        const all = await reader.list({ from: at(2).toISOString(), to: at(10).toISOString() }, 3);
        assert.deepEqual(all.map((r) => r.at), [2, 3, 4, 5, 7, 8, 9].map((m) => at(m).toISOString()), 'oldest first, end exclusive, other actions left out');
        const one = await reader.list({ from: at(0).toISOString(), to: at(12).toISOString(), actor: '0110113717' }, 2);
        assert.ok(one.length === 5 && one.every((r) => r.actor === '0110113717'));
        const idx = db.dialect === 'sqlite' ? await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'audit_events_%_at'") : await db.all<{ name: string }>("SELECT indexname AS name FROM pg_indexes WHERE indexname LIKE 'audit_events_%_at'");
        assert.deepEqual(idx.map((r) => r.name).sort(), ['audit_events_action_at', 'audit_events_actor_at']);
      } finally {
        await db.close();
      }
    });
  });
}
