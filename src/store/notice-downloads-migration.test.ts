/**
 * Migration 15 on a store that already holds notices: those were printed as
 * single-use and stay so (max 1), a used one counts its one download, an
 * unused one none. SQLite and PostgreSQL, from a store at version 13.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { migrate, repositories } from './index.js';
import { MIGRATIONS } from './migrations.js';
import { SqliteDatabase } from './sqlite.js';
import { PostgresDatabase } from './postgres.js';
import type { Database } from './database.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { needPeer } from '../testing/peers.js';

const at = '2026-01-01T00:00:00.000Z';

for (const target of STORE_TARGETS) {
  describe(`notice downloads migration on ${target.name}`, () => {
    test('notices made before it stay single-use; a used one has had its download', async (t) => {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
      const url = await target.fresh();
      const db: Database = url ? new PostgresDatabase(url) : new SqliteDatabase(join(tempDir(), 'old.db'), { create: true });
      try {
        // The store as the release before it left it: every migration below 15.
        await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
        for (const m of MIGRATIONS.filter((x) => x.version < 15)) {
          await db.transaction(async (tx) => {
            for (const s of m.statements(tx.dialect)) await tx.run(s);
            await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, at]);
          });
        }
        await db.run("INSERT INTO facilities (number, name, status, created_at, updated_at) VALUES ('0110113719', 'x', 'active', ?, ?)", [at, at]);
        for (const [id, status, serial] of [['N-AAAAAAAA', 'used', '01ab'], ['N-CCCCCCCC', 'active', null]] as const) {
          await db.run(
            "INSERT INTO notices (id, kind, facility_number, request_lookup, reference_salt, reference_hash, status, failures, created_at, expires_at, used_at, serial, created_by) VALUES (?, 'letter', '0110113719', ?, 's', 'h', ?, 0, ?, '2026-06-30T00:00:00.000Z', ?, ?, 'op')",
            [id, `lookup-${id}`, status, at, serial ? at : null, serial],
          );
        }
        assert.equal(await migrate(db), MIGRATIONS.filter((m) => m.version >= 15).length);
        const notices = repositories(db).notices;
        assert.deepEqual([(await notices.get('N-AAAAAAAA'))?.downloads, (await notices.get('N-AAAAAAAA'))?.maxDownloads], [1, 1]);
        assert.deepEqual([(await notices.get('N-CCCCCCCC'))?.downloads, (await notices.get('N-CCCCCCCC'))?.maxDownloads], [0, 1]);
        // The one download left claims and redeems; then none is left.
        assert.equal(await notices.claim('N-CCCCCCCC', at, 5), true);
        assert.equal(await notices.redeem('N-CCCCCCCC', '02cd', at), true);
        assert.equal((await notices.get('N-CCCCCCCC'))?.status, 'used');
        assert.equal(await notices.claim('N-AAAAAAAA', at, 5), false);
      } finally {
        await db.close();
      }
    });
  });
}
