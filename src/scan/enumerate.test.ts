import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { suiteByCode } from '../policy/cipher-suites.js';
import { certificatesFromPem, subjectNameDer } from '../pki/certificate.js';
import { hasCommand, needCommand, run } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';
import { enumerateTls, type WireFindings } from './enumerate.js';

// ---------------------------------------------------------------------------
// Real peers: openssl s_server with a throwaway CA, an RSA and an ECDSA leaf
// ---------------------------------------------------------------------------

const SPEED_GOAL_MS = 2000;
const running = new Set<ChildProcess>();
let dir = '';

function openssl(args: string[]): void {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

before(() => {
  if (!hasCommand('openssl')) return;
  dir = tempDir('sekisho-enum-');
  const p = (f: string) => join(dir, f);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/C=JP/O=Sekisho Test/CN=Scanner Test CA']);
  for (const [name, keyArgs] of [
    ['rsa', ['-newkey', 'rsa:2048']],
    ['ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
  ] as const) {
    openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', '/CN=localhost']);
    openssl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '2']);
  }
});

after(async () => {
  await Promise.all([...running].map(stop));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// A last resort if the runner is interrupted between start and stop.
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const port = (s.address() as AddressInfo).port;
  await new Promise((res) => s.close(res));
  return port;
}

function stop(c: ChildProcess): Promise<void> {
  running.delete(c);
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => {
      c.kill('SIGKILL');
      res();
    }, 2000);
    c.once('exit', () => {
      clearTimeout(t);
      res();
    });
    c.kill('SIGTERM');
  });
}

interface Peer {
  port: number;
  stop: () => Promise<void>;
}

/** Starts `openssl s_server` with both leaf certificates and `args`; resolves once it accepts. */
async function sServer(args: string[]): Promise<Peer> {
  const p = (f: string) => join(dir, f);
  let lastError = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePort();
    const child = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', p('rsa.pem'), '-key', p('rsa.key'), '-dcert', p('ec.pem'), '-dkey', p('ec.key'), '-www', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let output = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      const onData = (d: Buffer) => {
        output += d.toString();
        if (output.length > 8192) output = output.slice(-8192); // s_server logs every refused probe: keep draining, keep little
        if (/ACCEPT/.test(output)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) return { port, stop: () => stop(child) };
    lastError = output;
    await stop(child);
  }
  throw new Error(`openssl s_server did not start: ${lastError}`);
}

/** IANA names of the TLS ≤ 1.2 suites OpenSSL lists for a cipher string, minus those our peer cannot serve (PSK, SRP: no callbacks; DSS: no DSA key). */
function expectedSuites(flag: '-tls1_2' | '-tls1_1' | '-tls1', cipherString: string): string[] {
  const r = run('openssl', ['ciphers', '-s', '-V', '-stdname', flag, cipherString]);
  assert.equal(r.status, 0, r.stderr);
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)/.exec(line);
    if (!m) continue;
    const s = suiteByCode(parseInt(`${m[1]}${m[2]}`, 16));
    assert.ok(s, line);
    if (s.tls13 || s.auth === 'DSS' || s.auth === 'PSK' || s.kx === 'RSA_PSK' || s.kx === 'SRP') continue;
    out.push(s.name);
  }
  return out;
}

const sorted = (a: readonly string[]) => [...a].sort();
const protocolsOf = (f: WireFindings) => f.protocols.filter((p) => p.supported).map((p) => p.protocol);
const suitesOf = (f: WireFindings, v: string) => f.protocols.find((p) => p.protocol === v)?.suites ?? [];
const orderOf = (f: WireFindings, v: string) => f.protocols.find((p) => p.protocol === v)?.serverOrder;

async function scan(t: TestContext, args: string[], options: Parameters<typeof enumerateTls>[1] = {}): Promise<WireFindings> {
  const peer = await sServer(args);
  try {
    const started = Date.now();
    const f = await enumerateTls({ host: '127.0.0.1', port: peer.port }, options);
    t.diagnostic(`enumeration: ${Date.now() - started} ms, ${f.probes} probes`);
    return f;
  } finally {
    await peer.stop();
  }
}

const MODERN = 'ECDHE+AESGCM:ECDHE+CHACHA20';
const MODERN13 = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';

// ---------------------------------------------------------------------------

