/**
 * `sekisho up` and `sekisho serve` as a newcomer and an operator run them:
 * the real CLI (dist/src/cli/main.js) as a child process on free loopback
 * ports, driven by the real peers a person would use (sekisho enroll,
 * openssl, curl), with `cert revoke` from a second process on the same home.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../cli/run.js';
import { needCommand, run, runAsync } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';
import { SEKISHO_MAIN as MAIN, startSekisho } from '../testing/cli-process.js';
import { DEMO_FACILITY, startDemoUpstream } from './index.js';
import { certificatesFromPem, describeCertificate } from '../pki/index.js';


/** The environment of a fresh machine: no sekisho variables. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['SEKISHO_HOME', 'SEKISHO_PASSPHRASE', 'SEKISHO_DB', 'SEKISHO_PIN']) if (!(k in extra)) delete env[k];
  return env;
}

/** Starts a long-running sekisho command; its --json summary arrives on `summary`. */
const start = (args: string[], o: { cwd: string; env: NodeJS.ProcessEnv }) => startSekisho<any>(args, o);

async function cli(args: string[], o: { cwd: string; env: NodeJS.ProcessEnv; input?: string }) {
  return runAsync(process.execPath, [MAIN, ...args], { env: o.env, ...(o.input ? { input: o.input } : {}), timeoutMs: 60_000 }).then((r) => r);
}

/** curl through the gateway with a client certificate: the HTTP status and body ('000' when the handshake failed). */
async function curlGateway(url: string, c: { cert: string; key: string; ca: string }): Promise<{ code: string; body: string }> {
  const r = await runAsync('curl', ['-sS', '--max-time', '10', '--cert', c.cert, '--key', c.key, '--cacert', c.ca, '-w', '\n%{http_code}', url]);
  const lines = r.stdout.split('\n');
  return { code: lines.pop() ?? '000', body: lines.join('\n') };
}

