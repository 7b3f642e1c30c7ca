/**
 * Regression: one certificate renewed itself over EST simplereenroll 137
 * times in seconds, each copy valid two years, so revoking a stolen
 * certificate did not stop a thief who renewed first. Renewal is now
 * bounded (a window before expiry, once per certificate, a daily cap per
 * facility), the renewed certificate is superseded (revoked after the
 * overlap, seen by OCSP, the CRL and the gateway), and an EST code made for
 * a device yields that device's certificate. Real curl + openssl over HTTPS.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { needCommand } from '../testing/peers.js';
import { runPeer as run, startTestEnrollment, TEST_FACILITY, TEST_PASSPHRASE, type TestEnrollment } from '../testing/enrollment-server.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { CertificateAuthority, Enrollment, renewalOpensAt, type RenewalConfig } from '../ca/index.js';
import { jsonLogger, openGateway, parseGatewayConfig } from '../gateway/index.js';
import { echoUpstream } from '../testing/gateway-fixture.js';
import { repositories } from '../store/index.js';

const DAY = 86_400_000;
// openssl prints a warning line before the status when the CA's (moved) clock makes the response "not yet valid".
const OCSP_GOOD = /(: |\n)good\n/;
const OCSP_REVOKED = /(: |\n)revoked\n/;
const HOUR = 3_600_000;

/** A CA whose clock the test moves (the certificates' own validity is checked against it by the CA). */
async function start(renewal: Partial<RenewalConfig> = {}, db?: string) {
  const clock = { offset: 0 };
  const t = await startTestEnrollment({ now: () => new Date(Date.now() + clock.offset), renewal, rateLimit: { attempts: 1000 }, ...(db ? { db } : {}) });
  const dir = tempDir('sekisho-renew-');
  return { t, clock, dir, ...peers(t, dir) };
}

