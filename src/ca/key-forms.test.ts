/**
 * The CA certifies only keys every verifier accepts (key-policy.ts), at every
 * door a key comes in by, and the lint refuses such a key again even when
 * intake is bypassed. RSA server certificates carry keyEncipherment, which
 * NSS requires.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Enrollment } from './enrollment.js';
import { CertificateIssuer } from './issuer.js';
import { certificateToPem, parseCsr, type VerifiedCsr } from '../pki/index.js';
import { readKeyFile } from './key-file.js';
import { CERTIFICATE_PROFILES, issuanceNotBefore } from '../policy/index.js';
import { SekishoError } from '../errors/index.js';
import { needCommand, run } from '../testing/peers.js';
import { fetchTls, startTestEnrollment, TEST_FACILITY, TEST_PASSPHRASE, type TestEnrollment } from '../testing/enrollment-server.js';

const isCode = (code: string) => (e: unknown) => e instanceof SekishoError && e.code === code;

function openssl(args: string[]): void {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CSR for a key openssl made with `make` (the key file is its last argument). */
function csrFor(dir: string, name: string, make: string[]): VerifiedCsr & { pem: string } {
  const key = join(dir, `${name}.key`);
  openssl([...make, '-out', key]);
  openssl(['req', '-new', '-key', key, '-out', join(dir, `${name}.csr`), '-subj', `/C=JP/CN=${name}`]);
  const pem = readFileSync(join(dir, `${name}.csr`), 'utf8');
  return { ...parseCsr(pem), pem };
}

