/**
 * A gateway that runs apart from the CA: explicit server credential, trust
 * anchors and CRL files; pinned certificates; dated exceptions; reloads.
 * Clients are Node's TLS client and curl; the CA is sekisho's.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, issueServerCredential } from '../ca/index.js';
import { crlToPem } from '../pki/index.js';
import { CrlRevocationSource, jsonLogger, openGateway, parseGatewayConfig, type GatewaySetup } from './index.js';
import { echoUpstream, FACILITY_A, gatewayFixture, PASSPHRASE, type ClientFiles, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, runAsync } from '../testing/peers.js';

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof echoUpstream>>;
const ready = hasCommand('openssl') && hasCommand('curl');
let crlFile: string;
let serverCert: string;
let serverKey: string;

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  upstream = await echoUpstream();
  crlFile = join(fx.dir, 'issuing.crl');
  writeFileSync(crlFile, (await fx.ca.crl('test')).der);
  const paths = await issueServerCredential(fx.ca, ['localhost', '127.0.0.1'], 'test');
  serverCert = join(fx.dir, 'gw.pem');
  serverKey = join(fx.dir, 'gw.key');
  copyFileSync(paths.cert, serverCert);
  copyFileSync(paths.key, serverKey);
});

after(async () => {
  if (!ready) return;
  upstream.server.close();
  await fx.close();
});

async function apart(extra: Record<string, unknown> = {}, logs: Record<string, unknown>[] = [], watch = false): Promise<{ setup: GatewaySetup; port: number; admin: number }> {
  const cfg = parseGatewayConfig({
    tls: { cert: serverCert, key: serverKey },
    clientCa: [fx.caFile],
    crl: [crlFile],
    admin: '127.0.0.1:0',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${upstream.port}`, allow: { anyone: true } }] }],
    ...extra,
  });
  const setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('debug', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)), watch });
  return { setup, port: setup.gateway.addresses()[0]!.port, admin: setup.gateway.adminAddress()!.port };
}

/** curl's OpenSSL refuses to even load a SHA-1 certificate at its default security level; old clinic software does not. */
async function legacyCurl(port: number, client: ClientFiles): Promise<{ status: number; refusal?: string }> {
  const conf = join(fx.dir, 'openssl-seclevel0.cnf');
  writeFileSync(conf, 'openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n[sys]\nCipherString = DEFAULT:@SECLEVEL=0\n');
  const r = await runAsync('curl', ['-sS', '--cacert', fx.caFile, '--cert', client.cert, '--key', client.key, '-D', '-', '-o', '/dev/null', `https://localhost:${port}/`], { env: { ...process.env, OPENSSL_CONF: conf } });
  const status = Number(/^HTTP\/1.1 (\d{3})/.exec(r.stdout)?.[1] ?? 0);
  const refusal = /x-sekisho-refusal: (\w+)/i.exec(r.stdout)?.[1];
  return { status, ...(refusal ? { refusal } : {}) };
}

/** The serial of the server certificate the gateway presents to a new connection. */
function servedSerial(port: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(fx.caFile), cert: readFileSync(fx.clients.good.cert), key: readFileSync(fx.clients.good.key) });
    s.once('secureConnect', () => {
      resolve(s.getPeerX509Certificate()!.serialNumber);
      s.destroy();
    });
    s.once('error', reject);
  });
}

/** One HTTPS request with Node's client; resolves to the status and the refusal header, or to 'closed'. */
function get(port: number, client: ClientFiles, path = '/'): Promise<{ status: number; refusal?: string } | 'closed'> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(fx.caFile), cert: readFileSync(client.cert), key: readFileSync(client.key) });
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => {
      const m = /^HTTP\/1.1 (\d{3})/.exec(data);
      if (!m) return resolve('closed');
      const refusal = /x-sekisho-refusal: (\w+)/i.exec(data)?.[1];
      resolve({ status: Number(m[1]), ...(refusal ? { refusal } : {}) });
    });
    s.once('secureConnect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
  });
}

