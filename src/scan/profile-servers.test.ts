/**
 * Each built-in profile (high, recommended, exception, mhlw) as a real server:
 * a Node TLS server on the profile's own settings (policy/tls-server-options.ts)
 * with an RSA and an ECDSA certificate at once (as the gateway serves), judged
 * by `sekisho scan` under the same profile, and by testssl.sh. Both must find
 * exactly the protocols the profile allows and, per version, exactly the
 * profile's suites usable with that version — no more (a downgrade the profile
 * does not allow) and no fewer (clients the profile means to accept).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { CertificateAuthority, initAuthority } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { suiteByName } from '../policy/cipher-suites.js';
import { allowsLegacyHandshake, COMPLIANCE_PROFILES, complianceProfile, tlsServerOptions, type ComplianceProfile, type ComplianceProfileName, type Protocol } from '../policy/index.js';
import { scanServer } from './scan.js';
import type { ScanReport } from './report.js';
import { tempDir } from '../testing/stores.js';
import { runTestssl, testsslBinary } from '../testing/testssl.js';
import { needPeer } from '../testing/peers.js';

interface Material {
  ca: CertificateAuthority;
  rsa: { cert: string; key: string };
  ecdsa: { cert: string; key: string };
  client: { cert: string; key: string };
  anchors: string[];
}

let m: Material | undefined;

before(async () => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: 'profile-servers-test' });
  const ca = await CertificateAuthority.open({ home });
  await ca.unlock('profile-servers-test');
  await ca.addFacility({ number: '0110113719', name: 'はこだてクリニック' }, 'test');
  const [issuingPem, rootPem] = ca.chain().map(certificateToPem) as [string, string];
  const issue = async (keyType: 'rsa-2048' | 'ecdsa-p256') => {
    const s = await ca.issueWithNewKey({ profile: 'server', hosts: ['127.0.0.1', 'localhost'], keyType, via: 'test', actor: 'test' });
    return { cert: certificateToPem(s.der) + issuingPem, key: s.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
  };
  const c = await ca.issueWithNewKey({ profile: 'facility', facilityNumber: '0110113719', keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
  m = { ca, rsa: await issue('rsa-2048'), ecdsa: await issue('ecdsa-p256'), client: { cert: certificateToPem(c.der) + issuingPem, key: c.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }, anchors: [issuingPem, rootPem] };
});

after(async () => {
  await m?.ca.close();
});

async function profileServer(profile: ComplianceProfile): Promise<{ server: Server; port: number }> {
  const server = createServer(
    {
      ...tlsServerOptions(profile),
      cert: [m!.rsa.cert, m!.ecdsa.cert],
      key: [m!.rsa.key, m!.ecdsa.key],
      ca: m!.anchors,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (s: TLSSocket) => s.end('HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

const ORDER: Protocol[] = ['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * What a server on the profile's settings must negotiate per version: the
 * TLS 1.3 suites, and the listed TLS ≤ 1.2 suites that version can carry
 * (GCM and SHA-2 MACs only from TLS 1.2). CCM_8 (a 64-bit tag) exists in
 * OpenSSL 3.2 and later only at security level 0, which only a profile
 * allowing TLS 1.0/1.1 runs at.
 */
function expectedSuites(profile: ComplianceProfile): Partial<Record<Protocol, string[]>> {
  const legacy = allowsLegacyHandshake(profile);
  const ccm8 = (n: string) => legacy || !/CCM_8/.test(n);
  const out: Partial<Record<Protocol, string[]>> = {};
  for (const p of profile.protocolsAllowed) {
    if (p === 'TLSv1.3') out[p] = profile.tls13SuitesListed.filter(ccm8);
    else out[p] = profile.suitesListed.filter((n) => ccm8(n) && suiteByName(n)?.openssl && (p === 'TLSv1.2' || suiteByName(n)!.minVersion !== 'TLSv1.2'));
  }
  return out;
}

const sorted = (xs: readonly string[]) => [...xs].sort();
const supportedProtocols = (r: ScanReport) => r.findings.protocols.filter((p) => p.supported).map((p) => p.protocol).sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));

describe('every profile served as it says, judged by sekisho scan', () => {
  for (const name of COMPLIANCE_PROFILES as readonly ComplianceProfileName[]) {
    const profile = complianceProfile(name);
    const allowed = [...profile.protocolsAllowed].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));

    test(`${name}: sekisho scan finds it compliant with exactly ${allowed.join(', ')} and the profile's suites per version`, async () => {
      const { server, port } = await profileServer(profile);
      try {
        const report = await scanServer({ target: { host: '127.0.0.1', port }, profile, trustAnchors: [m!.ca.rootDer], clientCredential: m!.client });
        const failing = report.checks.filter((c) => c.status === 'fail');
        assert.deepEqual(failing, [], JSON.stringify(failing, null, 1));
        assert.equal(report.compliant, true);
        assert.deepEqual(supportedProtocols(report), allowed);
        const expected = expectedSuites(profile);
        for (const p of report.findings.protocols.filter((x) => x.supported)) assert.deepEqual(sorted(p.suites), sorted(expected[p.protocol] ?? []), `${name} ${p.protocol} suites`);
      } finally {
        server.close();
      }
    });
  }
});

/**
 * testssl.sh, one small run per distinct server setting: protocols (-p) and
 * each cipher once (-e; -E, per version, costs minutes per profile on a loaded
 * 2-core machine, and the per-version split is the scanner's test above).
 * mhlw is high plus a required client certificate, which testssl cannot
 * present: its server settings are high's (asserted), so one run judges both.
 */
describe('every profile served as it says, judged by testssl.sh', { concurrency: 2 }, () => {
  const groups = new Map<string, ComplianceProfileName[]>();
  for (const name of COMPLIANCE_PROFILES as readonly ComplianceProfileName[]) {
    const key = JSON.stringify(tlsServerOptions(complianceProfile(name)));
    groups.set(key, [...(groups.get(key) ?? []), name]);
  }
  test('mhlw and high share their server settings (one testssl run judges both)', () => {
    assert.deepEqual(tlsServerOptions(complianceProfile('mhlw')), tlsServerOptions(complianceProfile('high')));
  });
  for (const names of groups.values()) {
    const profile = complianceProfile(names[0]!);
    const allowed = [...profile.protocolsAllowed].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));
    test(`${names.join(' and ')}: testssl.sh finds exactly ${allowed.join(', ')} and the profile's suites`, { timeout: 900_000 }, async (t) => {
      if (!needPeer(t, testsslBinary() !== undefined, 'testssl.sh')) return;
      const { server, port } = await profileServer(profile);
      try {
        const theirs = await runTestssl('127.0.0.1', port, { checks: ['-p', '-e'], timeoutMs: 600_000 });
        const offered = ORDER.filter((p) => theirs.protocols[p]);
        assert.deepEqual(offered, allowed, `protocols (testssl: ${JSON.stringify(theirs.findings)})`);
        for (const name of names) {
          const expected = [...new Set(Object.values(expectedSuites(complianceProfile(name))).flat())];
          assert.deepEqual(sorted(theirs.suitesAnyProtocol), sorted(expected), `${name} suites (testssl -e)`);
        }
      } finally {
        server.close();
      }
    });
  }
});
