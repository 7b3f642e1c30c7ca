/**
 * PKCS#12 against the real peer: files sekisho writes must open in OpenSSL 3
 * (without -legacy) and in Node's TLS stack; files OpenSSL writes must read
 * back; damaged input must only ever raise SekishoError.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { PFX } from '@peculiar/asn1-pfx';
import { buildPkcs12, pkcs12Kdf, readPkcs12, bmpPassword, octetStringContent, type BuildPkcs12Input } from './pkcs12.js';
import { isSekishoError, SekishoError } from '../errors/index.js';
import { needCommand, run } from '../testing/peers.js';
import { spkiDer as publicOf } from './keys.js';

const FACILITY = 'はこだてクリニック';
const PASSWORD = 'tsuki-no-hikari-7';
const JA_PASSWORD = 'パスワード2026';

// ---------------------------------------------------------------------------
// Fixture: root CA → issuing CA → leaf (clientAuth), made with the openssl CLI
// ---------------------------------------------------------------------------

interface Leaf {
  key: KeyObject;
  cert: Buffer;
  keyFile: string;
  certFile: string;
}

interface Pki {
  dir: string;
  root: Buffer;
  issuing: Buffer;
  /** PEM file: issuing CA then root. */
  chainFile: string;
  /** PEM file: root then issuing (reversed on purpose). */
  reversedChainFile: string;
  ec: Leaf;
  rsa: Leaf;
}

const OPENSSL_CNF = `
[req]
distinguished_name = dn
prompt = no
utf8 = yes
string_mask = utf8only
[dn]
CN = placeholder
[v3_root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_issuing]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

function openssl(args: string[]): string {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout + r.stderr;
}

function writeKey(file: string, key: KeyObject): void {
  writeFileSync(file, key.export({ type: 'pkcs8', format: 'pem' }));
}

function derOf(file: string): Buffer {
  return new X509Certificate(readFileSync(file)).raw;
}

let pkiCache: Pki | undefined;
const tempDirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sekisho-p12-'));
  tempDirs.push(d);
  return d;
}

after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function makePki(): Pki {
  if (pkiCache !== undefined) return pkiCache;
  const dir = tempDir();
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(cnf, OPENSSL_CNF);
  const p = (name: string) => join(dir, name);
  const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;

  const rootKey = ec();
  writeKey(p('root.key'), rootKey);
  openssl(['req', '-x509', '-new', '-config', cnf, '-utf8', '-key', p('root.key'), '-subj', '/O=Sekisho Test/CN=Sekisho Test Root CA',
    '-days', '3', '-extensions', 'v3_root', '-out', p('root.pem')]);

  const sign = (name: string, key: KeyObject, subject: string, ca: string, ext: string, serial: string): void => {
    writeKey(p(`${name}.key`), key);
    openssl(['req', '-new', '-config', cnf, '-utf8', '-key', p(`${name}.key`), '-subj', subject, '-out', p(`${name}.csr`)]);
    openssl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${ca}.pem`), '-CAkey', p(`${ca}.key`), '-set_serial', serial,
      '-days', '2', '-sha256', '-extfile', cnf, '-extensions', ext, '-out', p(`${name}.pem`)]);
  };
  sign('issuing', ec(), '/O=Sekisho Test/CN=Sekisho Test Issuing CA', 'root', 'v3_issuing', '2');
  const leafEc = ec();
  const leafRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  sign('leaf-ec', leafEc, `/O=${FACILITY}/CN=${FACILITY} EC`, 'issuing', 'v3_leaf', '3');
  sign('leaf-rsa', leafRsa, `/O=${FACILITY}/CN=${FACILITY} RSA`, 'issuing', 'v3_leaf', '4');

  writeFileSync(p('chain.pem'), Buffer.concat([readFileSync(p('issuing.pem')), readFileSync(p('root.pem'))]));
  writeFileSync(p('chain-reversed.pem'), Buffer.concat([readFileSync(p('root.pem')), readFileSync(p('issuing.pem'))]));
  const leaf = (name: string, key: KeyObject): Leaf => ({ key, cert: derOf(p(`${name}.pem`)), keyFile: p(`${name}.key`), certFile: p(`${name}.pem`) });
  pkiCache = {
    dir,
    root: derOf(p('root.pem')),
    issuing: derOf(p('issuing.pem')),
    chainFile: p('chain.pem'),
    reversedChainFile: p('chain-reversed.pem'),
    ec: leaf('leaf-ec', leafEc),
    rsa: leaf('leaf-rsa', leafRsa),
  };
  return pkiCache;
}

