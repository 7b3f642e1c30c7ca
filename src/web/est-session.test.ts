/**
 * EST (RFC 7030), CRL and OCSP driven by the real peers a device would use:
 * the README's curl + openssl session, run verbatim, then renewal with a
 * revoked certificate, wrong subjects, bad credentials and bad bodies.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import { needCommand } from '../testing/peers.js';
import { runPeer as run, startTestEnrollment, TEST_FACILITY, withTypo, type TestEnrollment } from '../testing/enrollment-server.js';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

function readmeSession(): string {
  const text = readFileSync(README, 'utf8');
  const m = /<!-- est-session -->\s*```sh\n([\s\S]*?)```\s*<!-- \/est-session -->/.exec(text);
  assert.ok(m, 'README.md has the EST session between <!-- est-session --> markers');
  return m[1]!;
}

function curl(args: string[], input?: string | Buffer) {
  return run('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', ...args], input);
}
const statusOf = (r: { stdout: string }) => Number(r.stdout.trim().split('\n').pop());

/** Runs the README session in a directory; returns the directory. */
export function runSession(cwd: string, env: Record<string, string>) {
  return run('bash', ['-euo', 'pipefail', '-c', `cd "${cwd}" && ${readmeSession()}`], undefined, { ...process.env, ...env });
}

