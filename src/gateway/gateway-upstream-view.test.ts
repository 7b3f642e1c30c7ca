/**
 * What an upstream sees through the gateway, against real upstreams:
 *  - nginx, which normalizes paths before choosing a location: no spelling of
 *    a path reserved for another facility (dot segments, percent-encoding,
 *    doubled slashes, backslashes, …) reaches a route the gateway did not
 *    authorize (regression: route rules matched the raw request target);
 *  - a WSGI application (Python wsgiref), which folds `X_Sekisho_…` and
 *    `X-Sekisho-…` into one CGI variable: only the gateway's identity values
 *    arrive (regression: underscore spellings were forwarded, attacker first);
 *  - gnutls-cli and openssl s_client sending a request and then half-closing
 *    (TLS 1.3 close_notify / EOF): the answer still arrives, in HTTP and TCP
 *    mode (regression: the gateway closed without answering).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';
import { normalizeTarget } from './request-target.js';
import { echoUpstream, FACILITY_A, FACILITY_C, gatewayFixture, PASSPHRASE, type ClientFiles, type GatewayFixture } from '../testing/gateway-fixture.js';
import { nginxUpstream, replyAtEndUpstream, wsgiEchoUpstream, type RunningUpstream } from '../testing/upstreams.js';
import { hasCommand, needCommand } from '../testing/peers.js';
import { certificatesFromPem } from '../pki/index.js';

let fx: GatewayFixture;
let setup: GatewaySetup;
let nginx: RunningUpstream;
let wsgi: RunningUpstream;
let echo: Awaited<ReturnType<typeof echoUpstream>>;
let atEnd: Awaited<ReturnType<typeof replyAtEndUpstream>>;
let port = 0;
let tcpPort = 0;
const logs: Record<string, unknown>[] = [];

const ready = hasCommand('openssl') && hasCommand('nginx') && hasCommand('python3');

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  [nginx, wsgi, echo, atEnd] = await Promise.all([nginxUpstream({ '/': 'public', '/admin/': 'admin' }), wsgiEchoUpstream(), echoUpstream(), replyAtEndUpstream()]);
  const cfg = parseGatewayConfig({
    home: fx.home,
    listeners: [
      {
        name: 'web',
        mode: 'http',
        listen: '127.0.0.1:0',
        routes: [
          { path: '/', upstream: `http://127.0.0.1:${nginx.port}`, allow: { anyone: true } },
          { path: '/admin/', upstream: `http://127.0.0.1:${nginx.port}`, allow: { facilities: [FACILITY_C] } },
          { path: '/wsgi/', upstream: `http://127.0.0.1:${wsgi.port}`, allow: { anyone: true } },
          { path: '/echo/', upstream: `http://127.0.0.1:${echo.port}`, allow: { anyone: true } },
        ],
      },
      { name: 'pipe', mode: 'tcp', listen: '127.0.0.1:0', upstream: `tcp://127.0.0.1:${atEnd.port}`, allow: { anyone: true } },
    ],
  });
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('debug', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)), watch: false });
  port = setup.gateway.addresses().find((a) => a.name === 'web')!.port;
  tcpPort = setup.gateway.addresses().find((a) => a.name === 'pipe')!.port;
});

after(async () => {
  if (!ready) return;
  await setup.close(1000);
  await Promise.all([nginx.close(), wsgi.close(), atEnd.close(), new Promise((r) => echo.server.close(r))]);
  await fx.close();
});

/** One raw HTTP/1.1 request over TLS with a client certificate, bytes as given; resolves to status and body. */
function raw(client: ClientFiles, head: string): Promise<{ status: number; body: string; text: string }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(fx.caFile), cert: readFileSync(client.cert), key: readFileSync(client.key) });
    const parts: Buffer[] = [];
    s.once('secureConnect', () => s.write(Buffer.from(head, 'latin1')));
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('error', reject);
    s.setTimeout(20_000, () => s.destroy(new Error('no answer within 20 s')));
    s.once('close', () => {
      const text = Buffer.concat(parts).toString();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4), text });
    });
  });
}
const get = (client: ClientFiles, target: string, headers = '') => raw(client, `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${headers}Connection: close\r\n\r\n`);

