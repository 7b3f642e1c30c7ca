import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectKeyIdentifier, id_ce_subjectKeyIdentifier } from '@peculiar/asn1-x509';
import { isSekishoError } from '../errors/index.js';
import { needCommand, run } from '../testing/peers.js';
import {
  TAG,
  bitString,
  boolean,
  contextExplicit,
  contextPrimitive,
  decodeInteger,
  decodeTime,
  encodeLength,
  enumerated,
  generalizedTime,
  integerFromBigInt,
  integerFromUnsigned,
  octetString,
  oid,
  readTlv,
  sequence,
  time,
  tlv,
  utcTime,
} from './der.js';
import { buildCrl, crlToPem, parseCrlSummary, type CrlInput, type RevokedEntry } from './crl.js';
import { parseRevocationReason, reasonCode, REVOCATION_REASONS, type RevocationReason } from './revocation-reason.js';
import { SoftwareSigner } from './signer.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function assertCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => isSekishoError(e) && e.code === code, `expected a SekishoError ${code}`);
}

async function assertRejectsCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isSekishoError(e) && e.code === code, `expected a SekishoError ${code}`);
}

// ---------------------------------------------------------------------------
// der.ts
// ---------------------------------------------------------------------------

describe('der', () => {
  test('length octets at the short/long form boundaries', () => {
    const cases: Array<[number, string]> = [
      [0, '00'],
      [127, '7f'],
      [128, '8180'],
      [255, '81ff'],
      [256, '820100'],
      [65535, '82ffff'],
      [65536, '83010000'],
      [0x1000000, '8401000000'],
    ];
    for (const [n, want] of cases) assert.equal(hex(encodeLength(n)), want, `length ${n}`);
    assertCode(() => encodeLength(-1), 'DER_LENGTH_INVALID');
    assertCode(() => encodeLength(1.5), 'DER_LENGTH_INVALID');
  });

  test('TLVs of 127/128/255/256/65536 content bytes read back', () => {
    for (const n of [0, 127, 128, 255, 256, 65536]) {
      const enc = tlv(TAG.OCTET_STRING, Buffer.alloc(n, 0xab));
      const t = readTlv(enc, 0);
      assert.equal(t.tag, TAG.OCTET_STRING);
      assert.equal(t.end - t.start, n);
      assert.equal(t.end, enc.length);
      assert.equal(t.start, n < 128 ? 2 : n < 256 ? 3 : n < 65536 ? 4 : 5);
    }
  });

  test('reader refuses BER and truncation', () => {
    assertCode(() => readTlv(h('3080 0000'), 0), 'DER_INDEFINITE_LENGTH');
    assertCode(() => readTlv(h('04 81 05 0102030405'), 0), 'DER_LENGTH_NOT_MINIMAL');
    assertCode(() => readTlv(h('04 05 0102'), 0), 'DER_TRUNCATED');
    assertCode(() => readTlv(h('04'), 0), 'DER_TRUNCATED');
  });

  test('INTEGER from unsigned bytes: 0x00 pad under a set top bit, redundant zeros stripped', () => {
    const cases: Array<[string, string]> = [
      ['', '020100'],
      ['00', '020100'],
      ['0000', '020100'],
      ['01', '020101'],
      ['7f', '02017f'],
      ['80', '02020080'],
      ['ff', '020200ff'],
      ['0080', '02020080'],
      ['00007f', '02017f'],
      ['000000ff01', '020300ff01'],
      ['0123456789abcdef01', '02090123456789abcdef01'],
      ['8123456789abcdef01', '020a008123456789abcdef01'],
    ];
    for (const [input, want] of cases) assert.equal(hex(integerFromUnsigned(h(input))), want, `INTEGER of ${input || '(empty)'}`);
    assert.equal(hex(integerFromUnsigned(Buffer.alloc(20, 0xff))), `0215${'00'}${'ff'.repeat(20)}`);
    assert.equal(hex(integerFromBigInt(0n)), '020100');
    assert.equal(hex(integerFromBigInt(128n)), '02020080');
    assert.equal(hex(integerFromBigInt(65536n)), '0203010000');
    assertCode(() => integerFromBigInt(-1n), 'DER_INTEGER_NEGATIVE');
    assert.equal(decodeInteger(h('0080')), 128n);
    assert.equal(decodeInteger(h('ff')), -1n);
  });

  test('Time: UTCTime through 2049, GeneralizedTime from 2050 and before 1950, whole seconds, Z', () => {
    const cases: Array<[string, string]> = [
      ['2049-12-31T23:59:59.999Z', '170d3439313233313233353935395a'],
      ['2050-01-01T00:00:00.000Z', '180f32303530303130313030303030305a'],
      ['1950-01-01T00:00:00.000Z', '170d3530303130313030303030305a'],
      ['1949-12-31T23:59:59.000Z', '180f31393439313233313233353935395a'],
    ];
    for (const [iso, want] of cases) assert.equal(hex(time(new Date(iso))), want, iso);
    const ascii = (iso: string) => time(new Date(iso)).subarray(2).toString('latin1');
    assert.equal(ascii('2024-02-29T12:34:56.789Z'), '240229123456Z');
    assert.equal(ascii('2000-02-29T00:00:00Z'), '000229000000Z');
    assert.equal(ascii('1970-01-01T00:00:00Z'), '700101000000Z');
    assert.equal(ascii('1969-12-31T23:59:59.999Z'), '691231235959Z');
    assert.equal(ascii('2100-03-01T01:02:03Z'), '21000301010203Z');
    assert.equal(ascii('9999-12-31T23:59:59Z'), '99991231235959Z');
    assert.equal(ascii('0000-01-01T00:00:00Z'), '00000101000000Z');
    assert.equal(ascii('0000-02-29T23:59:59Z'), '00000229235959Z');
    assert.equal(ascii('0000-03-01T00:00:00Z'), '00000301000000Z');
    assert.equal(ascii('1600-02-29T00:00:00Z'), '16000229000000Z');
    assert.equal(hex(generalizedTime(new Date('2024-01-02T03:04:05Z'))).slice(0, 4), '180f');
    assertCode(() => utcTime(new Date('2050-01-01T00:00:00Z')), 'DER_TIME_OUT_OF_RANGE');
    assertCode(() => time(new Date(NaN)), 'DER_TIME_INVALID');
    assertCode(() => time(new Date('+010000-01-01T00:00:00Z')), 'DER_TIME_OUT_OF_RANGE');
  });

  test('Time matches Date#toISOString for random instants in 0000..9999 and reads back', () => {
    const min = Date.parse('0000-01-01T00:00:00Z');
    const max = Date.parse('9999-12-31T23:59:59Z');
    const instants: number[] = [];
    for (let i = 0; i < 20_000; i++) instants.push(Math.floor(min + Math.random() * (max - min)));
    // Every day (at a varying second) around the era, century and CHOICE boundaries.
    for (const y of [0, 1, 399, 400, 1600, 1899, 1900, 1949, 1950, 1969, 1970, 1999, 2000, 2049, 2050, 2099, 2100, 9999]) {
      for (let d = 0; d < 366; d++) {
        const at = new Date(0);
        at.setUTCFullYear(y, 0, 1 + d);
        at.setUTCHours(0, 0, (d * 7919) % 86_400, d);
        if (at.getUTCFullYear() === y) instants.push(at.getTime());
      }
    }
    for (const ms of instants) {
      const d = new Date(ms);
      const enc = time(d);
      const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
      const want = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
      const y = d.getUTCFullYear();
      if (y >= 1950 && y <= 2049) {
        assert.equal(enc[0], TAG.UTC_TIME);
        assert.equal(enc.subarray(2).toString('latin1'), want.slice(2), iso);
      } else {
        assert.equal(enc[0], TAG.GENERALIZED_TIME);
        assert.equal(enc.subarray(2).toString('latin1'), want, iso);
      }
      assert.equal(decodeTime(enc[0] as number, enc.subarray(2)).getTime(), Math.floor(ms / 1000) * 1000, iso);
    }
  });

  test('OID, ENUMERATED, BOOLEAN, BIT STRING, OCTET STRING, SEQUENCE, context tags', () => {
    assert.equal(hex(oid('2.5.29.20')), '0603551d14');
    assert.equal(hex(oid('1.2.840.113549.1.1.11')), '06092a864886f70d01010b');
    assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
    assert.equal(hex(oid('2.999.3')), '0603883703');
    assertCode(() => oid('1.40'), 'DER_OID_INVALID');
    assertCode(() => oid('1'), 'DER_OID_INVALID');
    assertCode(() => oid('1.2.03'), 'DER_OID_INVALID');
    assert.equal(hex(enumerated(1)), '0a0101');
    assert.equal(hex(enumerated(0)), '0a0100');
    assert.equal(hex(enumerated(200)), '0a0200c8');
    assert.equal(hex(boolean(true)), '0101ff');
    assert.equal(hex(boolean(false)), '010100');
    assert.equal(hex(bitString(h('abcd'))), '030300abcd');
    assert.equal(hex(bitString(h('80'), 7)), '03020780');
    assertCode(() => bitString(h('80'), 8), 'DER_BIT_STRING_INVALID');
    assert.equal(hex(octetString(h('0102'))), '04020102');
    assert.equal(hex(sequence(h('0500'), h('020101'))), '30050500020101');
    assert.equal(hex(sequence()), '3000');
    assert.equal(hex(contextExplicit(0, h('020101'))), 'a003020101');
    assert.equal(hex(contextPrimitive(0, h('abcd'))), '8002abcd');
    assertCode(() => contextPrimitive(31, h('00')), 'DER_TAG_INVALID');
  });
});

