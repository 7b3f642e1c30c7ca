/**
 * The doctor's revocation step against someone on the clinic's plain-http
 * path to the CA's OCSP responder and caIssuers address (regression: both
 * made a revoked certificate read OCSP_GOOD): an answer captured before the
 * revocation and replayed, an answer made for another request, and a CA
 * certificate of the attacker's own with an OCSP answer it signed. The real
 * responder behind the same address, which echoes the doctor's nonce, is
 * believed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, initAuthority, RevocationPublisher } from '../ca/index.js';
import { buildOcspRequest, buildOcspResponse, ocspCertId, SoftwareSigner, spkiDer } from '../pki/index.js';
import { tempDir } from '../testing/stores.js';
import { FACILITY_A } from '../testing/gateway-fixture.js';
import { revocationStep } from './doctor-steps/token.js';

const DAY = 86_400_000;
const dir = tempDir('sekisho-doctor-replay-');
let attacker: Server;
/** What the address answers: fixed bytes, or the real responder (`real`: the doctor's own request, its nonce echoed). */
let served: { ocsp?: Buffer | 'real'; issuer?: Buffer } = {};
let ca: CertificateAuthority;
let past: CertificateAuthority;
let certDer: Buffer;
let serial: string;
let oldGoodAnswer: Buffer;

const noTokenCerts = { module: {}, session: { findObjects: async () => [], getAttributes: async () => ({}) }, keyLabel: 'facility' } as never;
const target = {} as never;

before(async () => {
  attacker = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      void (async () => {
        const ocsp = served.ocsp === 'real' ? await new RevocationPublisher(ca).ocsp(Buffer.concat(parts)) : served.ocsp;
        const body = req.url === '/issuing.cer' ? served.issuer : req.url?.startsWith('/ocsp') ? ocsp : undefined;
        if (!body) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
      })();
    });
  });
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  const home = join(dir, 'home');
  await initAuthority({ home, passphrase: 'pass-phrase-12345', urls: { revocation: base }, now: () => new Date(Date.now() - 30 * DAY) });
  // Ten days ago: the certificate is issued, and its (genuine, CA-signed) OCSP "good" answer is captured on the wire.
  past = await CertificateAuthority.open({ home, now: () => new Date(Date.now() - 10 * DAY) });
  await past.unlock('pass-phrase-12345');
  await past.addFacility({ number: FACILITY_A, name: 'はこだて内科クリニック' }, 'test');
  const issued = await past.issueWithNewKey({ profile: 'facility', facilityNumber: FACILITY_A, keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
  certDer = issued.der;
  serial = issued.serial;
  oldGoodAnswer = await new RevocationPublisher(past).ocsp(buildOcspRequest(certDer, past.issuingDer));
  // Today: the key is compromised and the certificate revoked.
  ca = await CertificateAuthority.open({ home });
  await ca.unlock('pass-phrase-12345');
  await ca.revoke(serial, 'keyCompromise', 'test');
});
after(async () => {
  await past?.close();
  await ca?.close();
  attacker?.close();
});

const credential = () => ({ label: 'facility', id: Buffer.alloc(1), privateKey: 0, certificate: { handle: 0, der: certDer, notBefore: new Date(), notAfter: new Date(), subject: '', serial } }) as never;

test('the real responder behind the address: the doctor\'s nonce comes back and the certificate reads revoked', async () => {
  served = { ocsp: 'real' };
  const r = await revocationStep(noTokenCerts, credential(), target, [ca.issuingDer], 3000);
  assert.equal(r.result.code, 'CLIENT_CERT_REVOKED', r.result.message.en);
});

test('an answer made for another request (another nonce), current and genuine, is refused: OCSP_RESPONSE_INVALID', async () => {
  served = { ocsp: await new RevocationPublisher(ca).ocsp(buildOcspRequest(certDer, ca.issuingDer, Buffer.alloc(16, 7))) };
  const r = await revocationStep(noTokenCerts, credential(), target, [ca.issuingDer], 3000);
  assert.equal(r.result.code, 'OCSP_RESPONSE_INVALID');
  assert.match(r.result.message.en, /nonce/);
});

test('a replayed OCSP answer ten days old (nextUpdate long past) is not taken as OCSP_GOOD for a revoked certificate', async () => {
  served = { ocsp: oldGoodAnswer };
  const r = await revocationStep(noTokenCerts, credential(), target, [ca.issuingDer], 3000);
  assert.equal(r.result.code, 'OCSP_RESPONSE_INVALID', `doctor said ${r.result.code}: ${r.result.message.en} (producedAt ${String(r.result.details?.producedAt)})`);
  assert.match(r.result.message.en, /not current/);
});

test('an issuer fetched over http (AIA caIssuers) that did not issue the certificate cannot vouch for an OCSP answer', async () => {
  // The attacker's own "CA" and an OCSP answer signed by it.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = join(dir, 'evil.key');
  const certFile = join(dir, 'evil.pem');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const o = spawnSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-out', certFile, '-subj', '/CN=Evil CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE']);
  assert.equal(o.status, 0, o.stderr.toString());
  const evilDer = Buffer.from(new X509Certificate(readFileSync(certFile)).raw);
  const now = new Date();
  served = {
    issuer: evilDer,
    ocsp: await buildOcspResponse({ signer: new SoftwareSigner(privateKey), responderSpki: spkiDer(privateKey), producedAt: now, responses: [{ certIdDer: ocspCertId(certDer, evilDer), certStatus: { status: 'good' }, thisUpdate: now, nextUpdate: new Date(now.getTime() + 3_600_000) }] }),
  };
  const r = await revocationStep(noTokenCerts, credential(), target, [], 3000);
  assert.equal(r.result.code, 'OCSP_ISSUER_UNKNOWN', `doctor said ${r.result.code}: ${r.result.message.en}`);
  // The genuine issuing CA at the same address is taken (it verifies the certificate's signature).
  served = { issuer: ca.issuingDer, ocsp: 'real' };
  assert.equal((await revocationStep(noTokenCerts, credential(), target, [], 3000)).result.code, 'CLIENT_CERT_REVOKED');
});
