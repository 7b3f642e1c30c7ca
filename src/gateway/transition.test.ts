/**
 * A live network switched to a stricter policy: the gateway starts on the
 * CRYPTREC exception profile (TLS 1.0–1.3) with a network-wide SHA-1
 * exception, and its schedule switches to `high` when the exception ends. Real
 * old clients (openssl s_client -tls1/-tls1_1, curl --tls-max 1.1, gnutls-cli
 * with TLS 1.0 priorities) get in before the switch and not after; an open
 * TLS 1.1 connection and an open connection of a SHA-1 certificate are cut at
 * the switch while an open TLS 1.3 connection of a good certificate is kept;
 * the switch is audited and /status says what is in force and what comes.
 * The gateway holds an RSA and an ECDSA certificate at once: an IHE ITI-19
 * peer offering only ECDHE_RSA or DHE_RSA suites gets the RSA one, an
 * ECDSA-only client the ECDSA one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';
import { echoUpstream, FACILITY_A, gatewayFixture, mllpUpstream, PASSPHRASE, type ClientFiles, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, run, runAsync } from '../testing/peers.js';
import { join } from 'node:path';

const SWITCH = new Date('2030-01-01T00:00:00+09:00');
let fx: GatewayFixture;
let setup: GatewaySetup;
let http: Awaited<ReturnType<typeof echoUpstream>>;
let mllp: Awaited<ReturnType<typeof mllpUpstream>>;
const logs: Record<string, unknown>[] = [];
let offsetMs = 0;
let port = 0;
let tcpPort = 0;
let adminPort = 0;
let retiring: ClientFiles;
const ready = hasCommand('openssl');

/** A CA being retired (made with openssl) and a facility certificate under it. */
function retiringCa(dir: string): { anchor: string; client: ClientFiles } {
  const f = (n: string) => join(dir, n);
  const openssl = (args: string[]) => {
    const r = run('openssl', args);
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('old-root.key'), '-out', f('old-root.pem'), '-subj', '/C=JP/O=Old Network/CN=Old Root CA', '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('old-client.key'), '-out', f('old-client.csr'), '-subj', `/C=JP/O=Old Clinic/CN=${FACILITY_A}`]);
  openssl(['x509', '-req', '-in', f('old-client.csr'), '-CA', f('old-root.pem'), '-CAkey', f('old-root.key'), '-CAcreateserial', '-out', f('old-client.pem'), '-days', '365', '-sha256']);
  return { anchor: f('old-root.pem'), client: { cert: f('old-client.pem'), key: f('old-client.key') } };
}

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  http = await echoUpstream();
  mllp = await mllpUpstream();
  const old = retiringCa(fx.dir);
  retiring = old.client;
  const cfg = parseGatewayConfig({
    home: fx.home,
    admin: '127.0.0.1:0',
    schedule: [{ profile: 'exception' }, { from: '2030-01-01', profile: 'high' }],
    exceptions: [
      { allow: 'SHA1_SIGNATURE', until: '2029-12-31', note: 'until the SHA-1 certificates are replaced' },
      { allow: 'RETIRING_CA', anchor: old.anchor, until: '2029-12-31' },
    ],
    listeners: [
      { name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } }] },
      { name: 'hl7', mode: 'tcp', listen: '127.0.0.1:0', upstream: `tcp://127.0.0.1:${mllp.port}`, proxyProtocol: true, allow: { anyone: true } },
    ],
  });
  setup = await openGateway(cfg, {
    passphrase: async () => PASSPHRASE,
    log: jsonLogger('info', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)),
    watch: false,
    policyClock: () => new Date(Date.now() + offsetMs),
  });
  port = setup.gateway.addresses().find((a) => a.name === 'web')!.port;
  tcpPort = setup.gateway.addresses().find((a) => a.name === 'hl7')!.port;
  adminPort = setup.gateway.adminAddress()!.port;
});

after(async () => {
  if (!ready) return;
  await setup?.close(1000);
  http?.server.close();
  mllp?.server.close();
  await fx?.close();
});

function status(): Promise<{ profile: string; policy: { inForce: { profile: string; since: string | null; exceptions: { rule: string; facility: string; until: string }[] }; coming: { profile: string; at: string; exceptions: unknown[] } | null } }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: adminPort, path: '/status' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(JSON.parse(body)));
    })
      .on('error', reject)
      .end();
  });
}