test('(a) TLS 1.2 + 1.3 only, ECDHE AEAD suites, x25519/secp384r1: exact suites, order, groups, fallback SCSV', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const args = ['-min_protocol', 'TLSv1.2', '-cipher', MODERN, '-ciphersuites', MODERN13, '-groups', 'x25519:secp384r1'];
  const expected12 = expectedSuites('-tls1_2', MODERN);
  assert.equal(expected12.length, 6);

  const pref = await scan(t, [...args, '-serverpref']);
  assert.ok(pref.durationMs <= SPEED_GOAL_MS, `a full enumeration took ${pref.durationMs} ms`);
  assert.deepEqual(protocolsOf(pref), ['TLSv1.2', 'TLSv1.3']);
  assert.deepEqual(suitesOf(pref, 'TLSv1.2'), expected12, 'server order = the cipher string order');
  assert.deepEqual(suitesOf(pref, 'TLSv1.3'), MODERN13.split(':'));
  assert.equal(orderOf(pref, 'TLSv1.2'), true);
  assert.equal(orderOf(pref, 'TLSv1.3'), true);
  assert.deepEqual(pref.groups, ['x25519', 'secp384r1']);
  assert.equal(pref.fallbackScsv, 'supported');
  assert.equal(pref.secureRenegotiation, true);
  assert.equal(pref.compression, false);
  assert.equal(pref.dheBits, undefined, 'no DHE suite accepted');
  assert.equal(pref.clientAuthFromHello, undefined);
  assert.equal(pref.clientAuthVisible, true);
  assert.deepEqual(pref.notes, []);
  // Two keys, two chains: the ECDSA suites come with ec.pem, the RSA ones with rsa.pem.
  const leaves = new Set((pref.chainsFromHello ?? []).map((c) => c.chain[0]?.toString('base64')));
  const mine = new Set(['rsa.pem', 'ec.pem'].map((f) => certificatesFromPem(readFileSync(join(dir, f), 'utf8'))[0]?.toString('base64')));
  assert.deepEqual(leaves, mine);
  assert.ok(pref.certificateFromHello && mine.has(pref.certificateFromHello[0]?.toString('base64')));

  const client = await scan(t, args);
  assert.deepEqual(sorted(suitesOf(client, 'TLSv1.2')), sorted(expected12));
  assert.deepEqual(sorted(suitesOf(client, 'TLSv1.3')), sorted(MODERN13.split(':')));
  assert.equal(orderOf(client, 'TLSv1.2'), false);
  assert.equal(orderOf(client, 'TLSv1.3'), false);
});

test('(b) TLS 1.1 + 1.2 with every OpenSSL suite at @SECLEVEL=0: CBC, Camellia, ARIA, CCM, NULL, anonymous all found exactly', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const cipherString = 'ALL:COMPLEMENTOFALL:@SECLEVEL=0';
  const f = await scan(t, ['-cipher', cipherString, '-min_protocol', 'TLSv1.1', '-max_protocol', 'TLSv1.2']);
  assert.ok(f.durationMs <= SPEED_GOAL_MS, `a full enumeration took ${f.durationMs} ms`);
  assert.deepEqual(protocolsOf(f), ['TLSv1.1', 'TLSv1.2']);
  assert.deepEqual(sorted(suitesOf(f, 'TLSv1.2')), sorted(expectedSuites('-tls1_2', cipherString)));
  assert.deepEqual(sorted(suitesOf(f, 'TLSv1.1')), sorted(expectedSuites('-tls1_1', cipherString)));
  for (const name of [
    'TLS_RSA_WITH_AES_128_CBC_SHA',
    'TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384',
    'TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256',
    'TLS_DHE_RSA_WITH_AES_128_CCM_8',
    'TLS_RSA_WITH_NULL_MD5',
    'TLS_DH_anon_WITH_AES_256_GCM_SHA384',
    'TLS_ECDH_anon_WITH_AES_128_CBC_SHA',
  ]) {
    assert.ok(suitesOf(f, 'TLSv1.2').includes(name), name);
  }
  assert.equal(orderOf(f, 'TLSv1.2'), false);
  assert.equal(f.fallbackScsv, 'supported');
  assert.ok(f.dheBits !== undefined && f.dheBits >= 1024, `dheBits ${f.dheBits}`);
  assert.deepEqual(f.groups, ['x25519', 'secp256r1', 'x448', 'secp384r1', 'secp521r1'], 'OpenSSL 3 default curves over TLS 1.2');
  assert.equal(f.secureRenegotiation, true);
});