function openssl(args: string[]): void {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

describe('sekisho up: a demo center a newcomer runs with no setup', () => {
  test('first run: enroll with the printed IDs, curl through the gateway reaches the demo service, revoke is refused within 5 s; a second run reuses the data', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl')) return;
    const dir = tempDir('sekisho-up-');
    const env = cleanEnv();
    const up = start(['up', '--json', '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--revocation-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0'], { cwd: dir, env });
    try {
      const s = await up.summary;
      const home = join(dir, 'sekisho-data');
      assert.equal(s.home, home, 'the default home is ./sekisho-data');
      assert.equal(s.created, true);
      assert.equal(s.facility.number, DEMO_FACILITY.number);
      assert.equal(s.notice.state, 'active');
      assert.match(s.notice.requestId, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
      assert.ok(s.gateway.listeners[0].port > 0 && s.portal.port > 0, 'port 0 is reported as the port bound');
      // The generated passphrase is kept beside the data, 0600, and never printed.
      assert.equal(s.passphraseFile, join(home, 'demo-passphrase'));
      assert.equal(statSync(s.passphraseFile).mode & 0o777, 0o600);
      assert.equal(statSync(join(home, 'demo.json')).mode & 0o777, 0o600);
      const passphrase = readFileSync(s.passphraseFile, 'utf8').trim();
      assert.ok(passphrase.length >= 24);
      assert.ok(!JSON.stringify(s).includes(passphrase), 'the summary does not show the passphrase');
      assert.ok(s.steps.some((l: string) => l.includes('curl --cert')) && s.steps.some((l: string) => l.includes('cert revoke')));

      // 1. As the clinic: download the certificate with the notice's IDs (the portal trusted through the root file).
      writeFileSync(join(dir, 'pw.txt'), 'demo-password-1\n');
      const p12 = join(dir, 'demo.p12');
      const enrolled = await cli(['enroll', '--portal', s.portal.url, '--ca', s.root.file, '--request-id', s.notice.requestId, '--reference-id', s.notice.referenceId, '--password-file', join(dir, 'pw.txt'), '--out', p12, '--json'], { cwd: dir, env });
      assert.equal(enrolled.status, 0, enrolled.stderr);
      const serial: string = JSON.parse(enrolled.stdout).serial;
      assert.match(serial, /^[0-9a-f]+$/);
      const cert = join(dir, 'demo-cert.pem');
      const key = join(dir, 'demo-key.pem');
      openssl(['pkcs12', '-in', p12, '-passin', `file:${join(dir, 'pw.txt')}`, '-nokeys', '-clcerts', '-out', cert]);
      openssl(['pkcs12', '-in', p12, '-passin', `file:${join(dir, 'pw.txt')}`, '-nocerts', '-nodes', '-out', key]);

      // 2. curl through the gateway: the demo service names the facility and the certificate, in Japanese and English.
      const client = { cert, key, ca: s.root.file };
      // The operators' console listens too: no certificate fails the handshake, a facility's certificate gets no console.
      assert.ok(s.console.port > 0);
      const bare = await runAsync('curl', ['-sS', '--max-time', '10', '--cacert', s.root.file, '-o', '/dev/null', '-w', '%{http_code}', s.console.url]);
      assert.notEqual(bare.status, 0, 'the console requires a client certificate in the handshake');
      const asFacility = await curlGateway(`${s.console.url}api/v1/me`, client);
      assert.equal(asFacility.code, '403');
      assert.match(asFacility.body, /OPERATOR_CERTIFICATE_REFUSED/);
      const ok = await curlGateway(s.gateway.listeners[0].url, client);
      assert.equal(ok.code, '200', ok.body);
      assert.match(ok.body, new RegExp(`ようこそ、${DEMO_FACILITY.name} さん。医療機関番号 ${DEMO_FACILITY.number}、証明書シリアル ${serial}`));
      assert.match(ok.body, new RegExp(`Welcome, ${DEMO_FACILITY.name}: authenticated as facility ${DEMO_FACILITY.number} with certificate serial ${serial}`));

      // The certificate points to the demo's plain-HTTP revocation listener (NSS and GnuTLS fetch nothing else), so does the issuing CA (root CRL).
      assert.ok(s.revocation && s.revocation.port > 0, 'the revocation listener runs');
      assert.equal(s.revocation.published, s.revocation.url.replace(/\/$/, ''), 'certificates point to this very listener');
      const leafView = describeCertificate(certificatesFromPem(readFileSync(cert, 'utf8'))[0]!);
      assert.deepEqual(leafView.extensions.crlDistributionPoints, [s.revocation.crl]);
      assert.deepEqual(leafView.extensions.ocspUrls, [s.revocation.ocsp]);
      assert.deepEqual(describeCertificate(certificatesFromPem(readFileSync(join(home, 'ca', 'issuing.pem'), 'utf8'))[0]!).extensions.crlDistributionPoints, [s.revocation.rootCrl]);
      const ocspAsk = () => runAsync('openssl', ['ocsp', '-issuer', join(home, 'ca', 'issuing.pem'), '-cert', cert, '-url', leafView.extensions.ocspUrls![0]!, '-CAfile', s.root.file]);
      assert.match((await ocspAsk()).stdout, /: good/);

      // 3. Revoke from another process on the same home; the running gateway refuses within 5 s.
      const revoked = await cli(['cert', 'revoke', serial, '--home', home, '--reason', 'keyCompromise'], { cwd: dir, env });
      assert.equal(revoked.status, 0, revoked.stderr);
      const deadline = Date.now() + 5_000;
      let last = ok;
      while (Date.now() < deadline) {
        last = await curlGateway(s.gateway.listeners[0].url, client);
        // 200 before the revocation is seen; 000 when it lands mid-request and the live connection is cut.
        if (last.code !== '200' && last.code !== '000') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(last.code, '403', `refused within 5 s of the revocation: ${last.body}`);
      assert.match(last.body, /REVOKED/);
      assert.match(up.stderr(), /"msg":"client refused".*"reason":"REVOKED"/);
      assert.match((await ocspAsk()).stdout, /: revoked/, 'OCSP at the URL in the certificate says revoked');
      assert.equal(await up.stop('SIGTERM'), 0);

      // A second run: the same CA, facility and notice (now used, with its certificate), no new passphrase.
      const again = start(['up', '--json', '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--revocation-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0'], { cwd: dir, env });
      try {
        const s2 = await again.summary;
        assert.equal(s2.created, false);
        assert.equal(s2.root.sha256, s.root.sha256);
        assert.equal(s2.revocation.port, s.revocation.port, 'a later run listens where the certificates point');
        assert.deepEqual([s2.notice.id, s2.notice.requestId, s2.notice.state, s2.notice.serial], [s.notice.id, s.notice.requestId, 'used', serial]);
        assert.equal(readFileSync(s.passphraseFile, 'utf8').trim(), passphrase);
        assert.ok(s2.steps.some((l: string) => /notice is used/.test(l)), 'the steps say the notice was used');
        const still = await curlGateway(s2.gateway.listeners[0].url, client);
        assert.equal(still.code, '403', 'the revoked certificate stays refused');
        assert.equal(await again.stop('SIGINT'), 0);
      } finally {
        await again.stop('SIGKILL');
      }
    } finally {
      await up.stop('SIGKILL');
    }
  });

  test('with SEKISHO_PASSPHRASE no passphrase is written; a second run prints the unused notice again; a run without it and without a terminal is refused', async () => {
    const dir = tempDir('sekisho-up-env-');
    const home = join(dir, 'demo');
    const up = start(['up', '--json', '--home', home, '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--revocation-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0'], { cwd: dir, env: cleanEnv({ SEKISHO_PASSPHRASE: 'a-demo-passphrase-from-env' }) });
    try {
      const s = await up.summary;
      assert.equal(s.passphraseFile, null);
      assert.equal(existsSync(join(home, 'demo-passphrase')), false);
      assert.equal(await up.stop('SIGTERM'), 0);
      // Run again: the unused notice is printed again, the same IDs.
      const again = start(['up', '--json', '--home', home, '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--revocation-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0'], { cwd: dir, env: cleanEnv({ SEKISHO_PASSPHRASE: 'a-demo-passphrase-from-env' }) });
      try {
        const s2 = await again.summary;
        assert.equal(s2.created, false);
        assert.deepEqual([s2.notice.id, s2.notice.requestId, s2.notice.referenceId, s2.notice.state], [s.notice.id, s.notice.requestId, s.notice.referenceId, 'active']);
        assert.ok(s2.steps.some((l: string) => l.includes(`--request-id ${s.notice.requestId} --reference-id ${s.notice.referenceId}`)));
        assert.equal(await again.stop('SIGTERM'), 0);
      } finally {
        await again.stop('SIGKILL');
      }
    } finally {
      await up.stop('SIGKILL');
    }
    const r = await cli(['up', '--home', home, '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--revocation-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0'], { cwd: dir, env: cleanEnv() });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^sekisho: PASSPHRASE_REQUIRED: .*SEKISHO_PASSPHRASE/m);
  });

  test('a home holding a CA that up did not make is refused, and gets no demo facility', async () => {
    const dir = tempDir('sekisho-up-real-');
    const home = join(dir, 'real');
    const env = cleanEnv({ SEKISHO_PASSPHRASE: 'a-real-ca-passphrase' });
    assert.equal((await cli(['init', '--home', home], { cwd: dir, env })).status, 0);
    const r = await cli(['up', '--home', home, '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--revocation-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0'], { cwd: dir, env });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^sekisho: UP_NOT_A_DEMO_HOME: .*sekisho serve/m);
    assert.equal(existsSync(join(home, 'demo.json')), false);
    const facilities = await cli(['facility', 'list', '--home', home, '--json'], { cwd: dir, env });
    assert.deepEqual(JSON.parse(facilities.stdout), []);
  });
});

