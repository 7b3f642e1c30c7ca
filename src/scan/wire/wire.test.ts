import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createPublicKey, randomBytes } from 'node:crypto';
import { SekishoError } from '../../errors/index.js';
import { CIPHER_SUITES, openSslName, suiteByCode, suiteByName, suiteName, TLS_EMPTY_RENEGOTIATION_INFO_SCSV, TLS_FALLBACK_SCSV } from '../../policy/cipher-suites.js';
import { needCommand, run } from '../../testing/peers.js';
import { probe } from '../probe.js';
import { buildClientHello, clientHelloMessage, EXTENSION, GROUP, type ClientHelloOptions } from './client-hello.js';
import { ByteReader, CONTENT_TYPE, encodeHandshake, encodeRecords, HandshakeReader, RecordReader, uint16List, vec } from './records.js';
import {
  HELLO_RETRY_REQUEST_RANDOM,
  parseCertificateRequest,
  parseServerHello,
  parseServerKeyExchange,
  readServerFlight,
  ServerFlight,
} from './server-messages.js';

const isCode = (code: string) => (e: unknown) => e instanceof SekishoError && e.code === code;

// ---------------------------------------------------------------------------
// Synthetic server messages
// ---------------------------------------------------------------------------

const ext = (type: number, data: Buffer) => Buffer.concat([uint16List([type]), vec(2, data)]);

function serverHello(o: { version?: number; suite: number; compression?: number; exts?: Buffer[]; random?: Buffer; sessionId?: Buffer }): Buffer {
  const body = Buffer.concat([
    uint16List([o.version ?? 0x0303]),
    o.random ?? randomBytes(32),
    vec(1, o.sessionId ?? randomBytes(32)),
    uint16List([o.suite]),
    Buffer.from([o.compression ?? 0]),
    ...(o.exts ? [vec(2, o.exts)] : []),
  ]);
  return encodeHandshake(2, body);
}

/** A plausible DER certificate-shaped blob (the flight parser only checks the SEQUENCE tag). */
function fakeCert(n: number): Buffer {
  const content = randomBytes(n);
  return Buffer.concat([Buffer.from([0x30, 0x82, n >> 8, n & 0xff]), content]);
}

const certificate = (certs: Buffer[]) => encodeHandshake(11, vec(3, certs.map((c) => vec(3, c))));
const certificateStatus = (ocsp: Buffer) => encodeHandshake(22, Buffer.concat([Buffer.from([1]), vec(3, ocsp)]));
const ecdheSke = (group: number) =>
  encodeHandshake(12, Buffer.concat([Buffer.from([3]), uint16List([group]), vec(1, randomBytes(32)), uint16List([0x0403]), vec(2, randomBytes(70))]));
const dheSke = (primeBytes: number) =>
  encodeHandshake(12, Buffer.concat([vec(2, Buffer.concat([Buffer.from([0, 0xff]), randomBytes(primeBytes - 1)])), vec(2, Buffer.from([2])), vec(2, randomBytes(primeBytes)), uint16List([0x0401]), vec(2, randomBytes(256))]));
const dnCa = Buffer.from('3036310b3009060355040613024a503115301306035504030c0c53656b6973686f2054657374311030', 'hex');
const certificateRequest = (tls12: boolean, names: Buffer[]) =>
  encodeHandshake(13, Buffer.concat([vec(1, Buffer.from([1, 64])), ...(tls12 ? [vec(2, uint16List([0x0403, 0x0804]))] : []), vec(2, names.map((n) => vec(2, n)))]));
const serverHelloDone = () => encodeHandshake(14, Buffer.alloc(0));
const hs = (...messages: Buffer[]) => encodeRecords(CONTENT_TYPE.handshake, 0x0303, Buffer.concat(messages));
const alert = (level: number, description: number) => encodeRecords(CONTENT_TYPE.alert, 0x0303, Buffer.from([level, description]));

const riExt = ext(EXTENSION.renegotiationInfo, Buffer.from([0]));
const tls12Flight = () =>
  hs(
    serverHello({ suite: 0xc02b, exts: [riExt, ext(EXTENSION.statusRequest, Buffer.alloc(0)), ext(EXTENSION.extendedMasterSecret, Buffer.alloc(0))] }),
    certificate([fakeCert(600), fakeCert(500)]),
    certificateStatus(randomBytes(300)),
    ecdheSke(GROUP.x25519),
    certificateRequest(true, [dnCa, fakeCert(40)]),
    serverHelloDone(),
  );