// Spellings of /admin/secret (reserved for facility C), and a few of other paths.
const SPELLINGS = [
  '/admin/secret',
  '/admin',
  '/admin/',
  '/x/../admin/secret',
  '/public/./../admin/secret',
  '/%61dmin/secret',
  '/%61%64%6D%69%6E/secret',
  '/adm%69n/secret',
  '/%41dmin/secret',
  '//admin/secret',
  '///admin//secret',
  '/./admin/secret',
  '/%2e/admin/secret',
  '/x/%2e%2e/admin/secret',
  '/x/.%2E/admin/secret',
  '/x/%2E./admin/secret',
  '//x//..//admin/secret',
  '/x//../admin/secret',
  '/admin%2fsecret',
  '/admin%2F',
  '/%2fadmin/secret',
  '/x%2f..%2fadmin/secret',
  '/x/..%2fadmin/secret',
  '/x\\..\\admin\\secret',
  '/x/..\\admin/secret',
  '/admin%5csecret',
  '/x%5c..%5cadmin/secret',
  '/admin%00/secret',
  '/admin/secret%00.html',
  '/x/..;/admin/secret',
  '/x/%2e%2e;/admin/secret',
  '/../admin/secret',
  '/%2e%2e/admin/secret',
  '/x/../../admin/secret',
  '/%c0%ae%c0%ae/admin/secret',
  '/x/%c0%ae%c0%ae/admin/secret',
  '/%252e%252e/admin/secret',
  '/x/%252e%252e/admin/secret',
  '/admin/secret?next=/../',
  '/public?/../admin/secret',
  '/ADMIN/secret',
  '/admin%09/secret',
  'http://localhost/admin/secret',
  'https://localhost/admin/secret',
  'localhost:443',
  '*',
];

/** The route the gateway authorizes for a target: from its own normalizer (undefined: refused). */
function gatewayRoute(target: string): 'admin' | 'public' | undefined {
  try {
    const { path } = normalizeTarget(target);
    // As nginx chooses: the gateway's /admin/ route also covers "/admin" (stricter), nginx serves that from "/".
    return path.startsWith('/admin/') ? 'admin' : 'public';
  } catch {
    return undefined;
  }
}

describe('gateway HTTP mode: the path the upstream sees', () => {
  for (const [who, client, mayAdmin] of [['facility A (not allowed /admin/)', 'good', false], ['facility C (allowed /admin/)', 'other', true]] as const) {
    test(`every spelling of a reserved path is refused or reaches exactly the route the gateway authorized (nginx upstream, ${who})`, async (t) => {
      if (!needCommand(t, 'nginx')) return;
      const seen: string[] = [];
      for (const target of SPELLINGS) {
        const r = await get(fx.clients[client], target);
        const route = /route=(\w+)/.exec(r.body)?.[1];
        seen.push(`${target} → ${r.status} ${route ?? ''}`);
        if (r.status === 400 || r.status === 403) {
          if (r.status === 403) assert.ok(!mayAdmin || gatewayRoute(target) === undefined, `${target}: refused though allowed`);
          continue;
        }
        assert.equal(r.status, 200, `${target}: ${r.text.slice(0, 200)}`);
        assert.ok(route, `${target}: nginx answered`);
        if (!mayAdmin) assert.equal(route, 'public', `${target} reached nginx's ${route} route as facility A`);
        assert.equal(route, gatewayRoute(target), `${target}: the gateway authorized ${gatewayRoute(target)}, nginx served ${route}`);
      }
      // The spellings the gateway normalizes are served, not just refused.
      const ok = (target: string) => seen.find((s) => s.startsWith(`${target} →`))!;
      if (mayAdmin) for (const target of ['/x/../admin/secret', '/%61dmin/secret', '//admin/secret', '/x/%2e%2e/admin/secret']) assert.match(ok(target), / 200 admin$/);
      else for (const target of ['/x/../admin/secret', '/%61dmin/secret', '//admin/secret', '/x/%2e%2e/admin/secret']) assert.match(ok(target), / 403 $/);
      for (const target of ['/admin%2fsecret', '/x\\..\\admin\\secret', '/admin%00/secret', '/../admin/secret', '/x/..;/admin/secret', 'http://localhost/admin/secret', '*']) assert.match(ok(target), / 400 $/, target);
    });
  }

  test('the upstream receives the normalized path, with the query as sent', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const r = await get(fx.clients.good, '/echo/x/%2e%2e//%7eme/%3b?a=/../%2e&b');
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.body) as { path: string }).path, '/echo/~me/%3B?a=/../%2e&b');
  });
});

