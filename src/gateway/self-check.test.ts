/**
 * The self-check listener against real clients: openssl s_client speaking
 * TLS 1.0/1.1 (raw HTTP over it) and curl with --tls-max 1.1 / 1.2, with and
 * without a client certificate, against a gateway whose policy moves from
 * the exception profile (TLS 1.0+) to high (TLS 1.2+). What each verdict
 * says, that a revoked certificate shows as revoked, that a stranger's
 * certificate is said not to chain, that markup in a subject stays text, and
 * that the gateway's refusal page points to the self-check.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClientVerifier, openGateway, parseGatewayConfig, jsonLogger, selfCheckReport, type GatewaySetup, type SelfCheckReport } from './index.js';
import { echoUpstream, FACILITY_A, gatewayFixture, PASSPHRASE, type ClientFiles, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, run, runAsync } from '../testing/peers.js';
import { complianceProfile, policyOutlook, type PolicySchedule } from '../policy/index.js';
import { certificateToPem, certificatesFromPem } from '../pki/index.js';

const ready = hasCommand('openssl') && hasCommand('curl');
/** The switch to the high profile, a year ahead. */
const CUT = new Date(Date.now() + 365 * 86_400_000);
const schedule: PolicySchedule = { phases: [{ profile: complianceProfile('exception') }, { from: CUT, profile: complianceProfile('high') }], clientPolicy: { exceptions: [] } };

let fx: GatewayFixture;
let setup: GatewaySetup;
let http: Awaited<ReturnType<typeof echoUpstream>>;
let selfPort = 0;
let gatewayPort = 0;
let markup: ClientFiles;
const logs: Record<string, unknown>[] = [];

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  http = await echoUpstream();
  // A certificate whose organization is markup, signed by the network's issuing CA (as a careless or hostile registration could make it).
  const key = join(fx.dir, 'markup.key');
  const csr = join(fx.dir, 'markup.csr');
  const cert = join(fx.dir, 'markup.pem');
  const issuingKey = join(fx.dir, 'issuing.key');
  for (const args of [
    ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/C=JP/O=<img src=x onerror=alert("x")><b>&amp;'/CN=${FACILITY_A}`],
    ['x509', '-req', '-in', csr, '-CA', fx.ca.paths.issuingCert, '-CAkey', issuingKey, '-set_serial', '0x5e1f', '-days', '800', '-sha256', '-extfile', join(fx.dir, 'client.ext'), '-out', cert],
  ]) {
    const r = run('openssl', args);
    assert.equal(r.status, 0, r.stderr);
  }
  writeFileSync(cert, run('cat', [cert]).stdout + certificateToPem(fx.ca.chain()[0]!));
  markup = { cert, key };
  const cfg = parseGatewayConfig({
    home: fx.home,
    refusals: { intervalSeconds: 1 },
    contact: '運営主体ヘルプデスク',
    selfCheck: { listen: '127.0.0.1:0', contact: { name: 'はこだて地域医療ネットワーク事務局', phone: '0138-00-0000', email: 'help@example.jp', hours: '平日 9:00-17:00' } },
    limits: { selfCheck: { maxConnectionsPerAddress: 4 } },
    listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } }] }],
  });
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('debug', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)), watch: false, outlook: () => policyOutlook(schedule, new Date()) });
  selfPort = setup.selfCheck!.address.port;
  gatewayPort = setup.gateway.addresses()[0]!.port;
});

after(async () => {
  if (!ready) return;
  await setup.close(1000);
  http.server.close();
  await fx.close();
});

/** Raw HTTP over openssl s_client at a given TLS version (what an old client speaks). */
async function sClient(version: '-tls1' | '-tls1_1' | '-tls1_2', client?: ClientFiles, path = '/self-check.json'): Promise<{ head: string; body: string }> {
  const r = await runAsync(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${selfPort}`, version, '-cipher', 'DEFAULT@SECLEVEL=0', '-quiet', ...(client ? ['-cert', client.cert, '-key', client.key] : [])],
    { input: `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, timeoutMs: 20_000 },
  );
  const i = r.stdout.indexOf('\r\n\r\n');
  assert.ok(i > 0, `an HTTP answer over ${version}: ${r.stderr.slice(0, 400)}`);
  return { head: r.stdout.slice(0, i), body: r.stdout.slice(i + 4) };
}

async function curl(args: string[], client?: ClientFiles, path = '/self-check.json', port = selfPort): Promise<{ status: number; body: string; headers: string }> {
  const r = await runAsync('curl', ['-sS', '--max-time', '15', '--cacert', fx.caFile, '-D', '-', ...(client ? ['--cert', client.cert, '--key', client.key] : []), ...args, `https://localhost:${port}${path}`]);
  assert.equal(r.status, 0, r.stderr);
  const i = r.stdout.indexOf('\r\n\r\n');
  return { status: Number(/^HTTP\/\S+ (\d+)/.exec(r.stdout)?.[1]), headers: r.stdout.slice(0, i), body: r.stdout.slice(i + 4) };
}

