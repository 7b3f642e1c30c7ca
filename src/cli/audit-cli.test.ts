/**
 * Tamper evidence that needs a key: the audit trail is checked against
 * checkpoints signed by the audit key, which someone who can only write the
 * database does not hold. The attacker here edits the store directly (SQLite
 * and PostgreSQL) and recomputes every following hash and the head with the
 * project's own hash function; `sekisho audit verify` (a real CLI process)
 * must still name what was altered, removed, or merely appended.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditLog, checkpointHash, eventHash, signCheckpoint, type TrailReport } from '../audit/index.js';
import { SoftwareSigner } from '../pki/index.js';
import { openStore, type AuditCheckpointRow, type AuditRow, type Database } from '../store/index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const PASSPHRASE = 'kansa-Passphrase-5e1b7d';
const FACILITY = '0110113719';
const OTHER = '1310000003';

delete process.env.SEKISHO_DB;

function sekisho(home: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH, LANG: 'C.UTF-8', SEKISHO_HOME: home, SEKISHO_PASSPHRASE: PASSPHRASE, SEKISHO_ACTOR: 'operator:test', SEKISHO_SQLITE_SYNC: 'NORMAL', ...env },
    cwd: home,
    maxBuffer: 16 * 1024 * 1024,
  });
  const out = { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  assert.ok(!out.stdout.includes(PASSPHRASE) && !out.stderr.includes(PASSPHRASE), 'no secret printed');
  return out;
}

function ok(home: string, args: string[]) {
  const r = sekisho(home, args);
  assert.equal(r.status, 0, `sekisho ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r;
}

/** `audit verify --json`: its exit status and report. */
function verify(home: string): { status: number | null; report: TrailReport & { intact: boolean }; stderr: string } {
  const r = sekisho(home, ['audit', 'verify', '--json']);
  return { status: r.status, report: JSON.parse(r.stdout) as TrailReport & { intact: boolean }, stderr: r.stderr };
}

interface Saved {
  events: AuditRow[];
  head: { seq: number; hash: string };
  checkpoints: AuditCheckpointRow[];
}

async function save(db: Database): Promise<Saved> {
  const events = (await db.all<AuditRow>('SELECT * FROM audit_events ORDER BY seq')).map((r) => ({ ...r, seq: Number(r.seq), writer_seq: Number(r.writer_seq) }));
  const h = (await db.get<{ seq: number; hash: string }>("SELECT seq, hash FROM audit_chains WHERE writer = 'ca'"))!;
  const checkpoints = (await db.all<AuditCheckpointRow>('SELECT * FROM audit_checkpoints ORDER BY id')).map((r) => ({ ...r, id: Number(r.id), seq: Number(r.seq) }));
  return { events, head: { seq: Number(h.seq), hash: h.hash }, checkpoints };
}

/** Puts the audit tables back as they were (between attack variants). */
async function restore(db: Database, s: Saved): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.run('DELETE FROM audit_events');
    await tx.run('DELETE FROM audit_checkpoints');
    for (const r of s.events) {
      await tx.run('INSERT INTO audit_events (seq, writer, writer_seq, at, actor, action, outcome, reason_code, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
        r.seq, r.writer, r.writer_seq, r.at, r.actor, r.action, r.outcome, r.reason_code, r.subject, r.details, r.prev_hash, r.hash,
      ]);
    }
    for (const c of s.checkpoints) {
      await tx.run('INSERT INTO audit_checkpoints (id, seq, head_hash, at, prev_hash, key_id, algorithm, signature, hash, chains) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
        c.id, c.seq, c.head_hash, c.at, c.prev_hash, c.key_id, c.algorithm, c.signature, c.hash, c.chains,
      ]);
    }
    await tx.run("UPDATE audit_chains SET seq = ?, hash = ? WHERE writer = 'ca'", [s.head.seq, s.head.hash]);
  });
}

/**
 * What an attacker with write access to the database does: change one
 * event's details, then recompute the hash of every following event and the
 * head with sekisho's own eventHash, so the hash chain is self-consistent.
 */
