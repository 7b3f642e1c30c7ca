/**
 * The gateway against real peers: curl and openssl s_client as clinics, a
 * real HTTP upstream and an HL7 MLLP upstream behind it, the CA's own store
 * for trust, revocation and facility status.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { queryObjects } from 'node:v8';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';
import { echoUpstream, FACILITY_A, FACILITY_C, gatewayFixture, mllpUpstream, PASSPHRASE, type ClientFiles, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, runAsync } from '../testing/peers.js';
import { complianceProfile } from '../policy/index.js';
import { scanServer } from '../scan/index.js';
import { certificatesFromPem } from '../pki/index.js';

let fx: GatewayFixture;
let setup: GatewaySetup;
let http: Awaited<ReturnType<typeof echoUpstream>>;
let mllp: Awaited<ReturnType<typeof mllpUpstream>>;
const logs: Record<string, unknown>[] = [];
let port = 0;
let tcpPort = 0;
let adminPort = 0;

const ready = hasCommand('openssl') && hasCommand('curl');

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  http = await echoUpstream();
  mllp = await mllpUpstream();
  const cfg = parseGatewayConfig({
    home: fx.home,
    admin: '127.0.0.1:0',
    refusals: { intervalSeconds: 1 },
    contact: '運営主体ヘルプデスク 0120-000-000',
    listeners: [
      {
        name: 'web',
        mode: 'http',
        listen: '127.0.0.1:0',
        routes: [
          { path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } },
          { path: '/osaka-only/', upstream: `http://127.0.0.1:${http.port}`, allow: { facilities: [FACILITY_C] } },
        ],
      },
      { name: 'hl7', mode: 'tcp', listen: '127.0.0.1:0', upstream: `tcp://127.0.0.1:${mllp.port}`, proxyProtocol: true, allow: { profiles: ['facility', 'device'] } },
    ],
  });
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('debug', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)), watch: false });
  port = setup.gateway.addresses().find((a) => a.name === 'web')!.port;
  tcpPort = setup.gateway.addresses().find((a) => a.name === 'hl7')!.port;
  adminPort = setup.gateway.adminAddress()!.port;
});

after(async () => {
  if (!ready) return;
  await setup.close(1000);
  http.server.close();
  mllp.server.close();
  await fx.close();
});

function curl(client: ClientFiles | undefined, path = '/hello', extra: string[] = [], env?: NodeJS.ProcessEnv) {
  return runAsync('curl', [
    '-sS',
    '--max-time', '10',
    '--cacert', fx.caFile,
    ...(client ? ['--cert', client.cert, '--key', client.key] : []),
    '-o', '-',
    '-w', '\n%{http_code}',
    ...extra,
    `https://localhost:${port}${path}`,
  ], env ? { env } : {});
}

/** curl's OpenSSL refuses to even load a SHA-1 or RSA-1024 certificate at its default security level; old clinic software does not. */
function legacyClientEnv(): NodeJS.ProcessEnv {
  const conf = join(fx.dir, 'openssl-seclevel0.cnf');
  writeFileSync(conf, 'openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n[sys]\nCipherString = DEFAULT:@SECLEVEL=0\n');
  return { ...process.env, OPENSSL_CONF: conf };
}

function statusOf(r: { stdout: string }): number {
  return Number(r.stdout.trim().split('\n').pop());
}

