import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { gatewayStoreOf, openStore } from '../store/index.js';
import { tempDir } from '../testing/stores.js';
import { AuditLog, AuditSpool, SpoolStoreWriter, STORE_CONSUMER, type AuditEvent } from './index.js';

const ev = (n: number): AuditEvent => ({ actor: '0110113719', action: 'gateway.authenticated', outcome: 'success', details: { n } });

test('spool files are the owner’s alone (dir 0700, segments and cursors 0600) whatever the umask', () => {
  const dir = join(tempDir(), 'spool');
  const old = process.umask(0o000);
  try {
    const s = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
    s.append(ev(1));
    s.close();
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
});

test('a torn last record (power loss mid-write) is cut on open; every whole record before it is kept', () => {
  const dir = join(tempDir(), 'spool');
  const s = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
  const ids = [1, 2, 3].map((n) => s.append(ev(n)).id);
  s.close();
  const seg = readdirSync(dir).find((f) => f.startsWith('seg-'))!;
  appendFileSync(join(dir, seg), '{"id":"torn","at":"2026-');
  const again = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
  again.append(ev(4));
  const read = again.read(again.cursor(STORE_CONSUMER), 100).map((e) => (e.record.event.details as { n: number }).n);
  assert.deepEqual(read, [1, 2, 3, 4]);
  assert.equal(again.read(again.cursor(STORE_CONSUMER), 3).at(-1)!.record.id, ids[2]);
  again.close();
});

test('an event larger than the reader takes at once is refused (AUDIT_EVENT_TOO_LARGE) and nothing after it stalls', () => {
  const dir = join(tempDir(), 'spool');
  const s = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
  s.append(ev(1));
  const before = s.bytes();
  assert.throws(() => s.append({ ...ev(2), details: { n: 2, huge: 'x'.repeat(1_100_000) } }), (e: unknown) => (e as { code?: string }).code === 'AUDIT_EVENT_TOO_LARGE');
  assert.equal(s.bytes(), before, 'nothing of it was written');
  s.append(ev(3));
  assert.deepEqual(s.read(s.cursor(STORE_CONSUMER), 100).map((e) => (e.record.event.details as { n: number }).n), [1, 3]);
  s.close();
});

test('a spool in use by a live process (or already open here) is refused: AUDIT_SPOOL_IN_USE', () => {
  const dir = join(tempDir(), 'spool');
  const s = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
  assert.throws(() => AuditSpool.open({ dir, consumers: [STORE_CONSUMER] }), (e: unknown) => (e as { code?: string }).code === 'AUDIT_SPOOL_IN_USE');
  s.close();
  writeFileSync(join(dir, 'lock'), `${process.ppid}\n`); // a live process that is not us
  assert.throws(() => AuditSpool.open({ dir, consumers: [STORE_CONSUMER] }), (e: unknown) => (e as { code?: string }).code === 'AUDIT_SPOOL_IN_USE');
  writeFileSync(join(dir, 'lock'), '999999999\n'); // a process that died (SIGKILL): taken over
  AuditSpool.open({ dir, consumers: [STORE_CONSUMER] }).close();
});

test('a segment is deleted only once every consumer has it', () => {
  const dir = join(tempDir(), 'spool');
  const s = AuditSpool.open({ dir, consumers: ['store', 'collector-a'], segmentBytes: 4096, maxBytes: 1 << 20 });
  for (let n = 0; n < 200; n++) s.append(ev(n));
  const segments = () => readdirSync(dir).filter((f) => f.startsWith('seg-')).length;
  const before = segments();
  assert.ok(before > 3, 'several segments');
  const all = s.read(s.cursor('store'), 1000);
  s.commit('store', all.at(-1)!.next);
  s.flushCursors();
  assert.equal(segments(), before, 'the collector still lacks them');
  s.commit('collector-a', all[100]!.next);
  s.flushCursors();
  assert.ok(segments() < before && segments() > 1, 'segments before the slower cursor went');
  assert.equal(s.read(s.cursor('collector-a'), 1000).length, 99, 'the collector still has what it lacks');
  s.close();
});

test('replay after a crash: spooled events reach the store on start, and a batch stored just before the crash is not stored twice', async () => {
  const home = tempDir();
  const db = await openStore({ home });
  const dir = join(home, 'audit-spool', 'gateway');
  try {
    const s = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
    const w = new SpoolStoreWriter(s, gatewayStoreOf(db).audit, 'gw:test', { maxBatch: 10 });
    for (let n = 0; n < 25; n++) s.append(ev(n));
    await w.flush();
    const committed = readFileSync(join(dir, 'cursor-store.json'), 'utf8');
    for (let n = 25; n < 40; n++) s.append(ev(n));
    await w.flush(); // stored, but the cursor is written only later…
    s.close();
    writeFileSync(join(dir, 'cursor-store.json'), committed); // …and the process died before that
    for (let n = 40; n < 45; n++) appendFileSync(join(dir, readdirSync(dir).find((f) => f.startsWith('seg-'))!), JSON.stringify({ id: `late-${n}`, at: new Date().toISOString(), event: ev(n) }) + '\n');

    const again = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
    const w2 = new SpoolStoreWriter(again, gatewayStoreOf(db).audit, 'gw:test', { maxBatch: 10 });
    await w2.start();
    await w2.stop();
    again.close();
    const rows = await new AuditLog(db).list({ limit: 1000 });
    const ns = rows.filter((r) => r.action === 'gateway.authenticated').map((r) => (r.details as { n: number }).n);
    assert.deepEqual(ns, [...Array(45).keys()], 'each event once, in spool order');
    assert.equal(new Set(rows.map((r) => r.details?.eventId)).size, rows.length, 'every row carries its own eventId');
    assert.deepEqual((await new AuditLog(db).verify()).problems, []);
  } finally {
    await db.close();
  }
});

test('regression: a row of the writer\'s own chain whose details are not a JSON object (altered in the store) does not stop its audit writer from starting: the spooled events are stored', async () => {
  const home = tempDir();
  const db = await openStore({ home });
  const dir = join(home, 'audit-spool', 'gateway');
  try {
    const s = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
    const w = new SpoolStoreWriter(s, gatewayStoreOf(db).audit, 'gw:test', { maxBatch: 10 });
    for (let n = 0; n < 5; n++) s.append(ev(n));
    await w.flush();
    const committed = readFileSync(join(dir, 'cursor-store.json'), 'utf8');
    for (let n = 5; n < 10; n++) s.append(ev(n));
    await w.flush();
    s.close();
    writeFileSync(join(dir, 'cursor-store.json'), committed);
    // Rows after the committed place, which the writer reads for their eventId on start.
    await db.run("UPDATE audit_events SET details = '{broken' WHERE writer = 'gw:test' AND writer_seq = 7");
    await db.run("UPDATE audit_events SET details = 'null' WHERE writer = 'gw:test' AND writer_seq = 8");
    const again = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
    again.append(ev(10));
    const w2 = new SpoolStoreWriter(again, gatewayStoreOf(db).audit, 'gw:test', { maxBatch: 10 });
    await w2.start();
    await w2.stop();
    again.close();
    const rows = await new AuditLog(db).list({ limit: 1000 });
    assert.ok(rows.some((r) => (r.details as { n?: number }).n === 10), 'the event spooled since is stored');
    assert.ok(rows.some((r) => r.details?.detailsUnreadable === '{broken'), 'the altered row is listed as it is');
  } finally {
    await db.close();
  }
});

test('a store whose write lock another process holds past the lock limit: the batch fails with STORE_BUSY and is reported, the events stay in the spool, and are stored once each when the lock is free', async () => {
  const home = tempDir();
  const db = await openStore({ home, lockLimitMs: 300 });
  const dir = join(home, 'audit-spool', 'gateway');
  const other = new BetterSqlite3(join(home, 'sekisho.db'));
  try {
    const s = AuditSpool.open({ dir, consumers: [STORE_CONSUMER] });
    const errors: string[] = [];
    const w = new SpoolStoreWriter(s, gatewayStoreOf(db).audit, 'gw:busy', { maxBatch: 10, onError: (m) => errors.push(m) });
    await w.start();
    other.exec('BEGIN IMMEDIATE');
    for (let n = 0; n < 15; n++) s.append(ev(n));
    await w.flush();
    assert.equal(errors.length, 1, 'the failed batch is reported once');
    assert.match(errors[0]!, /has held SQLite .* for over 0\.3 s/);
    assert.match(w.lastError ?? '', /for over 0\.3 s/);
    const stored = async () => (await new AuditLog(db).list({ limit: 1000 })).filter((r) => r.action === 'gateway.authenticated').map((r) => (r.details as { n: number }).n);
    assert.deepEqual(await stored(), [], 'nothing of the failed batch is in the store (a read goes on while the lock is held)');
    other.exec('COMMIT');
    await w.flush();
    assert.deepEqual(await stored(), [...Array(15).keys()], 'each event once, in spool order, once the lock is free');
    assert.equal(w.lastError, undefined);
    await w.stop();
    s.close();
    assert.deepEqual((await new AuditLog(db).verify()).problems, []);
  } finally {
    other.close();
    await db.close();
  }
});
