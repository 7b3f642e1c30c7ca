/**
 * An audit chain per writer: gateways append side by side (each locks only
 * its own head row), a checkpoint signs every chain's head, and the trail is
 * verified as a whole: every chain, no gap, every checkpoint. Regression for
 * the single head row every audit write used to lock.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { SoftwareSigner } from '../pki/index.js';
import { CA_WRITER, gatewayStoreOf, openStore, repositories, type AuditRow, type Database } from '../store/index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { needPeer } from '../testing/peers.js';
import { appendToChain, AuditLog } from './audit-log.js';
import { eventHash } from './chain.js';

const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = new SoftwareSigner(keys.privateKey);
const WRITERS = ['gw:a:gateway-1:01', 'gw:b:gateway-1:02', 'gw:c:gateway-1:03'];

async function appendMany(db: Database, writer: string, n: number): Promise<void> {
  const store = gatewayStoreOf(db).audit;
  // One transaction per few events, all writers at once: on PostgreSQL they run concurrently.
  for (let i = 0; i < n; i += 5) {
    await store.appendInTransaction(async (chains) => {
      for (let k = i; k < Math.min(n, i + 5); k++) await appendToChain(chains, writer, [{ event: { actor: '0110113719', action: 'gateway.authenticated', outcome: 'success', details: { k } }, at: new Date() }]);
    });
  }
}

for (const target of STORE_TARGETS) {
  describe(`audit chains per writer (${target.name})`, () => {
    test('three writers at once and the CA: every chain complete, one checkpoint signs them all, the whole trail verifies', async (t) => {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
      const url = await target.fresh();
      const db = await openStore({ home: tempDir(), ...(url ? { url } : {}) });
      const log = new AuditLog(db);
      try {
        await log.append({ actor: 'ca', action: 'ca.init', outcome: 'success' });
        await Promise.all([...WRITERS.map((w) => appendMany(db, w, 40)), log.append({ actor: 'operator', action: 'facility.add', outcome: 'success' })]);
        const c = (await log.checkpoint(signer))!;
        assert.deepEqual(c.chains?.map(([w, n]) => [w, n]), WRITERS.map((w) => [w, 40]), 'the checkpoint names every gateway chain at its head');
        assert.equal(c.seq, 2, 'and the CA chain');
        assert.equal(await log.checkpoint(signer), undefined, 'nothing new: no new checkpoint');
        await appendMany(db, WRITERS[1]!, 3);
        assert.ok(await log.checkpoint(signer), 'one gateway appended: a new checkpoint');
        const r = await log.verifyTrail({ publicKey: keys.publicKey });
        assert.equal(r.status, 'intact', JSON.stringify(r.problems));
        assert.equal(r.events, 2 + 123);
        assert.deepEqual(r.chains?.map((ch) => [ch.writer, ch.events, ch.uncovered]), [['ca', 2, null], [WRITERS[0], 40, null], [WRITERS[1], 43, null], [WRITERS[2], 40, null]]);
        const seqs = (await db.all<{ seq: number }>('SELECT seq FROM audit_events')).map((x) => Number(x.seq));
        assert.equal(new Set(seqs).size, seqs.length, 'store-wide order numbers are unique');
      } finally {
        await db.close();
      }
    });

    test("a gateway chain rewritten with its hashes and head recomputed, or removed whole, is named by the checkpoint that signed it", async (t) => {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
      const url = await target.fresh();
      const db = await openStore({ home: tempDir(), ...(url ? { url } : {}) });
      const log = new AuditLog(db);
      try {
        for (const w of WRITERS) await appendMany(db, w, 6);
        await log.checkpoint(signer);
        // Rewrite event 3 of writer b and everything after it in that chain, and its head: self-consistent, unsigned.
        const w = WRITERS[1]!;
        await db.transaction(async (tx) => {
          const rows = (await tx.all<AuditRow>('SELECT * FROM audit_events WHERE writer = ? ORDER BY writer_seq', [w])).map((r) => ({ ...r, writer_seq: Number(r.writer_seq) }));
          let prev = rows[1]!.hash;
          for (const r of rows.slice(2)) {
            const changed = { ...r, details: r.writer_seq === 3 ? '{"k":999}' : r.details, prev_hash: prev };
            const hash = eventHash(changed);
            await tx.run('UPDATE audit_events SET details = ?, prev_hash = ?, hash = ? WHERE writer = ? AND writer_seq = ?', [changed.details, prev, hash, w, r.writer_seq]);
            prev = hash;
          }
          await tx.run('UPDATE audit_chains SET hash = ? WHERE writer = ?', [prev, w]);
        });
        assert.deepEqual((await log.verify()).problems, [], 'the hash chains alone see nothing');
        let r = await log.verifyTrail({ publicKey: keys.publicKey });
        assert.equal(r.status, 'tampered');
        assert.deepEqual(r.problems.map((p) => [p.kind, p.writer]), [['altered', w]]);
        assert.match(r.problems[0]!.message, new RegExp(`audit events 1–6 of writer ${w} do not match signed checkpoint 1`));
        // Remove writer c's chain entirely: its events and its head row.
        const gone = WRITERS[2]!;
        await db.run('DELETE FROM audit_events WHERE writer = ?', [gone]);
        await db.run('DELETE FROM audit_chains WHERE writer = ?', [gone]);
        r = await log.verifyTrail({ publicKey: keys.publicKey });
        assert.ok(r.problems.some((p) => p.kind === 'removed' && p.writer === gone), JSON.stringify(r.problems));
      } finally {
        await db.close();
      }
    });

    test('regression: rows the chain walk never read are named, not passed as intact: a second row for a place at a page\'s edge, places 0 and -1, a linked row beyond the head, a gateway chain whose head row was removed before any checkpoint named it', async (t) => {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
      const url = await target.fresh();
      const db = await openStore({ home: tempDir(), ...(url ? { url } : {}) });
      const log = new AuditLog(db);
      try {
        await log.append({ actor: 'ca', action: 'ca.init', outcome: 'success' });
        // 10,000 more: the walk reads pages of 10,000 places, so place 10,000 ends the first page.
        await db.transaction((tx) => appendToChain(repositories(tx).audit, CA_WRITER, Array.from({ length: 10_000 }, (_, k) => ({ event: { actor: '0110113719', action: 'gateway.refused', outcome: 'minorFailure' as const, reasonCode: 'REVOKED', details: { k } }, at: new Date() }))));
        await log.checkpoint(signer);
        assert.equal((await log.verifyTrail({ publicKey: keys.publicKey })).status, 'intact');
        // Someone who can write the database drops the unique index the chain relied on, then adds rows.
        await db.run('DROP INDEX audit_events_writer_seq');
        const copy = (place: number, writerSeq: string, seq: string) =>
          db.run(`INSERT INTO audit_events (seq, writer, writer_seq, at, actor, action, outcome, reason_code, subject, details, prev_hash, hash) SELECT ${seq}, writer, ${writerSeq}, at, actor, action, outcome, reason_code, subject, details, prev_hash, hash FROM audit_events WHERE writer = 'ca' AND writer_seq = ${place}`);
        await copy(10_000, 'writer_seq', '900001');
        await copy(5, '0', '900002');
        await copy(5, '-1', '900003');
        const head = await repositories(db).audit.head(CA_WRITER, { lock: false });
        const beyond = { writer: CA_WRITER, writer_seq: head.seq + 1, at: new Date().toISOString(), actor: '0110113719', action: 'gateway.refused', outcome: 'minorFailure', reason_code: 'REVOKED', subject: null, details: '{}', prev_hash: head.hash };
        await db.run('INSERT INTO audit_events (seq, writer, writer_seq, at, actor, action, outcome, reason_code, subject, details, prev_hash, hash) VALUES (900004, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
          ...Object.values(beyond),
          eventHash(beyond),
        ]);
        // A gateway's three events, not yet signed, its head row then removed.
        await appendMany(db, 'gw:x:gateway-1:09', 3);
        await db.run('DELETE FROM audit_chains WHERE writer = ?', ['gw:x:gateway-1:09']);
        const r = await log.verifyTrail({ publicKey: keys.publicKey });
        assert.equal(r.status, 'tampered');
        const named = r.problems.map((p) => [p.kind, p.writer ?? CA_WRITER, p.message]);
        assert.equal(named.length, 5, JSON.stringify(named));
        assert.ok(named.some(([k, , m]) => k === 'inserted' && /a second row for audit event 10000 \(store seq 900001/.test(m!)), JSON.stringify(named));
        assert.ok(named.some(([k, , m]) => k === 'inserted' && /a row numbered 0 \(store seq 900002/.test(m!)));
        assert.ok(named.some(([k, , m]) => k === 'inserted' && /a row numbered -1 \(store seq 900003/.test(m!)));
        assert.ok(named.some(([k, , m]) => k === 'inserted' && new RegExp(`a row lies beyond the chain's head \\(event ${head.seq}\\)`).test(m!)), JSON.stringify(named));
        assert.ok(named.some(([k, w, m]) => k === 'head-mismatch' && w === 'gw:x:gateway-1:09' && /head row .* was removed \(its 3 events remain\)/.test(m!)));
      } finally {
        await db.close();
      }
    });
  });
}
