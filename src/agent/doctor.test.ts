/**
 * sekisho doctor against real peers, one broken setup per test: the real
 * gateway (all ok), a wrong root thumbprint, an expired certificate, a TLS
 * 1.1-only openssl s_server, a skewed local clock, nothing listening, a
 * revoked certificate (OCSP through the AIA address, served by the CA's
 * revocation listener), a locked token, and a CONNECT proxy. Every result
 * speaks Japanese and English; the JSON never holds the PIN.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { CertificateAuthority } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { existsSync } from 'node:fs';
import { openPkcs11Module, openSoftwareToken } from '../token/index.js';
import { hasSoftHsm, PKCS11_ENGINE, SOFTHSM_MODULE, useTemporarySoftHsm } from '../testing/softhsm.js';
import { needPeer } from '../testing/peers.js';
import { startRevocationServer, type RevocationServer } from '../web/index.js';
import { demoRevocationUrl } from '../stack/index.js';
import { runCli } from '../cli/run.js';
import { FACILITY_A, PASSPHRASE, type ClientFiles } from '../testing/gateway-fixture.js';
import { loadCredential, startAgentCenter, type AgentCenter } from '../testing/agent-center.js';
import { needCommand } from '../testing/peers.js';
import { accepts, freePort } from '../testing/tls-servers.js';
import { tempDir } from '../testing/stores.js';
import { runDoctor, type DoctorReport, type DoctorTarget } from './index.js';

const PIN = 'clinic-PIN-5550123';
const JAPANESE = /[\u3040-\u30ff\u4e00-\u9fff]/;
const FAST_KDF = { N: 1 << 14, r: 8, p: 1 };

const byStep = (r: DoctorReport) => Object.fromEntries(r.results.map((x) => [x.step, x]));
const summary = (r: DoctorReport) => r.results.map((x) => `${x.step}=${x.status}:${x.code}`).join(' ');

describe('sekisho doctor', () => {
  let center: AgentCenter;
  let ocsp: RevocationServer;
  let ocspCa: CertificateAuthority;
  const dir = tempDir('sekisho-doctor-');
  const tokens: Record<string, string> = {};
  let good: ClientFiles;
  let revoked: ClientFiles;

  async function tokenWith(name: string, client: ClientFiles): Promise<string> {
    const file = join(dir, `${name}.json`);
    const m = openSoftwareToken(file, { kdf: FAST_KDF });
    await m.initToken(0, { label: name, soPin: 'so-PIN-000111', userPin: PIN });
    const s = await m.openSession(0);
    await s.login('user', PIN);
    await loadCredential(s, client, 'facility', center.fx.ca.issuingDer);
    await m.close();
    return file;
  }

  async function issue(name: string, revoke: boolean): Promise<ClientFiles> {
    const issued = await ocspCa.issueWithNewKey({ profile: 'facility', facilityNumber: FACILITY_A, keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
    if (revoke) await ocspCa.revoke(issued.serial, 'keyCompromise', 'test');
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}.key`);
    writeFileSync(cert, certificateToPem(issued.der));
    writeFileSync(key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    return { cert, key, serial: issued.serial };
  }

  const target = (o: Partial<DoctorTarget> = {}): DoctorTarget => ({
    center: { host: '127.0.0.1', port: center.gatewayPort },
    serverName: '127.0.0.1',
    rootThumbprint: center.thumbprint,
    rootFile: center.rootFile,
    profile: 'high',
    token: { kind: 'software', file: tokens.good!, key: 'facility' },
    pin: { env: 'DOCTOR_TEST_PIN' },
    ...o,
  });
  const env = { DOCTOR_TEST_PIN: PIN };

  before(async () => {
    center = await startAgentCenter();
    // The same CA, now writing its OCSP address (AIA) into what it issues, with its revocation listener running.
    const base = await demoRevocationUrl({ host: '127.0.0.1', port: 0 });
    const cfgFile = join(center.fx.home, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { urls?: Record<string, string> };
    cfg.urls = { ...(cfg.urls ?? {}), revocation: base };
    writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
    ocspCa = await CertificateAuthority.open({ home: center.fx.home });
    await ocspCa.unlock(PASSPHRASE);
    const u = new URL(base);
    ocsp = await startRevocationServer({ authority: ocspCa, listen: { host: u.hostname, port: Number(u.port) } });
    good = await issue('good', false);
    revoked = await issue('revoked', true);
    tokens.good = await tokenWith('good', good);
    tokens.revoked = await tokenWith('revoked', revoked);
    tokens.expired = await tokenWith('expired', center.fx.clients.expired);
    tokens.locked = await tokenWith('locked', good);
    tokens.finalTry = await tokenWith('final-try', good);
    const f = await openSoftwareToken(tokens.finalTry).openSession(0);
    for (let i = 0; i < 2; i++) await f.login('user', 'wrong-PIN-0000').catch(() => undefined);
    const m = openSoftwareToken(tokens.locked);
    const s = await m.openSession(0);
    for (let i = 0; i < 3; i++) await s.login('user', 'wrong-PIN-0000').catch(() => undefined);
    await m.close();
  });
  after(async () => {
    await ocsp?.close();
    await ocspCa?.close();
    await center?.close();
  });

  test('all ok against the real gateway: every step ok, in Japanese and English; exit 0 and the JSON without the PIN', async () => {
    const r = await runDoctor(target(), { env });
    assert.equal(r.outcome, 'ok', summary(r));
    for (const x of r.results) {
      assert.equal(x.status, 'ok', `${x.step}: ${x.code} ${x.message.en}`);
      assert.match(x.message.ja, JAPANESE);
      assert.ok(x.message.en.length > 0);
    }
    const s = byStep(r);
    assert.equal(s.revocation!.code, 'OCSP_GOOD');
    assert.equal(s.clock!.details?.source, 'gateway-http-date');
    // The CLI: --json, exit 0, no PIN anywhere in what a vendor would receive.
    const out: string[] = [];
    const code = await runCli(['doctor', '--center', `127.0.0.1:${center.gatewayPort}`, '--root-thumbprint', center.thumbprint, '--root', center.rootFile, '--token', `software:${tokens.good}`, '--pin-env', 'DOCTOR_TEST_PIN', '--json'], {
      stdout: (x) => void out.push(x),
      stderr: (x) => void out.push(x),
      env,
      isTTY: false,
    });
    const text = out.join('');
    assert.equal(code, 0, text);
    const json = JSON.parse(text) as DoctorReport;
    assert.deepEqual(json.results.map((x) => x.step), ['dns', 'tcp', 'tls', 'chain', 'token', 'client-certificate', 'revocation', 'clock']);
    assert.ok(!text.includes(PIN), 'the PIN never appears in the output');
    assert.ok(!/PRIVATE KEY/.test(text));
  });

  test('a wrong root thumbprint (not the letter\'s) is ROOT_THUMBPRINT_MISMATCH, and the facility certificate is not presented to that center; exit 1', async () => {
    const wrong = createHash('sha256').update('another root').digest('hex');
    const r = await runDoctor(target({ rootThumbprint: wrong }), { env });
    const s = byStep(r);
    assert.equal(s.chain!.status, 'fail');
    assert.equal(s.chain!.code, 'ROOT_THUMBPRINT_MISMATCH');
    assert.match(s.chain!.fix!.ja, /発行通知書/);
    assert.equal(r.outcome, 'problems');
    // Regression: the clock step used to open a mutual-TLS connection with the facility's certificate whatever the chain said;
    // a center that fails the thumbprint never gets the certificate (the time comes from elsewhere).
    assert.notEqual(s.clock!.details?.source, 'gateway-http-date');
    const code = await runCli(['doctor', '--center', `127.0.0.1:${center.gatewayPort}`, '--root-thumbprint', wrong, '--root', center.rootFile], { stdout: () => undefined, stderr: () => undefined, env, isTTY: false });
    assert.equal(code, 1);
  });

  test('an expired client certificate in the token is CLIENT_CERT_EXPIRED', async () => {
    const r = await runDoctor(target({ token: { kind: 'software', file: tokens.expired!, key: 'facility' } }), { env });
    const s = byStep(r);
    assert.equal(s['client-certificate']!.code, 'CLIENT_CERT_EXPIRED', summary(r));
    assert.equal(s['client-certificate']!.status, 'fail');
    assert.match(s['client-certificate']!.message.ja, /有効期限/);
  });

  test('a center that speaks only TLS 1.1 (openssl s_server -tls1_1) is TLS_VERSION_TOO_OLD', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const port = await freePort();
    const server: ChildProcess = spawn('openssl', ['s_server', '-accept', String(port), '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0', '-cert', good.cert, '-key', good.key, '-quiet', '-naccept', '200'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 100));
      const r = await runDoctor(target({ center: { host: '127.0.0.1', port }, token: undefined }), { env });
      const s = byStep(r);
      assert.equal(s.tls!.status, 'fail', summary(r));
      assert.equal(s.tls!.code, 'TLS_VERSION_TOO_OLD');
      assert.deepEqual(s.tls!.details?.offered, ['TLSv1.1']);
      assert.match(s.tls!.message.ja, /TLS 1\.2 以上/);
    } finally {
      server.kill();
    }
  });

  test('a local clock 10 minutes ahead of the center\'s is CLOCK_SKEW (about 600 s, over the 5-minute limit)', async () => {
    const r = await runDoctor(target(), { env, now: () => new Date(Date.now() + 10 * 60_000) });
    const c = byStep(r).clock!;
    assert.equal(c.status, 'fail', summary(r));
    assert.equal(c.code, 'CLOCK_SKEW');
    const skew = c.details?.skewSeconds as number;
    assert.ok(skew > 590 && skew < 610, String(skew));
    assert.match(c.message.ja, /5分/);
  });

  test('nothing listening is TCP_REFUSED; the TLS, chain and clock steps are skipped because of it; the token is still checked', async () => {
    const port = await freePort();
    const r = await runDoctor(target({ center: { host: '127.0.0.1', port } }), { env });
    const s = byStep(r);
    assert.equal(s.tcp!.code, 'TCP_REFUSED', summary(r));
    for (const k of ['tls', 'chain'] as const) {
      assert.equal(s[k]!.status, 'skipped');
      assert.equal(s[k]!.code, 'SKIPPED_EARLIER_FAILURE');
    }
    assert.equal(s.token!.status, 'ok');
    assert.equal(s.clock!.details?.source, 'ocsp-http-date', 'the OCSP responder still gives the time');
  });

  test('a revoked certificate: OCSP at the certificate\'s AIA address says revoked, CLIENT_CERT_REVOKED with the date and reason', async () => {
    const r = await runDoctor(target({ token: { kind: 'software', file: tokens.revoked!, key: 'facility' } }), { env });
    const v = byStep(r).revocation!;
    assert.equal(v.status, 'fail', summary(r));
    assert.equal(v.code, 'CLIENT_CERT_REVOKED');
    assert.equal(v.details?.reason, 'keyCompromise');
    assert.match(v.message.ja, /失効/);
  });

  test('a locked token is TOKEN_LOCKED without trying the PIN; the certificate steps are skipped', async () => {
    const r = await runDoctor(target({ token: { kind: 'software', file: tokens.locked!, key: 'facility' } }), { env });
    const s = byStep(r);
    assert.equal(s.token!.code, 'TOKEN_LOCKED', summary(r));
    assert.equal(s['client-certificate']!.code, 'SKIPPED_EARLIER_FAILURE');
    assert.equal(s.revocation!.code, 'SKIPPED_EARLIER_FAILURE');
    assert.equal((await openSoftwareToken(tokens.locked!).tokenInfo(0)).userPinFailures, 3, 'no further try was counted');
  });

  test('one wrong PIN away from locking (FINAL_TRY): TOKEN_PIN_FINAL_TRY, and the doctor does not spend the last try', async () => {
    const r = await runDoctor(target({ token: { kind: 'software', file: tokens.finalTry!, key: 'facility' } }), { env });
    const s = byStep(r);
    assert.equal(s.token!.code, 'TOKEN_PIN_FINAL_TRY', summary(r));
    assert.equal(s.token!.details?.triesLeft, 1);
    assert.equal((await openSoftwareToken(tokens.finalTry!).tokenInfo(0)).userPinFailures, 2);
  });

  test('a center whose clock runs 10 minutes ahead (an HTTPS server under faketime) is CLOCK_SKEW from its Date header', async (t) => {
    if (!needCommand(t, 'faketime') || !needCommand(t, 'python3')) return;
    const port = await freePort();
    const py = [
      'import http.server, ssl, sys',
      'class H(http.server.BaseHTTPRequestHandler):',
      '    def do_GET(self):',
      '        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")',
      '    def log_message(self, *a): pass',
      'c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[2], sys.argv[3])',
      's = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H); s.socket = c.wrap_socket(s.socket, server_side=True); s.serve_forever()',
    ].join('\n');
    // faketime runs python as its child: start them as one process group and end the group.
    const server = spawn('faketime', ['-f', '+10m', 'python3', '-c', py, String(port), good.cert, good.key], { stdio: 'ignore', detached: true });
    try {
      for (let i = 0; i < 100 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 100));
      const r = await runDoctor(target({ center: { host: '127.0.0.1', port }, token: undefined }), { env });
      const c = byStep(r).clock!;
      assert.equal(c.code, 'CLOCK_SKEW', summary(r));
      assert.equal(c.details?.source, 'https-date');
      const skew = c.details?.skewSeconds as number;
      assert.ok(skew < -590 && skew > -610, String(skew));
      assert.match(c.message.ja, /遅れて/);
    } finally {
      process.kill(-server.pid!, 'SIGTERM');
    }
  });

  test('a wrong PIN says how many tries are left; the output never contains it', async () => {
    const r = await runDoctor(target({ token: { kind: 'software', file: tokens.revoked!, key: 'facility' } }), { env: { DOCTOR_TEST_PIN: 'not-the-PIN-31337' } });
    const t0 = byStep(r).token!;
    assert.equal(t0.code, 'PIN_WRONG');
    assert.equal(t0.details?.triesLeft, 2);
    assert.ok(!JSON.stringify(r).includes('not-the-PIN-31337'));
    await runDoctor(target({ token: { kind: 'software', file: tokens.revoked!, key: 'facility' } }), { env }); // the right PIN resets the count
  });

  test('through an HTTP proxy (CONNECT): reaches the center; a proxy that refuses CONNECT is PROXY_CONNECT_REFUSED', async () => {
    const proxy = await connectProxy((target) => target === `127.0.0.1:${center.gatewayPort}`);
    try {
      const r = await runDoctor(target({ httpProxy: new URL(`http://127.0.0.1:${proxy.port}`) }), { env });
      const s = byStep(r);
      assert.equal(s.tcp!.code, 'TCP_OK', summary(r));
      assert.equal(s.tls!.status, 'ok');
      assert.equal(s.chain!.code, 'CHAIN_OK');
      const refused = await runDoctor(target({ center: { host: '127.0.0.1', port: 9 }, httpProxy: new URL(`http://127.0.0.1:${proxy.port}`), token: undefined }), { env });
      assert.equal(byStep(refused).tcp!.code, 'PROXY_CONNECT_REFUSED', summary(refused));
    } finally {
      proxy.server.close();
    }
  });

  test('PKCS#11 (SoftHSM2): all ok with the key in the module (the Date through the OpenSSL engine); a wrong PIN is PIN_WRONG with the module\'s flags', async (t) => {
    if (!needPeer(t, hasSoftHsm() && existsSync(PKCS11_ENGINE), 'SoftHSM2 and libengine-pkcs11-openssl')) return;
    useTemporarySoftHsm();
    const m = openPkcs11Module(SOFTHSM_MODULE);
    await m.initToken(await m.freeSlot(), { label: 'doctor-hsm', soPin: 'hsm-SO-97531', userPin: PIN });
    const s = await m.openSession(await m.slotByLabel('doctor-hsm'));
    await s.login('user', PIN);
    await loadCredential(s, good, 'facility', center.fx.ca.issuingDer);
    await m.close();
    const token = { kind: 'pkcs11' as const, uri: 'pkcs11:token=doctor-hsm;object=facility', module: SOFTHSM_MODULE };
    const r = await runDoctor(target({ token }), { env });
    assert.equal(r.outcome, 'ok', summary(r));
    for (const x of r.results) assert.equal(x.status, 'ok', `${x.step}: ${x.code} ${x.message.en}`);
    assert.equal(byStep(r).clock!.details?.source, 'gateway-http-date');
    const wrong = await runDoctor(target({ token }), { env: { DOCTOR_TEST_PIN: 'not-the-PIN-31337' } });
    const w = byStep(wrong).token!;
    assert.equal(w.code, 'PIN_WRONG', summary(wrong));
    assert.ok(Array.isArray(w.details?.flags));
    assert.ok(!JSON.stringify(wrong).includes('not-the-PIN-31337'));
  });

  test('--config agent.yaml: the agent\'s own configuration drives the doctor (exit 0, all ok); a bad configuration exits 2 naming the key', async () => {
    const yaml = join(dir, 'agent.yaml');
    writeFileSync(
      yaml,
      [
        'center:',
        `  gateway: 127.0.0.1:${center.gatewayPort}`,
        `  rootThumbprint: "${center.thumbprint.match(/../g)!.join(':')}"`,
        `  root: ${center.rootFile}`,
        'credential:',
        `  token: software:${tokens.good}`,
        '  key: facility',
        '  pin: { env: DOCTOR_TEST_PIN }',
        'listen:',
        '  httpProxy: 127.0.0.1:3128',
        '',
      ].join('\n'),
    );
    const out: string[] = [];
    const io = { stdout: (x: string) => void out.push(x), stderr: (x: string) => void out.push(x), env, isTTY: false };
    assert.equal(await runCli(['doctor', '--config', yaml, '--json'], io), 0, out.join(''));
    const r = JSON.parse(out.join('')) as DoctorReport;
    assert.equal(r.outcome, 'ok', summary(r));
    assert.equal(byStep(r).token!.code, 'TOKEN_OK');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('  key: facility\n', '  key: facility\n  colour: blue\n'));
    out.length = 0;
    assert.equal(await runCli(['doctor', '--config', yaml], io), 2);
    assert.match(out.join(''), /AGENT_CONFIG_INVALID[\s\S]*credential\.colour/);
    assert.equal(await runCli(['doctor', '--config', yaml, '--center', '127.0.0.1:1'], io), 2);
  });

  test('usage errors exit 2: no center, a PIN-less bad thumbprint, --pin-env with --pin-file', async () => {
    const run = (args: string[]) => runCli(['doctor', ...args], { stdout: () => undefined, stderr: () => undefined, env, isTTY: false });
    assert.equal(await run([]), 2);
    assert.equal(await run(['--center', '127.0.0.1:1', '--root-thumbprint', 'abc']), 2);
    assert.equal(await run(['--center', '127.0.0.1:1', '--root-thumbprint', center.thumbprint, '--pin-env', 'A', '--pin-file', 'B']), 2);
  });
});

/** A minimal HTTP CONNECT proxy that allows only the destinations `allow` accepts (403 otherwise). */
async function connectProxy(allow: (target: string) => boolean): Promise<{ server: Server; port: number }> {
  const server = createServer((c) => {
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      c.off('data', onData);
      const m = /^CONNECT (\S+):(\d+) HTTP\/1\.1/.exec(head);
      if (!m || !allow(`${m[1]}:${m[2]}`)) return void c.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      const up = connect(Number(m[2]), m[1]!, () => {
        c.write('HTTP/1.1 200 Connection established\r\n\r\n');
        up.pipe(c);
        c.pipe(up);
      });
      up.on('error', () => c.destroy());
      c.on('error', () => up.destroy());
    };
    c.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