// ---------------------------------------------------------------------------
// revocation-reason.ts
// ---------------------------------------------------------------------------

describe('revocation reasons', () => {
  test('codes as RFC 5280 numbers them', () => {
    assert.deepEqual(
      REVOCATION_REASONS.map((r) => [r, reasonCode(r)]),
      [
        ['unspecified', 0],
        ['keyCompromise', 1],
        ['cACompromise', 2],
        ['affiliationChanged', 3],
        ['superseded', 4],
        ['cessationOfOperation', 5],
        ['certificateHold', 6],
        ['removeFromCRL', 8],
        ['privilegeWithdrawn', 9],
        ['aACompromise', 10],
      ],
    );
  });

  test('names are accepted case-insensitively', () => {
    assert.equal(parseRevocationReason('keyCompromise'), 'keyCompromise');
    assert.equal(parseRevocationReason('KEYCOMPROMISE'), 'keyCompromise');
    assert.equal(parseRevocationReason('cacompromise'), 'cACompromise');
    assert.equal(parseRevocationReason('AACompromise'), 'aACompromise');
  });

  test('unknown names, 7 and removeFromCRL are refused', () => {
    for (const bad of ['stolen', '7', '', 'key-compromise']) assertCode(() => parseRevocationReason(bad), 'REVOCATION_REASON_UNKNOWN');
    assert.throws(() => parseRevocationReason('stolen'), /unknown revocation reason "stolen"; use one of unspecified, keyCompromise/);
    assertCode(() => parseRevocationReason('removeFromCRL'), 'REVOCATION_REASON_NOT_FOR_REVOKE');
  });
});