test('(b) with -serverpref and 16 suites per hello: chunks merged back into the server preference order', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const cipherString = 'ALL:COMPLEMENTOFALL:@SECLEVEL=0';
  const f = await scan(t, ['-cipher', cipherString, '-min_protocol', 'TLSv1.2', '-max_protocol', 'TLSv1.2', '-serverpref'], { maxSuitesPerHello: 16 });
  assert.deepEqual(protocolsOf(f), ['TLSv1.2']);
  assert.equal(orderOf(f, 'TLSv1.2'), true);
  assert.deepEqual(suitesOf(f, 'TLSv1.2'), expectedSuites('-tls1_2', cipherString));
  assert.equal(f.fallbackScsv, 'not-applicable');
});

test('(b) -tls1_1 alone with DEFAULT:@SECLEVEL=0: one version, its CBC suites, fallback not applicable', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const cipherString = 'DEFAULT:@SECLEVEL=0';
  const f = await scan(t, ['-tls1_1', '-cipher', cipherString]);
  assert.deepEqual(protocolsOf(f), ['TLSv1.1']);
  const expected = expectedSuites('-tls1_1', cipherString);
  assert.ok(expected.length > 0 && expected.every((n) => n.includes('_CBC_')));
  assert.deepEqual(sorted(suitesOf(f, 'TLSv1.1')), sorted(expected));
  assert.equal(f.fallbackScsv, 'not-applicable');
});

test('(c) client certificates: -Verify 1 (required) and -verify 1 (requested) both show a CertificateRequest naming the CA', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const caSubject = subjectNameDer(certificatesFromPem(readFileSync(join(dir, 'ca.pem'), 'utf8'))[0] as Buffer);
  for (const flag of ['-Verify', '-verify']) {
    const f = await scan(t, ['-min_protocol', 'TLSv1.2', '-cipher', MODERN, '-ciphersuites', MODERN13, flag, '1', '-CAfile', join(dir, 'ca.pem')]);
    assert.deepEqual(protocolsOf(f), ['TLSv1.2', 'TLSv1.3'], flag);
    assert.deepEqual(sorted(suitesOf(f, 'TLSv1.2')), sorted(expectedSuites('-tls1_2', MODERN)), flag);
    const ca = f.clientAuthFromHello;
    assert.ok(ca, `${flag}: CertificateRequest seen`);
    assert.equal(ca.protocol, 'TLSv1.2');
    assert.equal(ca.caNames.length, 1);
    assert.ok(ca.caNames[0]?.equals(caSubject), `${flag}: the CA's subject is listed`);
    assert.ok(ca.certificateTypes.includes(64) && ca.certificateTypes.includes(1), `${flag}: rsa_sign and ecdsa_sign`);
    assert.ok(ca.signatureAlgorithms?.includes(0x0403));
  }
});

test('(d) TLS 1.3 only with CCM/ChaCha suites and ffdhe2048/secp521r1: suites through HelloRetryRequests, groups, nothing visible in clear', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const suites = ['TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256'];
  const f = await scan(t, ['-tls1_3', '-ciphersuites', suites.join(':'), '-groups', 'ffdhe2048:secp521r1', '-serverpref']);
  assert.deepEqual(protocolsOf(f), ['TLSv1.3']);
  assert.deepEqual(suitesOf(f, 'TLSv1.3'), suites);
  assert.equal(orderOf(f, 'TLSv1.3'), true);
  assert.deepEqual(f.groups, ['secp521r1', 'ffdhe2048']);
  assert.equal(f.fallbackScsv, 'not-applicable');
  assert.equal(f.compression, false);
  assert.equal(f.secureRenegotiation, undefined);
  assert.equal(f.clientAuthVisible, false);
  assert.equal(f.certificateFromHello, undefined);
  assert.ok(f.notes.some((n) => n.includes('encrypted')));
});

test('nothing listening: every probe refused quickly, no version supported, the reason in the notes', async () => {
  const s = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const port = (s.address() as AddressInfo).port;
  await new Promise((res) => s.close(res));
  const f = await enumerateTls({ host: '127.0.0.1', port }, { timeoutMs: 1000 });
  assert.deepEqual(protocolsOf(f), []);
  assert.ok(f.notes.some((n) => n.includes('ECONNREFUSED')), f.notes.join('; '));
  assert.ok(f.durationMs < 1000);
});
