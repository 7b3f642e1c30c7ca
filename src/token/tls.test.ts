/**
 * Mutual TLS with keys that never leave SoftHSM2: a Node TLS server (the
 * gateway's shape: client certificate required) whose own key is in the token,
 * and clients whose keys are in the token — Node's tls.connect with
 * tlsKeyOptions, `openssl s_client` and `curl` with the OpenSSL pkcs11 engine.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { isSekishoError } from '../errors/index.js';
import { hasCommand, needCommand, run, underCi } from '../testing/peers.js';
import { openPkcs11Module } from './pkcs11-token.js';
import { hasSoftHsm, needSoftHsm, PKCS11_ENGINE, SOFTHSM_MODULE, useTemporarySoftHsm } from '../testing/softhsm.js';
import { tlsKeyOptions } from './tls.js';
import { keyUri } from './key-ref.js';
import { formatPkcs11Uri, parsePkcs11Uri } from './uri.js';

const USER_PIN = 'user-PIN-4821';
const SO_PIN = 'so-PIN-77310';
const LABEL = 'tls-token';
const FACILITY_CN = '0110113719 はこだてクリニック';
const code = (c: string) => (e: unknown) => isSekishoError(e) && e.code === c;
const skip = !(hasSoftHsm() && existsSync(PKCS11_ENGINE) && hasCommand('openssl')) && !underCi;

let dir = '';
let caPem = '';
let serverCert = '';
let clientCert = '';
let server: tls.Server | undefined;
let port = 0;
const seen: { authorized: boolean; cn: string | undefined }[] = [];

const withPin = (uri: string) => formatPkcs11Uri({ ...parsePkcs11Uri(uri), pinValue: USER_PIN });

function openssl(args: string[]) {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A CSR signed inside the token (the key never leaves it), then a certificate from a throw-away test CA. */
function certify(keyLabel: string, subject: string, ext: string): string {
  const csr = join(dir, `${keyLabel}.csr`);
  openssl(['req', '-new', '-engine', 'pkcs11', '-keyform', 'engine', '-key', withPin(keyUri(LABEL, keyLabel)), '-subj', subject, '-utf8', '-out', csr]);
  const extFile = join(dir, `${keyLabel}.ext`);
  writeFileSync(extFile, ext);
  const out = join(dir, `${keyLabel}.pem`);
  openssl(['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '2', '-sha256', '-extfile', extFile, '-out', out]);
  return readFileSync(out, 'utf8');
}

before(async () => {
  if (skip) return;
  dir = useTemporarySoftHsm().dir;
  process.env.PKCS11_MODULE_PATH = SOFTHSM_MODULE; // for the openssl and curl children too
  const m = openPkcs11Module(SOFTHSM_MODULE);
  try {
    await m.initToken(await m.freeSlot(), { label: LABEL, soPin: SO_PIN, userPin: USER_PIN });
    const s = await m.openSession(await m.slotByLabel(LABEL));
    await s.login('user', USER_PIN);
    await s.generateKeyPair('ecdsa-p256', { label: 'gateway-server' });
    await s.generateKeyPair('ecdsa-p256', { label: 'facility-client' });
  } finally {
    await m.close();
  }
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', '/CN=sekisho test CA', '-days', '2']);
  caPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
  serverCert = certify('gateway-server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  clientCert = certify('facility-client', `/CN=${FACILITY_CN}`, 'extendedKeyUsage=clientAuth\n');

  server = tls.createServer({
    ...tlsKeyOptions({ kind: 'pkcs11', uri: keyUri(LABEL, 'gateway-server'), pin: USER_PIN, module: SOFTHSM_MODULE }),
    cert: serverCert,
    ca: caPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  server.on('secureConnection', (sock) => {
    const cn = sock.getPeerCertificate().subject?.CN;
    seen.push({ authorized: sock.authorized, cn: Array.isArray(cn) ? cn[0] : cn });
    const body = `hello ${cn}\n`;
    sock.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

/** Runs a child without blocking this process (the server lives here). */
function runAsync(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env: process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('tlsKeyOptions: PEM for a software key, engine + identifier (with the PIN) for a PKCS#11 key', { skip }, () => {
  assert.deepEqual(tlsKeyOptions({ kind: 'pem', pem: 'PEM' }), { key: 'PEM' });
  const o = tlsKeyOptions({ kind: 'pkcs11', uri: 'pkcs11:token=t;object=k', pin: '1234', module: SOFTHSM_MODULE });
  assert.equal(o.privateKeyEngine, 'pkcs11');
  assert.equal(o.privateKeyIdentifier, 'pkcs11:token=t;object=k;type=private?pin-value=1234');
  assert.throws(() => tlsKeyOptions({ kind: 'pkcs11', uri: 'pkcs11:token=t', pin: '1234' }), code('TOKEN_KEY_REF_INVALID'));
  assert.throws(() => tlsKeyOptions({ kind: 'pkcs11', uri: 'pkcs11:token=t;object=k', pin: '' }), code('PIN_REQUIRED'));
  assert.throws(() => tlsKeyOptions({ kind: 'pkcs11', uri: 'pkcs11:token=t;object=k', pin: '1', module: join(dir, 'nope.so') }), code('PKCS11_MODULE_NOT_FOUND'));
});

test('Node tls.connect with a SoftHSM2 client key is accepted by a server whose key is in SoftHSM2 too', { skip }, async (t) => {
  if (!needSoftHsm(t)) return;
  const reply = await new Promise<string>((resolve, reject) => {
    const c = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: caPem,
      cert: clientCert,
      ...tlsKeyOptions({ kind: 'pkcs11', uri: keyUri(LABEL, 'facility-client'), pin: USER_PIN, module: SOFTHSM_MODULE }),
    });
    let data = '';
    c.on('data', (d: Buffer) => (data += d.toString()));
    c.on('end', () => resolve(data));
    c.on('error', reject);
  });
  assert.match(reply, new RegExp(`hello ${FACILITY_CN}`));
  assert.deepEqual(seen.at(-1), { authorized: true, cn: FACILITY_CN });
});

test('openssl s_client with the pkcs11 engine authenticates with the token-held client key', { skip }, async (t) => {
  if (!needSoftHsm(t) || !needCommand(t, 'openssl')) return;
  writeFileSync(join(dir, 'client.pem'), clientCert);
  const r = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', join(dir, 'ca.pem'), '-verify_return_error', '-engine', 'pkcs11', '-keyform', 'engine', '-key', withPin(keyUri(LABEL, 'facility-client')), '-cert', join(dir, 'client.pem'), '-brief']);
  assert.match(r.stdout, /hello 0110113719/, r.stderr);
  assert.match(r.stderr, /Verification: OK/);
  assert.equal(seen.at(-1)?.authorized, true);
});

test('curl with the pkcs11 engine authenticates with the token-held client key', { skip }, async (t) => {
  if (!needSoftHsm(t) || !needCommand(t, 'curl')) return;
  const r = await runAsync('curl', ['--silent', '--show-error', '--engine', 'pkcs11', '--key-type', 'ENG', '--key', withPin(keyUri(LABEL, 'facility-client')), '--cert', join(dir, 'client.pem'), '--cacert', join(dir, 'ca.pem'), `https://localhost:${port}/`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /hello 0110113719/);
});

test('a client without a certificate, or with a wrong PIN, does not get in', { skip }, async (t) => {
  if (!needSoftHsm(t)) return;
  const before = seen.length;
  await assert.rejects(
    new Promise<string>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem });
      let data = '';
      c.on('data', (d: Buffer) => (data += d.toString()));
      c.on('end', () => (data ? resolve(data) : reject(new Error('closed without data'))));
      c.on('error', reject);
    }),
  );
  // A wrong PIN, in a process of its own (within one process libp11 stays logged in once a PIN was right).
  const wrong = formatPkcs11Uri({ ...parsePkcs11Uri(keyUri(LABEL, 'facility-client')), pinValue: 'wrong-PIN-000' });
  const r = await runAsync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', join(dir, 'ca.pem'), '-engine', 'pkcs11', '-keyform', 'engine', '-key', wrong, '-cert', join(dir, 'client.pem'), '-brief']);
  assert.notEqual(r.status, 0);
  assert.doesNotMatch(r.stdout, /hello/);
  assert.equal(seen.length, before);
});
