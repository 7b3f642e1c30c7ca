/**
 * `sekisho token …` and `sekisho init --token/--pkcs11-uri` end to end: the
 * real CLI in a child process, SoftHSM2 as the PKCS#11 token, openssl as the
 * judge of what the token-held CA key signed.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../testing/stores.js';
import { needCommand, needPeer, run, underCi } from '../../testing/peers.js';
import { hasSoftHsm, needSoftHsm, PKCS11_ENGINE, SOFTHSM_MODULE, useTemporarySoftHsm } from '../../testing/softhsm.js';
import { keyUri, tlsKeyOptions, formatPkcs11Uri, parsePkcs11Uri } from '../../token/index.js';
import tls from 'node:tls';
import { jsonLogger, openGateway, parseGatewayConfig } from '../../gateway/index.js';
import { echoUpstream } from '../../testing/gateway-fixture.js';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const USER_PIN = 'user-PIN-4821';
const SO_PIN = 'so-PIN-77310';
const NEW_PIN = 'new-user-PIN-5097';
const PASSPHRASE = 'kanri-Passphrase-7f3a9c';
const BACKUP_PASSPHRASE = 'backup-Passphrase-3318';
const P12_PASSWORD = 'p12-Password-h4k0w8';
const SECRETS = [USER_PIN, SO_PIN, NEW_PIN, PASSPHRASE, BACKUP_PASSPHRASE, P12_PASSWORD, 'wrong-PIN-0001', 'wrong-PIN-0002', 'wrong-PIN-0003'];
const FACILITY = '0110113719';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sekisho(args: string[], env: Record<string, string | undefined> = {}, cwd?: string): Result {
  const e: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C.UTF-8', SEKISHO_SQLITE_SYNC: 'NORMAL', SEKISHO_ACTOR: 'operator:test', SOFTHSM2_CONF: process.env.SOFTHSM2_CONF, ...env };
  for (const [k, v] of Object.entries(e)) if (v === undefined) delete e[k];
  const r = spawnSync(process.execPath, [MAIN, ...args], { env: e, cwd, maxBuffer: 16 * 1024 * 1024 });
  const out = { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  for (const s of SECRETS) assert.ok(!out.stdout.includes(s) && !out.stderr.includes(s), `sekisho ${args.join(' ')} printed a secret`);
  return out;
}
function ok(args: string[], env: Record<string, string | undefined> = {}): Result {
  const r = sekisho(args, env);
  assert.equal(r.status, 0, `sekisho ${args.join(' ')} failed: ${r.stderr}`);
  return r;
}
function fails(args: string[], env: Record<string, string | undefined>, code: string, status = 2): Result {
  const r = sekisho(args, env);
  assert.equal(r.status, status, `sekisho ${args.join(' ')}: expected exit ${status}, got ${r.status}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^sekisho: ${code}: `, 'm'));
  return r;
}
const PINS = { SEKISHO_PIN: USER_PIN, SEKISHO_SO_PIN: SO_PIN };

describe('sekisho token (software token)', () => {
  const dir = tempDir('sekisho-cli-token-');
  const token = join(dir, 'facility.token');
  const tk = ['--token', token];

  test('init makes a 0600 token with the device identification readable without a PIN', () => {
    ok(['token', 'init', ...tk, '--label', 'clinic', '--min-pin-length', '8', '--device-id', `${FACILITY} reception PC`], PINS);
    assert.equal(statSync(token).mode & 0o777, 0o600);
    const info = JSON.parse(ok(['token', 'info', ...tk, '--json']).stdout) as Record<string, unknown>;
    assert.equal(info.deviceId, `${FACILITY} reception PC`);
    assert.equal(info.minPinLength, 8);
    assert.equal(info.maxUserPinTries, 3);
    assert.deepEqual(info.flagNames, ['RNG', 'LOGIN_REQUIRED', 'USER_PIN_INITIALIZED', 'TOKEN_INITIALIZED']);
  });

  test('PINs come only from the environment: a --pin flag is refused, a missing PIN is PIN_REQUIRED, a short one PIN_TOO_SHORT', () => {
    const r = sekisho(['token', 'login-test', ...tk, '--pin', USER_PIN.replace('4821', '0000')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /USAGE/);
    fails(['token', 'login-test', ...tk], {}, 'PIN_REQUIRED');
    fails(['token', 'init', '--token', join(dir, 'short.token'), '--label', 'x', '--min-pin-length', '20'], PINS, 'PIN_TOO_SHORT');
    assert.equal(existsSync(join(dir, 'short.token')), false);
  });

  test('keygen makes a key in the token; list shows it with its pkcs11: URI (private objects only with the PIN)', () => {
    const k = JSON.parse(ok(['token', 'keygen', ...tk, '--key-label', 'facility-key', '--type', 'ecdsa-p384', '--json'], PINS).stdout) as Record<string, unknown>;
    assert.equal(k.keyType, 'ecdsa-p384');
    assert.equal(k.extractable, false);
    assert.match(k.uri as string, /^pkcs11:token=clinic;object=facility-key;type=private;id=/);
    fails(['token', 'keygen', ...tk, '--key-label', 'facility-key'], PINS, 'TOKEN_KEY_EXISTS');
    const withPin = JSON.parse(ok(['token', 'list', ...tk, '--json'], PINS).stdout) as { objects: { class: string }[] };
    assert.deepEqual(withPin.objects.map((o) => o.class).sort(), ['data', 'private-key', 'public-key']);
    const without = JSON.parse(ok(['token', 'list', ...tk, '--json']).stdout) as { objects: { class: string }[] };
    assert.deepEqual(without.objects.map((o) => o.class).sort(), ['data', 'public-key']);
  });

  test('import takes a PKCS#12 made by openssl: key and certificate land in the token', (t) => {
    if (!needCommand(t, 'openssl')) return;
    const key = join(dir, 'p12.key');
    const cert = join(dir, 'p12.pem');
    run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${FACILITY}`, '-days', '2']);
    const p12 = join(dir, 'f.p12');
    const r = run('openssl', ['pkcs12', '-export', '-inkey', key, '-in', cert, '-out', p12, '-passout', `pass:${P12_PASSWORD}`, '-name', 'facility-cert']);
    assert.equal(r.status, 0, r.stderr);
    const pw = join(dir, 'p12.pw');
    writeFileSync(pw, `${P12_PASSWORD}\n`);
    const imported = JSON.parse(ok(['token', 'import', ...tk, '--p12', p12, '--password-file', pw, '--json'], PINS).stdout) as Record<string, unknown>;
    assert.equal(imported.label, 'facility-cert');
    const objects = (JSON.parse(ok(['token', 'list', ...tk, '--json'], PINS).stdout) as { objects: { class: string; label: string }[] }).objects;
    assert.ok(objects.some((o) => o.class === 'certificate' && o.label === 'facility-cert'));
    writeFileSync(pw, 'wrong-password\n');
    fails(['token', 'import', ...tk, '--p12', p12, '--password-file', pw, '--key-label', 'again'], PINS, 'PKCS12_BAD_PASSWORD');
  });

  test('three wrong PINs lock it (info --json shows COUNT_LOW, FINAL_TRY, LOCKED); unlock with the SO PIN sets a new PIN', () => {
    const state = () => JSON.parse(ok(['token', 'info', ...tk, '--json']).stdout) as { flagNames: string[]; userPinFailures: number; userPinLocked: boolean };
    fails(['token', 'login-test', ...tk], { SEKISHO_PIN: 'wrong-PIN-0001' }, 'PIN_WRONG');
    assert.ok(state().flagNames.includes('USER_PIN_COUNT_LOW'));
    fails(['token', 'login-test', ...tk], { SEKISHO_PIN: 'wrong-PIN-0002' }, 'PIN_WRONG');
    assert.ok(state().flagNames.includes('USER_PIN_FINAL_TRY'));
    fails(['token', 'login-test', ...tk], { SEKISHO_PIN: 'wrong-PIN-0003' }, 'PIN_LOCKED');
    const locked = state();
    assert.equal(locked.userPinLocked, true);
    assert.equal(locked.userPinFailures, 3);
    fails(['token', 'login-test', ...tk], PINS, 'PIN_LOCKED');
    fails(['token', 'unlock', ...tk], { SEKISHO_SO_PIN: 'wrong-PIN-0001', SEKISHO_NEW_PIN: NEW_PIN }, 'SO_PIN_WRONG');
    ok(['token', 'unlock', ...tk], { SEKISHO_SO_PIN: SO_PIN, SEKISHO_NEW_PIN: NEW_PIN });
    assert.equal(state().userPinLocked, false);
    ok(['token', 'login-test', ...tk], { SEKISHO_PIN: NEW_PIN });
    ok(['token', 'login-test', ...tk, '--so'], { SEKISHO_SO_PIN: SO_PIN });
  });

  test('backup and restore through the CLI; a wrong backup passphrase and a damaged token file are clear errors', () => {
    const backup = join(dir, 'facility.token.backup');
    ok(['token', 'backup', ...tk, '--out', backup], { SEKISHO_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE });
    assert.equal(statSync(backup).mode & 0o777, 0o600);
    fails(['token', 'backup', ...tk, '--out', backup], { SEKISHO_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE }, 'OUTPUT_EXISTS');
    const restored = join(dir, 'restored.token');
    fails(['token', 'restore', '--token', restored, '--from', backup], { SEKISHO_BACKUP_PASSPHRASE: 'wrong-PIN-0001' }, 'BACKUP_PASSPHRASE_WRONG');
    assert.equal(existsSync(restored), false);
    ok(['token', 'restore', '--token', restored, '--from', backup], { SEKISHO_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE });
    ok(['token', 'login-test', '--token', restored], { SEKISHO_PIN: NEW_PIN });
    fails(['token', 'restore', '--token', restored, '--from', backup], { SEKISHO_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE }, 'TOKEN_EXISTS');
    fails(['token', 'backup', '--module', SOFTHSM_MODULE, '--out', join(dir, 'x')], {}, 'USAGE');
    writeFileSync(restored, readFileSync(restored, 'utf8').slice(0, 500));
    fails(['token', 'info', '--token', restored], {}, 'TOKEN_FILE_CORRUPT');
    fails(['token', 'info', '--token', join(dir, 'missing.token')], {}, 'TOKEN_FILE_MISSING');
  });
});

describe('sekisho token (PKCS#11, SoftHSM2)', { skip: !hasSoftHsm() && !underCi ? 'SoftHSM2 is not installed' : false }, () => {
  before(() => {
    useTemporarySoftHsm();
  });
  const mod = ['--module', SOFTHSM_MODULE];

  test('init, info, keygen, list and login-test on a SoftHSM2 token; pkcs11-tool sees the key', (t) => {
    if (!needSoftHsm(t)) return;
    ok(['token', 'init', ...mod, '--label', 'gateway'], PINS);
    const info = JSON.parse(ok(['token', 'info', ...mod, '--label', 'gateway', '--json']).stdout) as { flagNames: string[]; kind: string };
    assert.equal(info.kind, 'pkcs11');
    assert.ok(info.flagNames.includes('TOKEN_INITIALIZED'));
    assert.match(ok(['token', 'info', ...mod]).stdout, /"gateway"/);
    const key = JSON.parse(ok(['token', 'keygen', ...mod, '--label', 'gateway', '--key-label', 'server-key', '--type', 'rsa-2048', '--json'], PINS).stdout) as { uri: string };
    assert.match(key.uri, /^pkcs11:token=gateway;object=server-key;type=private/);
    assert.match(ok(['token', 'list', ...mod, '--label', 'gateway'], PINS).stdout, /private-key +server-key/);
    fails(['token', 'login-test', ...mod, '--label', 'gateway'], { SEKISHO_PIN: 'wrong-PIN-0001' }, 'PIN_WRONG');
    ok(['token', 'login-test', ...mod, '--label', 'gateway'], PINS);
    if (needCommand(t, 'pkcs11-tool')) {
      const r = run('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', 'gateway', '--login', '--pin', USER_PIN, '--list-objects', '--type', 'privkey']);
      assert.match(r.stdout, /label:\s+server-key/);
    }
  });

  test('bad input: a missing module, an unknown token label, a missing slot', (t) => {
    if (!needSoftHsm(t)) return;
    fails(['token', 'info', '--module', '/nonexistent/libpkcs11.so', '--label', 'x'], {}, 'PKCS11_MODULE_NOT_FOUND');
    fails(['token', 'info', ...mod, '--label', 'no-such-token'], {}, 'TOKEN_NOT_FOUND');
    fails(['token', 'info', ...mod, '--slot', '4242'], {}, 'TOKEN_SLOT_NOT_FOUND');
    fails(['token', 'login-test', ...mod], PINS, 'TOKEN_NOT_SELECTED');
    fails(['token', 'info', '--token', 'x', ...mod], {}, 'USAGE');
  });
});

describe('sekisho init with the issuing key in a token', () => {
  let hsmHome = '';
  before(() => {
    if (hasSoftHsm()) useTemporarySoftHsm();
  });

  const issueAndVerify = (home: string, env: Record<string, string>) => {
    const h = ['--home', home];
    ok(['facility', 'add', ...h, '--code', FACILITY, '--name', 'はこだてクリニック'], env);
    const pw = join(home, '..', 'pw');
    writeFileSync(pw, `${P12_PASSWORD}\n`);
    const p12 = join(home, '..', 'f.p12');
    ok(['cert', 'issue', ...h, '--facility', FACILITY, '--p12', p12, '--password-file', pw], env);
    const leaf = join(home, '..', 'leaf.pem');
    assert.equal(run('openssl', ['pkcs12', '-in', p12, '-passin', `pass:${P12_PASSWORD}`, '-nokeys', '-clcerts', '-out', leaf]).status, 0);
    const v = run('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(home, 'ca', 'root.pem'), '-untrusted', join(home, 'ca', 'issuing.pem'), leaf]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /leaf.pem: OK/);
    // The CRL is signed by the token-held key too.
    const crl = join(home, '..', 'crl.pem');
    ok(['crl', ...h, '--pem', '--out', crl], env);
    const c = run('openssl', ['crl', '-in', crl, '-noout', '-CAfile', join(home, 'ca', 'issuing.pem')]);
    assert.match(c.stderr + c.stdout, /verify OK/);
    // The audit key lives in the same token: checkpoints are signed there, and verify needs no PIN.
    assert.equal(existsSync(join(home, 'ca', 'audit.key.json')), false, 'no audit key file beside a token-held CA key');
    const audit = JSON.parse(ok(['audit', 'verify', ...h, '--json'], { SEKISHO_PASSPHRASE: undefined, SEKISHO_PIN: undefined }).stdout) as { status: string; uncovered: unknown; signedThrough: { seq: number } | null; head: { seq: number } };
    assert.equal(audit.status, 'intact');
    assert.equal(audit.uncovered, null, 'the token-held audit key signed every event');
    assert.equal(audit.signedThrough?.seq, audit.head.seq);
  };

  test('software token: the CA signs with a key that lives in the token; its home holds no issuing key file', (t) => {
    if (!needCommand(t, 'openssl')) return;
    const dir = tempDir('sekisho-ca-swtoken-');
    const token = join(dir, 'ca.token');
    ok(['token', 'init', '--token', token, '--label', 'ca'], PINS);
    const home = join(dir, 'home');
    const env = { SEKISHO_PASSPHRASE: PASSPHRASE, SEKISHO_PIN: USER_PIN };
    const init = JSON.parse(ok(['init', '--home', home, '--token', token, '--json'], env).stdout) as { issuingKey: string };
    assert.match(init.issuingKey, /software token/);
    assert.equal(existsSync(join(home, 'ca', 'issuing.key.json')), false);
    assert.equal(existsSync(join(home, 'ca', 'issuing-key.token.json')), true);
    assert.doesNotMatch(readFileSync(join(home, 'ca', 'issuing-key.token.json'), 'utf8'), /PIN|pin-value/);
    issueAndVerify(home, env);
    ok(['cert', 'list', '--home', home], env);
  });

  test('SoftHSM2: init --pkcs11-uri generates the issuing key in the HSM; a wrong PIN is PIN_WRONG and signs nothing', (t) => {
    if (!needSoftHsm(t) || !needCommand(t, 'openssl')) return;
    const dir = tempDir('sekisho-ca-hsm-');
    ok(['token', 'init', '--module', SOFTHSM_MODULE, '--label', 'ca-hsm'], PINS);
    const home = join(dir, 'home');
    hsmHome = home;
    const env = { SEKISHO_PASSPHRASE: PASSPHRASE, SEKISHO_PIN: USER_PIN };
    fails(['init', '--home', home, '--pkcs11-uri', 'pkcs11:token=ca-hsm;object=issuing'], env, 'USAGE');
    ok(['init', '--home', home, '--pkcs11-uri', 'pkcs11:token=ca-hsm;object=issuing', '--module', SOFTHSM_MODULE], env);
    const listed = run('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', 'ca-hsm', '--login', '--pin', USER_PIN, '--list-objects', '--type', 'privkey']);
    assert.match(listed.stdout, /label:\s+issuing[\s\S]*never extractable/);
    assert.match(listed.stdout, /label:\s+sekisho-audit[\s\S]*never extractable/, 'the audit key was made in the HSM beside the issuing key');
    issueAndVerify(home, env);
    fails(['crl', '--home', home, '--pem'], { ...env, SEKISHO_PIN: 'wrong-PIN-0001' }, 'PIN_WRONG');
  });

  test('a facility certificate from the HSM-held CA, for a key that never left SoftHSM2, authenticates at the gateway (whose own key is in SoftHSM2 too) and reaches the upstream', async (t) => {
    if (!needSoftHsm(t) || !needCommand(t, 'openssl') || !hsmHome) return;
    if (!needPeer(t, existsSync(PKCS11_ENGINE), 'the OpenSSL pkcs11 engine (Debian package libengine-pkcs11-openssl)')) return;
    const env = { SEKISHO_PASSPHRASE: PASSPHRASE, SEKISHO_PIN: USER_PIN };
    const dir = join(hsmHome, '..');
    // The facility's own token and key.
    ok(['token', 'init', '--module', SOFTHSM_MODULE, '--label', 'facility-hsm'], PINS);
    ok(['token', 'keygen', '--module', SOFTHSM_MODULE, '--label', 'facility-hsm', '--key-label', 'facility-client'], PINS);
    // Its CSR is signed inside the token by OpenSSL's pkcs11 engine.
    const keyRef = { kind: 'pkcs11' as const, uri: keyUri('facility-hsm', 'facility-client'), pin: USER_PIN, module: SOFTHSM_MODULE };
    const options = tlsKeyOptions(keyRef); // also sets OPENSSL_ENGINES / PKCS11_MODULE_PATH for the openssl child
    const csr = join(dir, 'facility.csr');
    const r = run('openssl', ['req', '-new', '-engine', 'pkcs11', '-keyform', 'engine', '-key', formatPkcs11Uri({ ...parsePkcs11Uri(keyRef.uri), pinValue: USER_PIN }), '-subj', `/CN=${FACILITY}`, '-out', csr]);
    assert.equal(r.status, 0, r.stderr);
    const leaf = join(dir, 'facility-tls.pem');
    ok(['cert', 'issue', '--home', hsmHome, '--facility', FACILITY, '--csr', csr, '--out', leaf], env);
    // The service center's server key lives in a token of its own too; its certificate comes from the same CA.
    ok(['token', 'init', '--module', SOFTHSM_MODULE, '--label', 'center-hsm'], PINS);
    ok(['token', 'keygen', '--module', SOFTHSM_MODULE, '--label', 'center-hsm', '--key-label', 'gateway-server'], PINS);
    const serverCsr = join(dir, 'server.csr');
    const sr = run('openssl', ['req', '-new', '-engine', 'pkcs11', '-keyform', 'engine', '-key', formatPkcs11Uri({ ...parsePkcs11Uri(keyUri('center-hsm', 'gateway-server')), pinValue: USER_PIN }), '-subj', '/CN=localhost', '-out', serverCsr]);
    assert.equal(sr.status, 0, sr.stderr);
    const serverLeaf = join(dir, 'server-leaf.pem');
    ok(['cert', 'issue', '--home', hsmHome, '--profile', 'server', '--host', 'localhost', '--csr', serverCsr, '--out', serverLeaf], env);
    const ca = [readFileSync(join(hsmHome, 'ca', 'issuing.pem'), 'utf8'), readFileSync(join(hsmHome, 'ca', 'root.pem'), 'utf8')];
    const serverPem = join(dir, 'server-chain.pem');
    writeFileSync(serverPem, readFileSync(serverLeaf, 'utf8') + ca[0]);
    // The service center's door is sekisho's own gateway, beside the HSM-held CA.
    const upstream = await echoUpstream();
    const setup = await openGateway(
      parseGatewayConfig({ home: hsmHome, tls: { cert: serverPem, key: keyUri('center-hsm', 'gateway-server'), module: SOFTHSM_MODULE }, listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${upstream.port}`, allow: { anyone: true } }] }] }),
      { passphrase: async () => PASSPHRASE, pin: () => USER_PIN, log: jsonLogger('error'), watch: false },
    );
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port: setup.gateway.addresses()[0]!.port, servername: 'localhost', ca, cert: readFileSync(leaf, 'utf8'), ...options });
        let data = '';
        c.once('secureConnect', () => c.write('GET /chart HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
        c.on('data', (d: Buffer) => (data += d.toString()));
        c.on('end', () => resolve(data));
        c.on('error', reject);
      });
      assert.match(reply, /^HTTP\/1.1 200/);
      assert.equal(upstream.seen.at(-1)?.['x-sekisho-facility-number'], FACILITY, 'the upstream sees the facility whose key is in SoftHSM2');
    } finally {
      await setup.close(100);
      upstream.server.close();
    }
  });
});