const dheFlight = () => hs(serverHello({ suite: 0x009e, exts: [riExt] }), certificate([fakeCert(800)]), dheSke(256), serverHelloDone());
const tls13Hello = () =>
  Buffer.concat([
    hs(serverHello({ suite: 0x1302, exts: [ext(EXTENSION.supportedVersions, uint16List([0x0304])), ext(EXTENSION.keyShare, Buffer.concat([uint16List([GROUP.x25519]), vec(2, randomBytes(32))]))] })),
    encodeRecords(CONTENT_TYPE.changeCipherSpec, 0x0303, Buffer.from([1])),
    encodeRecords(CONTENT_TYPE.applicationData, 0x0303, randomBytes(900)),
  ]);
const hrr = () =>
  hs(serverHello({ suite: 0x1301, random: HELLO_RETRY_REQUEST_RANDOM, exts: [ext(EXTENSION.supportedVersions, uint16List([0x0304])), ext(EXTENSION.keyShare, uint16List([GROUP.secp384r1]))] }));
const tls10Flight = () =>
  hs(serverHello({ version: 0x0301, suite: 0x0005, sessionId: Buffer.alloc(0) }), certificate([fakeCert(300)]), certificateRequest(false, []), serverHelloDone());

function chunks(b: Buffer, rnd: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    const n = 1 + Math.floor(rnd() * 40);
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}

// ---------------------------------------------------------------------------
// A tiny ClientHello reader, to check what the builder wrote
// ---------------------------------------------------------------------------

interface ParsedHello {
  recordVersion: number;
  version: number;
  sessionId: Buffer;
  suites: number[];
  compression: number[];
  extensions: Map<number, Buffer>;
  extensionOrder: number[];
  length: number;
}