function input(pki: Pki, leaf: Leaf, extra: Partial<BuildPkcs12Input> = {}): BuildPkcs12Input {
  return { privateKey: leaf.key, certificate: leaf.cert, chain: [pki.issuing, pki.root], password: PASSWORD, friendlyName: FACILITY, ...extra };
}

/** Writes a file and a UTF-8 password file (newline-terminated, as people write them) for -passin file:. */
function files(dir: string, name: string, p12: Buffer, password: string): { p12: string; pw: string } {
  const f = { p12: join(dir, `${name}.p12`), pw: join(dir, `${name}.pw.txt`) };
  writeFileSync(f.p12, p12);
  writeFileSync(f.pw, `${password}\n`, 'utf8');
  return f;
}

function pemCertificates(text: string): Buffer[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem).raw);
}

function pemPrivateKey(text: string): KeyObject {
  const m = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(text);
  assert.ok(m, 'no private key in the openssl output');
  return createPrivateKey(m[0]);
}

function friendlyNameLines(text: string): string[] {
  return text.split('\n').filter((l) => l.includes('friendlyName:')).map((l) => l.trim());
}

function sha1Colons(der: Buffer): string {
  return createHash('sha1').update(der).digest('hex').toUpperCase().match(/../g)?.join(' ') ?? '';
}