describe('EST session (verbatim) and what follows it', () => {
  let t: TestEnrollment;
  before(async () => {
    // Renewal opens at once here (windowPercent 100) so the README session can renew right after enrolling.
    t = await startTestEnrollment({ rateLimit: { attempts: 1000 }, renewal: { windowPercent: 100 } });
  });
  after(async () => {
    await t.close();
  });
  const portal = () => t.url.replace(/\/$/, '');

  test('enroll, renew, then revocation shows in OCSP and the CRL and blocks renewal', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-est-'));
    writeFileSync(join(dir, 'root.pem'), t.rootPem);
    const notice = await t.notice();
    const s = await runSession(dir, { PORTAL: portal(), REQUEST_ID: notice.requestId, REFERENCE_ID: notice.referenceId });
    assert.equal(s.status, 0, `the README session failed: ${s.stderr}\n${s.stdout}`);
    assert.match(s.stdout, /device\.pem: OK/);
    assert.match(s.stdout, /renewed\.pem: OK/);

    const device = new X509Certificate(readFileSync(join(dir, 'device.pem')));
    const renewed = new X509Certificate(readFileSync(join(dir, 'renewed.pem')));
    // The subject is the registry's, never the CSR's "/CN=device".
    assert.equal(device.subject, `C=JP\nO=${TEST_FACILITY.name}\nCN=${TEST_FACILITY.number}`);
    assert.equal(renewed.subject, device.subject);
    assert.notEqual(renewed.serialNumber, device.serialNumber);
    assert.notEqual(renewed.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'), device.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'));
    // The notice counted one download (a letter allows more, each superseding the last) and the audit trail is whole.
    const [listed] = (await t.ca.notices.list()).filter((n) => n.id === notice.id);
    assert.deepEqual([listed?.state, listed?.downloads], ['active', 1]);
    assert.equal(listed?.serial?.toUpperCase(), device.serialNumber.toUpperCase());

    // OCSP (the README's command) says good, then revoked after the operator revokes.
    const ocsp = () => run('openssl', ['ocsp', '-issuer', join(dir, 'cacerts.pem'), '-cert', join(dir, 'device.pem'), '-CAfile', join(dir, 'root.pem'), '-url', `${portal()}/ocsp`]);
    let o = await ocsp();
    assert.equal(o.status, 0, o.stderr);
    assert.match(o.stdout, /device\.pem: good/);
    assert.match(o.stderr + o.stdout, /Response verify OK/);
    await t.ca.revoke(device.serialNumber, 'keyCompromise', 'operator:test');
    o = await ocsp();
    assert.match(o.stdout, /device\.pem: revoked/);
    assert.match(o.stdout, /Reason: keyCompromise/);
    // GET form of OCSP (RFC 6960 A.1) answers the same.
    const reqDer = await run('openssl', ['ocsp', '-issuer', join(dir, 'cacerts.pem'), '-cert', join(dir, 'device.pem'), '-no_nonce', '-reqout', join(dir, 'req.der')]);
    assert.equal(reqDer.status, 0, reqDer.stderr);
    const b64 = encodeURIComponent(readFileSync(join(dir, 'req.der')).toString('base64'));
    const g = await run('curl', ['-s', '--fail', '--cacert', join(dir, 'root.pem'), '-o', join(dir, 'resp.der'), `${portal()}/ocsp/${b64}`]);
    assert.equal(g.status, 0, g.stderr);
    const gr = await run('openssl', ['ocsp', '-respin', join(dir, 'resp.der'), '-issuer', join(dir, 'cacerts.pem'), '-cert', join(dir, 'device.pem'), '-CAfile', join(dir, 'root.pem')]);
    assert.match(gr.stdout, /device\.pem: revoked/);

    // The CRL lists it, and openssl refuses the certificate with the CRL.
    const crl = await run('curl', ['-s', '--fail', '--cacert', join(dir, 'root.pem'), '-o', join(dir, 'crl.pem'), `${portal()}/crl.pem`]);
    assert.equal(crl.status, 0, crl.stderr);
    const text = await run('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-noout', '-text']);
    assert.match(text.stdout, new RegExp(`Serial Number: ${device.serialNumber}`, 'i'));
    const v = await run('openssl', ['verify', '-crl_check', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'cacerts.pem'), '-CRLfile', join(dir, 'crl.pem'), join(dir, 'device.pem')]);
    assert.notEqual(v.status, 0);
    assert.match(v.stdout + v.stderr, /certificate revoked/);

    // Renewal with the revoked certificate is refused; with the renewed one it works.
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'k3.key')]);
    await run('bash', ['-c', `openssl x509 -x509toreq -in "${join(dir, 'device.pem')}" -key "${join(dir, 'k3.key')}" | openssl req -outform DER -out "${join(dir, 'k3.csr')}"`]);
    const csrB64 = readFileSync(join(dir, 'k3.csr')).toString('base64');
    const reenroll = (cert: string, key: string) =>
      curl(['--cacert', join(dir, 'root.pem'), '--cert', join(dir, cert), '--key', join(dir, key), '-H', 'Content-Type: application/pkcs10', '--data-binary', '@-', `${portal()}/.well-known/est/simplereenroll`], csrB64);
    const refused = await reenroll('device.pem', 'device.key');
    assert.equal(statusOf(refused), 403);
    assert.match(refused.stdout, /CLIENT_CERT_REVOKED/);
    const ok = await reenroll('renewed.pem', 'renewed.key');
    assert.equal(statusOf(ok), 200, ok.stdout);
  });

  test('bad credentials, bodies and subjects get the right status and change nothing', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-est-'));
    writeFileSync(join(dir, 'root.pem'), t.rootPem);
    await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.key'), '-subj', '/CN=x', '-outform', 'DER', '-out', join(dir, 'k.csr')]);
    const csr = readFileSync(join(dir, 'k.csr')).toString('base64');
    const notice = await t.notice();
    const code = await t.notice({ kind: 'est-code' });
    const enroll = (args: string[], body: string) => curl(['--cacert', join(dir, 'root.pem'), ...args, '--data-binary', '@-', `${portal()}/.well-known/est/simpleenroll`], body);
    const pkcs10 = ['-H', 'Content-Type: application/pkcs10'];
    const before = JSON.stringify(await t.ca.listCertificates());
    const cases: { name: string; args: string[]; body: string; status: number; code: string }[] = [
      { name: 'no credentials', args: pkcs10, body: csr, status: 401, code: 'EST_AUTH_REQUIRED' },
      { name: 'mistyped request ID', args: [...pkcs10, '-u', `${withTypo('request', notice.requestId)}:${notice.referenceId}`], body: csr, status: 400, code: 'NOTICE_ID_' },
      { name: 'swapped IDs', args: [...pkcs10, '-u', `${notice.referenceId}:${notice.requestId}`], body: csr, status: 400, code: 'NOTICE_IDS_SWAPPED' },
      { name: 'wrong reference ID', args: [...pkcs10, '-u', `${notice.requestId}:${code.referenceId}`], body: csr, status: 401, code: 'NOTICE_REFERENCE_WRONG' },
      { name: 'not base64', args: [...pkcs10, '-u', `${notice.requestId}:${notice.referenceId}`], body: '!!!not base64!!!', status: 400, code: 'CSR_MALFORMED' },
      { name: 'base64 of garbage', args: [...pkcs10, '-u', `${notice.requestId}:${notice.referenceId}`], body: Buffer.from('garbage garbage').toString('base64'), status: 400, code: 'CSR_MALFORMED' },
      { name: 'wrong content type', args: ['-H', 'Content-Type: text/plain', '-u', `${notice.requestId}:${notice.referenceId}`], body: csr, status: 415, code: 'CONTENT_TYPE_UNSUPPORTED' },
      { name: 'broken basic header', args: [...pkcs10, '-H', 'Authorization: Basic ***'], body: csr, status: 400, code: 'EST_AUTH_MALFORMED' },
    ];
    for (const c of cases) {
      const r = await enroll(c.args, c.body);
      assert.equal(statusOf(r), c.status, `${c.name}: ${r.stdout}`);
      assert.ok(r.stdout.includes(c.code), `${c.name}: ${r.stdout}`);
      assert.ok(!r.stdout.includes(notice.referenceId) && !r.stdout.includes(code.referenceId), `${c.name} echoed a secret`);
    }
    const unauth = await run('curl', ['-s', '-D', '-', '-o', '/dev/null', '--cacert', join(dir, 'root.pem'), ...pkcs10, '--data-binary', csr, `${portal()}/.well-known/est/simpleenroll`]);
    assert.match(unauth.stdout, /www-authenticate: Basic realm="sekisho EST"/i);
    assert.equal(JSON.stringify(await t.ca.listCertificates()), before, 'no certificate was issued or reserved');
    const states = await t.ca.notices.list();
    assert.equal(states.find((n) => n.id === notice.id)?.state, 'active');
    assert.equal(states.find((n) => n.id === notice.id)?.failures, 1, 'only the wrong reference ID counted');

    // The one-time EST code enrolls once.
    const first = await enroll([...pkcs10, '-u', `${code.requestId}:${code.referenceId}`], csr);
    assert.equal(statusOf(first), 200, first.stdout);
    const again = await enroll([...pkcs10, '-u', `${code.requestId}:${code.referenceId}`], csr);
    assert.equal(statusOf(again), 410);
    assert.match(again.stdout, /NOTICE_USED/);

    // Renewal without a client certificate, and with a subject that differs.
    const none = await curl(['--cacert', join(dir, 'root.pem'), ...pkcs10, '--data-binary', csr, `${portal()}/.well-known/est/simplereenroll`]);
    assert.equal(statusOf(none), 403);
    assert.match(none.stdout, /CLIENT_CERT_REQUIRED/);
    const issuedB64 = first.stdout.trim().split('\n').slice(0, -1).join('\n');
    const p7 = await run('bash', ['-c', `base64 -d | openssl pkcs7 -inform DER -print_certs -out "${join(dir, 'cur.pem')}"`], issuedB64);
    assert.equal(p7.status, 0, p7.stderr);
    const other = await curl(['--cacert', join(dir, 'root.pem'), '--cert', join(dir, 'cur.pem'), '--key', join(dir, 'k.key'), ...pkcs10, '--data-binary', csr, `${portal()}/.well-known/est/simplereenroll`]);
    assert.equal(statusOf(other), 400);
    assert.match(other.stdout, /REENROLL_SUBJECT_MISMATCH/);
    // regression: the holder repeats the refused renewal (39 more in one curl run): each is refused, but the
    // audit trail numbers the 1st, 2nd, 4th … of the window instead of growing a row a request.
    const url = `${portal()}/.well-known/est/simplereenroll`;
    const many = await run('curl', ['-s', '-w', '\ncode=%{http_code}\n', '--cacert', join(dir, 'root.pem'), '--cert', join(dir, 'cur.pem'), '--key', join(dir, 'k.key'), ...pkcs10, '--data-binary', csr, ...Array<string>(39).fill(url)]);
    const codes = many.stdout.split('\n').filter((l) => l.startsWith('code='));
    assert.deepEqual([codes.length, [...new Set(codes)]], [39, ['code=400']], many.stderr);
    const refusals = (await t.ca.audit.list()).filter((e) => e.action === 'certificate.reenroll' && e.reasonCode === 'REENROLL_SUBJECT_MISMATCH');
    assert.deepEqual(refusals.map((e) => e.details?.refusedInWindow), [1, 2, 4, 8, 16, 32]);

    // cacerts is the chain; an unknown operation is 404.
    const cacerts = await run('bash', ['-c', `curl -s --fail --cacert "${join(dir, 'root.pem')}" "${portal()}/.well-known/est/cacerts" | base64 -d | openssl pkcs7 -inform DER -print_certs | grep -c BEGIN`]);
    assert.equal(cacerts.stdout.trim(), '2');
    assert.equal(statusOf(await curl(['--cacert', join(dir, 'root.pem'), `${portal()}/.well-known/est/csrattrs`])), 404);
    assert.deepEqual((await t.ca.audit.verify()).problems, []);
  });
});
