import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import Database from 'better-sqlite3';
import { CertificateAuthority } from './authority.js';
import { initAuthority } from './init.js';
import { Enrollment } from './enrollment.js';
import { checkCharacter, generateNoticeId, NOTICE_ID_ALPHABET, noticeIdProblem, parseNoticeId } from './notice-id.js';
import { SekishoError } from '../errors/index.js';
import { buildCsr, encodeName, parseCsr, SoftwareSigner } from '../pki/index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { withTypo } from '../testing/enrollment-server.js';
import { needPeer } from '../testing/peers.js';

const PASS = 'notices-test-passphrase';
const FACILITY = '0110113719';
const DAY = 86_400_000;
const SOURCE = { client: '192.0.2.7', via: 'test' };
const code = (c: string) => (e: unknown) => e instanceof SekishoError && e.code === c;

/** A CSR for a fresh P-256 key (only its key is used). */
async function csrFor() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return parseCsr(await buildCsr(encodeName([{ type: 'CN', value: 'test' }]), new SoftwareSigner(privateKey)));
}

describe('notice IDs', () => {
  test('generated IDs are four groups of four from the alphabet and pass their own check', () => {
    for (let i = 0; i < 200; i++) {
      for (const kind of ['request', 'reference'] as const) {
        const id = generateNoticeId(kind);
        assert.match(id, new RegExp(`^([${NOTICE_ID_ALPHABET}]{4}-){3}[${NOTICE_ID_ALPHABET}]{4}$`));
        assert.equal(noticeIdProblem(kind, id), undefined);
        assert.equal(noticeIdProblem(kind, id.toLowerCase().replace(/-/g, ' ')), undefined, 'case and separators do not matter');
      }
    }
  });

  test('the alphabet has no look-alikes', () => {
    for (const c of '0O1IlZ2S5B8') assert.ok(!NOTICE_ID_ALPHABET.includes(c), c);
  });

  test('every single-character typo is caught before the server counts an attempt', () => {
    const id = generateNoticeId('request').replace(/-/g, '');
    for (let i = 0; i < id.length; i++) {
      for (const c of NOTICE_ID_ALPHABET) {
        if (c === id[i]) continue;
        const typo = id.slice(0, i) + c + id.slice(i + 1);
        assert.notEqual(noticeIdProblem('request', typo), undefined, `${typo} passed`);
      }
    }
  });

  test('most adjacent transpositions are caught (Luhn mod 26)', () => {
    let caught = 0;
    let total = 0;
    for (let n = 0; n < 50; n++) {
      const id = generateNoticeId('reference').replace(/-/g, '');
      for (let i = 0; i + 1 < id.length; i++) {
        if (id[i] === id[i + 1]) continue;
        total++;
        if (noticeIdProblem('reference', id.slice(0, i) + id[i + 1] + id[i] + id.slice(i + 2)) !== undefined) caught++;
      }
    }
    assert.ok(caught / total > 0.95, `${caught}/${total}`);
  });

  test('named problems: empty, length, characters, check, swapped', () => {
    const req = generateNoticeId('request');
    const data = req.replace(/-/g, '').slice(0, -1);
    const cases: [string, string, string][] = [
      ['empty', '', 'empty'],
      ['too short', req.slice(0, 10), 'length'],
      ['a zero', `0${req.slice(1)}`, 'characters'],
      ['wrong check', withTypo('request', data + checkCharacter('request', data)), 'check'],
      ['reference in the request field', data + checkCharacter('reference', data), 'swapped'],
    ];
    for (const [name, input, problem] of cases) {
      if (problem === 'swapped' && checkCharacter('reference', data) === checkCharacter('request', data)) continue;
      assert.equal(noticeIdProblem('request', input), problem, name);
    }
    assert.throws(() => parseNoticeId('request', 'x'.repeat(500)), code('NOTICE_ID_MISTYPED'));
  });

  test('fuzz: any string is judged without throwing anything but a typed error', () => {
    const chars = `${NOTICE_ID_ALPHABET}abc0O1l- \u3000ー\u0000\uFFFF😀`;
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(Math.random() * 24);
      let s = '';
      for (let j = 0; j < len; j++) s += chars[Math.floor(Math.random() * chars.length)];
      try {
        parseNoticeId(i % 2 ? 'request' : 'reference', s);
      } catch (e) {
        assert.ok(e instanceof SekishoError && /^NOTICE_ID/.test(e.code), `${JSON.stringify(s)}: ${String(e)}`);
      }
    }
  });
});