describe('sekisho serve: the gateway and the CA endpoints in one process', () => {
  test('the portal (HTTPS with the home certificate) and the gateway both answer; SIGHUP reloads; SIGTERM stops with exit 0', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl')) return;
    const dir = tempDir('sekisho-serve-');
    const home = join(dir, 'home');
    const env = cleanEnv({ SEKISHO_PASSPHRASE: 'serve-test-passphrase', SEKISHO_HOME: home });
    assert.equal((await cli(['init'], { cwd: dir, env })).status, 0);
    assert.equal((await cli(['facility', 'add', '--code', DEMO_FACILITY.number, '--name', DEMO_FACILITY.name], { cwd: dir, env })).status, 0);
    writeFileSync(join(dir, 'pw.txt'), 'serve-password-1\n');
    const issued = await cli(['cert', 'issue', '--facility', DEMO_FACILITY.number, '--p12', join(dir, 'c.p12'), '--password-file', join(dir, 'pw.txt')], { cwd: dir, env });
    assert.equal(issued.status, 0, issued.stderr);
    const cert = join(dir, 'c.pem');
    const key = join(dir, 'c.key');
    openssl(['pkcs12', '-in', join(dir, 'c.p12'), '-passin', `file:${join(dir, 'pw.txt')}`, '-nokeys', '-clcerts', '-out', cert]);
    openssl(['pkcs12', '-in', join(dir, 'c.p12'), '-passin', `file:${join(dir, 'pw.txt')}`, '-nocerts', '-nodes', '-out', key]);
    const root = join(home, 'ca', 'root.pem');

    const upstream = await startDemoUpstream();
    const serve = start(['serve', '--json', '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--revocation-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0', '--self-check-listen', '127.0.0.1:0', '--upstream', upstream.url, '--log-level', 'info'], { cwd: dir, env });
    try {
      const s = await serve.summary;
      assert.equal(s.home, home);
      const portal = await runAsync('curl', ['-sS', '--cacert', root, '-w', '\n%{http_code}', s.portal.url]);
      assert.match(portal.stdout, /<html lang="ja">[\s\S]*\n200$/, portal.stderr);
      const crl = await runAsync('curl', ['-sS', '--fail', '--cacert', root, '-o', join(dir, 'ca.crl'), s.portal.crl]);
      assert.equal(crl.status, 0, crl.stderr);
      openssl(['crl', '-inform', 'DER', '-in', join(dir, 'ca.crl'), '-noout', '-CAfile', join(home, 'ca', 'issuing.pem')]);
      const through = await curlGateway(s.gateway.listeners[0].url, { cert, key, ca: root });
      assert.equal(through.code, '200', through.body);
      assert.match(through.body, new RegExp(`医療機関番号 ${DEMO_FACILITY.number}`));
      // The same home certificate serves both: one issuance, covering localhost.
      const served = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${s.portal.port}`, '-servername', 'localhost', '-verify_return_error', '-CAfile', root], { input: '' });
      assert.match(served.stdout, /Verify return code: 0 \(ok\)/);

      // --self-check-listen: the self-check answers a TLS 1.1 client with its certificate; serve's policy is the fixed high profile (nothing coming).
      assert.equal(s.selfCheck.url, `https://127.0.0.1:${s.selfCheck.port}/`);
      const checked = await runAsync('curl', ['-sS', '--cacert', root, '--tlsv1.1', '--tls-max', '1.1', '--ciphers', 'DEFAULT@SECLEVEL=0', '--cert', cert, '--key', key, `https://localhost:${s.selfCheck.port}/self-check.json`]);
      const report = JSON.parse(checked.stdout) as { connection: { protocol: string }; certificate: { facility: { number: string } }; policies: { inForce: { profile: string; problems: { code: string }[] }; coming: unknown } };
      assert.equal(report.connection.protocol, 'TLSv1.1', checked.stderr);
      assert.equal(report.certificate.facility.number, DEMO_FACILITY.number);
      assert.equal(report.policies.inForce.profile, 'high');
      assert.deepEqual(report.policies.inForce.problems.map((p) => p.code), ['PROTOCOL_TOO_OLD']);
      assert.equal(report.policies.coming, null);

      // A second serve on the same portal port says which address is taken, and exits 2.
      const twice = await cli(['serve', '--listen', '127.0.0.1:0', '--portal', `127.0.0.1:${s.portal.port}`, '--revocation-listen', 'off', '--console-listen', 'off', '--upstream', upstream.url], { cwd: dir, env });
      assert.equal(twice.status, 2, twice.stderr);
      assert.match(twice.stderr, new RegExp(`^sekisho: PORT_IN_USE: 127\\.0\\.0\\.1:${s.portal.port} is already in use.*--portal`, 'm'));

      serve.child.kill('SIGHUP');
      const deadline = Date.now() + 5_000;
      while (!/credentials and trust reloaded/.test(serve.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.match(serve.stderr(), /credentials and trust reloaded/);
      assert.equal((await curlGateway(s.gateway.listeners[0].url, { cert, key, ca: root })).code, '200', 'still serving after the reload');
      const again = await runAsync('curl', ['-sS', '--cacert', root, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${s.selfCheck.port}/`]);
      assert.equal(again.stdout, '200', 'the self-check too, with the reloaded certificate');

      assert.equal(await serve.stop('SIGTERM'), 0);
      assert.match(serve.stderr(), /gateway stopped/);
    } finally {
      await serve.stop('SIGKILL');
      await upstream.close();
    }
  });

  test('serve signs audit checkpoints every audit.checkpointSeconds while events arrive, and once more at SIGTERM', async () => {
    const dir = tempDir('sekisho-serve-checkpoint-');
    const home = join(dir, 'home');
    const env = cleanEnv({ SEKISHO_PASSPHRASE: 'serve-test-passphrase', SEKISHO_HOME: home });
    // Commands run without the passphrase sign nothing: their events wait for serve.
    const keyless = cleanEnv({ SEKISHO_HOME: home });
    assert.equal((await cli(['init'], { cwd: dir, env })).status, 0);
    const setInterval = (seconds: number) => {
      const config = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(home, 'config.json'), JSON.stringify({ ...config, audit: { checkpointSeconds: seconds } }));
    };
    const verify = async () => {
      const r = await cli(['audit', 'verify', '--json'], { cwd: dir, env: keyless });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      return JSON.parse(r.stdout) as { uncovered: { fromSeq: number; toSeq: number } | null; checkpoints: number; head: { seq: number } };
    };
    const addFacility = async (code: string) => assert.equal((await cli(['facility', 'add', '--code', code, '--name', `施設${code}`], { cwd: dir, env: keyless })).status, 0);
    const upstream = await startDemoUpstream();
    const args = ['serve', '--json', '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--revocation-listen', 'off', '--console-listen', 'off', '--upstream', upstream.url, '--log-level', 'info'];
    try {
      setInterval(1);
      const serve = start(args, { cwd: dir, env });
      try {
        await serve.summary;
        await addFacility('0110113719');
        const deadline = Date.now() + 30_000;
        let v = await verify();
        while (v.uncovered && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 300));
          v = await verify();
        }
        assert.equal(v.uncovered, null, 'serve signed the new event within its interval');
        assert.match(serve.stderr(), /audit checkpoint signed/);
        assert.equal(await serve.stop('SIGTERM'), 0);
      } finally {
        await serve.stop('SIGKILL');
      }

      setInterval(3600);
      const again = start(args, { cwd: dir, env });
      try {
        await again.summary;
        await addFacility('1310000003');
        const before = await verify();
        assert.ok(before.uncovered, 'the hourly timer has not signed it');
        assert.equal(await again.stop('SIGTERM'), 0);
        const after = await verify();
        assert.equal(after.uncovered, null, 'signed at shutdown');
        assert.equal(after.checkpoints, before.checkpoints + 1);
      } finally {
        await again.stop('SIGKILL');
      }
    } finally {
      await upstream.close();
    }
  });

  const BAD: { name: string; args: string[]; code: RegExp }[] = [
    { name: 'no upstream', args: ['serve'], code: /^sekisho: USAGE: give --listen and --upstream/ },
    { name: 'a portal address without a port', args: ['serve', '--upstream', 'http://127.0.0.1:9000', '--portal', 'localhost'], code: /^sekisho: LISTEN_ADDRESS_INVALID: --portal "localhost" is not HOST:PORT/ },
    { name: 'listeners from both --config and flags', args: ['serve', '--config', 'gw.yaml', '--upstream', 'http://127.0.0.1:9000'], code: /^sekisho: USAGE: --config describes the listeners; drop --upstream/ },
    { name: 'an up gateway address without a port', args: ['up', '--listen', '127.0.0.1'], code: /^sekisho: LISTEN_ADDRESS_INVALID: --listen "127.0.0.1" is not HOST:PORT/ },
    { name: 'a listener limit that is not KIND.KEY=NUMBER', args: ['serve', '--upstream', 'http://127.0.0.1:9000', '--limit', 'portal=3'], code: /^sekisho: GATEWAY_FLAGS_INVALID: --limit "portal=3" is not KIND\.KEY=NUMBER/ },
    { name: 'a portal connection cap of zero', args: ['serve', '--upstream', 'http://127.0.0.1:9000', '--limit', 'portal.maxConnections=0'], code: /^sekisho: GATEWAY_CONFIG_INVALID: limits\.portal\.maxConnections: must be a whole number/ },
    { name: 'caps beyond the file-descriptor budget', args: ['serve', '--upstream', 'http://127.0.0.1:9000', '--limit', 'fileDescriptors=256', '--limit', 'portal.maxConnections=500'], code: /^sekisho: GATEWAY_CONFIG_INVALID: limits: the connection caps need \d+ file descriptors/ },
    { name: 'an up log level that does not exist', args: ['up', '--log-level', 'loud'], code: /^sekisho: LOG_LEVEL_INVALID: --log-level is one of debug, info, warn, error/ },
  ];
  for (const c of BAD) {
    test(`bad input exits 2 and starts nothing: ${c.name}`, async () => {
      const dir = tempDir('sekisho-serve-bad-');
      let err = '';
      const status = await runCli(c.args, { stdout: () => undefined, stderr: (s) => void (err += s), env: cleanEnv({ SEKISHO_HOME: join(dir, 'home') }), isTTY: false });
      assert.equal(status, 2, err);
      assert.match(err, c.code);
      assert.equal(existsSync(join(dir, 'home')), false, 'no home was made');
    });
  }
});
