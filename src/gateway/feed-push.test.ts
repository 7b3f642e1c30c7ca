/**
 * Push with catch-up on PostgreSQL: the status feed is woken by the store's
 * NOTIFY (sent in the transaction that takes the change sequence number) and
 * reads from its cursor, so a revocation arrives without waiting for the
 * poll; a feed whose connections are cut (pg_terminate_backend, while its
 * role cannot log in) catches up on everything made meanwhile when it is
 * back. The gateway's database role (sekisho db roles) reads the feed and
 * appends audit events, and PostgreSQL refuses it everything else.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { applyRole, gatewayStoreOf, openStore, repositories, type Database, type GatewayStore } from '../store/index.js';
import { appendToChain, AuditLog, spoolWriterId } from '../audit/index.js';
import { postgresUrl, STORE_TARGETS, tempDir, testRole } from '../testing/stores.js';
import { needPeer } from '../testing/peers.js';
import { StoreStatusFeed } from './status-feed.js';

const postgres = STORE_TARGETS.find((t) => t.name === 'postgres')!;
const at = '2026-01-01T00:00:00.000Z';
const cert = (serial: string) => ({ serial, profile: 'facility', facilityNumber: '0110113719', subject: 'CN=0110113719', spkiSha256: 'ab'.repeat(32), notBefore: at, notAfter: '2099-01-01T00:00:00.000Z', reservedAt: at });

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function issue(db: Database, serial: string): Promise<void> {
  const c = repositories(db).certificates;
  assert.equal(await c.reserve(cert(serial)), 'reserved');
  assert.equal(await c.markIssued(serial, Buffer.from('der'), 'cd'.repeat(32), at), true);
}

/** Runs SQL as the PostgreSQL superuser of the test server. */
async function admin(url: string, sql: string, params: unknown[] = []): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql, params);
  } finally {
    await c.end();
  }
}

