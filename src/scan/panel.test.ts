/**
 * The scanner against a panel of real servers (nginx and openssl s_server from
 * Debian's packages): each is judged for the right reasons, and the protocols
 * and suites it accepts agree with what testssl.sh reports on the same server.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { complianceProfile, type ComplianceProfileName } from '../policy/index.js';
import { scanServer } from './scan.js';
import type { ScanReport } from './report.js';
import { PANEL, startTlsServer, type PanelName, type RunningServer } from '../testing/tls-servers.js';
import { runTestssl, testsslBinary } from '../testing/testssl.js';
import { needCommand, needPeer } from '../testing/peers.js';

interface Expectation {
  profile: ComplianceProfileName;
  compliant: boolean;
  /** Checks that must fail (exactly these). */
  failing: string[];
}

const EXPECTED: Record<PanelName, Expectation> = {
  'nginx-compliant': { profile: 'mhlw', compliant: true, failing: [] },
  'openssl-compliant': { profile: 'mhlw', compliant: true, failing: [] },
  'nginx-client-cert-handshake': { profile: 'mhlw', compliant: true, failing: [] },
  'nginx-tls11': { profile: 'high', compliant: false, failing: ['protocol-versions', 'cipher-suites-tls12'] },
  'nginx-cbc': { profile: 'high', compliant: false, failing: ['cipher-suites-tls12'] },
  'openssl-sha1-cert': { profile: 'high', compliant: false, failing: ['certificate-signature-hash'] },
  'nginx-no-client-cert': { profile: 'mhlw', compliant: false, failing: ['client-certificate'] },
  'openssl-rsa1024': { profile: 'high', compliant: false, failing: ['certificate-key-size'] },
};

async function scanPanel(server: RunningServer, profile: ComplianceProfileName): Promise<ScanReport> {
  return scanServer({
    target: { host: server.host, port: server.port },
    profile: complianceProfile(profile),
    trustAnchors: [Buffer.from(server.caPem.replace(/-----[^-]+-----|\s/g, ''), 'base64')],
    ...(server.clientCertPem && server.clientKeyPem ? { clientCredential: { cert: server.clientCertPem, key: server.clientKeyPem } } : {}),
  });
}

const protocolsOf = (r: ScanReport) => r.findings.protocols.filter((p) => p.supported).map((p) => p.protocol).sort();

describe('scanner against the panel of real servers', () => {
  for (const name of Object.keys(PANEL) as PanelName[]) {
    const config = PANEL[name];
    const expected = EXPECTED[name];
    test(`${name} (${config.purpose}): ${expected.compliant ? 'compliant' : `not compliant: ${expected.failing.join(', ')}`} under ${expected.profile}; protocols and suites as configured`, async (t) => {
      if (!needCommand(t, config.software === 'nginx' ? 'nginx' : 'openssl')) return;
      const server = await startTlsServer(config);
      try {
        const report = await scanPanel(server, expected.profile);
        const failing = report.checks.filter((c) => c.status === 'fail').map((c) => c.check).sort();
        assert.deepEqual(failing, [...expected.failing].sort(), JSON.stringify(report.checks.filter((c) => c.status === 'fail'), null, 1));
        assert.equal(report.compliant, expected.compliant);
        assert.deepEqual(protocolsOf(report), [...config.expected.protocols].sort());
        for (const p of report.findings.protocols.filter((x) => x.supported)) {
          assert.deepEqual([...p.suites].sort(), [...(config.expected.suites[p.protocol] ?? [])].sort(), `${p.protocol} suites`);
        }
      } finally {
        await server.stop();
      }
    });
  }
});

/**
 * One server per distinct TLS surface. The block above proves that the scanner
 * finds on every server exactly the protocols and suites it was configured
 * with; servers configured alike (they differ only in client authentication or
 * in the hash their certificate is signed with, which testssl's -p/-E do not
 * look at) need testssl's second opinion once, not once each.
 */
function distinctSurfaces(): { name: PanelName; alike: PanelName[] }[] {
  const bySurface = new Map<string, { name: PanelName; alike: PanelName[] }>();
  for (const name of Object.keys(PANEL) as PanelName[]) {
    const c = PANEL[name];
    const key = JSON.stringify([c.software, c.expected.protocols, c.expected.suites]);
    const seen = bySurface.get(key);
    if (seen) seen.alike.push(name);
    else bySurface.set(key, { name, alike: [] });
  }
  return [...bySurface.values()];
}

test('the testssl comparison covers every configured TLS surface of the panel', () => {
  const surfaces = distinctSurfaces();
  assert.equal(surfaces.flatMap((s) => [s.name, ...s.alike]).length, Object.keys(PANEL).length);
  assert.ok(surfaces.length >= 5, `at least five distinct surfaces (versions, CBC, RSA-only, s_server and nginx): ${surfaces.map((s) => s.name).join(', ')}`);
});

// Two servers at a time: each comparison waits mostly on testssl's handshakes, and this file tends to run last.
describe('scanner and testssl.sh agree on protocols and suites', { concurrency: 2 }, () => {
  for (const { name, alike } of distinctSurfaces()) {
    test(`${name}${alike.length ? ` (configured alike: ${alike.join(', ')})` : ''}: same protocols and, per protocol, the same suites`, async (t) => {
      if (!needPeer(t, testsslBinary() !== undefined, 'testssl.sh')) return;
      if (!needCommand(t, PANEL[name].software === 'nginx' ? 'nginx' : 'openssl')) return;
      const server = await startTlsServer(PANEL[name]);
      try {
        const [ours, theirs] = await Promise.all([scanPanel(server, 'high'), runTestssl(server.host, server.port)]);
        const theirProtocols = Object.entries(theirs.protocols).filter(([, on]) => on).map(([p]) => p).sort();
        assert.deepEqual(protocolsOf(ours), theirProtocols, 'protocols');
        for (const p of ours.findings.protocols.filter((x) => x.supported)) {
          assert.deepEqual([...p.suites].sort(), [...(theirs.suites[p.protocol] ?? [])].sort(), `${p.protocol} suites`);
        }
      } finally {
        await server.stop();
      }
    });
  }
});