describe('gateway HTTP mode: identity headers cannot be smuggled', () => {
  test('a WSGI upstream sees only the gateway\'s identity and forwarding values, whatever the spelling sent', async (t) => {
    if (!needCommand(t, 'python3')) return;
    const forged = [
      'X_Sekisho_Facility_Number: 9999999999',
      'x_sekisho_facility_number: 9999999998',
      'X-SEKISHO-FACILITY-NUMBER: 9999999997',
      'X-Sekisho-Facility-Number: 9999999996',
      'X.Sekisho.Facility.Number: 9999999995',
      'X_Sekisho-Facility_Number: 9999999994',
      'X_Sekisho_Facility_Name: forged',
      'X_Sekisho_Profile: other',
      'X_Sekisho_Cert_Serial: 00',
      'X_Sekisho_Cert_Sha256: 00',
      'X_Sekisho_Subject: forged',
      'X_Sekisho_Device_Name: forged',
      'X_Sekisho_Anything: forged',
      'Client_Cert: :Zm9yZ2Vk:',
      'Client-Cert: :Zm9yZ2Vk:',
      'Client_Cert_Chain: :Zm9yZ2Vk:',
      'X_Forwarded_For: 10.9.9.9',
      'X-Forwarded-For: 10.9.9.8',
      'X_Forwarded_Proto: http',
      'X_Forwarded_Host: forged.example',
      'X_Real_IP: 10.9.9.9',
      'X_Real_Ip: 10.9.9.7',
      'Forwarded: for=10.9.9.9',
      'X_SSL_Client_Verify: SUCCESS',
      'SSL_Client_S_DN: forged',
      'X_Client_Cert: forged',
    ];
    const r = await get(fx.clients.good, '/wsgi/env', forged.map((h) => `${h}\r\n`).join('') + 'X_Innocent_Header: kept\r\n');
    assert.equal(r.status, 200, r.text);
    const env = JSON.parse(r.body) as Record<string, string>;
    const leaf = certificatesFromPem(readFileSync(fx.clients.good.cert, 'utf8'))[0]!;
    assert.equal(env.HTTP_X_SEKISHO_FACILITY_NUMBER, FACILITY_A);
    assert.equal(decodeURIComponent(env.HTTP_X_SEKISHO_FACILITY_NAME!), 'はこだて内科クリニック');
    assert.equal(env.HTTP_X_SEKISHO_PROFILE, 'facility');
    assert.equal(env.HTTP_X_SEKISHO_CERT_SERIAL, fx.clients.good.serial);
    assert.equal(env.HTTP_CLIENT_CERT, `:${leaf.toString('base64')}:`);
    assert.equal(env.HTTP_X_FORWARDED_FOR, '127.0.0.1');
    assert.equal(env.HTTP_X_FORWARDED_PROTO, 'https');
    // The client sent Host: localhost; the upstream gets the route's upstream address (a client cannot pick a virtual host).
    assert.match(env.HTTP_HOST ?? '', /^127\.0\.0\.1:\d+$/);
    for (const gone of ['HTTP_X_SEKISHO_DEVICE_NAME', 'HTTP_X_SEKISHO_ANYTHING', 'HTTP_X_FORWARDED_HOST', 'HTTP_X_REAL_IP', 'HTTP_FORWARDED', 'HTTP_X_SSL_CLIENT_VERIFY', 'HTTP_SSL_CLIENT_S_DN', 'HTTP_X_CLIENT_CERT']) assert.equal(env[gone], undefined, gone);
    for (const [k, v] of Object.entries(env)) {
      assert.doesNotMatch(v, /99999999|forged|Zm9yZ2Vk|10\.9\.9|SUCCESS/, `${k} carries a forged value: ${v}`);
      // Only HTTP_* variables come from the request (the rest is the upstream process's own environment).
      assert.ok(!k.startsWith('HTTP_') || !/SEKISHO|CLIENT_CERT|FORWARDED|REAL.IP|SSL.CLIENT/i.test(k) || /^HTTP_(X_SEKISHO_(FACILITY_NUMBER|FACILITY_NAME|PROFILE|CERT_SERIAL|CERT_SHA256|SUBJECT)|CLIENT_CERT(_CHAIN)?|X_FORWARDED_(FOR|PROTO))$/.test(k), `unexpected ${k}`);
    }
    assert.equal(env.HTTP_X_INNOCENT_HEADER, 'kept', 'other underscore headers still pass');
  });
});