describe('status feed pushed by PostgreSQL NOTIFY, gateway database role', () => {
  let url: string;
  let ca: Database;
  let role: Awaited<ReturnType<typeof testRole>>;
  let gwDb: Database;
  let gw: GatewayStore;

  before(async () => {
    if (!postgres.available) return;
    url = (await postgres.fresh())!;
    ca = await openStore({ home: tempDir(), url });
    await repositories(ca).facilities.add({ number: '0110113719', name: 'はこだてクリニック', status: 'active', createdAt: at, updatedAt: at });
    role = await testRole(url);
    await applyRole(ca, 'gateway', role.role);
    // The gateway opens the store as its own role, without migrating it.
    gwDb = await openStore({ home: tempDir(), url: role.url, migrate: false });
    gw = gatewayStoreOf(gwDb, true);
  });

  after(async () => {
    if (!postgres.available) return;
    await gw?.close();
    await role?.drop();
    await ca?.close();
  });

  test('a revocation wakes a listening feed at once: it does not wait for the poll (here once a minute)', async (t) => {
    if (!needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    await issue(ca, '1a01');
    const feed = new StoreStatusFeed(gw.feed, { intervalMs: 60_000, pollWhileListeningMs: 60_000, listen: gw.listenChanges! });
    try {
      await feed.start();
      await until('the feed listens', () => feed.listening);
      assert.equal(feed.isRevoked('1a01'), false);
      await repositories(ca).certificates.revoke('1a01', at, 1);
      await until('the revocation reaches the feed', () => feed.isRevoked('1a01'), 15_000);
      assert.ok(feed.wakes >= 1, 'a notification woke the read');
      assert.equal(feed.state().mode, 'push');
    } finally {
      feed.close();
    }
  });

  test('a forged notification (any role may NOTIFY) only wakes a read: it revokes nothing and does not move the cursor', async (t) => {
    if (!needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    await issue(ca, '1c01');
    const feed = new StoreStatusFeed(gw.feed, { intervalMs: 60_000, pollWhileListeningMs: 60_000, listen: gw.listenChanges! });
    try {
      await feed.start();
      await until('the feed listens', () => feed.listening);
      const cursor = feed.cursor;
      const wakes = feed.wakes;
      // The gateway role itself forges "change 999999, serial 1c01 revoked".
      await gwDb.get("SELECT pg_notify('sekisho_changes', '999999 revoke 1c01')");
      await until('the forged notification woke a read', () => feed.wakes > wakes);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(feed.cursor, cursor, 'the cursor is the store\'s sequence, not the payload');
      assert.equal(feed.isRevoked('1c01'), false, 'nothing is revoked by a notification');
    } finally {
      feed.close();
    }
  });

  test('regression: a feed cut from the database (pg_terminate_backend) catches up on revocations and suspensions made while it was cut', async (t) => {
    if (!needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    await issue(ca, '1b01');
    await issue(ca, '1b02');
    const states: boolean[] = [];
    const feed = new StoreStatusFeed(gw.feed, { intervalMs: 60_000, pollWhileListeningMs: 60_000, listen: gw.listenChanges!, onListenState: (l) => states.push(l) });
    try {
      await feed.start();
      await until('the feed listens', () => feed.listening);
      // Cut: the role may not log in, and its connections (the listener's, the pool's) are ended.
      await admin(url, `ALTER ROLE ${role.role} NOLOGIN`);
      await admin(url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role.role]);
      await until('the feed notices the cut', () => !feed.listening);
      await repositories(ca).certificates.revoke('1b01', at, 1);
      await repositories(ca).facilities.setStatus('0110113719', 'suspended', at);
      await repositories(ca).certificates.revoke('1b02', at, 1);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(feed.isRevoked('1b01'), false, 'nothing is learnt while cut (the notifications were lost)');
      // Restored: the listener reconnects, re-LISTENs and reads from its cursor.
      await admin(url, `ALTER ROLE ${role.role} LOGIN`);
      await until('the feed catches up after the cut', () => feed.isRevoked('1b01') && feed.isRevoked('1b02') && feed.facility('0110113719')?.status === 'suspended', 30_000);
      assert.deepEqual([states[0], states.includes(false), states[states.length - 1]], [true, true, true], 'listening, lost, listening again');
    } finally {
      feed.close();
      await admin(url, `ALTER ROLE ${role.role} LOGIN`);
      await repositories(ca).facilities.setStatus('0110113719', 'active', at);
    }
  });

  test('the gateway role reads the feed and appends to its audit chain; PostgreSQL refuses it every other write and the certificates themselves', async (t) => {
    if (!needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    const snap = await gw.feed.snapshot();
    assert.ok(snap.revoked.includes('1a01'));
    const writer = spoolWriterId(tempDir());
    await gw.audit.appendInTransaction((chains) => appendToChain(chains, writer, [{ event: { actor: '0110113719', action: 'gateway.authenticated', outcome: 'success' }, at: new Date() }]));
    assert.equal((await gw.audit.head(writer)).seq, 1);
    const refused: [string, string][] = [
      ['UPDATE a certificate', "UPDATE certificates SET status = 'issued' WHERE serial = '1a01'"],
      ['DELETE a certificate', "DELETE FROM certificates WHERE serial = '1a01'"],
      ['read certificate DER', 'SELECT der FROM certificates'],
      ['add a facility', `INSERT INTO facilities (number, name, status, created_at, updated_at) VALUES ('2712345673', 'x', 'active', '${at}', '${at}')`],
      ['resume a facility', "UPDATE facilities SET status = 'active'"],
      ['read notices', 'SELECT * FROM notices'],
      ['UPDATE an audit event', "UPDATE audit_events SET details = '{}'"],
      ['DELETE an audit event', 'DELETE FROM audit_events'],
      ['forge a checkpoint', "DELETE FROM audit_checkpoints"],
      ['move the change counter', 'UPDATE change_counter SET seq = 0'],
      ['change the schema', 'CREATE TABLE x (a INTEGER)'],
    ];
    for (const [what, sql] of refused) {
      await assert.rejects(gwDb.run(sql), (e: { code?: string }) => e.code === '42501', `${what} is refused (insufficient_privilege)`);
    }
    // What it wrote verifies as part of the whole trail.
    assert.deepEqual((await new AuditLog(ca).verify()).problems, []);
  });

  test('a gateway refuses to start on a store older than its code, and never migrates it', async (t) => {
    if (!needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    assert.ok(postgresUrl);
    await admin(url, 'DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)');
    try {
      await assert.rejects(openStore({ home: tempDir(), url: role.url, migrate: false }), (e: { code?: string }) => e.code === 'STORE_SCHEMA_OLD');
    } finally {
      await migrateBack(url);
    }
  });
});

/** Puts the removed schema_migrations row back (the schema itself was never changed). */
async function migrateBack(url: string): Promise<void> {
  const { MIGRATIONS } = await import('../store/migrations.js');
  const last = MIGRATIONS[MIGRATIONS.length - 1]!;
  await admin(url, 'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [last.version, last.name, at]);
}
