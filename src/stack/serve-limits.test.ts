/**
 * `sekisho serve` under a flood on its public portal: a real process started
 * under a lowered file-descriptor limit (prlimit), hundreds of half-open TLS
 * connections to the portal (TCP only, or a partial ClientHello) from many
 * loopback addresses, and a clinic's curl through the gateway meanwhile.
 * The portal once held such handshakes 120 s with no cap, in the gateway's
 * descriptor budget, so a slowloris on it made the gateway refuse everyone.
 * Also: a TLS 1.2 renegotiation request on the portal closes the connection.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needCommand, run, runAsync } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';
import { SEKISHO_MAIN as MAIN, startSekisho } from '../testing/cli-process.js';
import { DEMO_FACILITY, startDemoUpstream } from './index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['SEKISHO_DB', 'SEKISHO_PIN']) delete env[k];
  return env;
}

async function cli(args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  return runAsync(process.execPath, [MAIN, ...args], { env, timeoutMs: 60_000 }).then((r) => (void cwd, r));
}

/** A half-open TLS client: TCP connected, then nothing (or the first bytes of a ClientHello). */
function halfOpen(port: number, localAddress: string, partial: boolean): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port, localAddress });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    socket.resume();
    socket.once('connect', () => {
      // A TLS record header announcing a 512-byte handshake, then silence.
      if (partial) socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
      resolve({ socket, closed });
    });
    socket.once('close', () => resolve({ socket, closed }));
  });
}

async function metric(adminPort: number, pattern: RegExp): Promise<number> {
  const m = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const hit = pattern.exec(m);
  return hit ? Number(hit[1]) : NaN;
}