for (const target of STORE_TARGETS) {
  describe(`issuance notices on ${target.name}`, () => {
    async function openCa(t: import('node:test').TestContext, now: () => Date = () => new Date()) {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return undefined;
      const url = await target.fresh();
      const home = join(tempDir(), 'home');
      await initAuthority({ home, passphrase: PASS, ...(url ? { db: url } : {}) });
      const ca = await CertificateAuthority.open({ home, now });
      await ca.unlock(PASS);
      await ca.addFacility({ number: FACILITY, name: 'はこだてクリニック' }, 'test');
      return { ca, url, home };
    }

    test('IDs are stored only as hashes; a claim is single-use; attempts are audited in the chain', async (t) => {
      const o = await openCa(t);
      if (!o) return;
      const { ca } = o;
      try {
        const n = await ca.notices.create({ facilityNumber: FACILITY, maxDownloads: 1, actor: 'test' });
        assert.equal(new Date(n.expiresAt).getTime() - new Date(n.createdAt).getTime(), 180 * DAY);
        // Nothing in the store holds either ID in any spelling.
        const dump = o.url
          ? await (async () => {
              const c = new pg.Client({ connectionString: o.url });
              await c.connect();
              const r = await c.query('SELECT * FROM notices');
              const a = await c.query('SELECT * FROM audit_events');
              await c.end();
              return JSON.stringify([r.rows, a.rows]);
            })()
          : (() => {
              const db = new Database(join(o.home, 'sekisho.db'), { readonly: true });
              const s = JSON.stringify([db.prepare('SELECT * FROM notices').all(), db.prepare('SELECT * FROM audit_events').all()]);
              db.close();
              return s;
            })();
        for (const id of [n.requestId, n.referenceId]) {
          assert.ok(!dump.includes(id) && !dump.includes(id.replace(/-/g, '')), 'an ID is stored in the clear');
        }
        const claim = await ca.notices.claim(n, SOURCE);
        await assert.rejects(ca.notices.claim(n, SOURCE), code('NOTICE_IN_PROGRESS'), 'a claimed notice cannot be claimed again');
        await ca.notices.release(claim, 'TEST');
        const again = await ca.notices.claim(n, SOURCE);
        await ca.notices.complete(again, '01ab');
        await assert.rejects(ca.notices.claim(n, SOURCE), code('NOTICE_USED'));
        const events = await ca.audit.list();
        const actions = events.filter((e) => e.action.startsWith('notice.')).map((e) => `${e.action}:${e.reasonCode ?? ''}`);
        assert.deepEqual(actions, ['notice.created:', 'notice.claimed:', 'notice.attempt:NOTICE_IN_PROGRESS', 'notice.released:TEST', 'notice.claimed:', 'notice.redeemed:', 'notice.attempt:NOTICE_USED']);
        assert.ok(events.filter((e) => e.action === 'notice.attempt').every((e) => e.actor === 'client:192.0.2.7'));
        assert.deepEqual((await ca.audit.verify()).problems, []);
      } finally {
        await ca.close();
      }
    });

    test('concurrent claims of one notice: exactly one wins', async (t) => {
      const o = await openCa(t);
      if (!o) return;
      try {
        const n = await o.ca.notices.create({ facilityNumber: FACILITY, actor: 'test' });
        const results = await Promise.allSettled(Array.from({ length: 6 }, () => o.ca.notices.claim(n, SOURCE)));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        assert.ok(results.filter((r) => r.status === 'rejected').every((r) => code('NOTICE_IN_PROGRESS')((r as PromiseRejectedResult).reason)));
      } finally {
        await o.ca.close();
      }
    });

    // Re-download within the window (a clinic that forgot its certificate password): each download
    // revokes the certificate of the one before (superseded), the download after the last is refused.
    const KEY = { password: 'long-enough-password', keyType: 'ecdsa-p256' as const };
    const statusOf = async (ca: CertificateAuthority, serial: string) => {
      const r = await ca.certificate(serial);
      return `${r?.status}${r?.revocationReason !== undefined ? `:${r.revocationReason}` : ''}`;
    };

    test('a notice downloads up to its maximum, each download revoking the one before as superseded; the next is refused NOTICE_USED', async (t) => {
      const o = await openCa(t);
      if (!o) return;
      const { ca } = o;
      try {
        const n = await ca.notices.create({ facilityNumber: FACILITY, actor: 'test' });
        assert.equal(n.maxDownloads, 3, 'a letter allows three downloads by default');
        const enrollment = new Enrollment(ca);
        const got = [];
        for (let i = 1; i <= 3; i++) got.push(await enrollment.withPkcs12(n, SOURCE, KEY));
        assert.deepEqual(
          got.map((g) => ({ download: g.redemption.download, left: g.redemption.left, superseded: g.redemption.superseded?.serial })),
          [
            { download: 1, left: 2, superseded: undefined },
            { download: 2, left: 1, superseded: got[0]!.serial },
            { download: 3, left: 0, superseded: got[1]!.serial },
          ],
        );
        // RFC 5280 CRLReason superseded (4), at once.
        assert.deepEqual(await Promise.all(got.map((g) => statusOf(ca, g.serial))), ['revoked:4', 'revoked:4', 'issued']);
        await assert.rejects(enrollment.withPkcs12(n, SOURCE, KEY), (e: unknown) => code('NOTICE_USED')(e) && /all 3 of its downloads/.test((e as SekishoError).message) && /新しい通知書/.test((e as SekishoError).ja ?? ''));
        const listed = (await ca.notices.list()).find((x) => x.id === n.id)!;
        assert.deepEqual([listed.state, listed.downloads, listed.maxDownloads, listed.serial], ['used', 3, 3, got[2]!.serial]);
        assert.equal((await ca.listCertificates({ facilityNumber: FACILITY, status: 'issued' })).length, 1, 'one live certificate per notice');
        const revokedEvents = (await ca.audit.list()).filter((e) => e.action === 'certificate.revoked');
        assert.deepEqual(revokedEvents.map((e) => [e.subject, e.details?.reason, e.details?.supersededBy, e.details?.notice]), [
          [got[0]!.serial, 'superseded', got[1]!.serial, n.id],
          [got[1]!.serial, 'superseded', got[2]!.serial, n.id],
        ]);
        assert.deepEqual((await ca.audit.verify()).problems, []);

        // Single-use (maxDownloads 1): the second download is refused and nothing is revoked.
        const once = await ca.notices.create({ facilityNumber: FACILITY, maxDownloads: 1, actor: 'test' });
        const only = await enrollment.withPkcs12(once, SOURCE, KEY);
        assert.deepEqual([only.redemption.left, only.redemption.superseded], [0, undefined]);
        await assert.rejects(enrollment.withPkcs12(once, SOURCE, KEY), code('NOTICE_USED'));
        assert.equal(await statusOf(ca, only.serial), 'issued');
        // An EST code stays one-time unless made otherwise; out-of-range maxima are refused.
        assert.equal((await ca.notices.create({ facilityNumber: FACILITY, kind: 'est-code', actor: 'test' })).maxDownloads, 1);
        for (const bad of [0, 11, 1.5]) await assert.rejects(ca.notices.create({ facilityNumber: FACILITY, maxDownloads: bad, actor: 'test' }), code('NOTICE_DOWNLOADS_INVALID'));
      } finally {
        await ca.close();
      }
    });

    test('two downloads racing on the last allowed use: exactly one wins, one live certificate remains', async (t) => {
      const o = await openCa(t);
      if (!o) return;
      const { ca } = o;
      try {
        const enrollment = new Enrollment(ca);
        for (let round = 0; round < 2; round++) {
          const n = await ca.notices.create({ facilityNumber: FACILITY, maxDownloads: 2, actor: 'test' });
          const first = await enrollment.withPkcs12(n, SOURCE, KEY);
          const race = await Promise.allSettled([enrollment.withPkcs12(n, SOURCE, KEY), enrollment.withPkcs12(n, SOURCE, KEY), enrollment.withCsr(n, SOURCE, await csrFor())]);
          const won = race.filter((r) => r.status === 'fulfilled');
          assert.equal(won.length, 1, `round ${round}: ${race.map((r) => (r.status === 'rejected' ? (r.reason as SekishoError).code : 'won')).join(', ')}`);
          for (const r of race) if (r.status === 'rejected') assert.ok(code('NOTICE_IN_PROGRESS')(r.reason) || code('NOTICE_USED')(r.reason), String(r.reason));
          const winner = (won[0] as PromiseFulfilledResult<{ serial: string }>).value.serial;
          assert.equal(await statusOf(ca, first.serial), 'revoked:4');
          assert.equal(await statusOf(ca, winner), 'issued');
          const listed = (await ca.notices.list()).find((x) => x.id === n.id)!;
          assert.deepEqual([listed.state, listed.downloads, listed.serial], ['used', 2, winner]);
        }
        const live = (await ca.listCertificates({ facilityNumber: FACILITY, status: 'issued' })).length;
        assert.equal(live, 2, 'one live certificate per notice, none left over by the losers');
      } finally {
        await ca.close();
      }
    });

    test('a failure after the download was counted (the store write fails) spends no download, supersedes nothing, and leaves no live certificate', async (t) => {
      const o = await openCa(t);
      if (!o) return;
      const { ca } = o;
      try {
        const enrollment = new Enrollment(ca);
        const n = await ca.notices.create({ facilityNumber: FACILITY, actor: 'test' });
        const first = await enrollment.withPkcs12(n, SOURCE, KEY);
        // The audit event is the last write of the completing transaction: failing it rolls back the count and the revocation.
        const appendIn = ca.audit.appendIn.bind(ca.audit);
        let failed: string | undefined;
        ca.audit.appendIn = async (tx, event, at) => {
          if (event.action === 'notice.redeemed' && !failed) {
            failed = String(event.details?.serial);
            throw new Error('disk full');
          }
          return appendIn(tx, event, at);
        };
        await assert.rejects(enrollment.withPkcs12(n, SOURCE, KEY), /disk full/);
        assert.ok(failed);
        const listed = (await ca.notices.list()).find((x) => x.id === n.id)!;
        assert.deepEqual([listed.state, listed.downloads, listed.serial], ['active', 1, first.serial], 'nothing counted, the claim released');
        assert.equal(await statusOf(ca, first.serial), 'issued', 'the earlier certificate was not superseded');
        assert.match(await statusOf(ca, failed), /^revoked/, 'the certificate nobody received does not stay valid');
        // The download is still there to take.
        const second = await enrollment.withPkcs12(n, SOURCE, KEY);
        assert.deepEqual([second.redemption.download, second.redemption.superseded?.serial], [2, first.serial]);
        assert.deepEqual((await ca.audit.verify()).problems, []);
      } finally {
        await ca.close();
      }
    });

    test('wrong reference IDs still lock a notice that has downloaded; a download resets no count', async (t) => {
      const o = await openCa(t);
      if (!o) return;
      const { ca } = o;
      try {
        const enrollment = new Enrollment(ca);
        const n = await ca.notices.create({ facilityNumber: FACILITY, actor: 'test' });
        const wrong = { requestId: n.requestId, referenceId: (await ca.notices.create({ facilityNumber: FACILITY, actor: 'test' })).referenceId };
        for (let i = 0; i < 2; i++) await assert.rejects(ca.notices.claim(wrong, SOURCE), code('NOTICE_REFERENCE_WRONG'));
        await enrollment.withPkcs12(n, SOURCE, KEY);
        assert.equal((await ca.notices.list()).find((x) => x.id === n.id)?.failures, 2, 'a download does not reset wrong attempts');
        for (let i = 3; i <= 5; i++) await assert.rejects(ca.notices.claim(wrong, SOURCE), code(i < 5 ? 'NOTICE_REFERENCE_WRONG' : 'NOTICE_LOCKED'));
        await assert.rejects(enrollment.withPkcs12(n, SOURCE, KEY), code('NOTICE_LOCKED'));
        assert.equal((await ca.notices.list()).find((x) => x.id === n.id)?.state, 'locked');
      } finally {
        await ca.close();
      }
    });

    test('lock after five wrong reference IDs, unlock by the operator; expiry; revocation; handles', async (t) => {
      let now = Date.now();
      const o = await openCa(t, () => new Date(now));
      if (!o) return;
      const { ca } = o;
      try {
        const n = await ca.notices.create({ facilityNumber: FACILITY, actor: 'test' });
        const wrong = (await ca.notices.create({ facilityNumber: FACILITY, actor: 'test' })).referenceId;
        for (let i = 1; i <= 5; i++) await assert.rejects(ca.notices.claim({ requestId: n.requestId, referenceId: wrong }, SOURCE), code(i < 5 ? 'NOTICE_REFERENCE_WRONG' : 'NOTICE_LOCKED'));
        await assert.rejects(ca.notices.claim(n, SOURCE), code('NOTICE_LOCKED'));
        assert.equal((await ca.notices.list()).find((x) => x.id === n.id)?.state, 'locked');
        await assert.rejects(ca.notices.unlock('N-ZZZZ', 'op'), code('NOTICE_HANDLE_INVALID'));
        await assert.rejects(ca.notices.unlock('N-AAAAAAAA', 'op'), code('NOTICE_UNKNOWN_HANDLE'));
        const unlocked = await ca.notices.unlock(n.id.toLowerCase(), 'op');
        assert.equal(unlocked.state, 'active');
        await assert.rejects(ca.notices.unlock(n.id, 'op'), code('NOTICE_NOT_LOCKED'));

        const short = await ca.notices.create({ facilityNumber: FACILITY, validityDays: 3, actor: 'test' });
        now += 4 * DAY;
        await assert.rejects(ca.notices.claim(short, SOURCE), code('NOTICE_EXPIRED'));
        assert.equal((await ca.notices.list()).find((x) => x.id === short.id)?.state, 'expired');
        const rev = await ca.notices.create({ facilityNumber: FACILITY, actor: 'test' });
        await ca.notices.revoke(rev.id, 'op');
        await assert.rejects(ca.notices.claim(rev, SOURCE), code('NOTICE_REVOKED'));
        await assert.rejects(ca.notices.revoke(rev.id, 'op'), code('NOTICE_NOT_ACTIVE'));
        await assert.rejects(ca.notices.create({ facilityNumber: FACILITY, validityDays: 0, actor: 'test' }), code('NOTICE_DAYS_INVALID'));
        await assert.rejects(ca.notices.create({ facilityNumber: '1310000003', actor: 'test' }), code('FACILITY_UNKNOWN'));
        // A suspended facility's notice is not spent.
        await ca.setFacilityStatus(FACILITY, 'suspended', 'op');
        await assert.rejects(ca.notices.claim(n, SOURCE), code('FACILITY_SUSPENDED'));
        await ca.setFacilityStatus(FACILITY, 'active', 'op');
        // An issuance that fails after the claim releases the notice (a CA whose key is locked cannot sign).
        const locked = await CertificateAuthority.open({ home: o.home });
        try {
          await assert.rejects(new Enrollment(locked).withPkcs12(n, SOURCE, { password: 'long-enough-password' }), code('CA_LOCKED'));
        } finally {
          await locked.close();
        }
        assert.equal((await ca.notices.list()).find((x) => x.id === n.id)?.state, 'active');
        assert.ok((await ca.audit.list()).some((e) => e.action === 'notice.released' && e.reasonCode === 'CA_LOCKED'));
        // A claim that never finished (a crash) can still be revoked by the operator.
        await ca.notices.claim(n, SOURCE);
        assert.equal((await ca.notices.revoke(n.id, 'op')).state, 'revoked');
        assert.deepEqual((await ca.audit.verify()).problems, []);
      } finally {
        await ca.close();
      }
    });
  });
}