function readClientHello(bytes: Buffer): ParsedHello {
  const records = new RecordReader();
  records.push(bytes);
  const hsr = new HandshakeReader();
  let recordVersion = -1;
  for (let r = records.next(); r; r = records.next()) {
    assert.equal(r.type, CONTENT_TYPE.handshake);
    recordVersion = r.version;
    hsr.push(r.fragment);
  }
  const m = hsr.next();
  assert.ok(m && m.type === 1, 'one ClientHello');
  const r = new ByteReader(m.body, 'ClientHello');
  const version = r.u16('v');
  r.bytes(32, 'random');
  const sessionId = r.vector(1, 'sid');
  const s = r.sub(2, 'suites');
  const suites: number[] = [];
  while (s.remaining) suites.push(s.u16('suite'));
  const compression = [...r.vector(1, 'comp')];
  const extensions = new Map<number, Buffer>();
  const extensionOrder: number[] = [];
  if (r.remaining) {
    const e = r.sub(2, 'exts');
    while (e.remaining) {
      const t = e.u16('t');
      extensions.set(t, e.vector(2, 'd'));
      extensionOrder.push(t);
    }
  }
  r.done();
  return { recordVersion, version, sessionId, suites, compression, extensions, extensionOrder, length: m.body.length + 4 };
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

test('cipher-suite registry: complete, unique, derived properties right, lookups by IANA and OpenSSL names', () => {
  assert.ok(CIPHER_SUITES.length >= 340, `${CIPHER_SUITES.length} suites`);
  assert.equal(new Set(CIPHER_SUITES.map((s) => s.code)).size, CIPHER_SUITES.length);
  assert.equal(new Set(CIPHER_SUITES.map((s) => s.name)).size, CIPHER_SUITES.length);
  const s = (name: string) => {
    const x = suiteByName(name);
    assert.ok(x, name);
    return x;
  };
  assert.deepEqual(
    { ...s('ECDHE-ECDSA-AES128-GCM-SHA256') },
    { ...s('TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'), code: 0xc02b },
  );
  const gcm = s('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384');
  assert.deepEqual([gcm.kx, gcm.auth, gcm.cipher, gcm.mac, gcm.aead, gcm.forwardSecret, gcm.minVersion], ['ECDHE', 'RSA', 'AES_256_GCM', 'AEAD', true, true, 'TLSv1.2']);
  const exp = s('EXP-RC4-MD5');
  assert.deepEqual([exp.code, exp.kx, exp.cipher, exp.mac, exp.export, exp.bits], [0x0003, 'RSA', 'RC4_40', 'MD5', true, 40]);
  const adh = s('TLS_DH_anon_WITH_AES_128_GCM_SHA256');
  assert.deepEqual([adh.kx, adh.auth, adh.anonymous], ['DHE', 'anon', true]);
  const des3 = s('DES-CBC3-SHA');
  assert.deepEqual([des3.cipher, des3.bits, des3.mac, des3.minVersion], ['3DES_EDE_CBC', 112, 'SHA1', 'SSLv3']);
  assert.equal(s('TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8').cipher, 'AES_128_CCM_8');
  assert.equal(s('TLS_PSK_DHE_WITH_AES_128_CCM_8').kx, 'DHE_PSK');
  assert.equal(s('TLS_DH_RSA_WITH_CAMELLIA_128_GCM_SHA256').kx, 'DH');
  assert.equal(s('TLS_ECDH_ECDSA_WITH_ARIA_256_GCM_SHA384').kx, 'ECDH');
  assert.equal(s('TLS_KRB5_EXPORT_WITH_DES_CBC_40_SHA').cipher, 'DES40_CBC');
  assert.equal(s('ssl_rsa_with_rc4_128_sha').code, 0x0005, 'SSL_ spelling, any case');
  for (const code of [0x1301, 0x1302, 0x1303, 0x1304, 0x1305]) {
    const t = suiteByCode(code);
    assert.ok(t?.tls13 && t.aead && t.kx === 'TLS13' && t.minVersion === 'TLSv1.3');
  }
  assert.ok(suiteByCode(TLS_EMPTY_RENEGOTIATION_INFO_SCSV)?.signalling);
  assert.ok(suiteByCode(TLS_FALLBACK_SCSV)?.signalling);
  assert.equal(suiteByCode(0xcc13)?.registered, false);
  assert.equal(openSslName(0xc030), 'ECDHE-RSA-AES256-GCM-SHA384');
  assert.equal(openSslName('TLS_RSA_WITH_AES_128_CBC_SHA'), 'AES128-SHA');
  assert.equal(suiteName(0xabcd), 'UNKNOWN_0xABCD');
  for (const x of CIPHER_SUITES) {
    if (x.signalling) continue;
    assert.equal(x.aead, x.mac === 'AEAD', x.name);
    if (x.cipher.includes('CBC') || x.cipher.startsWith('RC4')) assert.ok(!x.aead, x.name);
  }
});

test('cipher-suite registry agrees with openssl ciphers -V -stdname on every suite OpenSSL has', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const r = run('openssl', ['ciphers', '-V', '-stdname', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0']);
  assert.equal(r.status, 0, r.stderr);
  let n = 0;
  for (const line of r.stdout.split('\n')) {
    const m = /0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+- (\S+)/.exec(line);
    if (!m) continue;
    const suite = suiteByCode(parseInt(`${m[1]}${m[2]}`, 16));
    assert.ok(suite, line);
    assert.equal(suite.name, m[3]);
    assert.equal(suite.openssl, m[4]);
    n++;
  }
  assert.ok(n > 50, `${n} suites compared`);
});

// ---------------------------------------------------------------------------
// ClientHello
// ---------------------------------------------------------------------------

test('ClientHello by version: SSL 3.0 bare, TLS 1.0 without 1.2-only extensions, TLS 1.2, TLS 1.3 with real key shares', () => {
  const suites = [0xc02f, 0x002f, 0x000a];
  const ssl3 = readClientHello(buildClientHello({ version: 'SSLv3', cipherSuites: suites }));
  assert.equal(ssl3.recordVersion, 0x0300);
  assert.equal(ssl3.version, 0x0300);
  assert.equal(ssl3.extensions.size, 0);
  assert.deepEqual(ssl3.suites, [...suites, TLS_EMPTY_RENEGOTIATION_INFO_SCSV]);

  const tls10 = readClientHello(buildClientHello({ version: 'TLSv1.0', cipherSuites: suites, serverName: 'pacs.example.jp', fallbackScsv: true, offerCompression: true }));
  assert.equal(tls10.recordVersion, 0x0301);
  assert.equal(tls10.version, 0x0301);
  assert.deepEqual(tls10.suites, [...suites, TLS_FALLBACK_SCSV]);
  assert.deepEqual(tls10.compression, [1, 0]);
  for (const e of [EXTENSION.serverName, EXTENSION.supportedGroups, EXTENSION.ecPointFormats, EXTENSION.renegotiationInfo, EXTENSION.statusRequest]) assert.ok(tls10.extensions.has(e), `ext ${e}`);
  for (const e of [EXTENSION.signatureAlgorithms, EXTENSION.supportedVersions, EXTENSION.keyShare]) assert.ok(!tls10.extensions.has(e), `no ext ${e}`);
  assert.ok(tls10.extensions.get(EXTENSION.serverName)?.includes(Buffer.from('pacs.example.jp')));

  const tls12 = readClientHello(buildClientHello({ version: 'TLSv1.2', cipherSuites: suites, serverName: '192.0.2.1' }));
  assert.equal(tls12.version, 0x0303);
  assert.ok(tls12.extensions.has(EXTENSION.signatureAlgorithms));
  assert.ok(!tls12.extensions.has(EXTENSION.serverName), 'no SNI for an IP address');
  assert.ok(!tls12.extensions.has(EXTENSION.supportedVersions));
  assert.deepEqual(tls12.compression, [0]);

  const tls13 = readClientHello(buildClientHello({ version: 'TLSv1.3', cipherSuites: [0x1301, 0x1302] }));
  assert.equal(tls13.recordVersion, 0x0301);
  assert.equal(tls13.version, 0x0303, 'legacy_version stays 1.2');
  assert.equal(tls13.sessionId.length, 32, 'middlebox-compatible session id');
  assert.deepEqual([...(tls13.extensions.get(EXTENSION.supportedVersions) ?? [])], [2, 0x03, 0x04]);
  assert.deepEqual([...(tls13.extensions.get(EXTENSION.pskKeyExchangeModes) ?? [])], [1, 1]);
  const ks = new ByteReader(tls13.extensions.get(EXTENSION.keyShare) as Buffer, 'ks').sub(2, 'entries');
  const shares = new Map<number, Buffer>();
  while (ks.remaining) shares.set(ks.u16('g'), ks.vector(2, 'k'));
  assert.deepEqual([...shares.keys()], [GROUP.x25519, GROUP.secp256r1]);
  const x = shares.get(GROUP.x25519) as Buffer;
  assert.equal(x.length, 32);
  assert.equal(createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: x.toString('base64url') }, format: 'jwk' }).asymmetricKeyType, 'x25519');
  const p = shares.get(GROUP.secp256r1) as Buffer;
  assert.equal(p.length, 65);
  assert.equal(p[0], 4);
  const jwk = { kty: 'EC', crv: 'P-256', x: p.subarray(1, 33).toString('base64url'), y: p.subarray(33).toString('base64url') };
  assert.equal(createPublicKey({ key: jwk, format: 'jwk' }).asymmetricKeyType, 'ec', 'a point on P-256');

  const empty = readClientHello(buildClientHello({ version: 'TLSv1.3', cipherSuites: [0x1301], groups: [0x100], keyShares: [] }));
  assert.deepEqual([...(empty.extensions.get(EXTENSION.keyShare) ?? [])], [0, 0], 'an empty key_share list');
  assert.throws(() => clientHelloMessage({ version: 'TLSv1.3', cipherSuites: [0x1301], keyShares: [0x100] }), isCode('TLS_KEY_SHARE_UNSUPPORTED'));
  assert.throws(() => clientHelloMessage({ version: 'TLSv1.2', cipherSuites: [] }), isCode('TLS_NO_SUITES'));
});