async function auditHas(action: string, reason: string | undefined, subject?: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const events = await fx.ca.audit.list({ limit: 100_000 });
    if (events.some((e) => e.action === action && (reason === undefined || e.reasonCode === reason) && (subject === undefined || e.subject === subject))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('gateway: the door of the service center', () => {
  test('a facility certificate from the CA reaches the upstream, which sees who it is; spoofed identity headers are stripped', async (t) => {
    if (!needCommand(t, 'curl') || !needCommand(t, 'openssl')) return;
    const r = await curl(fx.clients.good, '/hello', ['-H', 'X-Sekisho-Facility-Number: 9999999999', '-H', 'Client-Cert: :AAAA:', '-H', 'X-Forwarded-For: 10.9.9.9']);
    assert.equal(statusOf(r), 200, r.stderr);
    const seen = (JSON.parse(r.stdout.trim().split('\n')[0]!) as { headers: Record<string, string> }).headers;
    assert.equal(seen['x-sekisho-facility-number'], FACILITY_A);
    assert.equal(decodeURIComponent(seen['x-sekisho-facility-name']!), 'はこだて内科クリニック');
    assert.equal(seen['x-sekisho-profile'], 'facility');
    assert.equal(seen['x-sekisho-cert-serial'], fx.clients.good.serial);
    const leafDer = certificatesFromPem(readFileSync(fx.clients.good.cert, 'utf8'))[0]!;
    assert.equal(seen['client-cert'], `:${leafDer.toString('base64')}:`, 'RFC 9440 Client-Cert carries the DER the client presented');
    assert.equal(seen['x-sekisho-cert-sha256'], new X509Certificate(leafDer).fingerprint256.replace(/:/g, '').toLowerCase());
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.ok(await auditHas('gateway.authenticated', undefined, fx.clients.good.serial));
  });

  test('a device certificate is passed on as a device of its facility', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = await curl(fx.clients.device);
    assert.equal(statusOf(r), 200, r.stderr);
    const seen = (JSON.parse(r.stdout.trim().split('\n')[0]!) as { headers: Record<string, string> }).headers;
    assert.equal(seen['x-sekisho-profile'], 'device');
    assert.equal(seen['x-sekisho-facility-number'], FACILITY_A);
    assert.equal(decodeURIComponent(seen['x-sekisho-device-name']!), 'レセプト端末-01');
  });

  // Certificates that chain to our CA: the clinic gets a page saying what to do.
  const explained: [keyof GatewayFixture['clients'], string, RegExp][] = [
    ['expired', 'EXPIRED', /有効期限が切れています[\s\S]*has expired/],
    ['notYet', 'NOT_YET_VALID', /有効期間がまだ始まっていません[\s\S]*not valid yet/],
    ['revoked', 'REVOKED', /失効しています[\s\S]*has been revoked/],
    ['suspended', 'FACILITY_SUSPENDED', /利用が停止されています[\s\S]*suspended/],
    ['sha1', 'SHA1_SIGNATURE', /SHA-1/],
    ['weak', 'KEY_TOO_WEAK', /鍵の強度が不足/],
    // Regression: a client certificate whose EC key carries explicit curve parameters (or an RSA key with e = 3) was let in.
    ['explicitEc', 'KEY_NOT_CONFORMANT', /鍵の形式が受け付けられません[\s\S]*explicit elliptic-curve parameters/],
    ['rsaE3', 'KEY_NOT_CONFORMANT', /鍵の形式が受け付けられません/],
  ];
  for (const [client, reason, text] of explained) {
    test(`${reason} (${client}): refused with a page in Japanese and English, audited with its reason`, async (t) => {
      if (!needCommand(t, 'curl')) return;
      const r = await curl(fx.clients[client], '/', ['-D', '-'], legacyClientEnv());
      assert.equal(statusOf(r), 403, r.stderr);
      assert.match(r.stdout, new RegExp(`x-sekisho-refusal: ${reason}`, 'i'));
      assert.match(r.stdout, text);
      assert.match(r.stdout, /運営主体ヘルプデスク/);
      assert.ok(await auditHas('gateway.refused', reason), `audit has gateway.refused ${reason}`);
    });
  }

  test('WRONG_EKU: a server certificate used as a client certificate is refused', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = await curl(fx.clients.wrongEku, '/', ['-D', '-']);
    assert.equal(statusOf(r), 403, r.stderr);
    assert.match(r.stdout, /x-sekisho-refusal: WRONG_EKU/i);
    assert.ok(await auditHas('gateway.refused', 'WRONG_EKU'));
  });

  test('NO_CLIENT_CERT: refused in the handshake (TLS 1.3 certificate_required, TLS 1.2 handshake_failure)', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const r13 = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-ign_eof', '-CAfile', fx.caFile], { input: 'GET / HTTP/1.0\r\n\r\n' });
    assert.match(r13.stdout + r13.stderr, /alert certificate required|alert number 116/);
    const r12 = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-CAfile', fx.caFile]);
    assert.match(r12.stdout + r12.stderr, /alert handshake failure|alert number 40/);
    assert.notEqual(statusOf(await curl(undefined)), 200);
    assert.ok(await auditHas('gateway.refused.unidentified', 'NO_CLIENT_CERT'), 'summed per address and reason');
  });

  test('a TLS session is never resumed: every connection is a full handshake with its chain verified and revocation applied (TLS 1.3 ticket, TLS 1.2 session)', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const { cert, key } = fx.clients.good;
    const session = join(fx.dir, 'resumption.session');
    for (const v of ['-tls1_3', '-tls1_2']) {
      const first = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, v, '-ign_eof', '-CAfile', fx.caFile, '-cert', cert, '-key', key, '-sess_out', session], { input: 'GET /hello HTTP/1.0\r\n\r\n' });
      assert.match(first.stdout, /HTTP\/1\.1 200/, `${v}: ${first.stderr}`);
      // The same client offers the session again; then a client that holds the session but not the key.
      const again = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, v, '-ign_eof', '-CAfile', fx.caFile, '-cert', cert, '-key', key, '-sess_in', session], { input: 'GET /hello HTTP/1.0\r\n\r\n' });
      assert.match(again.stdout, /^New,/m, `${v}: the offered session was not resumed`);
      assert.doesNotMatch(again.stdout, /^Reused,/m);
      assert.match(again.stdout, /HTTP\/1\.1 200/);
      const thief = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, v, '-ign_eof', '-CAfile', fx.caFile, '-sess_in', session], { input: 'GET /hello HTTP/1.0\r\n\r\n' });
      assert.doesNotMatch(thief.stdout, /^Reused,/m, `${v}: a session alone must not stand in for the certificate`);
      assert.doesNotMatch(thief.stdout, /HTTP\/1\.1 200/);
      assert.match(thief.stdout + thief.stderr, /alert certificate required|alert number 116|alert handshake failure|alert number 40/);
    }
  });

  test('UNKNOWN_CA: a certificate from another CA is closed without a page', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = await curl(fx.clients.unknown);
    assert.notEqual(statusOf(r), 200);
    assert.notEqual(statusOf(r), 403, 'no page for a stranger');
    assert.ok(await auditHas('gateway.refused.unidentified', 'UNKNOWN_CA'), 'summed per address and reason');
  });

  test('PROTOCOL_TOO_OLD and NO_SHARED_CIPHER: TLS 1.0/1.1 and CBC or static-RSA suites are refused', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const { cert, key } = fx.clients.good;
    for (const v of ['-tls1', '-tls1_1']) {
      const r = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, v, '-cipher', 'DEFAULT@SECLEVEL=0', '-cert', cert, '-key', key]);
      assert.notEqual(r.status, 0, `${v} must fail`);
      assert.doesNotMatch(r.stdout, /Cipher is (?!\(NONE\))/, `${v} negotiated nothing`);
    }
    assert.ok(await auditHas('gateway.refused.unidentified', 'PROTOCOL_TOO_OLD'), 'summed per address and reason');
    for (const cipher of ['ECDHE-ECDSA-AES128-SHA', 'AES128-GCM-SHA256', 'AES256-SHA256']) {
      const r = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-cipher', cipher, '-cert', cert, '-key', key]);
      assert.notEqual(r.status, 0, `${cipher} must fail`);
    }
    assert.ok(await auditHas('gateway.refused.unidentified', 'NO_SHARED_CIPHER'), 'summed per address and reason');
  });

  test('ACCESS_DENIED: a route open to one facility refuses another, with a page', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const denied = await curl(fx.clients.good, '/osaka-only/chart');
    assert.equal(statusOf(denied), 403);
    assert.match(denied.stdout, /このサービスを利用できません/);
    const allowed = await curl(fx.clients.other, '/osaka-only/chart');
    assert.equal(statusOf(allowed), 200);
    assert.ok(await auditHas('gateway.refused', 'ACCESS_DENIED'));
  });

  test('TCP mode carries HL7 MLLP with a PROXY v2 header naming the facility', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const s = tlsConnect({ host: '127.0.0.1', port: tcpPort, ca: readFileSync(fx.caFile), servername: 'localhost', cert: readFileSync(fx.clients.good.cert), key: readFileSync(fx.clients.good.key) });
    await new Promise((r) => s.once('secureConnect', r));
    s.write('\x0bMSH|^~\\&|CLINIC|A|CENTER|B|20261123||ADT^A01|MSG0001|P|2.5\rPID|1||12345\x1c\x0d');
    const ack = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
    assert.match(ack, /MSA\|AA\|MSG0001\|from /);
    assert.match(ack, new RegExp(`from ${FACILITY_A}`));
    s.destroy();
    const id = mllp.identities.at(-1)!;
    assert.equal(id.facilityNumber, FACILITY_A);
    assert.deepEqual((id.source as { address: string }).address, '127.0.0.1');
  });

  test('regression: a closed connection leaves nothing behind in the gateway (each one kept its TLS socket and OpenSSL state for good)', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    // Every kind of end: a kept-alive exchange the client ends, a refusal page, a request cut in its head, a client
    // refused in the handshake, an HL7 link. Before the fix each HTTP connection stayed reachable from its native
    // request parser (a global handle until the parser is deleted), and with it the TLS socket and OpenSSL's state.
    const ca = readFileSync(fx.caFile);
    const as = (c: ClientFiles) => ({ host: '127.0.0.1', ca, servername: 'localhost', cert: readFileSync(c.cert), key: readFileSync(c.key) });
    const closes: Promise<void>[] = [];
    const track = <S extends TLSSocket>(s: S): S => {
      s.on('error', () => undefined);
      closes.push(new Promise<void>((r) => s.once('close', () => r())));
      return s;
    };
    const open = async (o: ReturnType<typeof as>, to: number) => {
      const s = track(tlsConnect({ ...o, port: to }));
      await new Promise((r) => s.once('secureConnect', r));
      return s;
    };
    const answer = (s: TLSSocket) => new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
    const live = () => queryObjects(TLSSocket, { format: 'count' });
    const before = live();
    const N = 10;
    // Each round in a function of its own: its sockets are unreachable from here once it returns.
    const round = async () => {
      const kept = await open(as(fx.clients.good), port);
      kept.write('GET /kept HTTP/1.1\r\nHost: localhost\r\n\r\n');
      assert.match(await answer(kept), /^HTTP\/1.1 200/);
      kept.end();
      const page = await open(as(fx.clients.good), port);
      page.write('GET /osaka-only/x HTTP/1.1\r\nHost: localhost\r\n\r\n');
      assert.match(await answer(page), /^HTTP\/1.1 403/);
      const cut = await open(as(fx.clients.good), port);
      cut.write('GET /cut HTTP/1.1\r\nHost: loc');
      track(tlsConnect({ ...as(fx.clients.unknown), port }));
      const hl7 = await open(as(fx.clients.good), tcpPort);
      hl7.write('\x0bMSH|^~\\&|CLINIC|A|CENTER|B|20261123||ADT^A01|MSG0002|P|2.5\rPID|1||12345\x1c\x0d');
      await answer(hl7);
      for (const s of [page, cut, hl7]) s.destroy();
    };
    for (let i = 0; i < N; i++) await round();
    await Promise.all(closes);
    // The gateway's side closes a moment after the client's; each count is taken after a full garbage collection.
    let left = live();
    for (let i = 0; i < 40 && left > before + 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = live();
    }
    assert.ok(left <= before + 2, `${left - before} TLS sockets of ${N * 5} closed connections (and their gateway sides) are still in the heap`);
  });

  test('revocation cuts a live HTTP connection and a live HL7 link within 5 seconds; new connections are refused', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const victim = fx.clients.victim;
    const opts = { host: '127.0.0.1', ca: readFileSync(fx.caFile), servername: 'localhost', cert: readFileSync(victim.cert), key: readFileSync(victim.key) };
    const web = tlsConnect({ ...opts, port });
    const hl7 = tlsConnect({ ...opts, port: tcpPort });
    await Promise.all([new Promise((r) => web.once('secureConnect', r)), new Promise((r) => hl7.once('secureConnect', r))]);
    web.write('GET /keepalive HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.match(await new Promise<string>((r) => web.once('data', (d: Buffer) => r(d.toString()))), /^HTTP\/1.1 200/);
    const closed = (s: typeof web) => new Promise<number>((r) => s.once('close', () => r(performance.now())));
    const webClosed = closed(web);
    const hl7Closed = closed(hl7);
    web.on('error', () => undefined);
    hl7.on('error', () => undefined);
    const revokedAt = performance.now();
    await fx.ca.revoke(victim.serial!, 'keyCompromise', 'test');
    const [w, h] = await Promise.all([webClosed, hl7Closed]);
    assert.ok(w - revokedAt < 5000, `HTTP connection cut after ${Math.round(w - revokedAt)} ms`);
    assert.ok(h - revokedAt < 5000, `HL7 link cut after ${Math.round(h - revokedAt)} ms`);
    const again = await curl(victim, '/', ['-D', '-']);
    assert.match(again.stdout, /x-sekisho-refusal: REVOKED/i);
    assert.ok(await auditHas('gateway.connection-cut', 'REVOKED', victim.serial));
    // Each cut connection's session says how it ended, and what it did before.
    assert.ok(await auditHas('gateway.session', 'REVOKED', victim.serial));
    const sessions = (await fx.ca.audit.list({ limit: 100_000 })).filter((e) => e.action === 'gateway.session' && e.subject === victim.serial);
    assert.deepEqual(sessions.map((e) => [e.details!.listener, e.details!.end]).sort(), [['hl7', 'cut'], ['web', 'cut']]);
    assert.deepEqual(sessions.find((e) => e.details!.listener === 'web')!.details!.operations, [{ method: 'GET', path: '/keepalive', status: 200 }]);
  });

  test('metrics count handshakes by outcome and reason; health and status answer on the admin listener', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const m = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    assert.match(m, /sekisho_gateway_handshakes_total\{listener="web",outcome="accepted",reason=""\} \d+/);
    for (const reason of ['REVOKED', 'EXPIRED', 'NO_CLIENT_CERT', 'UNKNOWN_CA', 'PROTOCOL_TOO_OLD', 'NO_SHARED_CIPHER', 'FACILITY_SUSPENDED', 'SHA1_SIGNATURE', 'WRONG_EKU']) {
      assert.match(m, new RegExp(`sekisho_gateway_handshakes_total\\{listener="web",outcome="refused",reason="${reason}"\\} [1-9]`), reason);
    }
    assert.match(m, /sekisho_gateway_connections_cut_total\{listener="hl7",reason="REVOKED"\} 1/);
    assert.match(m, /sekisho_gateway_revocation_stale\{source="store"\} 0/);
    // Memory and CPU, for an operator watching for a leak (a closed connection once held ~30 KiB for good).
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(m)?.[1]);
    assert.ok(value('sekisho_gateway_resident_memory_bytes') > 20 * 1024 * 1024, 'resident memory in bytes');
    assert.ok(value('sekisho_gateway_heap_used_bytes') > 1024 * 1024, 'heap in use in bytes');
    assert.ok(value('sekisho_gateway_cpu_seconds_total') > 0, 'CPU seconds');
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).status, 200);
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as { state: string; revocation: { entries: number }[] };
    assert.equal(status.state, 'listening');
    assert.ok(status.revocation[0]!.entries >= 2);
    assert.ok(logs.some((l) => l.msg === 'client refused' && l.reason === 'REVOKED'), 'structured JSON log line per refusal');
    const closed = logs.find((l) => l.msg === 'connection closed' && l.serial === fx.clients.good.serial);
    assert.ok(closed && typeof closed.seconds === 'number' && (closed.bytesIn as number) > 0 && (closed.bytesOut as number) > 0, 'an access log line with the duration and bytes of each connection');
    assert.ok(logs.some((l) => l.msg === 'request' && l.serial === fx.clients.good.serial && l.path === '/hello' && l.status === 200), 'an access log line per request');
  });

  test('the compliance scanner judges the gateway compliant with the mhlw profile', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const report = await scanServer({
      target: { host: '127.0.0.1', port },
      profile: complianceProfile('mhlw'),
      trustAnchors: [fx.ca.rootDer],
      clientCredential: { cert: readFileSync(fx.clients.good.cert, 'utf8'), key: readFileSync(fx.clients.good.key, 'utf8') },
    });
    const failing = report.checks.filter((c) => c.status === 'fail');
    assert.deepEqual(failing, [], JSON.stringify(failing, null, 1));
    assert.equal(report.compliant, true);
    assert.equal(report.checks.find((c) => c.check === 'client-certificate')?.status, 'pass');
  });
});