const BAD_KEYS = [
  { name: 'explicit-ec', make: ['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout'], code: 'KEY_EC_EXPLICIT_PARAMETERS' },
  { name: 'rsa-e3', make: ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_pubexp:3'], code: 'KEY_RSA_EXPONENT' },
] as const;

describe('keys the CA certifies', () => {
  let t: TestEnrollment;
  before(async () => {
    t = await startTestEnrollment({ rateLimit: { attempts: 1000 } });
  });
  after(async () => {
    await t.close();
  });

  for (const bad of BAD_KEYS) {
    test(`regression: a CSR with ${bad.name} is refused with ${bad.code} at the portal, at EST enrollment and at "cert issue", and the notice stays unspent`, async (tc) => {
      if (!needCommand(tc, 'openssl')) return;
      const csr = csrFor(t.dir, bad.name, [...bad.make]);
      const before = (await t.ca.listCertificates()).length;
      // Portal JSON API (a browser-made key).
      const n = await t.notice();
      const r = await fetchTls(new URL('/api/enroll-csr', t.url).href, {
        ca: t.rootPem,
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ requestId: n.requestId, referenceId: n.referenceId, csr: csr.pem }),
      });
      assert.equal(r.status, 400, r.text);
      assert.equal((JSON.parse(r.text) as { error: { code: string } }).error.code, bad.code);
      // EST (a device's key, with a one-time code) takes the same path as the portal.
      const code = await t.notice({ kind: 'est-code' });
      await assert.rejects(new Enrollment(t.ca).withCsr(code, { client: '127.0.0.1', via: 'est' }, csr), isCode(bad.code));
      // The operator's "cert issue --csr" (and bulk) go through the registration decision.
      await assert.rejects(t.ca.issue({ profile: 'facility', facilityNumber: TEST_FACILITY.number, publicKey: csr.publicKey, spki: csr.spki, via: 'csr', actor: 'test' }), isCode(bad.code));
      assert.equal((await t.ca.listCertificates()).length, before, 'nothing reserved or issued');
      const states = (await t.ca.notices.list({ facilityNumber: TEST_FACILITY.number })).filter((x) => x.id === n.id || x.id === code.id).map((x) => x.state);
      assert.deepEqual(states, ['active', 'active']);
    });

    test(`regression: the lint refuses a certificate for a ${bad.name} key even when intake is bypassed`, async (tc) => {
      if (!needCommand(tc, 'openssl')) return;
      const csr = csrFor(t.dir, `${bad.name}-lint`, [...bad.make]);
      const issuer = new CertificateIssuer({ db: t.ca.db, audit: t.ca.audit });
      const notBefore = issuanceNotBefore(new Date());
      assert.throws(
        () =>
          issuer.lint(
            {
              profile: CERTIFICATE_PROFILES.facility,
              subject: [{ type: 'C', value: 'JP' }, { type: 'O', value: TEST_FACILITY.name }, { type: 'CN', value: TEST_FACILITY.number }],
              publicKey: csr.publicKey,
              spki: csr.spki,
              notBefore,
              notAfter: new Date(notBefore.getTime() + 86_400_000),
              via: 'test',
              actor: 'test',
            },
            t.ca.issuingIdentity(),
          ),
        (e: unknown) => isCode('CERTIFICATE_LINT_FAILED')(e) && new RegExp(`subject_key: ${bad.code}`).test((e as Error).message),
      );
    });
  }

  test('RSA server certificates carry digitalSignature and keyEncipherment (NSS accepts them for SSL server use); EC ones digitalSignature only', async (tc) => {
    const rsa = await t.ca.issueWithNewKey({ profile: 'server', hosts: ['rsa.example'], keyType: 'rsa-2048', via: 'test', actor: 'test' });
    assert.deepEqual(rsa.view.extensions.keyUsage?.sort(), ['digitalSignature', 'keyEncipherment']);
    const ec = await t.ca.issueWithNewKey({ profile: 'server', hosts: ['ec.example'], keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
    assert.deepEqual(ec.view.extensions.keyUsage, ['digitalSignature']);
    const facility = await t.ca.issueWithNewKey({ profile: 'facility', facilityNumber: TEST_FACILITY.number, keyType: 'rsa-2048', via: 'test', actor: 'test' });
    assert.deepEqual(facility.view.extensions.keyUsage, ['digitalSignature'], 'client certificates do not get keyEncipherment');
    if (!needCommand(tc, 'vfychain') || !needCommand(tc, 'openssl')) return;
    const files = { root: join(t.dir, 'nss-root.der'), issuing: join(t.dir, 'nss-issuing.der'), rsa: join(t.dir, 'nss-rsa.der'), ec: join(t.dir, 'nss-ec.der') };
    writeFileSync(files.root, t.ca.rootDer);
    writeFileSync(files.issuing, t.ca.issuingDer);
    writeFileSync(files.rsa, rsa.der);
    writeFileSync(files.ec, ec.der);
    writeFileSync(join(t.dir, 'issuing.pem'), certificateToPem(t.ca.issuingDer));
    // -u 1: SSL server usage (NSS checks keyUsage against the key type: keyEncipherment for RSA).
    const nss = (leaf: string) => run('vfychain', ['-v', '-pp', '-u', '1', leaf, files.issuing, '-t', files.root]);
    for (const leaf of [files.rsa, files.ec]) {
      const v = nss(leaf);
      assert.equal(v.status, 0, `${leaf}: ${v.stdout}${v.stderr}`);
      assert.doesNotMatch(v.stdout + v.stderr, /Chain is bad|ERROR/);
    }
    // The old profile (RSA key, digitalSignature only), signed by openssl with the issuing key: NSS refuses it.
    const issuingKey = join(t.dir, 'nss-issuing.key');
    writeFileSync(issuingKey, (await readKeyFile(t.ca.paths.issuingKey, TEST_PASSPHRASE)).export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    writeFileSync(join(t.dir, 'old.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:old.example\n');
    openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(t.dir, 'old.key'), '-out', join(t.dir, 'old.csr'), '-subj', '/C=JP/CN=old.example']);
    openssl(['x509', '-req', '-in', join(t.dir, 'old.csr'), '-CA', join(t.dir, 'issuing.pem'), '-CAkey', issuingKey, '-set_serial', '0x1234567890abcdef', '-days', '30', '-sha256', '-extfile', join(t.dir, 'old.ext'), '-outform', 'DER', '-out', join(t.dir, 'old.der')]);
    const old = nss(join(t.dir, 'old.der'));
    assert.notEqual(old.status, 0);
    assert.match(old.stdout + old.stderr, /ERROR -8102: Certificate key usage inadequate/, "SEC_ERROR_INADEQUATE_KEY_USAGE");
  });
});
