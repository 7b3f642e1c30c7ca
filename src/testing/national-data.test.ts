import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CertificateAuthority, initAuthority } from '../ca/index.js';
import { isFacilityNumber } from '../policy/index.js';
import { repositories } from '../store/index.js';
import { runCli } from '../cli/run.js';
import { STORE_TARGETS, tempDir } from './stores.js';
import { needPeer } from './peers.js';
import { certificatePool, generateNationalData, generateFacilities, generatedSerial, POOL_FACILITY, REASON_NAMES } from './national-data.js';

const PASSPHRASE = 'national-data-test';

test('generated facility numbers are valid 医療機関番号, unique, from every prefecture by population', () => {
  const fs = generateFacilities(5000, 7);
  assert.equal(new Set(fs.map((f) => f.number)).size, fs.length);
  for (const f of fs) assert.ok(isFacilityNumber(f.number), f.number);
  assert.ok(!fs.some((f) => f.number === POOL_FACILITY), 'the pool facility number is never generated');
  const tokyo = fs.filter((f) => f.number.startsWith('13')).length;
  const tottori = fs.filter((f) => f.number.startsWith('31')).length;
  assert.ok(tokyo > 5 * tottori, `Tokyo ${tokyo} vs Tottori ${tottori}`);
  assert.deepEqual(generateFacilities(50, 7), fs.slice(0, 50), 'the same seed gives the same facilities');
});

test('generated serials are unique and in the issued form (9 bytes, positive)', () => {
  const serials = Array.from({ length: 20_000 }, (_, i) => generatedSerial(i, 3));
  assert.equal(new Set(serials).size, serials.length);
  for (const s of serials.slice(0, 100)) assert.match(s, /^5e[0-9a-f]{16}$/);
});

for (const target of STORE_TARGETS) {
  describe(`national data on ${target.name}`, () => {
    test('a small data set is valid: facility check digits, unique serials, revoked rows with reasons, renewal lineage, feed and CRL agree', async (t) => {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
      const url = await target.fresh();
      const home = join(tempDir(), 'home');
      await initAuthority({ home, passphrase: PASSPHRASE, ...(url ? { db: url } : {}) });
      const ca = await CertificateAuthority.open({ home });
      try {
        await ca.unlock(PASSPHRASE);
        const pool = await certificatePool(ca, 2);
        const now = new Date();
        const summary = await generateNationalData(ca.db, { facilities: 200, certificates: 1000, pool, now, seed: 5 });
        const db = ca.db;

        const facilities = await db.all<{ number: string }>('SELECT number FROM facilities WHERE number <> ?', [POOL_FACILITY]);
        assert.equal(facilities.length, 200);
        for (const f of facilities) assert.ok(isFacilityNumber(f.number), `facility number ${f.number} passes the check digit`);

        const rows = await db.all<{ serial: string; status: string; revoked_at: string | null; revocation_reason: number | null; superseded_by: string | null; renewed_from: string | null; revoke_due_at: string | null; not_after: string; der: Buffer | null; facility_number: string }>(
          'SELECT serial, status, revoked_at, revocation_reason, superseded_by, renewed_from, revoke_due_at, not_after, der, facility_number FROM certificates WHERE facility_number <> ?',
          [POOL_FACILITY],
        );
        assert.equal(rows.length, 1000);
        assert.equal(new Set(rows.map((r) => r.serial)).size, 1000, 'serials are unique');
        const bySerial = new Map(rows.map((r) => [r.serial, r]));
        const revoked = rows.filter((r) => r.status === 'revoked');
        assert.equal(revoked.length, summary.certificates.revoked);
        assert.ok(revoked.length > 0 && revoked.length < 400, `${revoked.length} revoked`);
        for (const r of revoked) {
          assert.ok(r.revoked_at && !Number.isNaN(Date.parse(r.revoked_at)), `${r.serial} has a revocation time`);
          assert.ok(r.revocation_reason !== null && REASON_NAMES[r.revocation_reason] !== undefined, `${r.serial} has an RFC 5280 reason`);
          assert.ok(Date.parse(r.revoked_at) <= now.getTime(), 'revoked in the past');
        }
        const reasons = new Set(revoked.map((r) => r.revocation_reason));
        assert.ok(reasons.has(4) && reasons.size >= 3, `several reasons: ${[...reasons].join(',')}`);
        for (const r of rows.filter((x) => x.superseded_by)) {
          const next = bySerial.get(r.superseded_by!);
          assert.ok(next, `${r.serial}'s successor exists`);
          assert.equal(next.renewed_from, r.serial, 'the successor names what it renewed');
          assert.equal(next.facility_number, r.facility_number);
          assert.ok(r.revoke_due_at, 'a superseded certificate has a due time');
          assert.ok(r.status === 'revoked' ? r.revocation_reason === 4 : Date.parse(r.revoke_due_at) > now.getTime(), 'revoked as superseded once due, else still due');
        }
        assert.ok(rows.some((r) => r.status === 'issued' && Date.parse(r.not_after) < now.getTime()), 'some certificates are expired');
        assert.ok(rows.every((r) => r.der && r.der.length > 200), 'every row carries a DER certificate');

        // The gateway's feed sees every revocation, in a snapshot and by following from 0.
        const feed = repositories(db).feed;
        assert.equal((await feed.snapshot()).revoked.length, summary.certificates.revoked);
        assert.equal((await feed.changesAfter(0)).revoked.length, summary.certificates.revoked);
        assert.equal((await feed.snapshot()).due.length, summary.certificates.supersededPending);
        // The CA signs a CRL of the unexpired revoked ones.
        const crl = await ca.crl('test');
        assert.equal(crl.entries, summary.certificates.revokedUnexpired);
        // `cert list` (text, written page by page) shows every row once, whole or by status.
        const list = async (...args: string[]) => {
          let out = '';
          const code = await runCli(['cert', 'list', '--home', home, ...args], { stdout: (s) => void (out += s.endsWith('\n') ? s : `${s}\n`), stderr: () => undefined, env: {}, isTTY: false });
          assert.equal(code, 0);
          return out.split('\n').filter(Boolean);
        };
        const total = Number((await db.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM certificates'))?.n);
        const all = await list();
        assert.equal(all.length, total);
        assert.equal(new Set(all.map((l) => l.split(/\s+/)[0])).size, total, 'no row twice');
        assert.equal((await list('--status', 'revoked')).length, summary.certificates.revoked);
      } finally {
        await ca.close();
      }
    });
  });
}