/** Runs a TLS client whose stdin is a file (read to its end, then EOF); resolves to its stdout. */
function halfClosingClient(cmd: string, args: string[], input: string): Promise<{ stdout: string; stderr: string; status: number | null }> {
  const file = join(fx.dir, `stdin-${cmd}-${Date.now()}-${Math.random().toString(16).slice(2)}.txt`);
  writeFileSync(file, input);
  const fd = openSync(file, 'r');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [fd, 'pipe', 'pipe'] });
    closeSync(fd);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

const gnutls = (p: number, c: ClientFiles) => ['--x509cafile', fx.caFile, '--x509certfile', c.cert, '--x509keyfile', c.key, '--priority', 'NORMAL:-VERS-ALL:+VERS-TLS1.3', '-p', String(p), 'localhost'];
const sClient = (p: number, c: ClientFiles) => ['s_client', '-quiet', '-tls1_3', '-connect', `127.0.0.1:${p}`, '-servername', 'localhost', '-CAfile', fx.caFile, '-cert', c.cert, '-key', c.key];

// OpenSSL 3.0's s_client -quiet (ign_eof) sends neither close_notify nor FIN
// at the end of its stdin: it keeps reading until the server closes. Its
// requests ask for that (Connection: close; the PING upstream closes), so it
// checks that a client whose stdin is already at its end gets the answer;
// gnutls-cli is the one that half-closes (close_notify, then reads on).
describe('a TLS 1.3 client that half-closes after sending still gets the answer', () => {
  const request = 'GET /echo/half-closed HTTP/1.1\r\nHost: localhost\r\n\r\n';
  test('HTTP mode: gnutls-cli piping a request, then close_notify', async (t) => {
    if (!needCommand(t, 'gnutls-cli')) return;
    const r = await halfClosingClient('gnutls-cli', gnutls(port, fx.clients.good), request);
    assert.match(r.stdout, /HTTP\/1\.1 200/, r.stdout + r.stderr);
    assert.match(r.stdout, /"path":"\/echo\/half-closed"/);
  });
  test('HTTP mode: openssl s_client -quiet with stdin a file at its end', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const r = await halfClosingClient('openssl', sClient(port, fx.clients.good), request.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
    assert.match(r.stdout, /HTTP\/1\.1 200/, r.stdout + r.stderr);
    assert.match(r.stdout, /"path":"\/echo\/half-closed"/);
  });
  test('TCP mode: gnutls-cli; the upstream answers only after the client finished sending, and the answer arrives', async (t) => {
    if (!needCommand(t, 'gnutls-cli')) return;
    const r = await halfClosingClient('gnutls-cli', gnutls(tcpPort, fx.clients.good), 'MSH|hello\n');
    assert.match(r.stdout, /got 10 bytes: MSH\|hello/, r.stdout + r.stderr);
  });
  test('TCP mode: openssl s_client -quiet with stdin a file at its end', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const r = await halfClosingClient('openssl', sClient(tcpPort, fx.clients.good), 'PING\n');
    assert.match(r.stdout, /PONG/, r.stdout + r.stderr);
  });
});

describe('half-open is for after the handshake', () => {
  test('a client that closes before completing the handshake is refused at once as HANDSHAKE_FAILED, not held until the handshake timeout', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const s = netConnect(tcpPort, '127.0.0.1', () => s.end(Buffer.from('160301', 'hex')));
    s.on('error', () => undefined);
    s.resume();
    await new Promise((r) => s.once('close', r));
    for (let i = 0; i < 100 && !logs.some((l) => l.reason === 'HANDSHAKE_FAILED'); i++) await new Promise((r) => setTimeout(r, 50));
    const line = logs.find((l) => l.msg === 'client refused' && l.reason === 'HANDSHAKE_FAILED');
    assert.ok(line, JSON.stringify(logs.slice(-5)));
    assert.match(String(line.detail), /closed the connection before the handshake completed/);
  });
});