test('ClientHello sizes: padded out of 256..511 bytes, 128 suites fit, all suites fit in records', () => {
  for (let n = 1; n <= 200; n += 3) {
    const h = readClientHello(buildClientHello({ version: 'TLSv1.2', cipherSuites: CIPHER_SUITES.slice(0, n).map((s) => s.code) }));
    assert.ok(h.length < 256 || h.length >= 512, `${n} suites → ${h.length} bytes`);
    if (h.extensions.has(EXTENSION.padding)) assert.equal(h.extensionOrder.at(-1), EXTENSION.padding);
  }
  const all = readClientHello(buildClientHello({ version: 'TLSv1.2', cipherSuites: CIPHER_SUITES.filter((s) => !s.signalling).map((s) => s.code) }));
  assert.equal(all.suites.length, CIPHER_SUITES.length - 2);
});

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

test('records: reassembled from one-byte reads; handshake messages across records; limits and non-TLS answers', () => {
  const big = encodeHandshake(11, Buffer.alloc(40000, 7)); // spans three records
  const bytes = Buffer.concat([encodeRecords(CONTENT_TYPE.handshake, 0x0303, big), alert(1, 112)]);
  const rr = new RecordReader();
  const hsr = new HandshakeReader();
  const types: number[] = [];
  for (const b of bytes) {
    rr.push(Buffer.from([b]));
    for (let r = rr.next(); r; r = rr.next()) {
      types.push(r.type);
      if (r.type === CONTENT_TYPE.handshake) hsr.push(r.fragment);
    }
  }
  assert.deepEqual(types, [22, 22, 22, 21]);
  const m = hsr.next();
  assert.equal(m?.type, 11);
  assert.equal(m?.body.length, 40000);
  assert.equal(hsr.pending, false);

  const two = new HandshakeReader();
  two.push(Buffer.concat([serverHelloDone(), serverHelloDone()]));
  assert.equal(two.next()?.type, 14);
  assert.equal(two.next()?.type, 14);
  assert.equal(two.next(), undefined);

  const http = new RecordReader();
  http.push(Buffer.from('HTTP/1.1 400 Bad Request\r\n'));
  assert.throws(() => http.next(), isCode('TLS_NOT_TLS'));
  const long = new RecordReader();
  long.push(Buffer.from([22, 3, 3, 0xff, 0xff]));
  assert.throws(() => long.next(), isCode('TLS_RECORD_TOO_LONG'));
  const v = new RecordReader();
  v.push(Buffer.from([22, 2, 0, 0, 1, 0]));
  assert.throws(() => v.next(), isCode('TLS_RECORD_VERSION_INVALID'));
  const capped = new RecordReader(1000);
  assert.throws(() => capped.push(Buffer.alloc(1001)), isCode('TLS_FLIGHT_TOO_LARGE'));
  const huge = new HandshakeReader(1000);
  huge.push(Buffer.from([11, 0x10, 0, 0]));
  assert.throws(() => huge.next(), isCode('TLS_HANDSHAKE_TOO_LONG'));
});

