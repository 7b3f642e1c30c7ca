/**
 * Observation before enforcement, against real old and new clients: the
 * gateway enforces an operator's profile (recommended plus one CBC suite a
 * legacy receipt system needs) while "mhlw" (high + a required client
 * certificate) is scheduled; every connection is recorded with what it used
 * or offered and both verdicts, and the migration report is checked row by
 * row against what each client did.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { ActivePolicy, openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';
import { echoUpstream, FACILITY_A, FACILITY_B, FACILITY_C, gatewayFixture, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, runAsync } from '../testing/peers.js';
import { complianceProfile, loadComplianceProfile, type PolicySchedule } from '../policy/index.js';
import { ObservationRepository, type ObservationRow } from '../store/index.js';
import { runCli } from '../cli/run.js';
import type { MigrationReadiness } from '../report/index.js';
import { migrationCsvRows, migrationReadiness, migrationReadinessHtml, migrationText, parseMigrationFilter } from '../report/index.js';

const SELF_CHECK = 'https://center.example/self-check';
const DAY = 86_400_000;
const day = (ms: number) => new Date(Date.now() + ms + 9 * 3_600_000).toISOString().slice(0, 10);

let fx: GatewayFixture;
let setup: GatewaySetup;
let active: ActivePolicy;
let http: Awaited<ReturnType<typeof echoUpstream>>;
let port = 0;
const logs: Record<string, unknown>[] = [];
const ready = hasCommand('openssl') && hasCommand('curl') && hasCommand('gnutls-cli');
const exceptionUntil = day(10 * DAY);

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  http = await echoUpstream();
  const exceptions = [{ facility: FACILITY_A, allow: 'SHA1_SIGNATURE' as const, until: exceptionUntil, note: 'SHA-2 migration' }];
  const profileFile = join(fx.dir, 'legacy-cbc.json');
  const suites = [...complianceProfile('recommended').suitesListed, 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256'];
  writeFileSync(profileFile, JSON.stringify({ extends: 'recommended', name: 'legacy-cbc', suitesListed: suites }));
  const inForce = loadComplianceProfile(profileFile);
  const cfg = parseGatewayConfig({
    home: fx.home,
    profile: profileFile,
    exceptions,
    refusals: { intervalSeconds: 1 },
    listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } }] }],
  });
  // The usual plan: the exception runs to the last day before the switch (both change at one instant; "coming" is the next change).
  const schedule: PolicySchedule = { phases: [{ profile: inForce }, { from: new Date(Date.parse(`${exceptionUntil}T00:00:00+09:00`) + DAY), profile: complianceProfile('mhlw') }], clientPolicy: { exceptions } };
  active = new ActivePolicy(schedule);
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('debug', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)), watch: false, outlook: () => active.outlook(), selfCheckUrl: SELF_CHECK });
  port = setup.gateway.addresses()[0]!.port;
});

after(async () => {
  if (!ready) return;
  await setup.close(1000);
  active.close();
  http.server.close();
  await fx.close();
});

function legacyEnv(): NodeJS.ProcessEnv {
  const conf = join(fx.dir, 'openssl-seclevel0.cnf');
  writeFileSync(conf, 'openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n[sys]\nCipherString = DEFAULT:@SECLEVEL=0\n');
  return { ...process.env, OPENSSL_CONF: conf };
}

const sClient = (args: string[], env?: NodeJS.ProcessEnv) =>
  runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', fx.caFile, '-ign_eof', ...args], { input: 'GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n', timeoutMs: 15_000, ...(env ? { env } : {}) });

const curl = (args: string[], env?: NodeJS.ProcessEnv) => runAsync('curl', ['-sS', '--max-time', '10', '--cacert', fx.caFile, '-o', '/dev/null', '-w', '%{http_code}', ...args, `https://localhost:${port}/hello`], env ? { env } : {});

async function rows(): Promise<ObservationRow[]> {
  await setup.gateway.observer!.flush();
  return new ObservationRepository(fx.ca.db).list(day(-DAY), day(DAY));
}

describe('observation before enforcement: real clients, both verdicts, the readiness report', () => {
  test('each client is recorded with what it used or offered and its verdict now and under the coming policy; the report says who is ready', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl') || !needCommand(t, 'gnutls-cli')) return;
    const good = fx.clients.good;
    // 1–2. Old stacks: TLS 1.0 and 1.1 with legacy suites, refused in the handshake by the profile in force.
    const t10 = await sClient(['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0', '-cert', good.cert, '-key', good.key]);
    assert.doesNotMatch(t10.stdout, /HTTP\/1\.[01] 200/);
    const t11 = await sClient(['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0', '-cert', good.cert, '-key', good.key]);
    assert.doesNotMatch(t11.stdout, /HTTP\/1\.[01] 200/);
    // 3. TLS 1.2 with a suite the profile in force allows and high does not (CBC, no AEAD).
    const ccm8 = await curl(['--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-SHA256', '--cert', good.cert, '--key', good.key]);
    assert.equal(ccm8.stdout.trim(), '200', ccm8.stderr);
    // 4. gnutls with TLS 1.3 switched off (another facility).
    const other = fx.clients.other;
    const gnutls = await runAsync('gnutls-cli', ['--priority', 'NORMAL:-VERS-TLS1.3', '--x509cafile', fx.caFile, '--x509certfile', other.cert, '--x509keyfile', other.key, '-p', String(port), 'localhost'], { input: 'GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n', timeoutMs: 15_000 });
    assert.match(gnutls.stdout, /HTTP\/1\.[01] 200/, gnutls.stderr);
    // 5. A device of facility A on TLS 1.3.
    const t13 = await curl(['--tlsv1.3', '--cert', fx.clients.device.cert, '--key', fx.clients.device.key]);
    assert.equal(t13.stdout.trim(), '200', t13.stderr);
    // 6. A SHA-1-signed certificate of facility A, accepted under its dated exception (which ends before the switch).
    const sha1 = await curl(['--cert', fx.clients.sha1.cert, '--key', fx.clients.sha1.key], legacyEnv());
    assert.equal(sha1.stdout.trim(), '200', sha1.stderr);
    // 7. No certificate at all.
    const none = await curl([]);
    assert.notEqual(none.stdout.trim(), '200');

    const all = await rows();
    const find = (p: (r: ObservationRow) => boolean, what: string) => {
      const r = all.find(p);
      assert.ok(r, `${what}: ${JSON.stringify(all, null, 1)}`);
      return r;
    };
    const r10 = find((r) => r.subject === 'addr:127.0.0.1' && r.protocol === 'TLSv1.0', 'TLS 1.0 hello');
    assert.equal(r10.verdictNow, 'PROTOCOL_TOO_OLD');
    assert.equal(r10.verdictComing, 'PROTOCOL_TOO_OLD');
    assert.equal(r10.suite, '');
    assert.equal(r10.offeredVersions, 'TLSv1.0');
    assert.match(r10.offeredSuites, /TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA/);
    assert.ok(r10.groupsOffered.length > 0);
    const r11 = find((r) => r.subject === 'addr:127.0.0.1' && r.protocol === 'TLSv1.1', 'TLS 1.1 hello');
    assert.equal(r11.verdictNow, 'PROTOCOL_TOO_OLD');
    assert.notEqual(r11.hello, r10.hello);

    const rCcm8 = find((r) => r.serial === good.serial && r.suite === 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256', 'CBC over TLS 1.2');
    assert.equal(rCcm8.subject, FACILITY_A);
    assert.equal(rCcm8.protocol, 'TLSv1.2');
    assert.equal(rCcm8.verdictNow, 'accepted');
    assert.equal(rCcm8.verdictComing, 'SUITE_NOT_ALLOWED');
    assert.equal(rCcm8.comingProfile, 'mhlw');
    assert.equal(rCcm8.certKey, 'EC prime256v1');
    assert.match(rCcm8.certSignature, /SHA256/i);

    const rGnutls = find((r) => r.serial === other.serial, 'gnutls TLS 1.2');
    assert.equal(rGnutls.protocol, 'TLSv1.2');
    assert.match(rGnutls.suite, /GCM/);
    assert.equal(`${rGnutls.verdictNow}/${rGnutls.verdictComing}`, 'accepted/accepted');

    const r13 = find((r) => r.serial === fx.clients.device.serial, 'TLS 1.3 device');
    assert.equal(`${r13.protocol}/${r13.verdictNow}/${r13.verdictComing}`, 'TLSv1.3/accepted/accepted');
    assert.ok(r13.groupsOffered.length > 0, 'groups from the hello of an accepted connection');

    const rSha1 = find((r) => r.subject === FACILITY_A && r.certRule === 'SHA1_SIGNATURE', 'SHA-1 certificate');
    assert.equal(rSha1.verdictNow, 'accepted');
    assert.equal(rSha1.verdictComing, 'SHA1_SIGNATURE');
    assert.equal(rSha1.exceptions, `SHA1_SIGNATURE<=${exceptionUntil}`);
    assert.match(rSha1.certSignature, /1\.2\.840\.10045\.4\.1|sha1/i);

    const rNone = find((r) => r.subject === 'addr:127.0.0.1' && r.refusal === 'NO_CLIENT_CERT', 'no certificate');
    assert.equal(rNone.verdictNow, 'NO_CLIENT_CERT');
    assert.match(rNone.verdictComing, /CLIENT_CERT_MISSING/);

    // Summed, not a row per connection: the same client again adds to its row.
    await curl(['--tlsv1.3', '--cert', fx.clients.device.cert, '--key', fx.clients.device.key]);
    const again = (await rows()).find((r) => r.serial === fx.clients.device.serial && r.protocol === 'TLSv1.3')!;
    assert.equal(again.connections, r13.connections + 1);

    // A refusal no page can explain names the self-check page in the gateway's log.
    for (let i = 0; i < 60 && !logs.some((l) => l.msg === 'clients without an identity refused' && l.selfCheckUrl === SELF_CHECK); i++) await new Promise((r) => setTimeout(r, 100));
    const line = logs.find((l) => l.msg === 'clients without an identity refused' && l.selfCheckUrl === SELF_CHECK);
    assert.ok(line, JSON.stringify(logs.filter((l) => l.level === 'warn')));
    assert.match(String(line.advice), /TLS 1\.2 以上/);

    // The readiness report, row by row.
    const now = new Date();
    const report = await migrationReadiness(fx.ca.db, parseMigrationFilter({ to: 'mhlw', selfCheckUrl: SELF_CHECK }, now), now);
    const a = report.facilities.find((f) => f.facility === FACILITY_A)!;
    assert.equal(a.standing, 'at-risk');
    assert.deepEqual(a.problems.map((p) => p.code).sort(), ['SHA1_SIGNATURE', 'SUITE_NOT_ALLOWED']);
    const suite = a.problems.find((p) => p.code === 'SUITE_NOT_ALLOWED')!;
    assert.deepEqual(suite.seenWith, ['TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256']);
    assert.match(suite.fixJa, /ECDHE/);
    const sha = a.problems.find((p) => p.code === 'SHA1_SIGNATURE')!;
    assert.deepEqual(sha.exceptions, [`SHA1_SIGNATURE<=${exceptionUntil}`]);
    assert.match(sha.fixJa, /SHA-2/);
    assert.equal(report.facilities.find((f) => f.facility === FACILITY_C)!.standing, 'ready');
    assert.equal(report.facilities.find((f) => f.facility === FACILITY_B)!.standing, 'never-seen');
    const old = report.unidentified.filter((c) => c.problems.some((p) => p.code === 'PROTOCOL_TOO_OLD'));
    assert.deepEqual(old.map((c) => c.offeredVersions).sort(), ['TLSv1.0', 'TLSv1.1']);
    assert.ok(report.unidentified.some((c) => c.problems.some((p) => p.code === 'CLIENT_CERT_MISSING')));
    assert.equal(report.legacyCertificates.length, 1);
    assert.equal(report.legacyCertificates[0]!.inStore, false, 'the SHA-1 certificate is not one the store issued');
    assert.ok(report.unusedCertificates.some((u) => u.facility === FACILITY_A && u.serial === fx.clients.victim.serial), 'facility A holds a newer certificate it has not used');
    assert.equal(report.daily.length, 1);
    assert.equal(report.daily[0]!.connections, all.reduce((n, r) => n + r.connections, 0) + 1);
    assert.equal(report.daily[0]!.facilitiesAtRisk, 1);
    // Every format names the self-check page beside the protocol and suite problems.
    assert.match(migrationText(report), new RegExp(`接続確認: ${SELF_CHECK}`));
    assert.ok(migrationCsvRows(report).some((r) => r[8] === 'SUITE_NOT_ALLOWED' && r[17] === SELF_CHECK));
    const html = migrationReadinessHtml(report);
    assert.match(html, /要対応/);
    assert.doesNotMatch(html, /<script/i);
  });

  test('sekisho report migration: text (Japanese first), JSON, CSV and a printable page; a bad --to or --since is exit 2 before the store is read', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl') || !needCommand(t, 'gnutls-cli')) return;
    await setup.gateway.observer!.flush();
    const cli = async (args: string[]) => {
      let stdout = '';
      let stderr = '';
      const status = await runCli(args, { stdout: (x) => void (stdout += x), stderr: (x) => void (stderr += x), env: { ...process.env, SEKISHO_HOME: fx.home }, isTTY: false });
      return { status, stdout, stderr };
    };
    const text = await cli(['report', 'migration', '--to', 'mhlw', '--self-check-url', SELF_CHECK]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^移行準備状況/);
    assert.match(text.stdout, new RegExp(`${FACILITY_A} .*要対応`));
    const json = await cli(['report', 'migration', '--to', 'mhlw', '--json']);
    assert.equal(json.status, 0, json.stderr);
    const m = JSON.parse(json.stdout) as MigrationReadiness;
    assert.equal(m.schema, 'sekisho.migration-readiness/1');
    assert.equal(m.totals['at-risk'], 1);
    const csv = await cli(['report', 'migration', '--to', 'mhlw', '--format', 'csv']);
    assert.ok(csv.stdout.startsWith('\uFEFFkind,facility,'));
    const out = join(fx.dir, 'migration.html');
    const html = await cli(['report', 'migration', '--to', 'mhlw', '--format', 'html', '--out', out]);
    assert.equal(html.status, 0, html.stderr);
    for (const bad of [['--to', 'strict'], ['--to', 'high', '--since', '2026-02-30'], [], ['--to', 'high', '--self-check-url', 'javascript:alert(1)']]) {
      const r = await cli(['report', 'migration', ...bad]);
      assert.equal(r.status, 2, `${bad.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /REPORT_FILTER_INVALID/);
    }
  });

  test('an SSL 2.0-style hello is recorded with what it offered; garbage and a truncated hello are refused and recorded as nothing', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl') || !needCommand(t, 'gnutls-cli')) return;
    const send = (bytes: Buffer, end: boolean) =>
      new Promise<void>((resolve) => {
        const c = connect(port, '127.0.0.1', () => (end ? c.end(bytes) : c.write(bytes)));
        c.on('error', () => undefined);
        c.on('close', () => resolve());
        if (!end) setTimeout(() => c.destroy(), 300);
        c.resume();
      });
    // An SSLv23 hello as OpenSSL 0.9.8 sent it: SSL 2.0 framing, client_version TLS 1.0, three TLS suites and one SSL 2.0 spec.
    const specs = [0x010080, 0x000035, 0x00002f, 0x00000a];
    const body = Buffer.alloc(9 + specs.length * 3 + 16);
    body[0] = 1;
    body.writeUInt16BE(0x0301, 1);
    body.writeUInt16BE(specs.length * 3, 3);
    body.writeUInt16BE(16, 7);
    specs.forEach((x, i) => body.writeUIntBE(x, 9 + i * 3, 3));
    await send(Buffer.concat([Buffer.from([0x80 | (body.length >> 8), body.length & 0xff]), body]), true);
    const before = (await rows()).length;
    await send(Buffer.from('\x16\x03\x01\xff\xff\x01garbage that never completes'), false);
    await send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), true);
    const all = await rows();
    const v2 = all.find((r) => r.offeredSuites === 'TLS_RSA_WITH_AES_256_CBC_SHA,TLS_RSA_WITH_AES_128_CBC_SHA,TLS_RSA_WITH_3DES_EDE_CBC_SHA');
    assert.ok(v2, JSON.stringify(all.filter((r) => r.address)));
    assert.equal(v2.protocol, 'TLSv1.0');
    assert.equal(v2.verdictNow.split('+')[0], 'PROTOCOL_TOO_OLD');
    assert.equal(all.length, before, 'no row for garbage, an unfinished record or plain HTTP');
    assert.equal(setup.gateway.state, 'listening');
  });

  test('under the exception profile a TLS 1.0 clinic gets in, and is recorded by facility as one the coming profile would refuse (PROTOCOL_TOO_OLD)', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl') || !needCommand(t, 'gnutls-cli')) return;
    const cfg = parseGatewayConfig({
      home: fx.home,
      profile: 'exception',
      listeners: [{ name: 'legacy', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } }] }],
    });
    const legacy = new ActivePolicy({ phases: [{ profile: complianceProfile('exception') }, { from: new Date(Date.now() + 30 * DAY), profile: complianceProfile('high') }], clientPolicy: { exceptions: [] } });
    const second = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('error'), watch: false, outlook: () => legacy.outlook(), spoolName: 'gateway-legacy' });
    try {
      const legacyPort = second.gateway.addresses()[0]!.port;
      const r = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${legacyPort}`, '-servername', 'localhost', '-CAfile', fx.caFile, '-ign_eof', '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0', '-cert', fx.clients.other.cert, '-key', fx.clients.other.key], { input: 'GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n', timeoutMs: 15_000 });
      assert.match(r.stdout, /HTTP\/1\.[01] 200/, r.stderr.slice(-500));
      await second.gateway.observer!.flush();
      const row = (await new ObservationRepository(fx.ca.db).list(day(-DAY), day(DAY))).find((x) => x.serial === fx.clients.other.serial && x.protocol === 'TLSv1.0');
      assert.ok(row);
      assert.equal(row.subject, FACILITY_C);
      assert.equal(`${row.verdictNow}/${row.verdictComing}/${row.comingProfile}`, 'accepted/PROTOCOL_TOO_OLD/high');
      const now = new Date();
      const report = await migrationReadiness(fx.ca.db, parseMigrationFilter({ to: 'high' }, now), now);
      const c = report.facilities.find((f) => f.facility === FACILITY_C)!;
      assert.equal(c.standing, 'at-risk', 'facility C was ready on TLS 1.2; its TLS 1.0 program is not');
      assert.deepEqual(c.problems.map((p) => p.code), ['PROTOCOL_TOO_OLD']);
      assert.match(c.problems[0]!.fixJa, /TLS 1\.2 以上/);
    } finally {
      await second.close(500);
      legacy.close();
    }
  });
});