/** openssl s_client with a request: what the peer answered, the negotiated version and suite, the server key. */
async function sClient(client: ClientFiles, args: string[], target = port) {
  const r = await runAsync(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${target}`, '-servername', 'localhost', '-CAfile', fx.caFile, '-cert', client.cert, '-key', client.key, '-ign_eof', ...args],
    { input: 'GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', timeoutMs: 30_000 },
  );
  const out = r.stdout + r.stderr;
  return {
    ok: /HTTP\/1\.1 200/.test(out),
    protocol: /^\s*Protocol\s*:\s*(\S+)/m.exec(out)?.[1],
    cipher: /^\s*Cipher\s*:\s*(\S+)/m.exec(out)?.[1],
    serverKey: /Server public key is (\d+) bit/.exec(out)?.[1],
    peerSignature: /Peer signature type: (\S+)/.exec(out)?.[1],
    out,
  };
}

const LEGACY = ['-cipher', 'DEFAULT@SECLEVEL=0'];

/** A connection held open through the TCP listener by openssl s_client (stdin kept open). */
async function heldSClient(client: ClientFiles, args: string[]): Promise<{ child: ChildProcess; closed: Promise<number | null> }> {
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${tcpPort}`, '-CAfile', fx.caFile, '-cert', client.cert, '-key', client.key, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const closed = new Promise<number | null>((r) => child.once('close', r));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s_client ${args.join(' ')} did not complete its handshake: ${out}`)), 60_000);
    const on = (d: Buffer) => {
      out += d.toString();
      if (/Verify return code/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    void closed.then(() => {
      clearTimeout(timer);
      reject(new Error(`s_client ${args.join(' ')} closed before its handshake completed: ${out}`));
    });
  });
  return { child, closed };
}

/** A TLS 1.3 connection through the TCP listener from Node: sends an MLLP message and waits for the ACK. */
async function heldNode(client: ClientFiles): Promise<{ socket: TLSSocket; ack: (control: string) => Promise<string> }> {
  const socket = tlsConnect({ host: '127.0.0.1', port: tcpPort, servername: 'localhost', ca: readFileSync(fx.caFile), cert: readFileSync(client.cert), key: readFileSync(client.key), minVersion: 'TLSv1.3', ciphers: 'DEFAULT@SECLEVEL=0' });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const ack = (control: string) =>
    new Promise<string>((resolve, reject) => {
      let got = '';
      const timer = setTimeout(() => reject(new Error(`no ACK for ${control}: ${got}`)), 30_000);
      const on = (d: Buffer) => {
        got += d.toString();
        if (got.includes('\x1c\x0d')) {
          clearTimeout(timer);
          socket.off('data', on);
          resolve(got);
        }
      };
      socket.on('data', on);
      socket.write(`\x0bMSH|^~\\&|CLINIC|A|CENTER|S|20300101000000||ADT^A01|${control}|P|2.5\x1c\x0d`);
    });
  return { socket, ack };
}

describe('switching a live gateway from the exception profile to high', { skip: !ready && 'openssl is not installed' }, () => {
  test('before the switch: TLS 1.0 and 1.1 clients (openssl s_client, curl --tls-max 1.1, gnutls-cli) get in under the exception profile', async (t) => {
    for (const v of ['-tls1', '-tls1_1']) {
      const r = await sClient(fx.clients.good, [v, ...LEGACY]);
      assert.ok(r.ok, `openssl s_client ${v}: ${r.out.slice(-1500)}`);
      assert.equal(r.protocol, v === '-tls1' ? 'TLSv1' : 'TLSv1.1');
    }
    // curl 7.88 with OpenSSL 3.0: --tls-max 1.1 works once its own security level allows SHA-1 handshake signatures.
    if (needCommand(t, 'curl')) {
      const c = await runAsync('curl', ['-sS', '--max-time', '20', '--cacert', fx.caFile, '--cert', fx.clients.good.cert, '--key', fx.clients.good.key, '--tlsv1.1', '--tls-max', '1.1', '--ciphers', 'DEFAULT@SECLEVEL=0', '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/hello`]);
      assert.equal(c.stdout, '200', c.stderr);
    }
    if (hasCommand('gnutls-cli')) {
      const g = await runAsync('gnutls-cli', ['--x509cafile', fx.caFile, '--x509certfile', fx.clients.good.cert, '--x509keyfile', fx.clients.good.key, '--priority', 'NORMAL:-VERS-ALL:+VERS-TLS1.0:+SHA1:%VERIFY_ALLOW_SIGN_WITH_SHA1', '-p', String(port), 'localhost'], {
        input: 'GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
        timeoutMs: 30_000,
      });
      assert.match(g.stdout + g.stderr, /HTTP\/1\.1 200/, (g.stdout + g.stderr).slice(-1500));
      assert.match(g.stdout + g.stderr, /TLS1\.0/);
    }
  });

  test('/status shows the exception profile in force, the SHA-1 exception with its end, and high coming at the switch', async () => {
    const s = await status();
    assert.equal(s.profile, 'exception');
    assert.equal(s.policy.inForce.profile, 'exception');
    assert.equal(s.policy.inForce.since, null);
    assert.deepEqual(s.policy.inForce.exceptions.map((e) => [e.rule, e.facility, e.until]), [['SHA1_SIGNATURE', '*', '2029-12-31'], ['RETIRING_CA', '*', '2029-12-31']]);
    assert.equal(s.policy.coming?.profile, 'high');
    assert.equal(s.policy.coming?.at, SWITCH.toISOString());
    assert.deepEqual(s.policy.coming?.exceptions, []);
  });

  test('an ITI-19 peer offering only ECDHE_RSA or DHE_RSA suites gets the RSA certificate; an ECDSA-only client the ECDSA one', async () => {
    for (const cipher of ['ECDHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-AES256-GCM-SHA384']) {
      const r = await sClient(fx.clients.good, ['-tls1_2', '-cipher', cipher]);
      assert.ok(r.ok, `${cipher}: ${r.out.slice(-1500)}`);
      assert.equal(r.cipher, cipher);
      assert.equal(r.serverKey, '2048', `${cipher} is served with the RSA certificate`);
    }
    const ec = await sClient(fx.clients.good, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    assert.ok(ec.ok, ec.out.slice(-1500));
    assert.equal(ec.serverKey, '256');
    const ec13 = await sClient(fx.clients.good, ['-tls1_3', '-sigalgs', 'ecdsa_secp256r1_sha256']);
    assert.ok(ec13.ok, ec13.out.slice(-1500));
    assert.equal(ec13.serverKey, '256');
    const rsa13 = await sClient(fx.clients.good, ['-tls1_3', '-sigalgs', 'rsa_pss_rsae_sha256', '-client_sigalgs', 'ecdsa_secp256r1_sha256']);
    assert.ok(rsa13.ok, rsa13.out.slice(-1500));
    assert.equal(rsa13.serverKey, '2048');
  });

  test('at the switch: the TLS 1.1, SHA-1 and retiring-CA connections are cut, the TLS 1.3 one is kept; new TLS 1.0/1.1 clients are refused; audited; /status moves on', async () => {
    const old = await heldSClient(fx.clients.good, ['-tls1_1', ...LEGACY]);
    const sha1 = await heldNode(fx.clients.sha1);
    const oldCa = await heldNode(retiring);
    assert.match(await oldCa.ack('OLD-CA-BEFORE'), /MSA\|AA\|OLD-CA-BEFORE/, 'the retiring CA is accepted until its date');
    const oldCaClosed = new Promise<void>((r) => oldCa.socket.once('close', () => r()));
    const good = await heldNode(fx.clients.good);
    assert.match(await good.ack('BEFORE'), /MSA\|AA\|BEFORE/);
    assert.match(await sha1.ack('SHA1-BEFORE'), /MSA\|AA\|SHA1-BEFORE/);
    const sha1Closed = new Promise<void>((r) => sha1.socket.once('close', () => r()));

    offsetMs = SWITCH.getTime() - Date.now() + 1000;
    assert.equal(setup.policy.check(), true, 'the schedule moved');
    await old.closed;
    await sha1Closed;
    await oldCaClosed;
    assert.match(await good.ack('AFTER'), /MSA\|AA\|AFTER/, 'the TLS 1.3 connection of a good certificate is kept');
    good.socket.destroy();

    const s = await status();
    assert.equal(s.policy.inForce.profile, 'high');
    assert.equal(s.policy.inForce.since, SWITCH.toISOString());
    assert.deepEqual(s.policy.inForce.exceptions, []);
    assert.equal(s.policy.coming, null);

    for (const v of ['-tls1', '-tls1_1']) {
      const r = await sClient(fx.clients.good, [v, ...LEGACY]);
      assert.ok(!r.ok, `${v} is refused after the switch`);
    }
    assert.ok((await sClient(fx.clients.good, ['-tls1_2'])).ok, 'TLS 1.2 still gets in');
    const rsa = await sClient(fx.clients.good, ['-tls1_2', '-cipher', 'DHE-RSA-AES128-GCM-SHA256']);
    assert.ok(rsa.ok && rsa.serverKey === '2048', 'the ITI-19 floor holds under high too');

    const switched = logs.find((l) => l.msg === 'policy switched' || l.message === 'policy switched');
    assert.ok(switched, 'the switch is logged');
    const cuts = logs.filter((l) => (l.msg ?? l.message) === 'live connection closed' && l.reason === 'POLICY_CHANGED');
    assert.equal(cuts.length, 3, JSON.stringify(cuts));
    assert.deepEqual(cuts.map((c) => (c.problems as string[]).join(',')).sort(), ['PROTOCOL_TOO_OLD', 'RETIRING_CA', 'SHA1_SIGNATURE']);
    const refusedOld = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', fx.caFile, '-cert', retiring.cert, '-key', retiring.key, '-ign_eof'], { input: 'GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', timeoutMs: 30_000 });
    assert.match(refusedOld.stdout, /X-Sekisho-Refusal: RETIRING_CA/i, 'a new connection from the retired CA is refused with its reason');

    await setup.close(1000);
    const events = await fx.ca.audit.list({ limit: 100_000 });
    const sw = events.filter((e) => e.action === 'policy.switch');
    assert.equal(sw.length, 1, JSON.stringify(sw.map((e) => [e.at, e.details])));
    const d = sw[0]!.details as { from: { profile: string; exceptions: unknown[] }; to: { profile: string; since: string } };
    assert.equal(d.from.profile, 'exception');
    assert.equal(d.from.exceptions.length, 2, 'the SHA-1 and retiring-CA exceptions ended with the switch');
    assert.equal(d.to.profile, 'high');
    assert.equal(d.to.since, SWITCH.toISOString());
    const cut = events.filter((e) => e.action === 'gateway.connection-cut' && e.reasonCode === 'POLICY_CHANGED');
    assert.equal(cut.length, 3);
  });
});