// ---------------------------------------------------------------------------
// Server messages
// ---------------------------------------------------------------------------

test('server flight (TLS 1.2): every message read, whatever the TCP read boundaries', () => {
  const bytes = tls12Flight();
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const whole = readServerFlight(bytes);
  for (let k = 0; k < 50; k++) {
    const f = new ServerFlight();
    let done = false;
    for (const c of chunks(bytes, rnd)) done = f.push(c);
    assert.ok(done);
    assert.deepEqual(f.result, whole);
  }
  const sh = whole.serverHello!;
  assert.equal(sh.version, 0x0303);
  assert.equal(sh.cipherSuite, 0xc02b);
  assert.ok(sh.secureRenegotiation && sh.statusRequest && sh.extendedMasterSecret && !sh.helloRetryRequest);
  assert.equal(whole.certificate?.certificates.length, 2);
  assert.equal(whole.certificateStatus?.statusType, 1);
  assert.deepEqual(whole.serverKeyExchange, { kind: 'ecdh', namedGroup: GROUP.x25519, publicKeyLength: 32 });
  assert.deepEqual(whole.certificateRequest?.certificateTypes, [1, 64]);
  assert.deepEqual(whole.certificateRequest?.signatureAlgorithms, [0x0403, 0x0804]);
  assert.equal(whole.certificateRequest?.certificateAuthorities.length, 2);
  assert.ok(whole.certificateRequest?.certificateAuthorities[0]?.equals(dnCa));
  assert.equal(whole.serverHelloDone, true);
});

