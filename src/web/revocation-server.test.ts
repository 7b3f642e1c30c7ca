/**
 * Revocation over plain HTTP, reached through the URLs in the certificates
 * themselves, by NSS (Firefox's library) and GnuTLS: a revoked certificate
 * reported revoked, a good one good, the issuing CA checked against the
 * root's CRL. Before, certificates pointed only to https:// (which NSS does
 * not fetch: soft-fail accepted a revoked certificate) or nowhere.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { CertificateAuthority, initAuthority, REVOCATION_PATHS } from '../ca/index.js';
import { buildOcspRequest, certificateToPem, describeCertificate, octetString, oid, readOcspResponse, sequence } from '../pki/index.js';
import { repositories } from '../store/index.js';
import { demoRevocationUrl } from '../stack/index.js';
import { startRevocationServer, type RevocationServer } from './revocation-server.js';
import { needCommand, runAsync } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';

const PASS = 'revocation-server-test';
const FACILITY = '0110113719';

function http(url: string, o: { method?: string; body?: Buffer; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('revocation over plain HTTP, through the URLs the certificates carry', () => {
  const dir = tempDir('sekisho-rev-');
  let ca: CertificateAuthority;
  let server: RevocationServer;
  let base: string;
  const files = { root: join(dir, 'root.der'), rootPem: join(dir, 'root.pem'), issuing: join(dir, 'issuing.der'), issuingPem: join(dir, 'issuing.pem'), good: join(dir, 'good.der'), goodPem: join(dir, 'good.pem'), revoked: join(dir, 'revoked.der'), revokedPem: join(dir, 'revoked.pem') };

  before(async () => {
    base = await demoRevocationUrl({ host: '127.0.0.1', port: 0 });
    const home = join(dir, 'home');
    await initAuthority({ home, passphrase: PASS, urls: { revocation: base } });
    ca = await CertificateAuthority.open({ home });
    await ca.unlock(PASS);
    await ca.addFacility({ number: FACILITY, name: 'はこだてクリニック' }, 'test');
    const order = { profile: 'facility' as const, facilityNumber: FACILITY, keyType: 'ecdsa-p256' as const, via: 'test', actor: 'test' };
    const good = await ca.issueWithNewKey(order);
    const revoked = await ca.issueWithNewKey(order);
    await ca.revoke(revoked.serial, 'keyCompromise', 'test');
    writeFileSync(files.root, ca.rootDer);
    writeFileSync(files.rootPem, certificateToPem(ca.rootDer));
    writeFileSync(files.issuing, ca.issuingDer);
    writeFileSync(files.issuingPem, certificateToPem(ca.issuingDer));
    writeFileSync(files.good, good.der);
    writeFileSync(files.goodPem, certificateToPem(good.der));
    writeFileSync(files.revoked, revoked.der);
    writeFileSync(files.revokedPem, certificateToPem(revoked.der));
    const u = new URL(base);
    server = await startRevocationServer({ authority: ca, listen: { host: u.hostname, port: Number(u.port) } });
  });
  after(async () => {
    await server?.close();
    await ca?.close();
  });

  test('every certificate points to http:// CRL, OCSP and caIssuers on the revocation listener; the issuing CA to the root CRL', () => {
    const issuing = describeCertificate(ca.issuingDer);
    assert.deepEqual(issuing.extensions.crlDistributionPoints, [`${base}${REVOCATION_PATHS.rootCrl}`]);
    assert.deepEqual(issuing.extensions.caIssuersUrls, [`${base}${REVOCATION_PATHS.rootCert}`]);
    const good = describeCertificate(readFileSync(files.good));
    assert.deepEqual(good.extensions.crlDistributionPoints, [`${base}${REVOCATION_PATHS.crl}`]);
    assert.deepEqual(good.extensions.ocspUrls, [`${base}${REVOCATION_PATHS.ocsp}`]);
    assert.deepEqual(good.extensions.caIssuersUrls, [`${base}${REVOCATION_PATHS.issuingCert}`]);
    assert.equal(describeCertificate(ca.rootDer).extensions.crlDistributionPoints, undefined, 'the root points nowhere');
  });

  test('NSS (vfychain) fetches OCSP and CRLs from the certificate: revoked is revoked, good is good, the issuing CA is checked against the root CRL', async (t) => {
    if (!needCommand(t, 'vfychain') || !needCommand(t, 'certutil')) return;
    // A database trusting the root, as Firefox's does (NSS checks the OCSP signer's chain against the database, not against -t anchors).
    mkdirSync(join(dir, 'nssdb'));
    const db = `sql:${join(dir, 'nssdb')}`;
    for (const args of [['-N', '-d', db, '--empty-password'], ['-A', '-d', db, '-n', 'sekisho-root', '-t', 'CT,C,C', '-i', files.root]]) {
      const r = await runAsync('certutil', args);
      assert.equal(r.status, 0, r.stderr);
    }
    const variants: { name: string; flags: string[] }[] = [
      { name: 'OCSP, fresh info required', flags: ['-g', 'leaf', '-h', 'requireFreshInfo', '-m', 'ocsp', '-s', 'failIfNoInfo', '-m', 'crl', '-s', 'doNotUse'] },
      { name: 'OCSP, soft-fail (the default mode)', flags: ['-g', 'leaf', '-m', 'ocsp'] },
      { name: 'CRL for the leaf and the chain (root CRL for the issuing CA)', flags: ['-g', 'leaf', '-h', 'requireFreshInfo', '-m', 'crl', '-s', 'failIfNoInfo', '-m', 'ocsp', '-s', 'doNotUse', '-g', 'chain', '-h', 'requireFreshInfo', '-m', 'crl', '-s', 'failIfNoInfo'] },
    ];
    for (const v of variants) {
      const nss = (leaf: string) => runAsync('vfychain', ['-d', db, '-v', '-pp', '-u', '0', ...v.flags, leaf, files.issuing], { timeoutMs: 60_000 });
      const good = await nss(files.good);
      assert.equal(good.status, 0, `${v.name}, good: ${good.stdout}${good.stderr}`);
      assert.match(good.stdout + good.stderr, /Chain is good/);
      const revoked = await nss(files.revoked);
      assert.notEqual(revoked.status, 0, `${v.name}, revoked: ${revoked.stdout}`);
      assert.match(revoked.stdout + revoked.stderr, /ERROR -8180: Peer's Certificate has been revoked/, `${v.name}: SEC_ERROR_REVOKED_CERTIFICATE`);
    }
  });

  test('GnuTLS ocsptool asks the responder named in the certificate: revoked is revoked, good is good', async (t) => {
    if (!needCommand(t, 'ocsptool')) return;
    const ask = (pem: string) => runAsync('ocsptool', ['--ask', '--load-cert', pem, '--load-issuer', files.issuingPem], { timeoutMs: 60_000 });
    const good = await ask(files.goodPem);
    assert.match(good.stdout, /Certificate Status: good/, good.stdout + good.stderr);
    const revoked = await ask(files.revokedPem);
    assert.match(revoked.stdout, /Certificate Status: revoked/, revoked.stdout + revoked.stderr);
  });

  test('regression: OCSP never answers good for a serial the issuing CA did not sign: the root\'s, the issuing CA\'s own, one reserved and never signed, one never issued (openssl ocsp -serial)', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    // Before, the responder looked the serial up among every stored certificate, the two CA certificates (signed by the root) among them, and said good.
    const reserved = '2a0102030405060708';
    const now = new Date().toISOString();
    assert.equal(await repositories(ca.db).certificates.reserve({ serial: reserved, profile: 'facility', facilityNumber: FACILITY, subject: 'CN=reserved', spkiSha256: '00', notBefore: now, notAfter: now, reservedAt: now }), 'reserved');
    const serialOf = (der: Buffer) => describeCertificate(der).serialHex;
    const ask = (serial: string, issuer = files.issuingPem) =>
      runAsync('openssl', ['ocsp', '-issuer', issuer, '-serial', `0x${serial}`, '-url', `${base}/ocsp`, '-CAfile', files.rootPem], { timeoutMs: 30_000 });
    const cases: [string, string][] = [
      ['the root certificate', serialOf(ca.rootDer)],
      ['the issuing CA certificate', serialOf(ca.issuingDer)],
      ['a reserved serial never signed', reserved],
      ['a serial never issued', '0102030405060708'],
    ];
    for (const [what, serial] of cases) {
      const r = await ask(serial);
      assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr + r.stdout, /Response verify OK/, what);
      assert.match(r.stdout, new RegExp(`^0x${serial}: unknown$`, 'im'), `${what}: ${r.stdout}`);
    }
    // The certificates it did sign are still answered.
    assert.match((await ask(serialOf(readFileSync(files.good)))).stdout, /: good$/m);
    assert.match((await ask(serialOf(readFileSync(files.revoked)))).stdout, /: revoked$/m);
  });

  test('regression: a responder that cannot read its store answers an OCSPResponse (internalError) that openssl reads, not a JSON problem page; the detail goes to the log only', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    // Before, the error reached the web edge's generic handler: HTTP 500 with problem JSON, which no OCSP client reads.
    const broken = await CertificateAuthority.open({ home: join(dir, 'home') });
    await broken.unlock(PASS);
    const logged: { msg: string; fields: Record<string, unknown> }[] = [];
    const s = await startRevocationServer({ authority: broken, listen: { host: '127.0.0.1', port: 0 }, errorLog: (msg, fields) => logged.push({ msg, fields }) });
    try {
      await broken.db.close();
      const r = await runAsync('openssl', ['ocsp', '-issuer', files.issuingPem, '-cert', files.goodPem, '-url', `${s.url}/ocsp`, '-CAfile', files.rootPem], { timeoutMs: 30_000 });
      assert.match(r.stdout + r.stderr, /Responder Error: internalerror \(2\)/, r.stdout + r.stderr);
      // GET (RFC 6960 A.1) alike: HTTP 200, OCSPResponse { responseStatus internalError }, not cached.
      const reqFile = join(dir, 'broken-req.der');
      assert.equal((await runAsync('openssl', ['ocsp', '-issuer', files.issuingPem, '-cert', files.goodPem, '-no_nonce', '-reqout', reqFile])).status, 0);
      const get = await http(`${s.url}/ocsp/${encodeURIComponent(readFileSync(reqFile).toString('base64'))}`);
      assert.equal(get.status, 200);
      assert.equal(get.body.toString('hex'), '30030a0102');
      assert.ok(logged.some((l) => /not open/.test(String(l.fields.detail))), JSON.stringify(logged));
      assert.ok(!logged.some((l) => JSON.stringify(l).includes(PASS)));
    } finally {
      await s.close();
      await broken.close().catch(() => undefined);
    }
  });

  test('regression: a nonce of 1 to 128 bytes is echoed; an empty or longer one is malformedRequest, not signed back (RFC 8954 / 9654)', async () => {
    // Before, any nonce was echoed in the signed answer: up to 16 KiB of bytes of the requester's choosing under the CA's key.
    const good = readFileSync(files.good);
    const post = (body: Buffer) => http(`${base}/ocsp`, { method: 'POST', body, headers: { 'Content-Type': 'application/ocsp-request' } });
    for (const n of [1, 16, 32, 128]) {
      const nonce = Buffer.alloc(n, 0x5a);
      const r = await post(buildOcspRequest(good, ca.issuingDer, nonce));
      assert.equal(readOcspResponse(r.body, good, ca.issuingDer, { nonce }).certStatus.status, 'good', `${n}-byte nonce`);
      const get = await http(`${base}/ocsp/${encodeURIComponent(buildOcspRequest(good, ca.issuingDer, nonce).toString('base64'))}`);
      assert.equal(readOcspResponse(get.body, good, ca.issuingDer, { nonce }).certStatus.status, 'good', `${n}-byte nonce (GET)`);
    }
    for (const n of [0, 129, 4000]) {
      const r = await post(buildOcspRequest(good, ca.issuingDer, Buffer.alloc(n, 0x5a)));
      assert.equal(r.status, 200);
      assert.equal(r.body.toString('hex'), '30030a0101', `${n}-byte nonce: malformedRequest`);
    }
    // The CertID is echoed too: its hashes at most 64 bytes (SHA-512), the whole at most 256.
    const certId = (nameHash: Buffer, alg = sequence(oid('2.16.840.1.101.3.4.2.3'), Buffer.from('0500', 'hex'))) =>
      sequence(sequence(sequence(sequence(sequence(alg, octetString(nameHash), octetString(Buffer.alloc(64, 1)), Buffer.from('020101', 'hex'))))));
    const largest = (await post(certId(Buffer.alloc(64, 2)))).body.toString('hex');
    assert.equal(largest.slice(8, 14), '0a0100', 'a SHA-512-sized CertID is answered (successful, unknown)');
    for (const body of [certId(Buffer.alloc(65, 2)), certId(Buffer.alloc(64, 2), sequence(oid('1.2.3.4'), octetString(Buffer.alloc(120, 7))))]) {
      assert.equal((await post(body)).body.toString('hex'), '30030a0101', 'an oversized CertID: malformedRequest');
    }
  });

  test('it serves nothing else: other paths 404, other methods 405, an oversized OCSP request 413', async () => {
    assert.equal((await http(`${base}/`)).status, 404);
    assert.equal((await http(`${base}/enroll`, { method: 'POST' })).status, 404);
    assert.equal((await http(`${base}/.well-known/est/cacerts`)).status, 404);
    assert.equal((await http(`${base}/crl`, { method: 'PUT' })).status, 405);
    assert.equal((await http(`${base}/crl`)).status, 200);
    assert.equal((await http(`${base}/root.crl`)).status, 200);
    assert.equal((await http(`${base}/ocsp`, { method: 'POST', body: Buffer.alloc(64 * 1024), headers: { 'Content-Type': 'application/ocsp-request' } })).status, 413);
  });
});