// ---------------------------------------------------------------------------
// crl.ts with real peers
// ---------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'sekisho-crl-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

const REQ_CONFIG = '[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = unused\n';

interface TestCa {
  dir: string;
  caPem: string;
  caKey: string;
  signer: SoftwareSigner;
  issuer: Buffer;
  ski: Buffer;
}

function openssl(args: string[], input?: string | Buffer) {
  const r = run('openssl', args, input);
  return { ...r, all: r.stdout + r.stderr };
}

function mustOpenssl(args: string[], input?: string | Buffer): string {
  const r = openssl(args, input);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed:\n${r.all}`);
  return r.all;
}

const cas = new Map<string, TestCa>();

/** A self-signed CA made by openssl, loaded the way sekisho loads one. Cached per key kind. */
function makeCa(kind: 'ec' | 'rsa'): TestCa {
  const cached = cas.get(kind);
  if (cached) return cached;
  const base = mkdtempSync(join(work, `ca-${kind}-`));
  const cnf = join(base, 'req.cnf');
  writeFileSync(cnf, REQ_CONFIG);
  const caPem = join(base, 'ca.pem');
  const caKey = join(base, 'ca.key');
  const keyArgs = kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  mustOpenssl([
    'req', '-config', cnf, '-x509', ...keyArgs, '-nodes', '-keyout', caKey, '-out', caPem, '-days', '3650',
    '-subj', `/C=JP/O=Sekisho Test/CN=Test ${kind.toUpperCase()} CA`,
    '-addext', 'subjectKeyIdentifier=hash',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'basicConstraints=critical,CA:true',
  ]);
  const signer = new SoftwareSigner(createPrivateKey(readFileSync(caKey)));
  const der = new X509Certificate(readFileSync(caPem)).raw;
  const cert = AsnConvert.parse(der, Certificate);
  const issuer = Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subject));
  assert.ok(der.includes(issuer), 'the re-serialised subject is byte-for-byte the one in the certificate');
  const skiExt = cert.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier);
  assert.ok(skiExt, 'the CA certificate has a subjectKeyIdentifier');
  const ski = Buffer.from(AsnConvert.parse(skiExt.extnValue, SubjectKeyIdentifier).buffer);
  const ca: TestCa = { dir: base, caPem, caKey, signer, issuer, ski };
  cas.set(kind, ca);
  return ca;
}

/** A leaf issued by openssl with the given serial (hex, no 0x). */
function issueLeaf(ca: TestCa, serialHex: string): string {
  const cnf = join(ca.dir, 'req.cnf');
  const key = join(ca.dir, `leaf-${serialHex}.key`);
  const csr = join(ca.dir, `leaf-${serialHex}.csr`);
  const pem = join(ca.dir, `leaf-${serialHex}.pem`);
  mustOpenssl(['req', '-config', cnf, '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=leaf.example']);
  mustOpenssl(['x509', '-req', '-in', csr, '-CA', ca.caPem, '-CAkey', ca.caKey, '-set_serial', `0x${serialHex}`, '-days', '30', '-out', pem]);
  return pem;
}

function crlInput(ca: TestCa, entries: RevokedEntry[], over: Partial<CrlInput> = {}): CrlInput {
  const now = Date.now();
  return {
    issuer: ca.issuer,
    signer: ca.signer,
    authorityKeyIdentifier: ca.ski,
    crlNumber: 42n,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 7 * 86_400_000),
    entries,
    ...over,
  };
}

let fileCount = 0;
function writeCrl(ca: TestCa, der: Buffer): { derPath: string; pemPath: string } {
  const n = ++fileCount;
  const derPath = join(ca.dir, `crl-${n}.der`);
  const pemPath = join(ca.dir, `crl-${n}.pem`);
  writeFileSync(derPath, der);
  writeFileSync(pemPath, crlToPem(der));
  return { derPath, pemPath };
}

function serialColons(serialHex: string): string {
  return serialHex.toUpperCase();
}

const LEAF_SERIAL = '0123456789abcdef01';
const TOP_BIT_SERIAL = '8123456789abcdef02';
const hourAgo = () => new Date(Date.now() - 3_600_000);

function sampleEntries(leafSerial: string): RevokedEntry[] {
  return [
    { serial: h(leafSerial), revokedAt: hourAgo(), reason: 'keyCompromise' },
    { serial: h('02aabbccddeeff0011'), revokedAt: hourAgo(), reason: 'superseded' },
    { serial: h('03aabbccddeeff0011'), revokedAt: hourAgo() },
    { serial: h('04aabbccddeeff0011'), revokedAt: hourAgo(), reason: 'unspecified' },
    { serial: h(TOP_BIT_SERIAL), revokedAt: hourAgo(), reason: 'cessationOfOperation' },
    { serial: h('000005aabbccddeeff0011'), revokedAt: hourAgo(), reason: 'certificateHold' },
  ];
}

describe('buildCrl against openssl and Node', () => {
  for (const kind of ['ec', 'rsa'] as const) {
    test(`${kind}: openssl parses, verifies and enforces the CRL`, async (t) => {
      if (!needCommand(t, 'openssl')) return;
      const ca = makeCa(kind);
      const leaf = issueLeaf(ca, LEAF_SERIAL);
      const der = await buildCrl(crlInput(ca, sampleEntries(LEAF_SERIAL)));
      const { derPath, pemPath } = writeCrl(ca, der);

      const text = mustOpenssl(['crl', '-inform', 'DER', '-in', derPath, '-noout', '-text']);
      assert.match(text, /Version 2 \(0x1\)/);
      assert.match(text, kind === 'ec' ? /Signature Algorithm: ecdsa-with-SHA256/ : /Signature Algorithm: sha256WithRSAEncryption/);
      assert.match(text, /X509v3 CRL Number:\s*\n\s*42\n/);
      assert.match(text, /X509v3 Authority Key Identifier:\s*\n\s*([0-9A-F]{2}:){19}[0-9A-F]{2}/);
      assert.ok(text.includes(ca.ski.toString('hex').toUpperCase().match(/../g)!.join(':')), 'AKI is the CA SKI');
      for (const s of [LEAF_SERIAL, '02AABBCCDDEEFF0011', '03AABBCCDDEEFF0011', '04AABBCCDDEEFF0011', TOP_BIT_SERIAL, '05AABBCCDDEEFF0011']) {
        assert.match(text, new RegExp(`Serial Number: ${serialColons(s)}\\n`), `serial ${s} listed`);
      }
      assert.doesNotMatch(text, /Negative/);
      assert.match(text, new RegExp(`Serial Number: ${LEAF_SERIAL.toUpperCase()}\\n\\s*Revocation Date: [^\\n]+\\n\\s*CRL entry extensions:\\n\\s*X509v3 CRL Reason Code:\\s*\\n\\s*Key Compromise`));
      assert.match(text, /Superseded/);
      assert.match(text, /Cessation Of Operation/);
      assert.match(text, /Certificate Hold/);
      assert.doesNotMatch(text, /Unspecified/, 'reason unspecified is omitted (RFC 5280 §5.3.1)');
      // Entries 3 and 4 (no reason / unspecified) carry no extensions at all.
      assert.match(text, /Serial Number: 03AABBCCDDEEFF0011\n\s*Revocation Date: [^\n]+\n\s*Serial Number: 04AABBCCDDEEFF0011\n\s*Revocation Date: [^\n]+\n\s*Serial Number: 81/);

      // The top-bit serial carries its 0x00 pad in the DER.
      assert.ok(der.includes(h(`020a00${TOP_BIT_SERIAL}`)));
      // The leading zeros of 000005… are stripped.
      assert.ok(der.includes(h('020905aabbccddeeff0011')));

      assert.match(mustOpenssl(['crl', '-in', pemPath, '-noout', '-verify', '-CAfile', ca.caPem]), /verify OK/);

      const revoked = openssl(['verify', '-crl_check', '-CAfile', ca.caPem, '-CRLfile', pemPath, leaf]);
      assert.notEqual(revoked.status, 0, revoked.all);
      assert.match(revoked.all, /certificate revoked/);

      const others = sampleEntries(LEAF_SERIAL).slice(1);
      const without = writeCrl(ca, await buildCrl(crlInput(ca, others, { crlNumber: 43n })));
      const ok = openssl(['verify', '-crl_check', '-CAfile', ca.caPem, '-CRLfile', without.pemPath, leaf]);
      assert.equal(ok.status, 0, ok.all);
      assert.match(ok.all, /: OK/);

      assert.doesNotThrow(() => createSecureContext({ crl: crlToPem(der) }));
      assert.doesNotThrow(() => createSecureContext({ ca: readFileSync(ca.caPem), crl: readFileSync(pemPath) }));

      const summary = parseCrlSummary(der, { entries: true });
      assert.equal(summary.crlNumber, 42n);
      assert.equal(summary.count, 6);
      assert.deepEqual(summary.issuer, ca.issuer);
      assert.deepEqual(summary.serials, [LEAF_SERIAL.toUpperCase(), '02AABBCCDDEEFF0011', '03AABBCCDDEEFF0011', '04AABBCCDDEEFF0011', TOP_BIT_SERIAL.toUpperCase(), '05AABBCCDDEEFF0011']);
      assert.equal(summary.reasons?.get(LEAF_SERIAL.toUpperCase()), 'keyCompromise');
      assert.equal(summary.reasons?.get('03AABBCCDDEEFF0011'), undefined);
      assert.equal(summary.reasons?.get('04AABBCCDDEEFF0011'), undefined);
      assert.equal(summary.reasons?.size, 4);
    });
  }

  test('an empty CRL has no revokedCertificates and is valid', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const ca = makeCa('ec');
    const der = await buildCrl(crlInput(ca, [], { crlNumber: 1n }));
    const { derPath, pemPath } = writeCrl(ca, der);
    const text = mustOpenssl(['crl', '-inform', 'DER', '-in', derPath, '-noout', '-text']);
    assert.match(text, /No Revoked Certificates\./);
    assert.match(text, /X509v3 CRL Number:\s*\n\s*1\n/);
    assert.match(mustOpenssl(['crl', '-in', pemPath, '-noout', '-verify', '-CAfile', ca.caPem]), /verify OK/);
    const leaf = issueLeaf(ca, '0a0000000000000001');
    const ok = openssl(['verify', '-crl_check', '-CAfile', ca.caPem, '-CRLfile', pemPath, leaf]);
    assert.equal(ok.status, 0, ok.all);
    assert.doesNotThrow(() => createSecureContext({ crl: crlToPem(der) }));
    // TBSCertList: version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions and nothing else.
    const tbs = readTlv(der, readTlv(der, 0).start);
    const tags: number[] = [];
    for (let off = tbs.start; off < tbs.end; off = readTlv(der, off).end) tags.push(der[off] as number);
    assert.deepEqual(tags, [TAG.INTEGER, TAG.SEQUENCE, TAG.SEQUENCE, TAG.UTC_TIME, TAG.UTC_TIME, 0xa0]);
    const s = parseCrlSummary(der, { entries: true });
    assert.equal(s.count, 0);
    assert.deepEqual(s.serials, []);
  });

  test('dates from 2050 are GeneralizedTime, through 2049 UTCTime', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const ca = makeCa('ec');
    const der = await buildCrl(
      crlInput(
        ca,
        [
          { serial: h('01'), revokedAt: new Date('2049-12-31T23:59:59Z'), reason: 'superseded' },
          { serial: h('02'), revokedAt: new Date('2051-06-15T08:09:10.500Z') },
        ],
        { thisUpdate: new Date('2050-01-01T00:00:00Z'), nextUpdate: new Date('2050-01-08T00:00:00Z') },
      ),
    );
    assert.ok(der.includes(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from('20500101000000Z')])), 'thisUpdate GeneralizedTime');
    assert.ok(der.includes(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from('20500108000000Z')])), 'nextUpdate GeneralizedTime');
    assert.ok(der.includes(Buffer.concat([Buffer.from([0x17, 13]), Buffer.from('491231235959Z')])), 'entry in 2049 UTCTime');
    assert.ok(der.includes(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from('20510615080910Z')])), 'entry in 2051 GeneralizedTime, whole seconds');
    const { derPath, pemPath } = writeCrl(ca, der);
    const text = mustOpenssl(['crl', '-inform', 'DER', '-in', derPath, '-noout', '-text']);
    assert.match(text, /Last Update: Jan  1 00:00:00 2050 GMT/);
    assert.match(text, /Next Update: Jan  8 00:00:00 2050 GMT/);
    assert.match(text, /Revocation Date: Dec 31 23:59:59 2049 GMT/);
    assert.match(text, /Revocation Date: Jun 15 08:09:10 2051 GMT/);
    assert.match(mustOpenssl(['crl', '-in', pemPath, '-noout', '-verify', '-CAfile', ca.caPem]), /verify OK/);
    const s = parseCrlSummary(der);
    assert.equal(s.thisUpdate.toISOString(), '2050-01-01T00:00:00.000Z');
    assert.equal(s.nextUpdate?.toISOString(), '2050-01-08T00:00:00.000Z');
  });

  test('a large CRL verifies and costs 28 bytes per 9-byte serial without reason, 42 with', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const ca = makeCa('ec');
    const n = 50_000;
    const serials = Array.from({ length: n }, () => {
      const s = randomBytes(9);
      s[0] = ((s[0] as number) % 0x7f) + 1;
      return s;
    });
    const at = hourAgo();
    const bare = await buildCrl(crlInput(ca, serials.map((serial) => ({ serial, revokedAt: at }))));
    const withReason = await buildCrl(crlInput(ca, serials.map((serial) => ({ serial, revokedAt: at, reason: 'affiliationChanged' as RevocationReason }))));
    const empty = await buildCrl(crlInput(ca, []));
    // Fixed part differs only by the revokedCertificates header and the ECDSA signature's ±2 bytes.
    assert.ok(Math.abs(bare.length - empty.length - 28 * n) <= 12, `bare: ${bare.length - empty.length} for ${n}`);
    assert.ok(Math.abs(withReason.length - empty.length - 42 * n) <= 12, `with reason: ${withReason.length - empty.length} for ${n}`);
    const { pemPath } = writeCrl(ca, withReason);
    assert.match(mustOpenssl(['crl', '-in', pemPath, '-noout', '-verify', '-CAfile', ca.caPem]), /verify OK/);
    const s = parseCrlSummary(withReason, { entries: true });
    assert.equal(s.count, n);
    assert.equal(s.serials?.[n - 1], serials[n - 1]?.toString('hex').toUpperCase());
    assert.equal(s.reasons?.get(serials[0]!.toString('hex').toUpperCase()), 'affiliationChanged');
  });

  test('entries may come from any iterable', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const ca = makeCa('ec');
    function* gen(): Generator<RevokedEntry> {
      for (let i = 1; i <= 3; i++) yield { serial: Buffer.from([i]), revokedAt: hourAgo(), reason: 'keyCompromise' };
    }
    const der = await buildCrl(crlInput(ca, [], { entries: gen() }));
    assert.equal(parseCrlSummary(der).count, 3);
  });
});

describe('buildCrl input checks', () => {
  /** A CA-like input from a Node key; these checks need no peer. */
  const nodeCa = (): TestCa => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const issuer = sequence(Buffer.from('3110300e06035504030c0754657374204341', 'hex'));
    return { dir: work, caPem: '', caKey: '', signer: new SoftwareSigner(privateKey), issuer, ski: Buffer.alloc(20, 7) };
  };

  test('refuses bad entries and CRL fields with actionable codes', async () => {
    const c = nodeCa();
    const at = hourAgo();
    await assertRejectsCode(buildCrl(crlInput(c, [{ serial: h('00'), revokedAt: at }])), 'CRL_ENTRY_SERIAL_INVALID');
    await assertRejectsCode(buildCrl(crlInput(c, [{ serial: Buffer.alloc(0), revokedAt: at }])), 'CRL_ENTRY_SERIAL_INVALID');
    await assertRejectsCode(buildCrl(crlInput(c, [{ serial: Buffer.alloc(21, 1), revokedAt: at }])), 'CRL_ENTRY_SERIAL_INVALID');
    await assertRejectsCode(buildCrl(crlInput(c, [{ serial: Buffer.alloc(20, 0x80), revokedAt: at }])), 'CRL_ENTRY_SERIAL_INVALID');
    await assertRejectsCode(buildCrl(crlInput(c, [{ serial: h('01'), revokedAt: new Date(NaN) }])), 'CRL_ENTRY_DATE_INVALID');
    await assertRejectsCode(
      buildCrl(crlInput(c, [{ serial: h('01'), revokedAt: at, reason: 'stolen' as RevocationReason }])),
      'REVOCATION_REASON_UNKNOWN',
    );
    await assertRejectsCode(buildCrl(crlInput(c, [{ serial: h('01'), revokedAt: at, reason: 'removeFromCRL' }])), 'REVOCATION_REASON_NOT_FOR_REVOKE');
    const now = new Date();
    await assertRejectsCode(buildCrl(crlInput(c, [], { thisUpdate: now, nextUpdate: now })), 'CRL_NEXT_UPDATE_NOT_AFTER_THIS_UPDATE');
    await assertRejectsCode(buildCrl(crlInput(c, [], { issuer: h('0c0141') })), 'CRL_ISSUER_INVALID');
    await assertRejectsCode(buildCrl(crlInput(c, [], { issuer: Buffer.concat([c.issuer, h('00')]) })), 'CRL_ISSUER_INVALID');
    await assertRejectsCode(buildCrl(crlInput(c, [], { authorityKeyIdentifier: Buffer.alloc(0) })), 'CRL_AKI_MISSING');
    await assertRejectsCode(buildCrl(crlInput(c, [], { crlNumber: -1n })), 'CRL_NUMBER_INVALID');
    await assertRejectsCode(buildCrl(crlInput(c, [], { crlNumber: 1n << 160n })), 'CRL_NUMBER_INVALID');
    // 20 octets is the limit: 2^159 - 1 fits, 2^159 needs a pad byte.
    await buildCrl(crlInput(c, [], { crlNumber: (1n << 159n) - 1n }));
    await assertRejectsCode(buildCrl(crlInput(c, [], { crlNumber: 1n << 159n })), 'CRL_NUMBER_INVALID');
  });

  test('crlToPem writes 64-character lines under the X509 CRL label', async (t) => {
    const c = nodeCa();
    const der = await buildCrl(crlInput(c, sampleEntries(LEAF_SERIAL)));
    const pem = crlToPem(der);
    const lines = pem.trimEnd().split('\n');
    assert.equal(lines[0], '-----BEGIN X509 CRL-----');
    assert.equal(lines.at(-1), '-----END X509 CRL-----');
    const body = lines.slice(1, -1);
    assert.ok(body.slice(0, -1).every((l) => l.length === 64));
    assert.ok((body.at(-1)?.length ?? 0) <= 64);
    assert.deepEqual(Buffer.from(body.join(''), 'base64'), der);
    if (!needCommand(t, 'openssl')) return;
    assert.match(mustOpenssl(['crl', '-noout', '-text'], pem), /X509v3 CRL Number/);
  });
});