test('server flight: DHE size, TLS 1.0 CertificateRequest, TLS 1.3 ServerHello, HelloRetryRequest, alerts, downgrade sentinel', () => {
  const dhe = readServerFlight(dheFlight());
  const ske = dhe.serverKeyExchange;
  assert.ok(ske?.kind === 'dh');
  assert.equal(ske.primeBits, 2048, 'a leading zero byte does not count');
  assert.equal(ske.generatorBits, 2);

  const old = readServerFlight(tls10Flight());
  assert.equal(old.serverHello?.version, 0x0301);
  assert.equal(old.serverHello?.secureRenegotiation, false);
  assert.deepEqual(old.certificateRequest, { certificateTypes: [1, 64], certificateAuthorities: [] });

  const f13 = new ServerFlight();
  assert.equal(f13.push(tls13Hello()), true, 'complete at the ServerHello; the encrypted rest is ignored');
  assert.equal(f13.result.serverHello?.version, 0x0304);
  assert.equal(f13.result.serverHello?.legacyVersion, 0x0303);
  assert.equal(f13.result.serverHello?.keyShareGroup, GROUP.x25519);

  const retry = readServerFlight(hrr());
  assert.equal(retry.serverHello?.helloRetryRequest, true);
  assert.equal(retry.serverHello?.keyShareGroup, GROUP.secp384r1);

  const refused = readServerFlight(alert(2, 40));
  assert.deepEqual(refused.alert, { level: 2, description: 40 });
  assert.equal(refused.serverHello, undefined);
  const warned = readServerFlight(Buffer.concat([alert(1, 112), dheFlight()]));
  assert.deepEqual(warned.warnings, [{ level: 1, description: 112 }]);
  assert.equal(warned.serverHelloDone, true);

  const random = Buffer.concat([randomBytes(24), Buffer.from('444f574e47524401', 'hex')]);
  const down = parseServerHello(serverHello({ suite: 0xc02f, random }).subarray(4));
  assert.equal(down.downgradeSentinel, 'TLSv1.2');
  const bare = parseServerHello(serverHello({ version: 0x0300, suite: 0x000a }).subarray(4));
  assert.deepEqual(bare.extensions, [], 'SSL 3.0 servers may send no extensions block');

  assert.throws(() => readServerFlight(hs(certificate([fakeCert(10)]))), isCode('TLS_UNEXPECTED_MESSAGE'));
  assert.throws(() => readServerFlight(hs(serverHello({ suite: 1, exts: [riExt, riExt] }))), isCode('TLS_EXTENSION_DUPLICATE'));
  assert.throws(() => parseCertificateRequest(Buffer.from([0]), 0x0303), isCode('TLS_LENGTH_INVALID'));
  assert.deepEqual(parseServerKeyExchange(Buffer.from([0, 2, 0x41, 0x42]), 'PSK'), { kind: 'psk', identityHint: Buffer.from('AB') });
  assert.deepEqual(parseServerKeyExchange(Buffer.from([1, 2, 3]), undefined), { kind: 'unknown', length: 3 });
});

test('fuzz: 6,000 mutated, truncated and re-chunked server flights only ever raise a SekishoError', () => {
  const seeds = [tls12Flight(), dheFlight(), tls13Hello(), hrr(), tls10Flight(), Buffer.concat([alert(1, 112), tls12Flight()])];
  let parsed = 0;
  for (let n = 0; n < 6000; n++) {
    const seed = seeds[n % seeds.length] as Buffer;
    let input = Buffer.from(seed);
    const kind = n % 6;
    const at = () => Math.floor(Math.random() * input.length);
    if (kind === 0) input = input.subarray(0, at());
    else if (kind === 1) for (let k = 0; k < 1 + (n % 7); k++) input[at()] = Math.floor(Math.random() * 256);
    else if (kind === 2) {
      // lengths: record headers, handshake headers and vector lengths sit in the first bytes of each part
      const i = Math.floor(Math.random() * Math.min(input.length, 80));
      input[i] = [0, 0xff, 0x7f, 0x80, 1][n % 5] as number;
    } else if (kind === 3) {
      const i = at();
      input = Buffer.concat([input.subarray(0, i), randomBytes(1 + (n % 50)), input.subarray(i)]);
    } else if (kind === 4) {
      const i = at();
      input = Buffer.concat([input.subarray(0, i), input.subarray(i + 1 + (n % 9))]);
    } else input = randomBytes(n % 300);
    const flight = new ServerFlight({ maxBytes: 64 * 1024, maxMessage: 32 * 1024 });
    try {
      for (const c of chunks(input, Math.random)) if (flight.push(c)) break;
      parsed++;
    } catch (e) {
      assert.ok(e instanceof SekishoError, `mutation ${n} (kind ${kind}) threw ${String(e)} on ${input.toString('hex').slice(0, 600)}`);
      assert.match(e.code, /^[A-Z0-9_]+$/);
      assert.ok(!/\bat \w+ \(/.test(e.message), 'no stack traces in messages');
    }
  }
  assert.ok(parsed > 100, `some mutations still parse (${parsed})`);
  // The single-message parsers on random bodies, too.
  for (let n = 0; n < 2000; n++) {
    const body = randomBytes(n % 120);
    for (const f of [
      () => parseServerHello(body),
      () => parseCertificateRequest(body, n % 2 ? 0x0303 : 0x0301),
      () => parseServerKeyExchange(body, (['DHE', 'ECDHE', 'RSA', 'SRP', 'DHE_PSK', 'ECDHE_PSK'] as const)[n % 6]),
    ]) {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof SekishoError, `random body ${n} threw ${String(e)} on ${body.toString('hex')}`);
      }
    }
  }
});

