import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hasCommand, needCommand } from '../testing/peers.js';
import { join } from 'node:path';
import { complianceProfile, loadComplianceProfile } from '../policy/index.js';
import { judge } from './verdict.js';
import { classifySuite } from './checks/index.js';
import { htmlReport, buildReport, textReport } from './report.js';
import type { Findings } from './findings.js';
import { SekishoError } from '../errors/index.js';
import { tempDir } from '../testing/stores.js';

const ctx = { hostname: '127.0.0.1', trustAnchors: [], now: new Date() };

/** A certificate every certificate check passes (ECDSA P-256, SHA-256, valid now, for 127.0.0.1), made by openssl; a compliant server shows one. */
const goodCertificate: string | undefined = (() => {
  if (!hasCommand('openssl')) return undefined;
  const dir = tempDir('sekisho-verdict-cert-');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '30', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-outform', 'DER']);
  return r.status === 0 ? readFileSync(join(dir, 'c.pem')).toString('base64') : undefined;
})();

function findings(over: Partial<Findings> = {}): Findings {
  return {
    target: { host: '127.0.0.1', port: 443 },
    scannedAt: '2026-11-22T00:00:00.000Z',
    durationMs: 1,
    protocols: [
      { protocol: 'SSLv3', supported: false, suites: [] },
      { protocol: 'TLSv1.0', supported: false, suites: [] },
      { protocol: 'TLSv1.1', supported: false, suites: [] },
      { protocol: 'TLSv1.2', supported: true, suites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'], serverOrder: true },
      { protocol: 'TLSv1.3', supported: true, suites: ['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256'] },
    ],
    groups: ['x25519', 'secp256r1'],
    secureRenegotiation: true,
    compression: false,
    fallbackScsv: 'supported',
    clientAuth: { requested: true, required: true, caNames: ['CN=x'] },
    ...(goodCertificate ? { certificate: { chain: [goodCertificate], ocspStapled: false } } : {}),
    notes: [],
    ...over,
  };
}

const statusOf = (f: Findings, check: string, profile = complianceProfile('high')) => judge(f, profile, ctx).results.find((r) => r.check === check)!.status;

const cases: [string, Partial<Findings>, string, string, string?][] = [
  ['TLS 1.1 offered', { protocols: [...findings().protocols.slice(0, 2), { protocol: 'TLSv1.1', supported: true, suites: ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA'] }, ...findings().protocols.slice(3)] }, 'protocol-versions', 'fail'],
  ['nothing offered', { protocols: findings().protocols.map((p) => ({ ...p, supported: false, suites: [] })) }, 'protocol-versions', 'fail'],
  ['TLS 1.2 only', { protocols: findings().protocols.map((p) => (p.protocol === 'TLSv1.3' ? { ...p, supported: false, suites: [] } : p)) }, 'protocol-preferred', 'warn'],
  ['a CBC suite', { protocols: findings().protocols.map((p) => (p.protocol === 'TLSv1.2' ? { ...p, suites: [...p.suites, 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256'] } : p)) }, 'cipher-suites-tls12', 'fail'],
  ['static RSA GCM', { protocols: findings().protocols.map((p) => (p.protocol === 'TLSv1.2' ? { ...p, suites: ['TLS_RSA_WITH_AES_128_GCM_SHA256'] } : p)) }, 'cipher-suites-tls12', 'fail'],
  ['an extra secure suite (CCM_8)', { protocols: findings().protocols.map((p) => (p.protocol === 'TLSv1.2' ? { ...p, suites: [...p.suites, 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8'] } : p)) }, 'cipher-suites-tls12', 'warn'],
  ['client order', { protocols: findings().protocols.map((p) => (p.protocol === 'TLSv1.2' ? { ...p, serverOrder: false } : p)) }, 'server-cipher-order', 'warn'],
  ['a 1024-bit DHE group', { dheBits: 1024 }, 'key-exchange', 'fail'],
  ['secp224r1', { groups: ['secp224r1'] }, 'key-exchange', 'fail'],
  ['no renegotiation_info', { secureRenegotiation: false }, 'secure-renegotiation', 'fail'],
  ['compression', { compression: true }, 'tls-compression', 'fail'],
  ['no fallback SCSV', { fallbackScsv: 'not-supported' }, 'fallback-scsv', 'warn'],
  ['client certificate only requested, mhlw', { clientAuth: { requested: true, required: false, caNames: [] } }, 'client-certificate', 'fail', 'mhlw'],
  ['client certificate not requested, high', { clientAuth: { requested: false, required: false, caNames: [] } }, 'client-certificate', 'info', 'high'],
  ['a short HSTS', { hsts: { header: 'max-age=60', maxAge: 60 } }, 'hsts', 'warn'],
  ['no certificate seen', { certificate: undefined }, 'certificate-signature-hash', 'skip'],
  ['no certificate seen, though a version was accepted', { certificate: undefined }, 'certificate-observed', 'fail'],
];
for (const [name, over, check, expected, profile] of cases) {
  test(`judgement: ${name} → ${check} ${expected}`, () => {
    assert.equal(statusOf(findings(over), check, complianceProfile((profile ?? 'high') as 'high')), expected);
  });
}

test('a compliant server is compliant with high and mhlw, and the verdict names no failure', (t) => {
  if (!needCommand(t, 'openssl')) return;
  for (const p of ['high', 'mhlw'] as const) {
    const v = judge(findings(), complianceProfile(p), ctx);
    assert.equal(v.compliant, true, JSON.stringify(v.results.filter((r) => r.status === 'fail')));
  }
});

test('classifySuite: listed, secure but unlisted, forbidden', () => {
  const high = complianceProfile('high');
  assert.equal(classifySuite('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', high), 'listed');
  assert.equal(classifySuite('TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8', high), 'secure-unlisted');
  for (const s of ['TLS_RSA_WITH_3DES_EDE_CBC_SHA', 'TLS_ECDHE_RSA_WITH_RC4_128_SHA', 'TLS_DH_anon_WITH_AES_128_GCM_SHA256', 'TLS_RSA_EXPORT_WITH_RC4_40_MD5', 'TLS_RSA_WITH_NULL_SHA256', 'TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256', 'TLS_NOT_A_SUITE']) {
    assert.equal(classifySuite(s, high), 'forbidden', s);
  }
  assert.equal(classifySuite('TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256', complianceProfile('recommended')), 'secure-unlisted', 'the recommended profile tolerates CBC with a warning');
});

test('user profile files: extends a built-in, strict about unknown keys and types', () => {
  const dir = tempDir();
  const good = join(dir, 'p.json');
  writeFileSync(good, JSON.stringify({ extends: 'high', name: 'center-2027', protocolsAllowed: ['TLSv1.3'], clientCertificate: 'required' }));
  const p = loadComplianceProfile(good);
  assert.equal(p.name, 'center-2027');
  assert.deepEqual(p.protocolsAllowed, ['TLSv1.3']);
  assert.equal(statusOf(findings(), 'protocol-versions', p), 'fail', 'TLS 1.2 now breaks the profile');
  for (const bad of [{ protocolsAllowed: ['TLSv9'] }, { colour: 'red' }, { extends: 'nope' }, { certificate: { rsaMinBits: 'big' } }, { clientCertificate: 'maybe' }]) {
    writeFileSync(good, JSON.stringify(bad));
    assert.throws(() => loadComplianceProfile(good), (e: unknown) => e instanceof SekishoError && e.code === 'PROFILE_FILE_INVALID', JSON.stringify(bad));
  }
});

test('reports: the text ends with the verdict, JSON carries it, HTML escapes what the server sent', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const f = findings({ notes: ['<script>alert(1)</script>'] });
  const r = buildReport(f, judge(f, complianceProfile('mhlw'), ctx));
  assert.match(textReport(r).split('\n').at(-1)!, /^VERDICT: compliant with mhlw/);
  assert.equal(JSON.parse(JSON.stringify(r)).verdict, 'compliant');
  const html = htmlReport(r);
  assert.ok(!html.includes('<script>alert(1)'));
  assert.match(html, /適合 \/ Compliant/);
});