describe('gateway apart from the CA', () => {
  test('trust from --client-ca, revocation from a CRL file: a newly signed CRL is enforced within 5 s, without restart', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const { setup, port } = await apart({ revocation: { refreshSeconds: 0.5 } });
    try {
      const client = fx.clients.victim;
      assert.deepEqual(await get(port, client), { status: 200 });
      assert.deepEqual(await get(port, fx.clients.revoked), { status: 403, refusal: 'REVOKED' }, 'the CRL of start-up already lists it');
      await fx.ca.revoke(client.serial!, 'affiliationChanged', 'test');
      const signedAt = Date.now();
      writeFileSync(crlFile, (await fx.ca.crl('test')).der);
      // Until the new CRL is read a request passes, or is cut mid-way when the CRL lands ('closed'); then the page.
      let r = await get(port, client);
      while ((r === 'closed' || r.status === 200) && Date.now() - signedAt < 5000) r = await get(port, client);
      assert.deepEqual(r, { status: 403, refusal: 'REVOKED' });
      assert.ok(Date.now() - signedAt < 5000);
    } finally {
      await setup.close(100);
    }
  });

  test('a CRL past its nextUpdate: fail closed by default (REVOCATION_UNAVAILABLE, /healthz 503, a loud log line and a metric); fail-open lets clients in', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const old = await CertificateAuthority.open({ home: fx.home, now: () => new Date(Date.now() - 60 * 86_400_000) });
    await old.unlock(PASSPHRASE);
    const staleFile = join(fx.dir, 'stale.crl');
    writeFileSync(staleFile, crlToPem((await old.crl('test')).der));
    await old.close();
    const logs: Record<string, unknown>[] = [];
    const closed = await apart({ crl: [staleFile] }, logs);
    try {
      assert.deepEqual(await get(closed.port, fx.clients.good), { status: 403, refusal: 'REVOCATION_UNAVAILABLE' });
      assert.equal((await fetch(`http://127.0.0.1:${closed.admin}/healthz`)).status, 503);
      const metrics = await (await fetch(`http://127.0.0.1:${closed.admin}/metrics`)).text();
      assert.match(metrics, /sekisho_gateway_revocation_stale\{source="crl"\} 1/);
      assert.match(metrics, /sekisho_gateway_crl_seconds_until_next_update -\d+/);
      assert.ok(logs.some((l) => l.level === 'error' && l.msg === 'REVOCATION INFORMATION IS STALE'));
    } finally {
      await closed.setup.close(100);
    }
    const open = await apart({ crl: [staleFile], revocation: { onStale: 'fail-open' } });
    try {
      assert.deepEqual(await get(open.port, fx.clients.good), { status: 200 });
      assert.deepEqual(await get(open.port, fx.clients.revoked), { status: 403, refusal: 'REVOKED' }, 'fail-open still applies what the stale CRL lists');
    } finally {
      await open.setup.close(100);
    }
  });

  test('a CRL that is not from a trusted CA, or is damaged, is refused at start-up; a bad replacement keeps the last good one', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const damaged = join(fx.dir, 'damaged.crl');
    const good = readFileSync(crlFile);
    const bad = Buffer.from(good);
    bad[bad.length - 5]! ^= 0xff;
    writeFileSync(damaged, bad);
    await assert.rejects(apart({ crl: [damaged] }), /CRL signature does not verify|CRL_SIGNATURE_INVALID/);
    const issuers = [new X509Certificate(fx.ca.chain()[0]!), new X509Certificate(fx.ca.chain()[1]!)];
    const source = new CrlRevocationSource([crlFile], issuers, 60_000);
    await source.start();
    const before = source.status(new Date()).entries;
    assert.throws(() => source.load(crlFile, bad), /does not verify/);
    assert.throws(() => source.load(crlFile, Buffer.from('not a crl')), (e: Error & { code?: string }) => typeof e.code === 'string');
    assert.equal(source.status(new Date()).entries, before, 'the last good CRL stays');
    source.close();
  });

  test('an older CRL of the CA (replayed over http, or a mirror behind) never un-revokes a certificate: the newest list stays in force, and the old one is reported and logged', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const before = (await fx.ca.crl('test')).der; // signed before the revocation, within its nextUpdate for a day
    let served = before;
    let changes = 0;
    const crlServer = createServer((_req, res) => {
      // Each answer a new Last-Modified: the gateway fetches it whole every time.
      res.writeHead(200, { 'content-type': 'application/pkix-crl', 'last-modified': new Date(Date.now() + ++changes * 1000).toUTCString() });
      res.end(served);
    });
    await new Promise<void>((r) => crlServer.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(crlServer.address() as AddressInfo).port}/issuing.crl`;
    const logs: Record<string, unknown>[] = [];
    const { setup, port, admin } = await apart({ crl: [url], revocation: { refreshSeconds: 0.3 } }, logs);
    try {
      const client = fx.clients.device;
      assert.deepEqual(await get(port, client), { status: 200 });
      await fx.ca.revoke(client.serial!, 'keyCompromise', 'test');
      served = (await fx.ca.crl('test')).der;
      const refused = async () => {
        const r = await get(port, client);
        return r !== 'closed' && r.status === 403 && r.refusal === 'REVOKED';
      };
      const until = async (what: string, check: () => Promise<boolean> | boolean) => {
        const end = Date.now() + 10_000;
        while (!(await check())) {
          assert.ok(Date.now() < end, `not within 10 s: ${what}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      await until('the new CRL is enforced', refused);
      served = before; // the replay
      const fetched = changes;
      await until('the replayed CRL was fetched twice', () => changes >= fetched + 2);
      assert.ok(await refused(), 'still REVOKED: the older list did not replace the newer one');
      const status = (await (await fetch(`http://127.0.0.1:${admin}/status`)).json()) as { revocation?: { superseded?: { location: string }[] }[] };
      assert.deepEqual(JSON.stringify(status).includes(url) && JSON.stringify(status).includes('superseded'), true, 'the status names the location serving the older list');
      await until('the older list is logged once', () => logs.some((l) => l.level === 'warn' && String(l.msg).startsWith('a CRL older than the one in force')));
    } finally {
      await setup.close(100);
      crlServer.close();
    }
  });

  test('fuzz: mutated CRLs never crash the source and never replace the last good set', () => {
    if (!ready) return;
    const issuers = [new X509Certificate(fx.ca.chain()[0]!)];
    const source = new CrlRevocationSource([], issuers);
    const good = readFileSync(crlFile);
    source.load('seed', good);
    const entries = source.status(new Date()).entries;
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.from(good.subarray(0, Math.max(1, Math.floor(good.length * (rnd() < 0.2 ? rnd() : 1)))));
      for (let k = 0, n = 1 + Math.floor(rnd() * 4); k < n; k++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
      try {
        source.load('seed', m);
      } catch (e) {
        assert.ok(e instanceof Error, 'throws Errors only');
      }
      assert.ok(source.status(new Date()).entries === entries || m.equals(good), 'a mutated CRL never changes the set');
    }
  });

  test('IHE second method: a pinned certificate from no trusted CA is accepted; unpinned it is refused', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const stranger = new X509Certificate(readFileSync(fx.clients.unknown.cert));
    const { setup, port } = await apart({ pins: [stranger.fingerprint256] });
    try {
      assert.deepEqual(await get(port, fx.clients.unknown), { status: 200 });
      const seen = upstream.seen.at(-1)!;
      assert.equal(seen['x-sekisho-cert-sha256'], stranger.fingerprint256.replace(/:/g, '').toLowerCase());
    } finally {
      await setup.close(100);
    }
    const plain = await apart();
    try {
      assert.equal(await get(plain.port, fx.clients.unknown), 'closed');
    } finally {
      await plain.setup.close(100);
    }
  });

  test('a dated exception lets one facility in with a SHA-1 certificate until its date, and /status reports who relies on it', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const inForce = await apart({ exceptions: [{ facility: FACILITY_A, allow: 'SHA1_SIGNATURE', until: '2999-12-31', note: 'ticket 42: replacing the reception PC' }] });
    try {
      assert.deepEqual(await legacyCurl(inForce.port, fx.clients.sha1), { status: 200 });
      const status = (await (await fetch(`http://127.0.0.1:${inForce.admin}/status`)).json()) as { exceptionsInUse: { facility: string; allow: string; connections: number }[] };
      assert.deepEqual(
        status.exceptionsInUse.map((e) => [e.facility, e.allow, e.connections]),
        [[FACILITY_A, 'SHA1_SIGNATURE', 1]],
      );
      assert.match(await (await fetch(`http://127.0.0.1:${inForce.admin}/metrics`)).text(), new RegExp(`sekisho_gateway_policy_exception_uses_total\\{facility="${FACILITY_A}",rule="SHA1_SIGNATURE"\\} 1`));
    } finally {
      await inForce.setup.close(100);
    }
    const lapsed = await apart({ exceptions: [{ facility: FACILITY_A, allow: 'SHA1_SIGNATURE', until: '2020-03-31' }] });
    try {
      assert.deepEqual(await legacyCurl(lapsed.port, fx.clients.sha1), { status: 403, refusal: 'SHA1_SIGNATURE' });
    } finally {
      await lapsed.setup.close(100);
    }
  });

  test('a CA taken out of --client-ca and a reload: its clients\' open connections are closed (UNKNOWN_CA, audited), not only new ones refused', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const trust = join(fx.dir, 'trust-reload.pem');
    copyFileSync(fx.caFile, trust);
    const logs: Record<string, unknown>[] = [];
    const { setup, port } = await apart({ clientCa: [trust] }, logs);
    try {
      // A live kept-alive connection of a client of that CA.
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(fx.caFile), cert: readFileSync(fx.clients.good.cert), key: readFileSync(fx.clients.good.key) });
      s.on('error', () => undefined);
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      await new Promise((r) => s.once('secureConnect', r));
      s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      assert.match(await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString()))), /^HTTP\/1.1 200/);
      // The operator replaces the trust with another CA only.
      const other = join(fx.dir, 'other-ca');
      const r = await runAsync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${other}.key`, '-out', `${other}.pem`, '-subj', '/O=Another network/CN=Another CA', '-days', '2']);
      assert.equal(r.status, 0, r.stderr);
      copyFileSync(`${other}.pem`, trust);
      assert.equal(await setup.gateway.reload(), true);
      await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the open connection of the CA taken out of the trust is still open 5 s after the reload')), 5000))]);
      assert.ok(logs.some((l) => l.msg === 'live connection closed' && l.reason === 'UNKNOWN_CA' && l.after === 'reload'), 'the cut is logged with its reason');
      assert.equal(await get(port, fx.clients.good), 'closed', 'and a new connection is refused in the handshake');
    } finally {
      await setup.close(100);
    }
  });

  test('reload swaps the server certificate for new connections; a broken file keeps the old one and counts a failed reload', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const cert = join(fx.dir, 'reload.pem');
    const key = join(fx.dir, 'reload.key');
    copyFileSync(serverCert, cert);
    copyFileSync(serverKey, key);
    const { setup, port, admin } = await apart({ tls: { cert, key } });
    const served = () => servedSerial(port);
    try {
      const first = await served();
      writeFileSync(cert, 'garbage');
      assert.equal(await setup.gateway.reload(), false);
      assert.equal(await served(), first, 'the old certificate stays in use');
      const fresh = await issueServerCredential(fx.ca, ['localhost', '127.0.0.1'], 'test');
      copyFileSync(fresh.key, key);
      copyFileSync(fresh.cert, cert);
      assert.equal(await setup.gateway.reload(), true);
      assert.notEqual(await served(), first);
      const m = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
      assert.match(m, /sekisho_gateway_reloads_total\{outcome="failed"\} 1/);
      assert.match(m, /sekisho_gateway_reloads_total\{outcome="ok"\} 1/);
    } finally {
      await setup.close(100);
    }
  });

  test('a new server certificate written over the old files is picked up without a signal', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const cert = join(fx.dir, 'watched.pem');
    const key = join(fx.dir, 'watched.key');
    copyFileSync(serverCert, cert);
    copyFileSync(serverKey, key);
    const { setup, port } = await apart({ tls: { cert, key } }, [], true);
    const served = () => servedSerial(port);
    try {
      const first = await served();
      const fresh = await issueServerCredential(fx.ca, ['localhost', '127.0.0.1'], 'test');
      copyFileSync(fresh.key, key);
      copyFileSync(fresh.cert, cert);
      const deadline = Date.now() + 8000;
      let now = first;
      while (now === first && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        now = await served();
      }
      assert.notEqual(now, first, 'the gateway presents the new certificate');
    } finally {
      await setup.close(100);
    }
  });
});
