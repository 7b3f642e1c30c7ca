/**
 * The gateway under abuse from clients that prove no identity, against real
 * peers (openssl s_client, Node's TLS client as a flood): their refusals are
 * counted exactly but audited in sums of bounded size (a refused handshake
 * once wrote a hash-chained row each, 20 KB with a huge self-signed issuer);
 * a certificate of ours is still audited one by one; a TLS 1.2
 * renegotiation request closes the connection at once (it was unlimited);
 * one address cannot hold more than its share of connections.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';
import { echoUpstream, gatewayFixture, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, run, runAsync } from '../testing/peers.js';

let fx: GatewayFixture;
let setup: GatewaySetup;
let http: Awaited<ReturnType<typeof echoUpstream>>;
const logs: Record<string, unknown>[] = [];
let port = 0;
let adminPort = 0;
const ready = hasCommand('openssl') && hasCommand('curl');

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  http = await echoUpstream();
  const cfg = parseGatewayConfig({
    home: fx.home,
    admin: '127.0.0.1:0',
    refusals: { intervalSeconds: 1, maxAddresses: 3 },
    limits: { gateway: { maxConnectionsPerAddress: 4, headersTimeoutSeconds: 2 } },
    listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } }] }],
  });
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('info', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)), watch: false });
  port = setup.gateway.addresses()[0]!.port;
  adminPort = setup.gateway.adminAddress()!.port;
});

after(async () => {
  if (!ready) return;
  await setup.close(1000);
  http.server.close();
  await fx.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One TLS client that presents `cert` (or none) and waits until the gateway ends the connection. */
function refusedOnce(o: { cert?: string; key?: string; localAddress?: string }): Promise<void> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(o.cert ? { cert: o.cert, key: o.key } : {}), ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Runs `n` clients, `parallel` at a time. */
async function flood(n: number, parallel: number, one: () => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += parallel) await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, one));
}

async function metric(pattern: RegExp): Promise<number> {
  const m = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const hit = pattern.exec(m);
  return hit ? Number(hit[1]) : 0;
}

const gatewayRows = async (afterSeq: number) => (await fx.ca.audit.list({ afterSeq, limit: 100_000 })).filter((e) => e.action.startsWith('gateway.'));
const head = async () => (await fx.ca.audit.list({ limit: 100_000 })).reduce((m, e) => Math.max(m, e.seq), 0);