describe('sekisho serve: a flood on one listener does not starve another', () => {
  test('under prlimit --nofile=256, 320 half-open portal handshakes leave the gateway serving a clinic; the portal closes them after its handshake timeout', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl') || !needCommand(t, 'prlimit')) return;
    const dir = tempDir('sekisho-serve-limits-');
    const home = join(dir, 'home');
    const env = cleanEnv({ SEKISHO_PASSPHRASE: 'serve-limits-passphrase', SEKISHO_HOME: home });
    assert.equal((await cli(['init'], env, dir)).status, 0);
    assert.equal((await cli(['facility', 'add', '--code', DEMO_FACILITY.number, '--name', DEMO_FACILITY.name], env, dir)).status, 0);
    writeFileSync(join(dir, 'pw.txt'), 'serve-password-1\n');
    const issued = await cli(['cert', 'issue', '--facility', DEMO_FACILITY.number, '--p12', join(dir, 'c.p12'), '--password-file', join(dir, 'pw.txt')], env, dir);
    assert.equal(issued.status, 0, issued.stderr);
    const cert = join(dir, 'c.pem');
    const key = join(dir, 'c.key');
    for (const args of [['-nokeys', '-clcerts', '-out', cert], ['-nocerts', '-nodes', '-out', key]]) {
      const r = run('openssl', ['pkcs12', '-in', join(dir, 'c.p12'), '-passin', `file:${join(dir, 'pw.txt')}`, ...args]);
      assert.equal(r.status, 0, r.stderr);
    }
    const root = join(home, 'ca', 'root.pem');
    const upstream = await startDemoUpstream();
    const serve = startSekisho<any>(
      ['serve', '--json', '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--console-listen', 'off', '--upstream', upstream.url, '--log-level', 'warn', '--limit', 'portal.handshakeTimeoutSeconds=3'],
      { cwd: dir, env, prefix: ['prlimit', '--nofile=256:256', '--'] },
    );
    const attack: { socket: Socket; closed: Promise<void> }[] = [];
    try {
      const s = await serve.summary;
      assert.equal(s.limits.fileDescriptors, 256, 'the budget is the process limit');
      assert.equal(s.limits.source, 'rlimit');
      const portalCap: number = s.limits.portal.maxConnections;
      assert.ok(portalCap + 2 * s.limits.gateway.maxConnections + s.limits.reserve <= 256, JSON.stringify(s.limits));
      const adminPort: number = s.gateway.admin.port;
      const gatewayUrl: string = s.gateway.listeners[0].url;
      const clinic = () => runAsync('curl', ['-sS', '--max-time', '10', '--cert', cert, '--key', key, '--cacert', root, '-o', '/dev/null', '-w', '%{http_code}', gatewayUrl]);
      assert.equal((await clinic()).stdout, '200', 'served before the attack');

      // 40 addresses × 8 half-open connections: more than the whole process's descriptors.
      for (let a = 0; a < 40; a++) {
        const batch = await Promise.all(Array.from({ length: 8 }, (_, i) => halfOpen(s.portal.port, `127.0.0.${100 + a}`, i % 2 === 1)));
        attack.push(...batch);
      }
      await sleep(500);
      const open = attack.filter((c) => !c.socket.destroyed && c.socket.readyState === 'open').length;
      assert.ok(open <= portalCap, `at most the portal's cap stays open: ${open} of ${attack.length} (cap ${portalCap})`);

      // During the attack a clinic still gets through the gateway, more than once.
      for (let i = 0; i < 3; i++) {
        const r = await clinic();
        assert.equal(r.stdout, '200', `the gateway serves during the portal flood: ${r.stderr} ${serve.stderr().slice(-800)}`);
      }
      const refused = await metric(adminPort, /sekisho_listener_connections_refused_total\{listener="portal",cap="total"\} (\d+)/);
      assert.ok(refused >= attack.length - portalCap, `every connection over the cap is counted: ${refused}`);
      assert.ok((await metric(adminPort, /sekisho_listener_open_connections\{listener="portal"\} (\d+)/)) <= portalCap);

      // The half-open handshakes are closed by the portal after its 3 s handshake timeout (bounded wait).
      const allClosed = Promise.all(attack.map((c) => c.closed)).then(() => true);
      assert.equal(await Promise.race([allClosed, sleep(20_000).then(() => false)]), true, 'every half-open portal socket was closed by the server');
      for (let i = 0; i < 20 && (await metric(adminPort, /sekisho_listener_handshake_timeouts_total\{listener="portal"\} (\d+)/)) < open; i++) await sleep(250);
      assert.ok((await metric(adminPort, /sekisho_listener_handshake_timeouts_total\{listener="portal"\} (\d+)/)) >= open, 'each admitted one timed out');
      assert.equal(await metric(adminPort, /sekisho_listener_open_connections\{listener="portal"\} (\d+)/), 0);
      assert.equal((await clinic()).stdout, '200');

      // Refusals are logged in sums (one line per interval), not per socket.
      for (let i = 0; i < 60 && !/connections refused over the connection caps/.test(serve.stderr()); i++) await sleep(250);
      const lines = serve.stderr().split('\n').filter((l) => l.includes('connections refused over the connection caps') && l.includes('"listener":"portal"'));
      assert.ok(lines.length >= 1 && lines.length <= 3, `${lines.length} summed lines`);

      // The portal refuses a TLS 1.2 renegotiation at the first attempt, as the gateway does.
      const reneg = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${s.portal.port}`, '-tls1_2', '-servername', 'localhost', '-CAfile', root], { input: 'R\nR\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n', timeoutMs: 20_000 });
      const out = reneg.stdout + reneg.stderr;
      assert.equal((out.match(/RENEGOTIATING/g) ?? []).length, 1, out.slice(-600));
      assert.doesNotMatch(out, /HTTP\/1\.1 200/);
      for (let i = 0; i < 20 && (await metric(adminPort, /sekisho_listener_renegotiations_refused_total\{listener="portal"\} (\d+)/)) < 1; i++) await sleep(250);
      assert.equal(await metric(adminPort, /sekisho_listener_renegotiations_refused_total\{listener="portal"\} (\d+)/), 1);

      assert.equal(await serve.stop('SIGTERM'), 0);
    } finally {
      for (const c of attack) c.socket.destroy();
      await serve.stop('SIGKILL');
      await upstream.close();
    }
  });

  test('a portal client address over its cap is closed at once; other addresses still reach the portal', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const dir = tempDir('sekisho-serve-peraddr-');
    const home = join(dir, 'home');
    const env = cleanEnv({ SEKISHO_PASSPHRASE: 'serve-limits-passphrase', SEKISHO_HOME: home });
    assert.equal((await cli(['init'], env, dir)).status, 0);
    const upstream = await startDemoUpstream();
    const serve = startSekisho<any>(['serve', '--json', '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--console-listen', 'off', '--upstream', upstream.url, '--limit', 'portal.maxConnectionsPerAddress=3'], { cwd: dir, env });
    const held: { socket: Socket; closed: Promise<void> }[] = [];
    try {
      const s = await serve.summary;
      assert.equal(s.limits.portal.maxConnectionsPerAddress, 3);
      for (let i = 0; i < 3; i++) held.push(await halfOpen(s.portal.port, '127.0.0.60', false));
      await sleep(300);
      assert.ok(held.every((c) => !c.socket.destroyed), 'three are held');
      const fourth = await halfOpen(s.portal.port, '127.0.0.60', false);
      held.push(fourth);
      assert.equal(await Promise.race([fourth.closed.then(() => true), sleep(3000).then(() => false)]), true, 'the fourth is closed at once');
      assert.equal(await metric(s.gateway.admin.port, /sekisho_listener_connections_refused_total\{listener="portal",cap="per-address"\} (\d+)/), 1);
      const other = await runAsync('curl', ['-sS', '--max-time', '10', '--cacert', join(home, 'ca', 'root.pem'), '-o', '/dev/null', '-w', '%{http_code}', `${s.portal.url}healthz`]);
      assert.equal(other.stdout, '200', other.stderr);
      for (const c of held) c.socket.destroy();
      assert.equal(await serve.stop('SIGTERM'), 0);
    } finally {
      for (const c of held) c.socket.destroy();
      await serve.stop('SIGKILL');
      await upstream.close();
    }
  });
});