async function expectCode(fn: () => unknown, code: string, kind?: string): Promise<SekishoError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(isSekishoError(e), `expected SekishoError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (kind !== undefined) assert.equal(e.kind, kind);
    return e;
  }
  assert.fail(`expected ${code}, but nothing was thrown`);
}

let ownNames: string[] | undefined;

/**
 * What `openssl pkcs12 -nodes` prints for a file OpenSSL itself exports with
 * the same friendly name: OpenSSL 3.0 prints a BMPString's low bytes, later
 * releases UTF-8, so the reference comes from the installed openssl.
 */
function opensslOwnFriendlyNameLines(pki: Pki): string[] {
  if (ownNames !== undefined) return ownNames;
  const dir = tempDir();
  const out = join(dir, 'ref.p12');
  const pw = join(dir, 'pw.txt');
  writeFileSync(pw, `${PASSWORD}\n`);
  openssl(['pkcs12', '-export', '-in', pki.ec.certFile, '-inkey', pki.ec.keyFile, '-name', FACILITY, '-passout', `file:${pw}`, '-out', out]);
  ownNames = friendlyNameLines(openssl(['pkcs12', '-in', out, '-nodes', '-passin', `file:${pw}`]));
  return ownNames;
}

// ---------------------------------------------------------------------------
// KDF
// ---------------------------------------------------------------------------

test('Appendix B KDF matches the published SHA-1 vectors', () => {
  // Stephen Henson's PKCS#12 KDF test vectors, set 1 (password "smeg", 1 iteration), used by Bouncy Castle among others.
  const salt = Buffer.from('0a58cf64530d823f', 'hex');
  assert.equal(pkcs12Kdf('sha1', bmpPassword('smeg'), salt, 1, 1, 24).toString('hex'), '8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3');
  assert.equal(pkcs12Kdf('sha1', bmpPassword('smeg'), salt, 2, 1, 8).toString('hex'), '79993dfe048d3b76');
  assert.equal(bmpPassword('smeg').toString('hex'), '0073006d006500670000');
});

test('Appendix B KDF matches `openssl kdf PKCS12KDF` for every hash and purpose', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const salt = randomBytes(12);
  const pass = bmpPassword(JA_PASSWORD);
  for (const hash of ['sha1', 'sha256', 'sha512'] as const) {
    for (const id of [1, 2, 3] as const) {
      const n = hash === 'sha1' ? 24 : 80; // several output blocks
      const ours = pkcs12Kdf(hash, pass, salt, id, 50, n);
      const theirs = openssl(['kdf', '-keylen', String(n), '-kdfopt', `digest:${hash.toUpperCase()}`, '-kdfopt', `hexpass:${pass.toString('hex')}`,
        '-kdfopt', `hexsalt:${salt.toString('hex')}`, '-kdfopt', `id:${id}`, '-kdfopt', 'iter:50', 'PKCS12KDF']);
      assert.equal(ours.toString('hex'), theirs.trim().replace(/:/g, '').toLowerCase(), `${hash} id ${id}`);
    }
  }
});

// ---------------------------------------------------------------------------
// Files sekisho writes, opened by OpenSSL and Node
// ---------------------------------------------------------------------------

for (const kind of ['ec', 'rsa'] as const) {
  test(`modern ${kind} file opens in openssl 3 without -legacy: PBES2/AES-256-CBC, SHA-256 MAC, same leaf, chain and key`, async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const pki = makePki();
    const leaf = pki[kind];
    const f = files(tempDir(), 'modern', await buildPkcs12(input(pki, leaf)), PASSWORD);

    const info = openssl(['pkcs12', '-info', '-noout', '-in', f.p12, '-passin', `file:${f.pw}`]);
    assert.match(info, /MAC: sha256, Iteration 2048/);
    assert.match(info, /MAC length: 32/);
    assert.match(info, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/);
    assert.match(info, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/);
    assert.doesNotMatch(info, /RC2|3DES|TripleDES/i);

    const dump = openssl(['pkcs12', '-in', f.p12, '-nodes', '-passin', `file:${f.pw}`]);
    assert.deepEqual(pemCertificates(dump), [leaf.cert, pki.issuing, pki.root]);
    assert.ok(publicOf(pemPrivateKey(dump)).equals(publicOf(leaf.key)), 'openssl extracts the same private key');
    // friendlyName + localKeyID (SHA-1 of the leaf DER) on the leaf and the key, nothing on the CA certificates.
    const localKeyIds = dump.split('\n').filter((l) => l.includes('localKeyID:')).map((l) => l.replace(/.*localKeyID:\s*/, '').trim());
    assert.deepEqual(localKeyIds, [sha1Colons(leaf.cert), sha1Colons(leaf.cert)]);
    assert.equal(dump.split('Bag Attributes: <No Attributes>').length - 1, 2, 'CA certificates carry no attributes');
    const names = friendlyNameLines(dump);
    assert.equal(names.length, 2);
    assert.deepEqual(names, opensslOwnFriendlyNameLines(pki), 'friendlyName shows as for a file openssl exports itself');
  });
}

test('legacy file opens in openssl with -info (no -legacy): 3DES bags and a SHA-1 MAC', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  const f = files(tempDir(), 'legacy', await buildPkcs12(input(pki, pki.rsa, { legacy: true })), PASSWORD);
  const info = openssl(['pkcs12', '-info', '-noout', '-in', f.p12, '-passin', `file:${f.pw}`]);
  assert.match(info, /MAC: sha1, Iteration 2048/);
  assert.match(info, /MAC length: 20/);
  assert.match(info, /PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
  assert.match(info, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
  const dump = openssl(['pkcs12', '-in', f.p12, '-nodes', '-passin', `file:${f.pw}`]);
  assert.deepEqual(pemCertificates(dump), [pki.rsa.cert, pki.issuing, pki.root]);
  assert.ok(publicOf(pemPrivateKey(dump)).equals(publicOf(pki.rsa.key)));
});

test('Node tls.createSecureContext accepts the modern (and legacy) file', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  for (const leaf of [pki.ec, pki.rsa]) {
    const pfx = await buildPkcs12(input(pki, leaf));
    assert.doesNotThrow(() => createSecureContext({ pfx, passphrase: PASSWORD }));
    assert.throws(() => createSecureContext({ pfx, passphrase: 'not-it' }), /mac verify failure|bad decrypt|mac/i);
  }
  const legacy = await buildPkcs12(input(pki, pki.ec, { legacy: true }));
  assert.doesNotThrow(() => createSecureContext({ pfx: legacy, passphrase: PASSWORD }));
});

test('a Japanese password round-trips through openssl and readPkcs12, both directions', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  const dir = tempDir();
  for (const legacy of [false, true]) {
    const der = await buildPkcs12(input(pki, pki.ec, { password: JA_PASSWORD, legacy }));
    const f = files(dir, legacy ? 'ja-legacy' : 'ja-modern', der, JA_PASSWORD);
    assert.equal(readFileSync(f.pw).toString('utf8'), `${JA_PASSWORD}\n`);
    openssl(['pkcs12', '-info', '-noout', '-in', f.p12, '-passin', `file:${f.pw}`]);
    const dump = openssl(['pkcs12', '-in', f.p12, '-nodes', '-passin', `file:${f.pw}`]);
    assert.ok(publicOf(pemPrivateKey(dump)).equals(publicOf(pki.ec.key)));
    const back = readPkcs12(der, JA_PASSWORD);
    assert.ok(back.certificate.equals(pki.ec.cert));
    assert.equal(back.friendlyName, FACILITY);
    await expectCode(() => readPkcs12(der, 'パスワード2025'), 'PKCS12_BAD_PASSWORD', 'unauthorized');
    const wrong = files(dir, 'ja-wrong', der, 'パスワード2025');
    assert.notEqual(run('openssl', ['pkcs12', '-info', '-noout', '-in', wrong.p12, '-passin', `file:${wrong.pw}`]).status, 0, 'openssl refuses a near-miss password');
  }
  // OpenSSL writes with the Japanese password; sekisho reads.
  const out = join(dir, 'ja-openssl.p12');
  const pw = join(dir, 'ja-openssl.pw.txt');
  writeFileSync(pw, `${JA_PASSWORD}\n`, 'utf8');
  openssl(['pkcs12', '-export', '-in', pki.ec.certFile, '-inkey', pki.ec.keyFile, '-certfile', pki.chainFile, '-name', FACILITY,
    '-passout', `file:${pw}`, '-out', out]);
  const back = readPkcs12(readFileSync(out), JA_PASSWORD);
  assert.ok(back.certificate.equals(pki.ec.cert));
  assert.ok(publicOf(back.privateKey).equals(publicOf(pki.ec.key)));
});

// ---------------------------------------------------------------------------
// Files OpenSSL writes, read by sekisho
// ---------------------------------------------------------------------------

function opensslExport(pki: Pki, leaf: Leaf, extra: string[], chainFile = pki.chainFile): Buffer | undefined {
  const dir = tempDir();
  const out = join(dir, 'export.p12');
  const pw = join(dir, 'pw.txt');
  writeFileSync(pw, `${PASSWORD}\n`);
  const r = run('openssl', ['pkcs12', '-export', ...extra, '-in', leaf.certFile, '-inkey', leaf.keyFile, '-certfile', chainFile,
    '-name', FACILITY, '-passout', `file:${pw}`, '-out', out]);
  return r.status === 0 ? readFileSync(out) : undefined;
}

function assertContents(got: ReturnType<typeof readPkcs12>, pki: Pki, leaf: Leaf): void {
  assert.ok(got.certificate.equals(leaf.cert), 'leaf');
  assert.deepEqual(got.chain, [pki.issuing, pki.root]);
  assert.ok(publicOf(got.privateKey).equals(publicOf(leaf.key)), 'key');
  assert.equal(got.friendlyName, FACILITY);
}

test('readPkcs12 reads sekisho modern and legacy files back', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  for (const leaf of [pki.ec, pki.rsa]) {
    for (const legacy of [false, true]) {
      assertContents(readPkcs12(await buildPkcs12(input(pki, leaf, { legacy })), PASSWORD), pki, leaf);
    }
  }
  // No chain at all, and a caller-chosen iteration count.
  const bare = readPkcs12(await buildPkcs12(input(pki, pki.ec, { chain: [], iterations: 10_000 })), PASSWORD);
  assert.ok(bare.certificate.equals(pki.ec.cert));
  assert.deepEqual(bare.chain, []);
});

test('readPkcs12 reads what `openssl pkcs12 -export` writes by default, and orders the chain', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  for (const leaf of [pki.ec, pki.rsa]) {
    const der = opensslExport(pki, leaf, []);
    assert.ok(der, 'openssl export failed');
    assertContents(readPkcs12(der, PASSWORD), pki, leaf);
  }
  const reversed = opensslExport(pki, pki.ec, [], pki.reversedChainFile);
  assert.ok(reversed);
  assertContents(readPkcs12(reversed, PASSWORD), pki, pki.ec);
});

test('readPkcs12 reads `openssl pkcs12 -export -legacy` with 3DES bags and a SHA-1 MAC', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  const args = ['-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES', '-macalg', 'sha1'];
  // -legacy needs OpenSSL's legacy provider; the 3DES options alone write the same thing.
  const der = opensslExport(pki, pki.rsa, ['-legacy', ...args]) ?? opensslExport(pki, pki.rsa, args);
  assert.ok(der, 'openssl export failed');
  const info = openssl(['pkcs12', '-info', '-noout', '-in', files(tempDir(), 'o3des', der, PASSWORD).p12, '-passin', `pass:${PASSWORD}`]);
  assert.match(info, /pbeWithSHA1And3-KeyTripleDES-CBC/);
  assertContents(readPkcs12(der, PASSWORD), pki, pki.rsa);
});

test('an RC2 file (openssl -legacy default) is refused as PKCS12_UNSUPPORTED naming the OID', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  const der = opensslExport(pki, pki.ec, ['-legacy']);
  if (der === undefined) {
    t.skip('this openssl has no legacy provider, so it cannot write RC2');
    return;
  }
  const e = await expectCode(() => readPkcs12(der, PASSWORD), 'PKCS12_UNSUPPORTED', 'badRequest');
  assert.match(e.message, /1\.2\.840\.113549\.1\.12\.1\.6/);
  assert.match(e.message, /RC2/);
});

// ---------------------------------------------------------------------------
// Refusals and damaged input
// ---------------------------------------------------------------------------

test('wrong password → PKCS12_BAD_PASSWORD, and the message never carries a password', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  for (const legacy of [false, true]) {
    const der = await buildPkcs12(input(pki, pki.ec, { legacy }));
    const e = await expectCode(() => readPkcs12(der, 'hunter2-wrong'), 'PKCS12_BAD_PASSWORD', 'unauthorized');
    assert.ok(!e.message.includes('hunter2-wrong') && !e.message.includes(PASSWORD));
    await expectCode(() => readPkcs12(der, ''), 'PKCS12_BAD_PASSWORD');
  }
});

test('truncated files and random bytes → PKCS12_MALFORMED', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  const der = await buildPkcs12(input(pki, pki.ec));
  for (const len of [0, 1, 2, 4, 16, 100, der.length >> 1, der.length - 40, der.length - 1]) {
    await expectCode(() => readPkcs12(der.subarray(0, len), PASSWORD), 'PKCS12_MALFORMED', 'malformed');
  }
  for (const n of [1, 7, 64, 1500, 5000]) {
    await expectCode(() => readPkcs12(randomBytes(n), PASSWORD), 'PKCS12_MALFORMED');
  }
  await expectCode(() => readPkcs12(Buffer.from('MIIK not even DER'), PASSWORD), 'PKCS12_MALFORMED');
});

/** mulberry32: a seeded PRNG so a failing mutation can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(der: Buffer, rnd: () => number): Buffer {
  const at = (n: number) => Math.floor(rnd() * n);
  const b = Buffer.from(der);
  switch (at(5)) {
    case 0:
      return b.subarray(0, at(b.length));
    case 1: {
      for (let k = 1 + at(3); k > 0; k--) b[at(b.length)] = at(256);
      return b;
    }
    case 2: {
      const i = at(b.length);
      b[i] = (b[i] ?? 0) ^ (1 << at(8));
      return b;
    }
    case 3: {
      const i = at(b.length);
      return Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    }
    default: {
      const i = at(b.length);
      return Buffer.concat([b.subarray(0, i), Buffer.from([at(256)]), b.subarray(i)]);
    }
  }
}

test('fuzz: 500 mutations of valid files either read correctly or throw SekishoError', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  const originals = [await buildPkcs12(input(pki, pki.ec)), await buildPkcs12(input(pki, pki.rsa, { legacy: true }))];
  const leaves = [pki.ec, pki.rsa];
  const rnd = prng(0x5e1c5e0);
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 500; i++) {
    const which = i % 2;
    const original = originals[which];
    const leaf = leaves[which];
    assert.ok(original && leaf);
    const m = mutate(original, rnd);
    let outcome: string;
    try {
      const got = readPkcs12(m, PASSWORD);
      assert.ok(got.certificate.equals(leaf.cert), `mutation ${i} read a different leaf`);
      assert.ok(publicOf(got.privateKey).equals(publicOf(leaf.key)), `mutation ${i} read a different key`);
      outcome = 'read';
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof SekishoError, `mutation ${i} (hex ${m.toString('hex').slice(0, 64)}…) threw ${String(e)}`);
      outcome = e.code;
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  assert.ok((outcomes.get('PKCS12_MALFORMED') ?? 0) > 0 && (outcomes.get('PKCS12_BAD_PASSWORD') ?? 0) > 0);
});

/**
 * Mutates the AuthenticatedSafe and recomputes the MAC, as a producer with a
 * bug (or anyone holding the password) could: reaches the parsing and
 * decryption behind the MAC, which outer mutations never get past.
 */
function remac(der: Buffer, password: string, mutateInner: (inner: Buffer) => Buffer): Buffer {
  const pfx = AsnConvert.parse(der, PFX);
  const inner = mutateInner(octetStringContent(pfx.authSafe.content));
  pfx.authSafe.content = AsnConvert.serialize(new OctetString(inner));
  const hash = pfx.macData.mac.digestAlgorithm.algorithm === '1.3.14.3.2.26' ? 'sha1' : 'sha256';
  const salt = Buffer.from(pfx.macData.macSalt.buffer);
  const key = pkcs12Kdf(hash, bmpPassword(password), salt, 3, Number(pfx.macData.iterations), hash === 'sha1' ? 20 : 32);
  pfx.macData.mac.digest = new OctetString(createHmac(hash, key).update(inner).digest());
  return Buffer.from(AsnConvert.serialize(pfx));
}

test('fuzz behind the MAC: 300 re-MACed mutations of the contents only ever throw SekishoError', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  const originals = [await buildPkcs12(input(pki, pki.ec)), await buildPkcs12(input(pki, pki.rsa, { legacy: true }))];
  const untouched = readPkcs12(remac(originals[0] ?? Buffer.alloc(0), PASSWORD, (x) => x), PASSWORD);
  assert.ok(untouched.certificate.equals(pki.ec.cert), 'remac itself keeps a file valid');
  const rnd = prng(0x0b5e55ed);
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const original = originals[i % 2];
    assert.ok(original);
    const m = remac(original, PASSWORD, (inner) => mutate(inner, rnd));
    let outcome: string;
    try {
      const got = readPkcs12(m, PASSWORD);
      assert.ok(Buffer.isBuffer(got.certificate) && got.privateKey.type === 'private');
      outcome = 'read';
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof SekishoError, `inner mutation ${i} threw ${String(e)}`);
      outcome = e.code;
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  assert.equal(outcomes.get('PKCS12_BAD_PASSWORD') ?? 0, 0, 'the recomputed MAC always verifies');
});

test('build refuses a key that is not the leaf’s, an empty password and a bad certificate', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const pki = makePki();
  await expectCode(() => buildPkcs12(input(pki, pki.ec, { privateKey: pki.rsa.key })), 'PKCS12_KEY_MISMATCH', 'badRequest');
  await expectCode(() => buildPkcs12(input(pki, pki.ec, { password: '' })), 'PKCS12_PASSWORD_EMPTY', 'badRequest');
  await expectCode(() => buildPkcs12(input(pki, pki.ec, { certificate: Buffer.from('nope') })), 'PKCS12_CERTIFICATE_INVALID', 'malformed');
  await expectCode(() => buildPkcs12(input(pki, pki.ec, { iterations: 0 })), 'PKCS12_ITERATIONS_INVALID');
});
