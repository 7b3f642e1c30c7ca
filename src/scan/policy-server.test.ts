/**
 * sekisho end to end without the gateway: a CA made by sekisho issues a server
 * certificate and a facility certificate; a real Node TLS server takes the
 * mhlw profile's own settings (policy/tls-server-options.ts) and requires
 * client certificates from that CA, as the gateway will; the scanner, judging
 * with the same profile, finds it compliant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createServer, getCiphers, type TLSSocket } from 'node:tls';
import { CertificateAuthority, initAuthority } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { complianceProfile, tlsServerOptions } from '../policy/index.js';
import { scanServer } from './scan.js';
import { tempDir } from '../testing/stores.js';

/** The OpenSSL this Node.js links, as major.minor (3.5 for 3.5.9). */
const opensslMajorMinor = () => Number(/^(\d+\.\d+)/.exec(process.versions.openssl)?.[1] ?? 0);

test('a Node TLS server on the mhlw profile settings, requiring sekisho facility certificates, is judged compliant', async () => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: 'policy-server-test' });
  const ca = await CertificateAuthority.open({ home });
  try {
    await ca.unlock('policy-server-test');
    await ca.addFacility({ number: '0110113719', name: 'はこだてクリニック' }, 'test');
    const server = await ca.issueWithNewKey({ profile: 'server', hosts: ['127.0.0.1', 'localhost'], keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
    const client = await ca.issueWithNewKey({ profile: 'facility', facilityNumber: '0110113719', keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
    const [issuingPem, rootPem] = ca.chain().map(certificateToPem) as [string, string];
    const profile = complianceProfile('mhlw');
    const tls = createServer(
      {
        ...tlsServerOptions(profile),
        cert: certificateToPem(server.der) + issuingPem,
        key: server.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        ca: [issuingPem, rootPem],
        requestCert: true,
        rejectUnauthorized: true,
      },
      (s: TLSSocket) => s.end('HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
    );
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    try {
      const report = await scanServer({
        target: { host: '127.0.0.1', port: (tls.address() as { port: number }).port },
        profile,
        trustAnchors: [ca.rootDer],
        clientCredential: { cert: certificateToPem(client.der) + issuingPem, key: client.privateKey.export({ type: 'pkcs8', format: 'pem' }) },
      });
      const failing = report.checks.filter((c) => c.status === 'fail');
      assert.deepEqual(failing, [], JSON.stringify(failing, null, 1));
      assert.equal(report.compliant, true);
      assert.deepEqual(report.findings.protocols.filter((p) => p.supported).map((p) => p.protocol), ['TLSv1.2', 'TLSv1.3']);
      const t13 = report.findings.protocols.find((p) => p.protocol === 'TLSv1.3')!;
      // OpenSSL 3.2 and later (Node 24 bundles 3.5) enable TLS_AES_128_CCM_8_SHA256 (a 64-bit tag) only at
      // security level 0, which no sekisho listener lowers to: the profile allows that suite, it does not require it.
      const ccm8AtDefaultLevel = getCiphers().includes('tls_aes_128_ccm_8_sha256') && opensslMajorMinor() < 3.2;
      const expected = profile.tls13SuitesListed.filter((n) => n !== 'TLS_AES_128_CCM_8_SHA256' || ccm8AtDefaultLevel);
      assert.deepEqual([...t13.suites].sort(), [...expected].sort(), 'every TLS 1.3 suite of the profile this OpenSSL offers at its default security level, CCM included');
      const status = (id: string) => report.checks.find((c) => c.check === id)?.status;
      assert.equal(status('client-certificate'), 'pass');
      assert.equal(status('certificate-chain'), 'pass');
      assert.equal(status('hsts'), 'pass');
      assert.equal(status('server-cipher-order'), 'pass');
    } finally {
      tls.close();
    }
  } finally {
    await ca.close();
  }
});