// ---------------------------------------------------------------------------
// probe() against scripted servers
// ---------------------------------------------------------------------------

async function scripted(onConnection: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {}); // the probe hangs up abruptly by design
    onConnection(s);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return { server, port: (server.address() as AddressInfo).port };
}

test('probe(): flights dribbled over many TCP writes, timeouts, resets, refusals and non-TLS answers', async () => {
  const hello: ClientHelloOptions = { version: 'TLSv1.2', cipherSuites: [0xc02b, 0x009e] };
  const servers: Server[] = [];
  try {
    const flight = tls12Flight();
    const slow = await scripted((s) => {
      s.once('data', async () => {
        for (let i = 0; i < flight.length; i += 97) {
          s.write(flight.subarray(i, i + 97));
          await new Promise((r) => setTimeout(r, 1));
        }
      });
    });
    servers.push(slow.server);
    const r1 = await probe({ host: '127.0.0.1', port: slow.port }, hello, { timeoutMs: 3000 });
    assert.equal(r1.kind, 'hello');
    assert.ok(r1.kind === 'hello' && r1.serverHelloDone && r1.certificateRequest && r1.serverHello.cipherSuite === 0xc02b);

    const silent = await scripted(() => {});
    servers.push(silent.server);
    const t0 = Date.now();
    assert.deepEqual(await probe({ host: '127.0.0.1', port: silent.port }, hello, { timeoutMs: 150 }), { kind: 'timeout' });
    assert.ok(Date.now() - t0 < 1000);

    const closer = await scripted((s) => s.once('data', () => s.end()));
    servers.push(closer.server);
    assert.deepEqual(await probe({ host: '127.0.0.1', port: closer.port }, hello), { kind: 'closed' });

    const refuser = await scripted((s) => s.once('data', () => s.end(alert(2, 40))));
    servers.push(refuser.server);
    assert.deepEqual(await probe({ host: '127.0.0.1', port: refuser.port }, hello), { kind: 'alert', level: 2, description: 40, name: 'handshake_failure' });

    const web = await scripted((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    servers.push(web.server);
    const r5 = await probe({ host: '127.0.0.1', port: web.port }, hello);
    assert.equal(r5.kind === 'error' && r5.code, 'TLS_NOT_TLS');

    const half = await scripted((s) => s.once('data', () => s.end(hs(serverHello({ suite: 0x009e })))));
    servers.push(half.server);
    const r6 = await probe({ host: '127.0.0.1', port: half.port }, hello);
    assert.ok(r6.kind === 'hello' && r6.incomplete?.reason === 'closed' && !r6.serverHelloDone, JSON.stringify(r6));

    const closed = await scripted(() => {});
    const port = closed.port;
    await new Promise((r) => closed.server.close(r));
    const r7 = await probe({ host: '127.0.0.1', port }, hello);
    assert.equal(r7.kind === 'error' && r7.code, 'ECONNREFUSED');
  } finally {
    for (const s of servers) s.close();
  }
});