const codes = (v: SelfCheckReport['policies']['inForce'] | null) => v?.problems.map((p) => p.code);

describe('the self-check listener', () => {
  test('TLS 1.1 without a certificate (openssl s_client): the handshake completes; in force: certificate missing; coming high: PROTOCOL_TOO_OLD too', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const { head, body } = await sClient('-tls1_1');
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, /content-type: application\/json/i);
    const r = JSON.parse(body) as SelfCheckReport;
    assert.equal(r.schema, 'sekisho-self-check/1');
    assert.equal(r.connection.protocol, 'TLSv1.1');
    assert.equal(r.connection.clientCertificateOffered, false);
    assert.equal(r.certificate, null);
    assert.equal(r.policies.inForce.profile, 'exception');
    assert.deepEqual(codes(r.policies.inForce), ['CLIENT_CERT_MISSING']);
    assert.equal(r.policies.coming?.profile, 'high');
    assert.equal(r.policies.coming?.since, CUT.toISOString());
    assert.deepEqual(codes(r.policies.coming), ['PROTOCOL_TOO_OLD', 'CLIENT_CERT_MISSING']);
    const old = r.policies.coming!.problems[0]!;
    assert.match(old.ja, /TLS 1\.1/);
    assert.match(old.fixJa, /security\.tls\.version\.max/);
  });

  test('TLS 1.1 with the facility certificate (openssl s_client): whose it is, not revoked; in force accepted, coming refused PROTOCOL_TOO_OLD only', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const r = JSON.parse((await sClient('-tls1_1', fx.clients.good)).body) as SelfCheckReport;
    assert.equal(r.connection.protocol, 'TLSv1.1');
    assert.equal(r.connection.clientCertificateOffered, true);
    assert.equal(r.certificate?.facility?.number, FACILITY_A);
    assert.equal(r.certificate?.facility?.name, 'はこだて内科クリニック');
    assert.equal(r.certificate?.facility?.status, 'active');
    assert.equal(r.certificate?.serial, fx.clients.good.serial);
    assert.equal(r.certificate?.chain.trusted, true);
    assert.equal(r.certificate?.revocation.state, 'good');
    assert.ok(r.certificate!.daysLeft > 300);
    assert.equal(r.policies.inForce.accepted, true);
    assert.deepEqual(codes(r.policies.coming), ['PROTOCOL_TOO_OLD']);
  });

  test('TLS 1.0 with a SHA-1 certificate (a broken client still gets its answer): SHA1_SIGNATURE under both policies, and expired by the switch', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const r = JSON.parse((await sClient('-tls1', fx.clients.sha1)).body) as SelfCheckReport;
    assert.equal(r.connection.protocol, 'TLSv1.0');
    assert.deepEqual(codes(r.policies.inForce), ['SHA1_SIGNATURE']);
    // The certificate is valid for 30 days; the switch is a year ahead: judged at the switch, it has expired.
    assert.deepEqual(codes(r.policies.coming), ['PROTOCOL_TOO_OLD', 'SHA1_SIGNATURE', 'EXPIRED']);
  });

  test('curl --tls-max 1.1 and 1.2, with and without --cert: the version used and the verdicts', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const weak = ['--ciphers', 'DEFAULT@SECLEVEL=0'];
    const cases: [string, string[], ClientFiles | undefined, string, string[], string[]][] = [
      ['1.1 without', ['--tls-max', '1.1', '--tlsv1.1', ...weak], undefined, 'TLSv1.1', ['CLIENT_CERT_MISSING'], ['PROTOCOL_TOO_OLD', 'CLIENT_CERT_MISSING']],
      ['1.1 with', ['--tls-max', '1.1', '--tlsv1.1', ...weak], fx.clients.good, 'TLSv1.1', [], ['PROTOCOL_TOO_OLD']],
      ['1.2 without', ['--tls-max', '1.2'], undefined, 'TLSv1.2', ['CLIENT_CERT_MISSING'], ['CLIENT_CERT_MISSING']],
      ['1.2 with', ['--tls-max', '1.2'], fx.clients.good, 'TLSv1.2', [], []],
      ['1.3 with', [], fx.clients.good, 'TLSv1.3', [], []],
    ];
    for (const [name, args, client, protocol, inForce, coming] of cases) {
      const { status, body } = await curl(args, client);
      assert.equal(status, 200, name);
      const r = JSON.parse(body) as SelfCheckReport;
      assert.equal(r.connection.protocol, protocol, name);
      assert.deepEqual(codes(r.policies.inForce), inForce, `${name}: in force`);
      assert.deepEqual(codes(r.policies.coming), coming, `${name}: coming`);
      assert.equal(r.policies.coming?.accepted, coming.length === 0, name);
      if (protocol === 'TLSv1.2') assert.match(r.connection.suite, /^TLS_ECDHE_ECDSA_WITH_AES_(128|256)_GCM_SHA(256|384)$/, 'the high profile\'s suites come first');
    }
  });

  test('a TLS 1.2 client that can sign only with SHA-1 is told the coming high policy refuses it (SIGNATURE_ALGORITHM_NOT_ALLOWED), while the exception profile in force takes it', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const r = await runAsync(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${selfPort}`, '-tls1_2', '-cipher', 'DEFAULT@SECLEVEL=0', '-sigalgs', 'ECDSA+SHA1:RSA+SHA1', '-quiet', '-cert', fx.clients.good.cert, '-key', fx.clients.good.key],
      { input: 'GET /self-check.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', timeoutMs: 20_000 },
    );
    const body = r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4);
    const report = JSON.parse(body) as SelfCheckReport;
    assert.ok(codes(report.policies.coming)?.includes('SIGNATURE_ALGORITHM_NOT_ALLOWED'), body);
    assert.equal(report.policies.coming?.accepted, false);
    assert.equal(report.policies.inForce.accepted, true, 'the exception profile takes SHA-1 handshake signatures');
  });

  test('no RSA key exchange on the self-check: the gateway\'s RSA key is never a decryption oracle', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const r = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${selfPort}`, '-tls1_2', '-cipher', 'AES128-GCM-SHA256:AES256-SHA@SECLEVEL=0'], { input: '', timeoutMs: 20_000 });
    assert.notEqual(r.status, 0, 'a client offering only RSA key exchange gets no handshake');
    assert.doesNotMatch(r.stdout, /Cipher is AES/);
  });

  test('a revoked certificate is shown as revoked (the gateway\'s revocation source), and refused under both policies', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = JSON.parse((await curl([], fx.clients.revoked)).body) as SelfCheckReport;
    assert.equal(r.certificate?.revocation.state, 'revoked');
    assert.match(r.certificate?.revocation.detail ?? '', /revoked \(store\)/);
    assert.deepEqual(codes(r.policies.inForce), ['REVOKED']);
    assert.deepEqual(codes(r.policies.coming), ['REVOKED']);
    const page = await curl([], fx.clients.revoked, '/');
    assert.match(page.body, /id="revoked">失効しています<\/span> <span class="en">Revoked/);
  });

  test('a stranger\'s certificate: said plainly not to chain, no facility claimed from it', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = JSON.parse((await curl([], fx.clients.unknown)).body) as SelfCheckReport;
    assert.equal(r.certificate?.chain.trusted, false);
    assert.match(r.certificate?.chain.detail ?? '', /no trusted CA issued .*Stranger CA/);
    assert.equal(r.certificate?.facility, null, 'a stranger\'s certificate may name any facility');
    assert.equal(r.certificate?.revocation.state, 'unknown');
    assert.deepEqual(codes(r.policies.inForce), ['UNKNOWN_CA']);
    const page = await curl([], fx.clients.unknown, '/');
    assert.match(page.body, /本ネットワークの認証局につながりません.*Does NOT chain to this network's CA/s);
  });

  test('markup in a certificate subject is escaped on the page and plain text in the JSON; the page has a strict CSP and no script', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const page = await curl([], markup, '/');
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.body, /<script|<img|<b>/i);
    assert.match(page.body, /O=&#60;img src=x onerror=alert\(&#34;x&#34;\)&#62;&#60;b&#62;&#38;amp;&#39;/);
    assert.match(page.body, /はこだて内科クリニック/, 'the facility is the registry\'s name, not the certificate\'s markup');
    assert.match(page.headers, /content-security-policy: default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; img-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'/i);
    assert.match(page.headers, /cache-control: no-store/i);
    const r = JSON.parse((await curl([], markup)).body) as SelfCheckReport;
    assert.match(r.certificate!.subject, /O=<img src=x onerror=alert\("x"\)><b>&amp;'/);
  });

  test('the page: Japanese first and English beside, browser instructions, the operator\'s contact', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const { body } = await curl(['--tls-max', '1.2', '-A', 'Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko'], fx.clients.good, '/');
    for (const s of ['接続診断', 'Connection self-check', 'TLS 1.2', 'はこだて内科クリニック', FACILITY_A, '失効していません', 'Not revoked', '接続できます', 'This connection would be accepted', 'security.tls.version.min', 'TLS 1.2 を使用する', 'Safari', 'Microsoft Edge / Google Chrome', 'はこだて地域医療ネットワーク事務局', '0138-00-0000', 'help@example.jp']) {
      assert.ok(body.includes(s), `the page shows ${s}`);
    }
    assert.match(body, /<h3 class="this-browser">Internet Explorer <strong>（お使いのブラウザ/, 'the section of the browser in use is marked');
  });

  test('only GET and HEAD of / and /self-check.json; a request over the per-address cap is closed before TLS', async (t) => {
    if (!needCommand(t, 'curl')) return;
    assert.equal((await curl(['-X', 'POST'], fx.clients.good)).status, 405);
    assert.equal((await curl([], fx.clients.good, '/admin')).status, 404);
    const counts = setup.gateway.ledger.get('selfCheck')!;
    assert.equal(counts.limits.maxConnectionsPerAddress, 4);
    const held = await Promise.all([1, 2, 3, 4].map(() => new Promise<ReturnType<typeof netConnect>>((r) => { const s = netConnect(selfPort, '127.0.0.1', () => r(s)); })));
    const before = counts.refusedPerAddress;
    const fifth = netConnect(selfPort, '127.0.0.1');
    fifth.on('error', () => undefined);
    await new Promise((r) => fifth.once('close', r));
    assert.equal(counts.refusedPerAddress, before + 1);
    for (const s of held) s.destroy();
  });

  test('the gateway\'s refusal page points to the self-check, and the log of clients refused in the handshake names it', async (t) => {
    if (!needCommand(t, 'curl') || !needCommand(t, 'openssl')) return;
    const url = setup.selfCheck!.url;
    const refused = await curl([], fx.clients.revoked, '/hello', gatewayPort);
    assert.equal(refused.status, 403);
    assert.ok(refused.body.includes(`<a href="${url}">${url}</a>`), 'the refusal page links the self-check');
    assert.match(refused.body, /接続診断ページ/);
    // A TLS 1.1 client gets no page from the gateway: the summed log line names the self-check.
    await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${gatewayPort}`, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'], { input: '', timeoutMs: 10_000 });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !logs.some((l) => l.msg === 'clients without an identity refused')) await new Promise((r) => setTimeout(r, 200));
    const line = logs.find((l) => l.msg === 'clients without an identity refused');
    assert.equal(line?.selfCheckUrl, url);
  });

  test('a dated exception: the page says the connection passes only because of it, and that the policy after it ends refuses', (t) => {
    if (!needCommand(t, 'openssl')) return;
    const anchors = fx.ca.chain().map((d) => new X509Certificate(d));
    const verifier = new ClientVerifier({ anchors, policy: { exceptions: [] }, revocation: [], revocationUsable: () => true });
    const [leaf, ...rest] = certificatesFromPem(readFileSync(fx.clients.sha1.cert, 'utf8')).map((d) => new X509Certificate(d));
    const inspection = verifier.inspect(leaf!, rest);
    const until = new Date(Date.now() + 10 * 86_400_000 + 9 * 3_600_000).toISOString().slice(0, 10);
    const migration: PolicySchedule = { phases: [{ profile: complianceProfile('high') }], clientPolicy: { exceptions: [{ facility: FACILITY_A, allow: 'SHA1_SIGNATURE', until }] } };
    const r = selfCheckReport({ protocol: 'TLSv1.3', suite: 'TLS_AES_128_GCM_SHA256', inspection, outlook: policyOutlook(migration, new Date()), now: new Date() });
    assert.equal(r.policies.inForce.accepted, true);
    assert.deepEqual(r.policies.inForce.exceptionsUsed, [{ facility: FACILITY_A, allow: 'SHA1_SIGNATURE', until }]);
    assert.equal(r.policies.coming?.since, new Date(Date.parse(`${until}T00:00:00+09:00`) + 86_400_000).toISOString(), 'the day after the exception ends, Japan time');
    assert.deepEqual(codes(r.policies.coming), ['SHA1_SIGNATURE']);
  });

  test('regression: inspecting certificates does not write the verifier\'s chain cache (a self-check flood cannot evict the gateway\'s clients\' chains)', (t) => {
    if (!needCommand(t, 'openssl')) return;
    const anchors = fx.ca.chain().map((d) => new X509Certificate(d));
    const verifier = new ClientVerifier({ anchors, policy: { exceptions: [] }, revocation: [], revocationUsable: () => true });
    const load = (c: ClientFiles) => certificatesFromPem(readFileSync(c.cert, 'utf8')).map((d) => new X509Certificate(d));
    for (const c of [fx.clients.good, fx.clients.unknown, fx.clients.other]) {
      const [leaf, ...rest] = load(c);
      verifier.inspect(leaf!, rest);
    }
    assert.equal(verifier.cachedChains, 0);
    const [leaf, ...rest] = load(fx.clients.good);
    assert.equal(verifier.verify(leaf!, rest).ok, true);
    assert.equal(verifier.cachedChains, 1, 'verify still caches');
    assert.equal(verifier.inspect(leaf!, rest).trusted, true, 'inspect reads the cache');
  });
});