describe('gateway under abuse', () => {
  test('refusals without an identity (no certificate; a self-signed one with a 19 KB issuer) are audited in a few bounded rows, while /metrics counts every one', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const hugeKey = join(fx.dir, 'huge.key');
    const hugeCert = join(fx.dir, 'huge.pem');
    const ous = Array.from({ length: 300 }, (_, i) => `OU=${String(i).padStart(3, '0')}${'x'.repeat(61)}`).join('/');
    const made = run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', hugeKey, '-out', hugeCert, '-subj', `/CN=huge/${ous}`, '-days', '2', '-addext', 'extendedKeyUsage=clientAuth']);
    assert.equal(made.status, 0, made.stderr);
    assert.ok(readFileSync(hugeCert, 'utf8').length > 20_000, 'the certificate carries a huge issuer name');
    const before = await head();
    const noCert0 = await metric(/sekisho_gateway_handshakes_total\{listener="web",outcome="refused",reason="NO_CLIENT_CERT"\} (\d+)/);
    const unknown0 = await metric(/sekisho_gateway_handshakes_total\{listener="web",outcome="refused",reason="UNKNOWN_CA"\} (\d+)/);
    const N = 120;
    const M = 40;
    const huge = { cert: readFileSync(hugeCert, 'utf8'), key: readFileSync(hugeKey, 'utf8') };
    await flood(N, 4, () => refusedOnce({}));
    await flood(M, 4, () => refusedOnce(huge));
    // Every refusal is counted at once.
    assert.equal((await metric(/sekisho_gateway_handshakes_total\{listener="web",outcome="refused",reason="NO_CLIENT_CERT"\} (\d+)/)) - noCert0, N);
    assert.equal((await metric(/sekisho_gateway_handshakes_total\{listener="web",outcome="refused",reason="UNKNOWN_CA"\} (\d+)/)) - unknown0, M);
    // The sums reach the audit trail within a few intervals; all N + M are in their counts.
    let rows: Awaited<ReturnType<typeof gatewayRows>> = [];
    for (let i = 0; i < 100; i++) {
      rows = (await gatewayRows(before)).filter((e) => e.action === 'gateway.refused.unidentified');
      const counted = rows.reduce((s, e) => s + Number(e.details?.count ?? 0), 0);
      if (counted >= N + M) break;
      await sleep(100);
    }
    const counted = (reason: string) => rows.filter((e) => e.reasonCode === reason).reduce((s, e) => s + Number(e.details?.count ?? 0), 0);
    assert.equal(counted('NO_CLIENT_CERT'), N, JSON.stringify(rows.map((r) => r.details)));
    assert.equal(counted('UNKNOWN_CA'), M);
    // Flooding took several intervals at most: a handful of rows, not N + M.
    assert.ok(rows.length <= 20, `${rows.length} rows for ${N + M} refusals`);
    assert.equal((await gatewayRows(before)).filter((e) => e.action === 'gateway.refused').length, 0, 'no row per refused socket');
    for (const r of rows) {
      assert.ok(JSON.stringify(r).length < 1024, `a row stays small: ${JSON.stringify(r).length} bytes`);
      assert.equal(r.details?.address, '127.0.0.1');
      assert.ok(!JSON.stringify(r).includes('BEGIN CERTIFICATE'));
    }
    assert.ok(rows.some((r) => r.reasonCode === 'UNKNOWN_CA' && String(r.details?.detail).endsWith('…')), 'the issuer name is cut');
    assert.ok(logs.some((l) => l.msg === 'clients without an identity refused'), 'logged in sums');
    assert.ok(!logs.some((l) => l.msg === 'client refused' && l.reason === 'NO_CLIENT_CERT'), 'no warn line per refused socket');
    const { problems } = await fx.ca.audit.verify();
    assert.deepEqual(problems, [], 'the chain stays intact');
  });

  test('beyond refusals.maxAddresses distinct addresses per interval, the rest go to one overflow row', async () => {
    const before = await head();
    // 127.0.0.0/8 is all loopback on Linux: eight client addresses.
    await Promise.all(Array.from({ length: 8 }, (_, i) => refusedOnce({ localAddress: `127.0.0.${20 + i}` })));
    let rows: Awaited<ReturnType<typeof gatewayRows>> = [];
    for (let i = 0; i < 50; i++) {
      rows = (await gatewayRows(before)).filter((e) => e.action === 'gateway.refused.unidentified');
      if (rows.reduce((s, e) => s + Number(e.details?.count ?? 0), 0) >= 8) break;
      await sleep(100);
    }
    assert.equal(rows.reduce((s, e) => s + Number(e.details?.count ?? 0), 0), 8);
    const overflow = rows.filter((r) => r.details?.address === '*');
    assert.ok(overflow.length >= 1, JSON.stringify(rows.map((r) => r.details)));
    assert.ok(rows.length <= 8, 'at most maxAddresses rows plus the overflow per interval');
  });

  test('a revoked facility certificate is still audited one by one, with its serial', async () => {
    const before = await head();
    const revoked = { cert: readFileSync(fx.clients.revoked.cert, 'utf8'), key: readFileSync(fx.clients.revoked.key, 'utf8') };
    await refusedOnce(revoked);
    await refusedOnce(revoked);
    let rows: Awaited<ReturnType<typeof gatewayRows>> = [];
    for (let i = 0; i < 50; i++) {
      rows = (await gatewayRows(before)).filter((e) => e.action === 'gateway.refused' && e.reasonCode === 'REVOKED');
      if (rows.length >= 2) break;
      await sleep(100);
    }
    assert.equal(rows.length, 2);
    assert.ok(rows.every((r) => r.subject === fx.clients.revoked.serial));
  });

  test('a TLS 1.2 renegotiation request (openssl s_client "R") closes the connection at the first attempt', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const before = await metric(/sekisho_listener_renegotiations_refused_total\{listener="web"\} (\d+)/);
    const { cert, key } = fx.clients.good;
    // R asks for a renegotiation; the second R and the request would follow if the connection stayed.
    const script = 'R\nR\nGET / HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const r = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-cert', cert, '-key', key, '-CAfile', fx.caFile], { input: script, timeoutMs: 20_000 });
    const out = r.stdout + r.stderr;
    assert.match(out, /RENEGOTIATING/);
    assert.match(out, /no renegotiation|unexpected eof|closed|errno|alert/i, out.slice(-600));
    assert.doesNotMatch(out, /HTTP\/1\.1 200/, 'nothing is served after the request');
    assert.equal((out.match(/RENEGOTIATING/g) ?? []).length, 1, 'the second attempt never happens');
    for (let i = 0; i < 50 && (await metric(/sekisho_listener_renegotiations_refused_total\{listener="web"\} (\d+)/)) === before; i++) await sleep(100);
    assert.equal((await metric(/sekisho_listener_renegotiations_refused_total\{listener="web"\} (\d+)/)) - before, 1);
    // A well-behaved client still gets through.
    const ok = await runAsync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cert', cert, '--key', key, '--cacert', fx.caFile, `https://localhost:${port}/`]);
    assert.equal(ok.stdout, '200', ok.stderr);
  });

  test('an authenticated client that sends its request headers too slowly is closed after the headers timeout', async () => {
    const { cert, key } = fx.clients.good;
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8'), ca: readFileSync(fx.caFile, 'utf8') });
    s.on('error', () => undefined);
    s.resume();
    const closed = new Promise<boolean>((r) => s.once('close', () => r(true)));
    await new Promise<void>((r) => s.once('secureConnect', () => r()));
    s.write('GET / HTTP/1.1\r\nHost: localhost\r\n');
    assert.equal(await Promise.race([closed, sleep(10_000).then(() => false)]), true, 'closed after the 2 s headers timeout');
    s.destroy();
  });

  test('one address holds at most maxConnectionsPerAddress connections; the next is closed at once, other addresses still get in', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const refused0 = await metric(/sekisho_listener_connections_refused_total\{listener="web",cap="per-address"\} (\d+)/);
    const held: Socket[] = [];
    try {
      const open = (localAddress: string) =>
        new Promise<{ socket: Socket; closedAt: Promise<number> }>((resolve, reject) => {
          const socket = netConnect({ host: '127.0.0.1', port, localAddress });
          const closedAt = new Promise<number>((r) => socket.once('close', () => r(performance.now())));
          socket.on('error', () => undefined);
          socket.once('connect', () => resolve({ socket, closedAt }));
          socket.once('error', reject);
        });
      // Four half-open connections (TCP only, no ClientHello) from one address: all held.
      for (let i = 0; i < 4; i++) held.push((await open('127.0.0.40')).socket);
      await sleep(300);
      assert.ok(held.every((s) => !s.destroyed), 'the four under the cap stay open');
      const fifth = await open('127.0.0.40');
      held.push(fifth.socket);
      const closed = await Promise.race([fifth.closedAt, sleep(3000).then(() => -1)]);
      assert.ok(closed > 0, 'the fifth from the same address is closed at once, without a handshake');
      assert.equal((await metric(/sekisho_listener_connections_refused_total\{listener="web",cap="per-address"\} (\d+)/)) - refused0, 1);
      // Another address (curl from 127.0.0.1) gets through meanwhile.
      const { cert, key } = fx.clients.good;
      const ok = await runAsync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cert', cert, '--key', key, '--cacert', fx.caFile, `https://localhost:${port}/`]);
      assert.equal(ok.stdout, '200', ok.stderr);
    } finally {
      for (const s of held) s.destroy();
    }
    // The refusals over the cap are logged in sums once the interval ends (not one line per socket).
    for (let i = 0; i < 150 && !logs.some((l) => l.msg === 'connections refused over the connection caps'); i++) await sleep(100);
    const line = logs.find((l) => l.msg === 'connections refused over the connection caps');
    assert.ok(line, 'one summed log line');
    assert.equal(line.overPerAddressCap, 1);
  });
});