async function rewriteAndRecompute(db: Database, seq: number, details: string): Promise<string> {
  return db.transaction(async (tx) => {
    const rows = (await tx.all<AuditRow>('SELECT * FROM audit_events ORDER BY seq')).map((r) => ({ ...r, seq: Number(r.seq), writer_seq: Number(r.writer_seq) }));
    let prev = rows.find((r) => r.seq === seq - 1)?.hash ?? '0'.repeat(64);
    let last = prev;
    for (const r of rows.filter((x) => x.seq >= seq)) {
      const changed = { ...r, details: r.seq === seq ? details : r.details, prev_hash: prev };
      const hash = eventHash(changed);
      await tx.run('UPDATE audit_events SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?', [changed.details, prev, hash, r.seq]);
      prev = last = hash;
    }
    const head = rows[rows.length - 1]!.seq;
    await tx.run("UPDATE audit_chains SET seq = ?, hash = ? WHERE writer = 'ca'", [head, last]);
    return last;
  });
}

for (const target of STORE_TARGETS) {
  describe(`audit trail signed checkpoints (${target.name})`, { skip: !target.available && 'set SEKISHO_TEST_POSTGRES_URL' }, () => {
    let home: string;
    let db: Database;
    let url: string | undefined;
    let original: Saved;
    let revokedSeq: number;

    test('setup: init, facility, issue and revoke through the CLI; every signing command leaves a signed checkpoint', async () => {
      url = await target.fresh();
      const work = tempDir('sekisho-audit-');
      home = join(work, 'home');
      const init = ok(work, ['init', '--home', home, ...(url ? ['--db', url] : [])]);
      const keyId = /audit key SHA-256 ([0-9a-f]{64})/.exec(init.stdout)?.[1];
      assert.ok(keyId, 'init prints the audit key fingerprint');
      assert.ok(existsSync(join(home, 'ca', 'audit-key.pem')) && existsSync(join(home, 'ca', 'audit.key.json')));
      ok(home, ['facility', 'add', '--code', FACILITY, '--name', 'はこだてクリニック']);
      const pw = join(work, 'pw.txt');
      writeFileSync(pw, 'p12-Password-h4k0w8\n');
      ok(home, ['cert', 'issue', '--facility', FACILITY, '--p12', join(work, 'f.p12'), '--password-file', pw]);
      const serial = (JSON.parse(ok(home, ['cert', 'list', '--json']).stdout) as { serial: string; profile: string }[]).find((c) => c.profile === 'facility')!.serial;
      ok(home, ['cert', 'revoke', serial, '--reason', 'keyCompromise']);
      ok(home, ['facility', 'add', '--code', OTHER, '--name', 'さっぽろ薬局']);
      ok(home, ['cert', 'issue', '--facility', OTHER, '--p12', join(work, 'g.p12'), '--password-file', pw]);

      const v = verify(home);
      assert.equal(v.status, 0, v.stderr);
      assert.equal(v.report.status, 'intact');
      assert.equal(v.report.auditKeyId, keyId);
      assert.equal(v.report.uncovered, null, 'the last command signed its events');
      assert.equal(v.report.signedThrough?.seq, v.report.head.seq);
      db = await openStore({ home, create: false, ...(url ? { url } : {}) });
      original = await save(db);
      revokedSeq = original.events.find((e) => e.action === 'certificate.revoked')!.seq;
      assert.ok(revokedSeq < original.head.seq, 'events follow the revocation');
      assert.ok(original.checkpoints.some((c) => c.seq === revokedSeq), '"cert revoke" signed a checkpoint right after its event');
      assert.ok(original.checkpoints.every((c) => c.key_id === keyId));
    });

    test('regression: a certificate.revoked event rewritten in the database with every later hash and the head recomputed is named as altered (exit 1)', async () => {
      const forged = JSON.parse(original.events.find((e) => e.seq === revokedSeq)!.details) as Record<string, unknown>;
      forged.reason = 'superseded';
      await rewriteAndRecompute(db, revokedSeq, JSON.stringify(forged));
      try {
        // The hash chain alone is fooled: this is the attack that used to pass.
        assert.deepEqual((await new AuditLog(db).verify()).problems, []);
        const v = verify(home);
        assert.equal(v.status, 1, v.stderr);
        assert.equal(v.report.status, 'tampered');
        assert.equal(v.report.intact, false);
        const altered = v.report.problems.filter((p) => p.kind === 'altered');
        assert.equal(altered.length, 1, JSON.stringify(v.report.problems));
        assert.equal(altered[0]!.seq, revokedSeq);
        assert.equal(altered[0]!.toSeq, undefined, 'one event, named precisely');
        assert.match(altered[0]!.message, new RegExp(`audit event ${revokedSeq} \\(certificate\\.revoked at .*\\) does not match signed checkpoint \\d+`));
        const text = sekisho(home, ['audit', 'verify']);
        assert.equal(text.status, 1);
        assert.match(text.stdout, new RegExp(`TAMPERED altered: audit event ${revokedSeq} \\(certificate\\.revoked`));
        assert.match(text.stderr, /AUDIT_CHAIN_BROKEN/);
      } finally {
        await restore(db, original);
      }
      assert.equal(verify(home).status, 0, 'restored');
    });

    test('the same forgery that also rewrites the checkpoint heads to match fails on their signatures', async () => {
      const forgedHead = await rewriteAndRecompute(db, revokedSeq, '{"reason":"superseded"}');
      try {
        // Recompute what each later checkpoint would have to sign, and write it without the key.
        const rows = (await save(db)).events;
        for (const c of original.checkpoints.filter((x) => x.seq >= revokedSeq)) {
          await db.run('UPDATE audit_checkpoints SET head_hash = ? WHERE id = ?', [rows.find((r) => r.seq === c.seq)!.hash, c.id]);
        }
        assert.ok(forgedHead);
        const v = verify(home);
        assert.equal(v.status, 1);
        const invalid = v.report.problems.filter((p) => p.kind === 'checkpoint-invalid');
        assert.equal(invalid.length, original.checkpoints.filter((x) => x.seq >= revokedSeq).length, JSON.stringify(v.report.problems));
        assert.match(invalid[0]!.message, /was altered or forged: its signature does not verify under the audit key/);
      } finally {
        await restore(db, original);
      }
    });

    test("a forger who re-signs the checkpoints with a key of their own is refused (under its own key id, or claiming the audit key's)", async () => {
      for (const claim of ['own', 'audit'] as const) {
        await rewriteAndRecompute(db, revokedSeq, '{"reason":"superseded"}');
        try {
          const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
          const forger = new SoftwareSigner(privateKey);
          const rows = (await save(db)).events;
          let prevHash = '0'.repeat(64);
          for (const c of original.checkpoints) {
            const headHash = c.seq === 0 ? '0'.repeat(64) : rows.find((r) => r.seq === c.seq)!.hash;
            const s = await signCheckpoint(forger, { id: c.id, seq: c.seq, headHash, at: c.at, prevHash });
            const keyId = claim === 'own' ? s.keyId : c.key_id;
            const hash = checkpointHash({ ...s, keyId });
            await db.run('UPDATE audit_checkpoints SET head_hash = ?, prev_hash = ?, key_id = ?, signature = ?, hash = ? WHERE id = ?', [headHash, prevHash, keyId, s.signature, hash, c.id]);
            prevHash = hash;
          }
          const v = verify(home);
          assert.equal(v.status, 1, `${claim}: ${v.stderr}`);
          const invalid = v.report.problems.filter((p) => p.kind === 'checkpoint-invalid');
          assert.equal(invalid.length, original.checkpoints.length, `${claim}: every forged checkpoint is refused`);
          assert.match(invalid[0]!.message, claim === 'own' ? /claims key [0-9a-f]{16}…, not the audit key/ : /signature does not verify under the audit key/);
          assert.equal(v.report.signedThrough, null);
        } finally {
          await restore(db, original);
        }
      }
    });

    test('a deleted checkpoint row is named: a middle one by its number, the newest by the home record', async () => {
      const middle = original.checkpoints[1]!;
      await db.run('DELETE FROM audit_checkpoints WHERE id = ?', [middle.id]);
      try {
        const v = verify(home);
        assert.equal(v.status, 1);
        assert.deepEqual(v.report.problems.map((p) => [p.kind, p.checkpoint]), [['checkpoint-removed', middle.id]]);
        assert.match(v.report.problems[0]!.message, new RegExp(`signed checkpoint ${middle.id} was removed`));
      } finally {
        await restore(db, original);
      }
      const newest = original.checkpoints[original.checkpoints.length - 1]!;
      await db.run('DELETE FROM audit_checkpoints WHERE id = ?', [newest.id]);
      try {
        const v = verify(home);
        assert.equal(v.status, 1);
        assert.ok(v.report.problems.some((p) => p.kind === 'checkpoint-removed' && p.checkpoint === newest.id && /recorded in the CA home/.test(p.message)), JSON.stringify(v.report.problems));
      } finally {
        await restore(db, original);
      }
    });

    test("an altered checkpoint head (without the chain) is refused by the checkpoint's signature", async () => {
      const c = original.checkpoints.find((x) => x.seq === revokedSeq)!;
      await db.run('UPDATE audit_checkpoints SET head_hash = ? WHERE id = ?', ['f'.repeat(64), c.id]);
      try {
        const v = verify(home);
        assert.equal(v.status, 1);
        assert.deepEqual(v.report.problems.map((p) => [p.kind, p.checkpoint]), [['checkpoint-invalid', c.id]]);
      } finally {
        await restore(db, original);
      }
    });

    test('the trail and its head cut back to an earlier point are named as removed when a later checkpoint exists', async () => {
      const keep = revokedSeq - 1;
      const keptHash = original.events.find((e) => e.seq === keep)!.hash;
      await db.transaction(async (tx) => {
        await tx.run('DELETE FROM audit_events WHERE seq > ?', [keep]);
        await tx.run("UPDATE audit_chains SET seq = ?, hash = ? WHERE writer = 'ca'", [keep, keptHash]);
      });
      try {
        assert.deepEqual((await new AuditLog(db).verify()).problems, [], 'the hash chain alone sees nothing');
        const v = verify(home);
        assert.equal(v.status, 1);
        const removed = v.report.problems.filter((p) => p.kind === 'removed');
        assert.ok(removed.length >= 1, JSON.stringify(v.report.problems));
        assert.equal(removed[0]!.seq, revokedSeq);
        assert.match(removed[0]!.message, new RegExp(`audit events? ${revokedSeq}.* removed: signed checkpoint \\d+ covers the trail through event \\d+, the trail now ends at event ${keep}`));
      } finally {
        await restore(db, original);
      }
    });

    test('an event deleted from the middle, and one edited without recomputing, are each named', async () => {
      const mid = revokedSeq - 1;
      await db.run('DELETE FROM audit_events WHERE seq = ?', [mid]);
      try {
        const v = verify(home);
        assert.equal(v.status, 1);
        assert.ok(v.report.problems.some((p) => p.kind === 'removed' && p.seq === mid), JSON.stringify(v.report.problems));
      } finally {
        await restore(db, original);
      }
      await db.run('UPDATE audit_events SET details = ? WHERE seq = ?', ['{"reason":"superseded"}', revokedSeq]);
      try {
        const v = verify(home);
        assert.equal(v.status, 1);
        assert.deepEqual(v.report.problems.map((p) => [p.kind, p.seq]), [['altered', revokedSeq]], 'named once, by the chain; the checkpoint agrees');
      } finally {
        await restore(db, original);
      }
    });

    test('regression: escape sequences written into the trail reach the terminal as visible text: audit verify cannot be made to erase its TAMPERED line, print a false "intact" or conceal the rest; audit list and report refusals neither', async () => {
      // Erase the line, return, print a verdict of its own, then conceal everything after (the AUDIT_CHAIN_BROKEN line too).
      const hostile = '\x1b[2K\raudit trail intact: 9 events\x1b[8m\u202e';
      await db.run('UPDATE audit_events SET action = ?, actor = ? WHERE seq = ?', [hostile, hostile, revokedSeq]);
      await new AuditLog(db).append({ actor: hostile, action: 'gateway.refused', outcome: 'minorFailure', reasonCode: hostile, subject: FACILITY });
      try {
        const texts = [sekisho(home, ['audit', 'verify']), sekisho(home, ['audit', 'list']), sekisho(home, ['audit', 'list', '--action', 'gateway.refused']), sekisho(home, ['report', 'refusals'])];
        assert.equal(texts[0]!.status, 1);
        for (const t of texts) {
          assert.doesNotMatch(t.stdout + t.stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/, 'no control character reaches the terminal');
          assert.ok(t.stdout.includes('\\x1b[2K\\x0daudit trail intact: 9 events\\x1b[8m\\u{202E}'), t.stdout);
        }
        assert.match(texts[0]!.stdout, /^TAMPERED altered: audit event \d+ \(\\x1b\[2K\\x0daudit trail intact/m);
      } finally {
        await restore(db, original);
      }
    });

    test('regression: an event whose details are not JSON (altered in the database) is listed with its text, searched, and named by verify; the listing does not fail', async () => {
      await db.run('UPDATE audit_events SET details = ? WHERE seq = ?', ['{"reason":', revokedSeq]);
      try {
        const list = sekisho(home, ['audit', 'list', '--json']);
        assert.equal(list.status, 0, list.stderr);
        const row = (JSON.parse(list.stdout) as { seq: number; details: Record<string, unknown> }[]).find((e) => e.seq === revokedSeq)!;
        assert.deepEqual(row.details, { detailsUnreadable: '{"reason":' });
        const search = sekisho(home, ['audit', 'list', '--action', 'certificate.revoked']);
        assert.equal(search.status, 0, search.stderr);
        assert.match(search.stdout, /certificate\.revoked/);
        const v = verify(home);
        assert.equal(v.status, 1);
        assert.deepEqual(v.report.problems.map((p) => [p.kind, p.seq]), [['altered', revokedSeq]]);
      } finally {
        await restore(db, original);
      }
    });

    test('events appended after the last checkpoint are reported as not yet signed, not as tampering (exit 0); audit checkpoint signs them', async () => {
      await new AuditLog(db).append({ actor: 'gateway', action: 'gateway.authenticated', outcome: 'success', subject: FACILITY });
      await new AuditLog(db).append({ actor: 'gateway', action: 'gateway.authenticated', outcome: 'success', subject: FACILITY });
      try {
        const v = verify(home);
        assert.equal(v.status, 0, v.stderr);
        assert.equal(v.report.status, 'intact');
        assert.deepEqual(v.report.uncovered, { fromSeq: original.head.seq + 1, toSeq: original.head.seq + 2 });
        assert.match(sekisho(home, ['audit', 'verify']).stdout, new RegExp(`not yet signed: events ${original.head.seq + 1}–${original.head.seq + 2} were appended after the last signed checkpoint`));
        const c = JSON.parse(ok(home, ['audit', 'checkpoint', '--json']).stdout) as { seq: number; id: number };
        assert.equal(c.seq, original.head.seq + 2);
        const after = verify(home);
        assert.equal(after.status, 0);
        assert.equal(after.report.uncovered, null);
        assert.equal(after.report.signedThrough?.checkpoint, c.id);
        // The checkpoints after a seq, as the export sends them.
        const exported = await new AuditLog(db).checkpointsAfter(original.head.seq);
        assert.deepEqual(exported.map((x) => x.id), [c.id]);
      } finally {
        await restore(db, original);
        // The home records the newest checkpoint made; put back the one the restored store ends with.
        const last = original.checkpoints[original.checkpoints.length - 1]!;
        writeFileSync(join(home, 'ca', 'audit-checkpoint.json'), JSON.stringify({ format: 'sekisho-audit-checkpoint-ref', version: 1, id: last.id, seq: last.seq, hash: last.hash }));
      }
      assert.equal(verify(home).status, 0);
    });

    test('without the audit public key the trail cannot be verified (exit 2)', () => {
      const pem = join(home, 'ca', 'audit-key.pem');
      renameSync(pem, `${pem}.away`);
      try {
        const r = sekisho(home, ['audit', 'verify']);
        assert.equal(r.status, 2);
        assert.match(r.stderr, /AUDIT_KEY_MISSING/);
      } finally {
        renameSync(`${pem}.away`, pem);
      }
    });

    test('a home from before audit keys gets one on its first unlock, recorded as audit.key.created, and verifies after', async () => {
      // Make the home look like one made before migration 8's checkpoints existed.
      const ca = join(home, 'ca');
      for (const f of ['audit.key.json', 'audit-key.pem', 'audit-checkpoint.json']) copyFileSync(join(ca, f), join(ca, `${f}.keep`));
      for (const f of ['audit.key.json', 'audit-key.pem', 'audit-checkpoint.json']) rmSync(join(ca, f));
      await db.run('DELETE FROM audit_checkpoints');
      try {
        assert.equal(sekisho(home, ['audit', 'verify']).status, 2, 'no key yet: cannot verify');
        const c = ok(home, ['audit', 'checkpoint']);
        assert.match(c.stdout, /^checkpoint 1: the audit trail through event \d+ .* by audit key [0-9a-f]{64}\n$/);
        const v = verify(home);
        assert.equal(v.status, 0, v.stderr);
        const events = JSON.parse(ok(home, ['audit', 'list', '--json', '--after', String(original.head.seq)]).stdout) as { action: string; details: { keyId: string } }[];
        assert.deepEqual(events.map((e) => e.action), ['audit.key.created']);
        assert.equal(events[0]!.details.keyId, v.report.auditKeyId);
        assert.notEqual(v.report.auditKeyId, original.checkpoints[0]!.key_id, 'a new key');
      } finally {
        for (const f of ['audit.key.json', 'audit-key.pem', 'audit-checkpoint.json']) renameSync(join(ca, `${f}.keep`), join(ca, f));
        await restore(db, original);
        await db.close();
      }
    });
  });
}