function peers(t: TestEnrollment, dir: string) {
  const portal = t.url.replace(/\/$/, '');
  let n = 0;
  const curl = (args: string[], input?: string) => run('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', '--cacert', t.rootFile, ...args], input);
  const status = (r: { stdout: string }) => Number(r.stdout.trim().split('\n').pop());
  const body = (r: { stdout: string }) => r.stdout.trim().split('\n').slice(0, -1).join('\n');
  /** A new key and a DER CSR with `subject`; returns the file names. */
  async function keyAndCsr(subject: string): Promise<{ key: string; csr: string }> {
    const base = join(dir, `k${++n}`);
    const r = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-subj', subject, '-utf8', '-outform', 'DER', '-out', `${base}.csr`]);
    assert.equal(r.status, 0, r.stderr);
    return { key: `${base}.key`, csr: `${base}.csr` };
  }
  /** The base64 PKCS#7 answer as a PEM file. */
  async function savePkcs7(b64: string): Promise<string> {
    const file = join(dir, `c${++n}.pem`);
    const p = await run('bash', ['-c', `base64 -d | openssl pkcs7 -inform DER -print_certs -out "${file}"`], b64);
    assert.equal(p.status, 0, p.stderr);
    return file;
  }
  /** simpleenroll with an EST code; returns the certificate file and its key. */
  async function enroll(creds: { requestId: string; referenceId: string }, subject = '/CN=device'): Promise<{ cert: string; key: string }> {
    const k = await keyAndCsr(subject);
    const r = await curl(['-u', `${creds.requestId}:${creds.referenceId}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', '@-', `${portal}/.well-known/est/simpleenroll`], readFileSync(k.csr).toString('base64'));
    assert.equal(status(r), 200, r.stdout);
    return { cert: await savePkcs7(body(r)), key: k.key };
  }
  /** simplereenroll with the current certificate over mutual TLS (a new key, the same subject). */
  async function reenroll(current: { cert: string; key: string }): Promise<{ status: number; text: string; headers: string; next?: { cert: string; key: string } }> {
    const base = join(dir, `r${++n}`);
    const g = await run('bash', ['-c', `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${base}.key" && openssl x509 -x509toreq -in "${current.cert}" -key "${base}.key" | openssl req -outform DER -out "${base}.csr"`]);
    assert.equal(g.status, 0, g.stderr);
    const r = await curl(['-D', `${base}.headers`, '--cert', current.cert, '--key', current.key, '-H', 'Content-Type: application/pkcs10', '--data-binary', '@-', `${portal}/.well-known/est/simplereenroll`], readFileSync(`${base}.csr`).toString('base64'));
    const s = status(r);
    return { status: s, text: body(r), headers: readFileSync(`${base}.headers`, 'utf8'), ...(s === 200 ? { next: { cert: await savePkcs7(body(r)), key: `${base}.key` } } : {}) };
  }
  const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;
  const ocsp = (cert: string) => run('openssl', ['ocsp', '-issuer', t.chainFile, '-cert', cert, '-CAfile', t.rootFile, '-url', `${portal}/ocsp`]);
  return { portal, curl, status, keyAndCsr, enroll, reenroll, serialOf, ocsp };
}

const code = (t: TestEnrollment, deviceName?: string) => t.notice({ kind: 'est-code', ...(deviceName ? { deviceName } : {}) });

describe('EST renewal cannot multiply a stolen certificate', () => {
  test('renewal before the window opens is refused (RENEWAL_TOO_EARLY, with the date it opens) and issues nothing', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    const s = await start();
    try {
      const a = await s.enroll(await code(s.t));
      const before = (await s.t.ca.listCertificates()).length;
      const r = await s.reenroll(a);
      assert.equal(r.status, 409, r.text);
      const view = new X509Certificate(readFileSync(a.cert));
      const opens = renewalOpensAt(new Date(view.validFrom), new Date(view.validTo), 33);
      assert.match(r.text, /RENEWAL_TOO_EARLY: renewal of this certificate opens on /);
      assert.ok(r.text.includes(opens.toISOString().slice(0, 10)), r.text);
      assert.equal((await s.t.ca.listCertificates()).length, before, 'nothing was reserved or issued');
      // One second before the window: still refused; inside it: renewed.
      s.clock.offset = opens.getTime() - Date.now() - 5_000;
      assert.equal((await s.reenroll(a)).status, 409);
      s.clock.offset = opens.getTime() - Date.now() + 5_000;
      assert.equal((await s.reenroll(a)).status, 200);
      const audit = await s.t.ca.audit.verify();
      assert.deepEqual(audit.problems, []);
    } finally {
      await s.t.close();
    }
  });

  for (const target of STORE_TARGETS) {
    test(`a certificate renews once: a second renewal, even concurrent (the 137-copies defect), is refused; the successor waits for its own window (${target.name})`, { skip: !target.available && 'no PostgreSQL (SEKISHO_TEST_POSTGRES_URL)' }, async (tc) => {
      if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
      const s = await start({}, await target.fresh());
      try {
        const a = await s.enroll(await code(s.t));
        s.clock.offset = 500 * DAY; // inside A's window (the last third of 730 days)
        const tries = await Promise.all(Array.from({ length: 8 }, () => s.reenroll(a)));
        const won = tries.filter((r) => r.status === 200);
        assert.equal(won.length, 1, tries.map((r) => `${r.status} ${r.text}`).join('\n'));
        for (const r of tries.filter((x) => x.status !== 200)) {
          assert.equal(r.status, 403, r.text);
          assert.match(r.text, /CLIENT_CERT_SUPERSEDED/);
        }
        const b = won[0]!.next!;
        const again = await s.reenroll(a);
        assert.equal(again.status, 403);
        assert.match(again.text, /CLIENT_CERT_SUPERSEDED: this certificate was already renewed \(successor /);
        // The successor's window is its own: not open right after it was issued.
        const early = await s.reenroll(b);
        assert.equal(early.status, 409, early.text);
        assert.match(early.text, /RENEWAL_TOO_EARLY/);
        // The lineage is in the store.
        const recA = await s.t.ca.certificate(s.serialOf(a.cert));
        const recB = await s.t.ca.certificate(s.serialOf(b.cert));
        assert.equal(recA?.supersededBy, recB?.serial);
        assert.equal(recB?.renewedFrom, recA?.serial);
        assert.equal((await s.t.ca.listCertificates({ facilityNumber: TEST_FACILITY.number })).filter((c) => c.renewedFrom).length, 1, 'one renewal, not eight');
      } finally {
        await s.t.close();
      }
    });
  }

  test('a renewal chain cannot run faster than the window: each link waits two thirds of its predecessor', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    const s = await start({ overlapHours: 0 });
    try {
      let current = await s.enroll(await code(s.t));
      const start0 = Date.now() + s.clock.offset;
      for (let link = 0; link < 3; link++) {
        const view = new X509Certificate(readFileSync(current.cert));
        const opens = renewalOpensAt(new Date(view.validFrom), new Date(view.validTo), 33);
        // Try every 100 days until the window opens: each early try is refused.
        let renewed: { cert: string; key: string } | undefined;
        for (let at = new Date(view.validFrom).getTime() + DAY; !renewed; at += 100 * DAY) {
          s.clock.offset = at - Date.now();
          const r = await s.reenroll(current);
          if (at < opens.getTime()) assert.equal(r.status, 409, `link ${link} renewed ${Math.round((opens.getTime() - at) / DAY)} days before its window: ${r.text}`);
          else {
            assert.equal(r.status, 200, r.text);
            renewed = r.next!;
          }
        }
        // Overlap 0: the predecessor is revoked (superseded) at once and cannot renew again.
        const old = await s.t.ca.certificate(s.serialOf(current.cert));
        assert.equal(old?.status, 'revoked');
        assert.equal(old?.revocationReason, 4);
        assert.equal((await s.reenroll(current)).status, 403);
        current = renewed;
      }
      const elapsed = Date.now() + s.clock.offset - start0;
      assert.ok(elapsed >= 3 * Math.floor(730 * 0.67) * DAY, `three renewals took ${Math.round(elapsed / DAY)} days`);
    } finally {
      await s.t.close();
    }
  });

  test('the renewed certificate is revoked (superseded) after the overlap, across a restart, and OCSP, the CRL and the gateway see it', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    // Window 100%: renewal opens at once, so the certificates stay within their real validity for the gateway.
    const s = await start({ windowPercent: 100, overlapHours: 24 });
    const upstream = await echoUpstream();
    const cfg = parseGatewayConfig({
      home: s.t.home,
      admin: '127.0.0.1:0',
      listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${upstream.port}`, allow: { anyone: true } }] }],
    });
    const gw = await openGateway(cfg, { passphrase: async () => TEST_PASSPHRASE, log: jsonLogger('error', () => undefined), watch: false });
    try {
      const gwPort = gw.gateway.addresses()[0]!.port;
      const throughGateway = async (c: { cert: string; key: string }) => {
        const withChain = `${c.cert}.chain.pem`;
        writeFileSync(withChain, readFileSync(c.cert, 'utf8') + readFileSync(s.t.chainFile, 'utf8'));
        const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', s.t.chainFile, '--cert', withChain, '--key', c.key, `https://localhost:${gwPort}/`]);
        return Number(r.stdout.trim());
      };
      const a = await s.enroll(await code(s.t));
      const serialA = s.serialOf(a.cert);
      assert.equal(await throughGateway(a), 200);
      const r = await s.reenroll(a);
      assert.equal(r.status, 200, r.text);
      const b = r.next!;

      // During the overlap both work, and A is good everywhere.
      s.clock.offset = 23 * HOUR;
      assert.match((await s.ocsp(a.cert)).stdout, OCSP_GOOD);
      assert.equal(await throughGateway(a), 200);
      assert.equal(await throughGateway(b), 200);

      // After the overlap, a CA process that was not running during it (a new one on the same home: a restart) revokes it when it makes a CRL.
      const restarted = await CertificateAuthority.open({ home: s.t.home, now: () => new Date(Date.now() + 25 * HOUR) });
      try {
        await restarted.unlock(TEST_PASSPHRASE);
        const crl = await restarted.crl('test');
        const crlFile = join(s.dir, 'after.crl');
        writeFileSync(crlFile, crl.der);
        const text = await run('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']);
        assert.match(text.stdout, new RegExp(`Serial Number: ${serialA}[\\s\\S]*?CRL Reason Code:\\s*Superseded`, 'i'));
      } finally {
        await restarted.close();
      }
      const recA = await s.t.ca.certificate(serialA);
      assert.equal(recA?.status, 'revoked');
      assert.equal(recA?.revocationReason, 4);
      const events = await s.t.ca.audit.list();
      const recSerial = recA!.serial;
      assert.ok(events.some((e) => e.action === 'certificate.renewed' && e.subject === recSerial), 'the renewal is audited');
      const revokedEvent = events.find((e) => e.action === 'certificate.revoked' && e.subject === recSerial);
      assert.equal(revokedEvent?.details?.reason, 'superseded');
      assert.ok(revokedEvent?.details?.supersededBy, 'the revocation names the successor');

      // OCSP (the web server's, openssl as the client) says revoked, reason superseded; B is good.
      s.clock.offset = 25 * HOUR;
      const o = await s.ocsp(a.cert);
      assert.match(o.stdout, OCSP_REVOKED);
      assert.match(o.stdout, /Reason: superseded/);
      assert.match((await s.ocsp(b.cert)).stdout, OCSP_GOOD);
      // The web server's CRL lists it too.
      const crl = await run('curl', ['-s', '--fail', '--cacert', s.t.rootFile, '-o', join(s.dir, 'web.crl'), `${s.portal}/crl`]);
      assert.equal(crl.status, 0, crl.stderr);
      const webText = await run('openssl', ['crl', '-inform', 'DER', '-in', join(s.dir, 'web.crl'), '-noout', '-text']);
      assert.match(webText.stdout, new RegExp(`Serial Number: ${serialA}`, 'i'));
      // The gateway (following the store) refuses A and lets B through.
      let seen = 0;
      for (let i = 0; i < 60 && (seen = await throughGateway(a)) === 200; i++) await new Promise((res) => setTimeout(res, 500));
      assert.notEqual(seen, 200, 'the gateway still lets the superseded certificate through');
      assert.equal(await throughGateway(b), 200);
      assert.deepEqual((await s.t.ca.audit.verify()).problems, []);
    } finally {
      await gw.close(1000);
      upstream.server.close();
      await s.t.close();
    }
  });

  test('a renewal claim abandoned mid-way (the process died) is released after STALE_CLAIM_MS, so the facility is not locked out; a fresh one still blocks', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    const s = await start({ windowPercent: 100 });
    try {
      const a = await s.enroll(await code(s.t));
      const serial = s.serialOf(a.cert).toLowerCase();
      const certs = repositories(s.t.ca.db).certificates;
      // A claim made just now and never finished: another renewal is under way, so this one waits.
      assert.ok(await certs.claimRenewal(serial, new Date().toISOString()));
      const blocked = await s.reenroll(a);
      assert.equal(blocked.status, 403, blocked.text);
      assert.match(blocked.text, /CLIENT_CERT_SUPERSEDED/);
      // Eleven minutes later nothing has completed it: the claim is taken as abandoned and released.
      s.clock.offset = 11 * 60_000;
      const renewed = await s.reenroll(a);
      assert.equal(renewed.status, 200, renewed.text);
      const events = await s.t.ca.audit.list({ afterSeq: 0, limit: 10_000 });
      assert.ok(events.some((e) => e.action === 'certificate.renewal-released' && e.subject === serial), 'the release is audited');
    } finally {
      await s.t.close();
    }
  });

  test('regression: a superseded certificate revoked late (the CA was not running at its due time) is revoked as of its due time, in OCSP before and after the run and in the CRL', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    // Before, OCSP answered the due time until the periodic run recorded the revocation, then the time of that run,
    // which the CRL carried too: a CA down for a day made the certificate valid for that day in its CRL.
    const s = await start({ windowPercent: 100, overlapHours: 1 });
    try {
      const a = await s.enroll(await code(s.t));
      const serialA = s.serialOf(a.cert);
      assert.equal((await s.reenroll(a)).status, 200);
      const due = (await s.t.ca.certificate(serialA))!.revokeDueAt!;
      const dueSecond = Math.floor(Date.parse(due) / 1000) * 1000;
      s.clock.offset = 5 * HOUR;
      const revocationTime = (text: string, label: RegExp) => {
        const m = label.exec(text);
        assert.ok(m, text);
        return Date.parse(m[1]!);
      };
      const first = await s.ocsp(a.cert);
      assert.match(first.stdout, OCSP_REVOKED);
      assert.equal(revocationTime(first.stdout, /Revocation Time: (.+)/), dueSecond, 'OCSP (before the run)');
      await s.t.ca.applyDueRevocations();
      assert.equal((await s.t.ca.certificate(serialA))!.revokedAt, due, 'the stored revocation time');
      const after = await s.ocsp(a.cert);
      assert.equal(revocationTime(after.stdout, /Revocation Time: (.+)/), dueSecond, 'OCSP (after the run)');
      const crlFile = join(s.dir, 'late.crl');
      const fetched = await run('curl', ['-s', '--fail', '--cacert', s.t.rootFile, '-o', crlFile, `${s.portal}/crl`]);
      assert.equal(fetched.status, 0, fetched.stderr);
      const text = await run('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']);
      assert.equal(revocationTime(text.stdout, new RegExp(`Serial Number: ${serialA}\\s+Revocation Date: (.+)`, 'i')), dueSecond, 'the CRL');
    } finally {
      await s.t.close();
    }
  });

  test('with overlap 0 the renewed certificate is revoked at once, audited as superseded', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    const s = await start({ windowPercent: 100, overlapHours: 0 });
    try {
      const a = await s.enroll(await code(s.t));
      const r = await s.reenroll(a);
      assert.equal(r.status, 200, r.text);
      assert.match((await s.ocsp(a.cert)).stdout, /(: |\n)revoked\n[\s\S]*Reason: superseded/);
      const again = await s.reenroll(a);
      assert.equal(again.status, 403);
      assert.match(again.text, /CLIENT_CERT_REVOKED/);
    } finally {
      await s.t.close();
    }
  });

  for (const target of STORE_TARGETS) {
    test(`a facility renews at most maxPerFacilityPerDay times a day (RENEWAL_RATE_LIMITED with Retry-After) (${target.name})`, { skip: !target.available && 'no PostgreSQL (SEKISHO_TEST_POSTGRES_URL)' }, async (tc) => {
      if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
      const s = await start({ windowPercent: 100, maxPerFacilityPerDay: 2 }, await target.fresh());
      try {
        const certs = [];
        for (let i = 0; i < 3; i++) certs.push(await s.enroll(await code(s.t)));
        assert.equal((await s.reenroll(certs[0]!)).status, 200);
        assert.equal((await s.reenroll(certs[1]!)).status, 200);
        const third = await s.reenroll(certs[2]!);
        assert.equal(third.status, 429, third.text);
        assert.match(third.text, /RENEWAL_RATE_LIMITED/);
        const retry = Number(/^retry-after: (\d+)/im.exec(third.headers)?.[1]);
        assert.ok(retry > 23 * 3600 && retry <= 24 * 3600, third.headers);
        // Refused before the claim: the certificate can renew the next day.
        s.clock.offset = DAY + HOUR;
        assert.equal((await s.reenroll(certs[2]!)).status, 200);
      } finally {
        await s.t.close();
      }
    });
  }

  test('an EST code made for a device yields that device certificate, even when the CSR asks for the facility subject', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    const s = await start();
    try {
      const facilitySubject = `/C=JP/O=${TEST_FACILITY.name}/CN=${TEST_FACILITY.number}`;
      for (const subject of [facilitySubject, '/CN=device']) {
        const c = await code(s.t, 'CT scanner-1');
        const got = await s.enroll(c, subject);
        const view = new X509Certificate(readFileSync(got.cert));
        assert.equal(view.subject, `C=JP\nO=${TEST_FACILITY.name}\nOU=${TEST_FACILITY.number}\nCN=CT scanner-1`, `CSR ${subject}`);
        const rec = await s.t.ca.certificate(view.serialNumber);
        assert.equal(rec?.profile, 'device');
      }
      // The portal path (PKCS#12 made by the CA) honours it too.
      const c = await code(s.t, 'pump-7');
      const issued = await new Enrollment(s.t.ca).withPkcs12({ requestId: c.requestId, referenceId: c.referenceId }, { client: 'test', via: 'portal' }, { password: 'long enough password' });
      assert.equal(issued.view.subject.find((x) => x.type === 'CN')?.value, 'pump-7');
      assert.equal((await s.t.ca.certificate(issued.serial))?.profile, 'device');
      // A code without --device still yields the facility's own certificate.
      const own = await s.enroll(await code(s.t));
      assert.equal(new X509Certificate(readFileSync(own.cert)).subject, `C=JP\nO=${TEST_FACILITY.name}\nCN=${TEST_FACILITY.number}`);
      // A bad device name is refused when the code is made, not when it is used.
      await assert.rejects(() => code(s.t, '../etc'), (e: unknown) => (e as { code?: string }).code === 'DEVICE_NAME_INVALID');
      const listed = (await s.t.ca.notices.list()).find((n) => n.id === c.id);
      assert.equal(listed?.deviceName, 'pump-7');
    } finally {
      await s.t.close();
    }
  });
});
