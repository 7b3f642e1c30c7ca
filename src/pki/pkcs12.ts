/**
 * PKCS#12 (RFC 7292) delivery files: a facility's private key, its leaf
 * certificate and the CA chain, protected by one password.
 *
 * Two profiles are written:
 * - modern (default), byte-for-byte the shape OpenSSL 3 writes by default:
 *   PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for the key bag and for the
 *   certificates, HMAC-SHA256 MAC keyed by the RFC 7292 Appendix B KDF;
 * - legacy, for old Windows importers: pbeWithSHAAnd3-KeyTripleDES-CBC for both
 *   and an HMAC-SHA1 MAC. RC2 is never written (Node refuses it without
 *   OpenSSL's legacy provider).
 *
 * `readPkcs12` reads both, and what `openssl pkcs12 -export` writes, verifying
 * the MAC (in constant time) before anything is decrypted.
 *
 * Password forms: PBES2 takes the password's UTF-8 bytes; the Appendix B KDF
 * (PKCS#12 PBE and the MAC) takes its BMPString form, UTF-16BE with two
 * trailing zero bytes — both as OpenSSL ≥ 1.1.0 does.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  pbkdf2,
  pbkdf2Sync,
  randomBytes,
  timingSafeEqual,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import { promisify } from 'node:util';
import { AsnConvert, AsnProp, AsnPropTypes, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { ContentInfo, EncryptedContent, EncryptedContentInfo, id_data, id_encryptedData } from '@peculiar/asn1-cms';
import { EncryptedPrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { FriendlyName, id_pkcs9_at_friendlyName, id_pkcs9_at_localKeyId } from '@peculiar/asn1-pkcs9';
import {
  AuthenticatedSafe,
  CertBag,
  MacData,
  PFX,
  PKCS12Attribute,
  SafeBag,
  SafeContents,
  id_SafeContents,
  id_certBag,
  id_keyBag,
  id_pbeWithSHAAnd2_KeyTripleDES_CBC,
  id_pbeWithSHAAnd3_KeyTripleDES_CBC,
  id_pkcs8ShroudedKeyBag,
  id_x509Certificate,
} from '@peculiar/asn1-pfx';
import { badRequest, isSekishoError, malformed, unauthorized, type SekishoError } from '../errors/index.js';

const pbkdf2Async = promisify(pbkdf2);

// ---------------------------------------------------------------------------
// Object identifiers
// ---------------------------------------------------------------------------

const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  pbmac1: '1.2.840.113549.1.5.14',
  aes128Cbc: '2.16.840.1.101.3.4.1.2',
  aes192Cbc: '2.16.840.1.101.3.4.1.22',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  desEde3Cbc: '1.2.840.113549.3.7',
  pbe3Des: id_pbeWithSHAAnd3_KeyTripleDES_CBC,
  pbe2Des: id_pbeWithSHAAnd2_KeyTripleDES_CBC,
} as const;

/** Names for OIDs that appear in PKCS#12 files we refuse, so the message says what was found. */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  '1.2.840.113549.1.12.1.1': 'pbeWithSHAAnd128BitRC4',
  '1.2.840.113549.1.12.1.2': 'pbeWithSHAAnd40BitRC4',
  '1.2.840.113549.1.12.1.5': 'pbeWithSHAAnd128BitRC2-CBC',
  '1.2.840.113549.1.12.1.6': 'pbeWithSHAAnd40BitRC2-CBC',
  '1.2.840.113549.1.5.3': 'pbeWithMD5AndDES-CBC',
  '1.2.840.113549.1.5.10': 'pbeWithSHA1AndDES-CBC',
  '1.2.840.113549.1.5.14': 'PBMAC1',
  '1.2.840.113549.1.7.2': 'signedData (public-key integrity mode)',
  '1.2.840.113549.1.7.3': 'envelopedData (public-key privacy mode)',
  '1.2.840.113549.2.5': 'md5',
  '1.2.840.113549.3.2': 'rc2-cbc',
  '1.3.14.3.2.7': 'des-cbc',
};

function describeOid(oid: string): string {
  const name = KNOWN_UNSUPPORTED[oid];
  return name === undefined ? oid : `${name} (${oid})`;
}

// ---------------------------------------------------------------------------
// Hashes
// ---------------------------------------------------------------------------

/** Hashes the Appendix B KDF, PBKDF2 PRFs and MACs may use, as Node's crypto names them. */
export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

interface HashInfo {
  name: HashName;
  /** OID of the digest (MAC DigestInfo). */
  oid: string;
  /** OID of HMAC with this digest (PBKDF2 prf). */
  hmacOid: string;
  /** u in RFC 7292 Appendix B: output bytes. */
  outLen: number;
  /** v in RFC 7292 Appendix B: block bytes. */
  blockLen: number;
}

const HASHES: readonly HashInfo[] = [
  { name: 'sha1', oid: '1.3.14.3.2.26', hmacOid: '1.2.840.113549.2.7', outLen: 20, blockLen: 64 },
  { name: 'sha224', oid: '2.16.840.1.101.3.4.2.4', hmacOid: '1.2.840.113549.2.8', outLen: 28, blockLen: 64 },
  { name: 'sha256', oid: '2.16.840.1.101.3.4.2.1', hmacOid: '1.2.840.113549.2.9', outLen: 32, blockLen: 64 },
  { name: 'sha384', oid: '2.16.840.1.101.3.4.2.2', hmacOid: '1.2.840.113549.2.10', outLen: 48, blockLen: 128 },
  { name: 'sha512', oid: '2.16.840.1.101.3.4.2.3', hmacOid: '1.2.840.113549.2.11', outLen: 64, blockLen: 128 },
];

function hashInfo(name: HashName): HashInfo {
  const h = HASHES.find((x) => x.name === name);
  if (h === undefined) throw new Error(`no hash ${name}`); // unreachable: HashName is closed
  return h;
}

function hashByDigestOid(oid: string): HashInfo {
  const h = HASHES.find((x) => x.oid === oid);
  if (h === undefined) throw unsupported(`MAC digest ${describeOid(oid)}`);
  return h;
}

function hashByHmacOid(oid: string): HashInfo {
  const h = HASHES.find((x) => x.hmacOid === oid);
  if (h === undefined) throw unsupported(`PBKDF2 pseudo-random function ${describeOid(oid)}`);
  return h;
}

// ---------------------------------------------------------------------------
// ASN.1 structures not provided by @peculiar/asn1-*
// ---------------------------------------------------------------------------

/**
 * RFC 8018 §A.2:
 * ```asn1
 * PBKDF2-params ::= SEQUENCE {
 *   salt CHOICE {
 *     specified OCTET STRING,
 *     otherSource AlgorithmIdentifier {{PBKDF2-SaltSources}}
 *   },
 *   iterationCount INTEGER (1..MAX),
 *   keyLength INTEGER (1..MAX) OPTIONAL,
 *   prf AlgorithmIdentifier {{PBKDF2-PRFs}} DEFAULT algid-hmacWithSHA1
 * }
 * ```
 * Only the `specified` salt is handled (no known producer uses otherSource).
 */
export class Pbkdf2Params {
  @AsnProp({ type: AsnPropTypes.OctetString })
  salt: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Integer })
  iterationCount: number | string = 0;

  @AsnProp({ type: AsnPropTypes.Integer, optional: true })
  keyLength?: number | string;

  @AsnProp({ type: AlgorithmIdentifier, optional: true })
  prf?: AlgorithmIdentifier;
}

/**
 * RFC 8018 §A.4:
 * ```asn1
 * PBES2-params ::= SEQUENCE {
 *   keyDerivationFunc AlgorithmIdentifier {{PBES2-KDFs}},
 *   encryptionScheme AlgorithmIdentifier {{PBES2-Encs}}
 * }
 * ```
 */
export class Pbes2Params {
  @AsnProp({ type: AlgorithmIdentifier })
  keyDerivationFunc: AlgorithmIdentifier = new AlgorithmIdentifier();

  @AsnProp({ type: AlgorithmIdentifier })
  encryptionScheme: AlgorithmIdentifier = new AlgorithmIdentifier();
}

/**
 * RFC 7292 Appendix C:
 * ```asn1
 * pkcs-12PbeParams ::= SEQUENCE {
 *   salt       OCTET STRING,
 *   iterations INTEGER
 * }
 * ```
 */
export class Pkcs12PbeParams {
  @AsnProp({ type: AsnPropTypes.OctetString })
  salt: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Integer })
  iterations: number | string = 0;
}

/**
 * RFC 5652 §8 (the content of an `encryptedData` ContentInfo in an AuthenticatedSafe):
 * ```asn1
 * EncryptedData ::= SEQUENCE {
 *   version CMSVersion,
 *   encryptedContentInfo EncryptedContentInfo,
 *   unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL
 * }
 * ```
 * unprotectedAttrs is never written and PKCS#12 producers do not write it.
 */
export class Pkcs12EncryptedData {
  @AsnProp({ type: AsnPropTypes.Integer })
  version: number = 0;

  @AsnProp({ type: EncryptedContentInfo })
  encryptedContentInfo: EncryptedContentInfo = new EncryptedContentInfo();
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

function unsupported(what: string): SekishoError {
  return badRequest(
    'PKCS12_UNSUPPORTED',
    `the PKCS#12 file uses ${what}, which sekisho does not read; export it again with AES-256-CBC (OpenSSL 3 default) or PBE-SHA1-3DES`,
  );
}

function damaged(detail: string, cause?: unknown): SekishoError {
  return malformed(
    'PKCS12_MALFORMED',
    `the file is not a readable PKCS#12 (.p12/.pfx) file: ${detail}; check that the whole file was transferred and export it again if needed`,
    cause === undefined ? undefined : { cause },
  );
}

function badPassword(): SekishoError {
  return unauthorized('PKCS12_BAD_PASSWORD', 'the password does not open this PKCS#12 file; check the password issued with it', {
    ja: 'PKCS#12 ファイルのパスワードが違います。ファイルと一緒に通知されたパスワードを確認してください。',
  });
}

/** Parses DER into an @peculiar class, turning any parser failure into PKCS12_MALFORMED. */
function parseAsn<T>(data: ArrayBuffer | Uint8Array, type: new () => T, what: string): T {
  try {
    return AsnConvert.parse(data, type);
  } catch (e) {
    throw damaged(`${what} cannot be parsed`, e);
  }
}

function serialize(obj: unknown): Buffer {
  return Buffer.from(AsnConvert.serialize(obj));
}

/**
 * Upper bound on any iteration count, written or read. It matches the range
 * `ca/config.ts` accepts for `pkcs12.iterations`, so every file sekisho can be
 * configured to write reads back. The Appendix B KDF runs in JavaScript on the
 * calling thread at about 0.7 µs per iteration (SHA-256), so a hostile file at
 * this bound costs seconds of CPU in readPkcs12.
 */
const MAX_ITERATIONS = 10_000_000;

/** An INTEGER as asn1-schema returns it (number, or decimal string from 4 bytes on) → a checked count. */
function iterationCount(v: number | string, what: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw damaged(`${what} iteration count is not a positive integer`);
  if (n > MAX_ITERATIONS) throw unsupported(`${what} iteration count ${n} (more than ${MAX_ITERATIONS})`);
  return n;
}

// ---------------------------------------------------------------------------
// BER OCTET STRING content (primitive or constructed)
// ---------------------------------------------------------------------------

interface Tlv {
  tag: number;
  /** Offset of the content. */
  start: number;
  /** Offset just past the content; -1 for indefinite length. */
  end: number;
}

function readHeader(b: Uint8Array, at: number, limit: number): Tlv {
  const tag = b[at];
  const first = b[at + 1];
  if (tag === undefined || first === undefined || at + 2 > limit) throw damaged('an OCTET STRING is truncated');
  if ((tag & 0x1f) === 0x1f) throw damaged('unexpected high tag number');
  if (first < 0x80) return { tag, start: at + 2, end: at + 2 + first };
  if (first === 0x80) {
    if ((tag & 0x20) === 0) throw damaged('indefinite length on a primitive value');
    return { tag, start: at + 2, end: -1 };
  }
  const n = first & 0x7f;
  if (n > 4 || at + 2 + n > limit) throw damaged('an OCTET STRING length is out of range');
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (b[at + 2 + i] ?? 0);
  return { tag, start: at + 2 + n, end: at + 2 + n + len };
}

/**
 * Reads one OCTET STRING (tag 0x04, or 0x24 constructed as BER allows and
 * Windows/Java producers write) at `at`, pushing content pieces; returns the
 * offset after it. asn1-schema's OctetString silently yields an empty value
 * for the constructed form, so content that PKCS#12 carries in an
 * OCTET STRING goes through here.
 */
function readOctets(b: Uint8Array, at: number, limit: number, out: Uint8Array[], depth: number): number {
  if (depth > 8) throw damaged('OCTET STRING nesting is too deep');
  const h = readHeader(b, at, limit);
  if (h.tag === 0x04) {
    if (h.end > limit) throw damaged('an OCTET STRING is truncated');
    out.push(b.subarray(h.start, h.end));
    return h.end;
  }
  if (h.tag !== 0x24) throw damaged('an OCTET STRING was expected');
  if (h.end > limit) throw damaged('an OCTET STRING is truncated');
  const stop = h.end === -1 ? limit : h.end;
  let p = h.start;
  for (;;) {
    if (h.end === -1) {
      if (p + 2 > limit) throw damaged('a constructed OCTET STRING has no end-of-contents');
      if (b[p] === 0 && b[p + 1] === 0) return p + 2;
    } else if (p === stop) {
      return p;
    } else if (p > stop) {
      throw damaged('a constructed OCTET STRING overruns its length');
    }
    p = readOctets(b, p, stop, out, depth + 1);
  }
}

/** Content bytes of a DER/BER OCTET STRING that must fill `der` exactly. */
export function octetStringContent(der: ArrayBuffer | Uint8Array): Buffer {
  const b = der instanceof Uint8Array ? der : new Uint8Array(der);
  const pieces: Uint8Array[] = [];
  const end = readOctets(b, 0, b.length, pieces, 0);
  if (end !== b.length) throw damaged('unexpected bytes after an OCTET STRING');
  return Buffer.concat(pieces);
}

function octetStringDer(content: Uint8Array): Buffer {
  return serialize(new OctetString(content));
}

// ---------------------------------------------------------------------------
// Passwords and the RFC 7292 Appendix B KDF
// ---------------------------------------------------------------------------

/** The two forms of one password. */
interface Secret {
  /** PBES2 / PBKDF2: the UTF-8 bytes. */
  utf8: Buffer;
  /** Appendix B KDF: BMPString, UTF-16BE plus two zero bytes (or empty, see `secretCandidates`). */
  bmp: Buffer;
}

/** BMPString form of a password: UTF-16BE with a two-byte zero terminator (RFC 7292 Appendix B.1). */
export function bmpPassword(password: string): Buffer {
  return Buffer.from(`${password}\u0000`, 'utf16le').swap16();
}

/**
 * The forms to try for a password. OpenSSL also accepts, for an empty
 * password, an empty (rather than 00 00) BMP form, as some producers write.
 */
function secretCandidates(password: string): Secret[] {
  const utf8 = Buffer.from(password, 'utf8');
  const first = { utf8, bmp: bmpPassword(password) };
  return password === '' ? [first, { utf8, bmp: Buffer.alloc(0) }] : [first];
}

/**
 * One-shot digest. `crypto.hash` (Node ≥ 20.12) is about twice as fast as
 * createHash for the Appendix B KDF's thousands of tiny hashes; older Node
 * 20 releases fall back to createHash.
 */
const digest: (alg: HashName, data: Uint8Array) => Buffer = (() => {
  const oneShot = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;
  return oneShot === undefined
    ? (alg: HashName, data: Uint8Array) => createHash(alg).update(data).digest()
    : (alg: HashName, data: Uint8Array) => oneShot(alg, data, 'buffer');
})();

export type Pkcs12KdfPurpose = 1 | 2 | 3; // 1 key, 2 IV, 3 MAC key

/** Repeats `src` to fill v·⌈len/v⌉ bytes (empty for empty `src`). */
function fillBlocks(src: Uint8Array, v: number): Buffer {
  if (src.length === 0) return Buffer.alloc(0);
  const out = Buffer.alloc(v * Math.ceil(src.length / v));
  for (let i = 0; i < out.length; i++) out[i] = src[i % src.length] ?? 0;
  return out;
}

/** I_j = (I_j + B + 1) mod 2^(8v), in place, big-endian. */
function addBlock(i: Buffer, offset: number, b: Buffer, v: number): void {
  let carry = 1;
  for (let k = v - 1; k >= 0; k--) {
    const sum = (i[offset + k] ?? 0) + (b[k] ?? 0) + carry;
    i[offset + k] = sum & 0xff;
    carry = sum >> 8;
  }
}

/**
 * RFC 7292 Appendix B.2: derives `n` bytes for `purpose` from the BMPString
 * password, generic over the hash (OpenSSL's PKCS12_key_gen_uni).
 */
export function pkcs12Kdf(
  hash: HashName,
  bmpPass: Uint8Array,
  salt: Uint8Array,
  purpose: Pkcs12KdfPurpose,
  iterations: number,
  n: number,
): Buffer {
  const { outLen: u, blockLen: v } = hashInfo(hash);
  const d = Buffer.alloc(v, purpose);
  const i = Buffer.concat([fillBlocks(salt, v), fillBlocks(bmpPass, v)]);
  const blocks: Buffer[] = [];
  for (let done = 0; done < n; done += u) {
    let a: Buffer = createHash(hash).update(d).update(i).digest();
    for (let r = 1; r < iterations; r++) a = digest(hash, a);
    blocks.push(a);
    if (done + u >= n) break;
    const b = fillBlocks(a, v);
    for (let off = 0; off < i.length; off += v) addBlock(i, off, b, v);
  }
  return Buffer.concat(blocks).subarray(0, n);
}

// ---------------------------------------------------------------------------
// Password-based encryption
// ---------------------------------------------------------------------------

interface CipherInfo {
  oid: string;
  node: string;
  keyLen: number;
  ivLen: number;
}

const PBES2_CIPHERS: readonly CipherInfo[] = [
  { oid: OID.aes128Cbc, node: 'aes-128-cbc', keyLen: 16, ivLen: 16 },
  { oid: OID.aes192Cbc, node: 'aes-192-cbc', keyLen: 24, ivLen: 16 },
  { oid: OID.aes256Cbc, node: 'aes-256-cbc', keyLen: 32, ivLen: 16 },
  { oid: OID.desEde3Cbc, node: 'des-ede3-cbc', keyLen: 24, ivLen: 8 },
];

/** PKCS#12 PBE schemes (RFC 7292 Appendix C) that Node's default provider can run. */
const PKCS12_PBE_CIPHERS: readonly CipherInfo[] = [
  { oid: OID.pbe3Des, node: 'des-ede3-cbc', keyLen: 24, ivLen: 8 },
  { oid: OID.pbe2Des, node: 'des-ede-cbc', keyLen: 16, ivLen: 8 },
];

interface Encrypted {
  algorithm: AlgorithmIdentifier;
  ciphertext: Buffer;
}

function cbcEncrypt(cipher: string, key: Buffer, iv: Buffer, plain: Uint8Array): Buffer {
  const c = createCipheriv(cipher, key, iv);
  return Buffer.concat([c.update(plain), c.final()]);
}

/** Throws (any error) on a wrong key: callers decide what that means. */
function cbcDecrypt(cipher: string, key: Buffer, iv: Buffer, data: Uint8Array): Buffer {
  const d = createDecipheriv(cipher, key, iv);
  return Buffer.concat([d.update(data), d.final()]);
}

function algorithm(oid: string, parameters: ArrayBuffer | null): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: oid, parameters });
}

function arrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, as OpenSSL 3 writes it (keyLength omitted). */
async function encryptPbes2(plain: Uint8Array, secret: Secret, iterations: number): Promise<Encrypted> {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = await pbkdf2Async(secret.utf8, salt, iterations, 32, 'sha256');
  const kdf = new Pbkdf2Params();
  kdf.salt = arrayBuffer(salt);
  kdf.iterationCount = iterations;
  kdf.prf = algorithm(hashInfo('sha256').hmacOid, null);
  const params = new Pbes2Params();
  params.keyDerivationFunc = algorithm(OID.pbkdf2, AsnConvert.serialize(kdf));
  params.encryptionScheme = algorithm(OID.aes256Cbc, arrayBuffer(octetStringDer(iv)));
  return {
    algorithm: algorithm(OID.pbes2, AsnConvert.serialize(params)),
    ciphertext: cbcEncrypt('aes-256-cbc', key, iv, plain),
  };
}

/** pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C): key and IV from the Appendix B KDF with SHA-1. */
function encryptPkcs12Pbe3Des(plain: Uint8Array, secret: Secret, iterations: number): Encrypted {
  const salt = randomBytes(8);
  const key = pkcs12Kdf('sha1', secret.bmp, salt, 1, iterations, 24);
  const iv = pkcs12Kdf('sha1', secret.bmp, salt, 2, iterations, 8);
  const params = new Pkcs12PbeParams();
  params.salt = arrayBuffer(salt);
  params.iterations = iterations;
  return {
    algorithm: algorithm(OID.pbe3Des, AsnConvert.serialize(params)),
    ciphertext: cbcEncrypt('des-ede3-cbc', key, iv, plain),
  };
}

function requireParameters(alg: AlgorithmIdentifier, what: string): ArrayBuffer {
  const p = alg.parameters;
  if (p === undefined || p === null) throw damaged(`${what} has no parameters`);
  return p;
}

/** Derives key and IV for a PBES2 AlgorithmIdentifier's parameters and decrypts. */
function decryptPbes2(params: ArrayBuffer, data: Uint8Array, secret: Secret): Buffer {
  const pbes2 = parseAsn(params, Pbes2Params, 'PBES2 parameters');
  const kdfAlg = pbes2.keyDerivationFunc;
  if (kdfAlg.algorithm !== OID.pbkdf2) throw unsupported(`PBES2 key derivation ${describeOid(kdfAlg.algorithm)}`);
  const kdf = parseAsn(requireParameters(kdfAlg, 'PBKDF2'), Pbkdf2Params, 'PBKDF2 parameters');
  const enc = pbes2.encryptionScheme;
  const cipher = PBES2_CIPHERS.find((c) => c.oid === enc.algorithm);
  if (cipher === undefined) throw unsupported(`PBES2 cipher ${describeOid(enc.algorithm)}`);
  const iv = octetStringContent(requireParameters(enc, 'the PBES2 cipher'));
  if (iv.length !== cipher.ivLen) throw damaged(`the ${cipher.node} IV is ${iv.length} bytes, not ${cipher.ivLen}`);
  if (kdf.keyLength !== undefined && Number(kdf.keyLength) !== cipher.keyLen) {
    throw damaged(`PBKDF2 key length ${String(kdf.keyLength)} does not fit ${cipher.node}`);
  }
  const prf = kdf.prf === undefined ? hashInfo('sha1') : hashByHmacOid(kdf.prf.algorithm);
  const iterations = iterationCount(kdf.iterationCount, 'PBKDF2');
  const key = pbkdf2Sync(secret.utf8, Buffer.from(kdf.salt), iterations, cipher.keyLen, prf.name);
  return cbcDecrypt(cipher.node, key, iv, data);
}

function decryptPkcs12Pbe(cipher: CipherInfo, params: ArrayBuffer, data: Uint8Array, secret: Secret): Buffer {
  const p = parseAsn(params, Pkcs12PbeParams, 'PKCS#12 PBE parameters');
  const iterations = iterationCount(p.iterations, 'PKCS#12 PBE');
  const salt = Buffer.from(p.salt);
  const key = pkcs12Kdf('sha1', secret.bmp, salt, 1, iterations, cipher.keyLen);
  const iv = pkcs12Kdf('sha1', secret.bmp, salt, 2, iterations, cipher.ivLen);
  return cbcDecrypt(cipher.node, key, iv, data);
}

/**
 * Decrypts one encrypted part. The MAC has already been verified with this
 * password, so a decryption failure means a file whose parts use another
 * password than its MAC, or one damaged before its MAC was computed.
 */
function decrypt(alg: AlgorithmIdentifier, data: Uint8Array, secret: Secret, what: string): Buffer {
  const pbe = PKCS12_PBE_CIPHERS.find((c) => c.oid === alg.algorithm);
  if (alg.algorithm !== OID.pbes2 && pbe === undefined) throw unsupported(`${what} encryption ${describeOid(alg.algorithm)}`);
  const params = requireParameters(alg, `the ${what} encryption`);
  try {
    return pbe === undefined ? decryptPbes2(params, data, secret) : decryptPkcs12Pbe(pbe, params, data, secret);
  } catch (e) {
    if (isSekishoError(e)) throw e;
    throw damaged(`the ${what} does not decrypt with the password that verified the MAC`, e);
  }
}

// ---------------------------------------------------------------------------
// MAC
// ---------------------------------------------------------------------------

/** HMAC over the AuthenticatedSafe octets with the Appendix B (ID 3) key, as RFC 7292 §5 and OpenSSL compute it. */
function macKey(hash: HashInfo, bmpPass: Uint8Array, salt: Uint8Array, iterations: number): Buffer {
  return pkcs12Kdf(hash.name, bmpPass, salt, 3, iterations, hash.outLen);
}

function computeMac(hash: HashInfo, bmpPass: Uint8Array, salt: Uint8Array, iterations: number, data: Uint8Array): Buffer {
  return createHmac(hash.name, macKey(hash, bmpPass, salt, iterations)).update(data).digest();
}

/** The MAC's parameters and key, derived before the data exists (the key does not depend on it). */
interface MacSetup {
  hash: HashInfo;
  salt: Buffer;
  iterations: number;
  key: Buffer;
}

function macSetup(hash: HashInfo, bmpPass: Uint8Array, iterations: number, saltLen: number): MacSetup {
  const salt = randomBytes(saltLen);
  return { hash, salt, iterations, key: macKey(hash, bmpPass, salt, iterations) };
}

/**
 * ```asn1
 * MacData ::= SEQUENCE {
 *   mac        DigestInfo,
 *   macSalt    OCTET STRING,
 *   iterations INTEGER DEFAULT 1
 * }
 * DigestInfo ::= SEQUENCE { digestAlgorithm DigestAlgorithmIdentifier, digest Digest }
 * ```
 */
function macData(setup: MacSetup, data: Uint8Array): MacData {
  const m = new MacData();
  // DigestInfo comes from @peculiar/asn1-rsa, which is not a direct dependency: use MacData's own instance.
  m.mac.digestAlgorithm = algorithm(setup.hash.oid, null);
  m.mac.digest = new OctetString(createHmac(setup.hash.name, setup.key).update(data).digest());
  m.macSalt = new OctetString(setup.salt);
  m.iterations = setup.iterations;
  return m;
}

/** Verifies the MAC in constant time; returns the password form that verified it. */
function verifyMac(mac: MacData, authSafe: Uint8Array, password: string): Secret {
  const expected = Buffer.from(mac.mac.digest.buffer);
  if (expected.length === 0) {
    throw unsupported('no password MAC (integrity not protected)');
  }
  const hash = hashByDigestOid(mac.mac.digestAlgorithm.algorithm);
  const iterations = iterationCount(mac.iterations, 'MAC');
  const salt = Buffer.from(mac.macSalt.buffer);
  for (const secret of secretCandidates(password)) {
    const actual = computeMac(hash, secret.bmp, salt, iterations, authSafe);
    if (actual.length === expected.length && timingSafeEqual(actual, expected)) return secret;
  }
  throw badPassword();
}

// ---------------------------------------------------------------------------
// Bags
// ---------------------------------------------------------------------------

/**
 * ```asn1
 * PKCS12Attribute ::= SEQUENCE {
 *   attrId      ATTRIBUTE.&id ({PKCS12AttrSet}),
 *   attrValues  SET OF ATTRIBUTE.&Type ({PKCS12AttrSet}{@attrId})
 * }
 * ```
 * (PKCS12Attribute's constructor drops its argument, so fields are set here.)
 */
function attribute(id: string, value: unknown): PKCS12Attribute {
  const a = new PKCS12Attribute();
  a.attrId = id;
  a.attrValues = [AsnConvert.serialize(value)];
  return a;
}

/** friendlyName (BMPString) and localKeyId, in the order OpenSSL writes them. */
function bagAttributes(friendlyName: string, localKeyId: Buffer): PKCS12Attribute[] {
  return [
    attribute(id_pkcs9_at_friendlyName, new FriendlyName(friendlyName)),
    attribute(id_pkcs9_at_localKeyId, new OctetString(localKeyId)),
  ];
}

/**
 * ```asn1
 * SafeBag ::= SEQUENCE {
 *   bagId         BAG-TYPE.&id ({PKCS12BagSet}),
 *   bagValue      [0] EXPLICIT BAG-TYPE.&Type({PKCS12BagSet}{@bagId}),
 *   bagAttributes SET OF PKCS12Attribute OPTIONAL
 * }
 * ```
 */
function safeBag(bagId: string, value: ArrayBuffer, attributes?: PKCS12Attribute[]): SafeBag {
  return new SafeBag({ bagId, bagValue: value, ...(attributes === undefined ? {} : { bagAttributes: attributes }) });
}

/**
 * ```asn1
 * CertBag ::= SEQUENCE {
 *   certId    BAG-TYPE.&id   ({CertTypes}),   -- x509Certificate
 *   certValue [0] EXPLICIT BAG-TYPE.&Type ({CertTypes}{@certId})  -- OCTET STRING (DER certificate)
 * }
 * ```
 */
function certBag(der: Buffer, attributes?: PKCS12Attribute[]): SafeBag {
  const bag = new CertBag({ certId: id_x509Certificate, certValue: arrayBuffer(octetStringDer(der)) });
  return safeBag(id_certBag, AsnConvert.serialize(bag), attributes);
}

/**
 * ```asn1
 * PKCS8ShroudedKeyBag ::= EncryptedPrivateKeyInfo
 * EncryptedPrivateKeyInfo ::= SEQUENCE {
 *   encryptionAlgorithm AlgorithmIdentifier {{KeyEncryptionAlgorithms}},
 *   encryptedData EncryptedData   -- OCTET STRING
 * }
 * ```
 */
function shroudedKeyBag(enc: Encrypted, attributes: PKCS12Attribute[]): SafeBag {
  const info = new EncryptedPrivateKeyInfo({ encryptionAlgorithm: enc.algorithm, encryptedData: new OctetString(enc.ciphertext) });
  return safeBag(id_pkcs8ShroudedKeyBag, AsnConvert.serialize(info), attributes);
}

/**
 * ```asn1
 * ContentInfo ::= SEQUENCE { contentType ContentType, content [0] EXPLICIT ANY DEFINED BY contentType }
 * ```
 * `data`: content is an OCTET STRING holding a DER SafeContents.
 */
function dataContentInfo(safeContents: SafeBag[]): ContentInfo {
  const octets = octetStringDer(serialize(new SafeContents(safeContents)));
  return new ContentInfo({ contentType: id_data, content: arrayBuffer(octets) });
}

/** `encryptedData`: content is an EncryptedData whose encryptedContent is the encrypted DER SafeContents. */
function encryptedContentInfo(enc: Encrypted): ContentInfo {
  const ed = new Pkcs12EncryptedData();
  ed.encryptedContentInfo = new EncryptedContentInfo({
    contentType: id_data,
    contentEncryptionAlgorithm: enc.algorithm,
    encryptedContent: new EncryptedContent({ value: new OctetString(enc.ciphertext) }),
  });
  return new ContentInfo({ contentType: id_encryptedData, content: AsnConvert.serialize(ed) });
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

export interface BuildPkcs12Input {
  privateKey: KeyObject;
  /** DER leaf certificate. */
  certificate: Buffer;
  /** DER CA certificates, issuing CA first, root last. */
  chain: Buffer[];
  password: string;
  /** Shown by importers (Windows certificate store, Keychain); facility names are Japanese. */
  friendlyName: string;
  /** 3DES + HMAC-SHA1 for old Windows importers. */
  legacy?: boolean;
  /** PBKDF2 / Appendix B iterations; default 2048 (OpenSSL's default) for both profiles. */
  iterations?: number;
}

const DEFAULT_ITERATIONS = 2048;
/** pkcs-9-ub-friendlyName. */
const MAX_FRIENDLY_NAME = 255;

function checkBuildInput(input: BuildPkcs12Input): { leaf: X509Certificate; iterations: number } {
  const { password, friendlyName } = input;
  if (password.length === 0) {
    throw badRequest('PKCS12_PASSWORD_EMPTY', 'a PKCS#12 delivery file needs a password; issue one with the file');
  }
  if (password.includes('\u0000') || Buffer.from(password, 'utf8').toString('utf8') !== password) {
    throw badRequest('PKCS12_PASSWORD_INVALID', 'the password contains a NUL or an unpaired surrogate; choose another password');
  }
  if (friendlyName.length === 0 || friendlyName.length > MAX_FRIENDLY_NAME) {
    throw badRequest('PKCS12_FRIENDLY_NAME_INVALID', `the friendly name must be 1 to ${MAX_FRIENDLY_NAME} characters`);
  }
  const iterations = input.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw badRequest('PKCS12_ITERATIONS_INVALID', `iterations must be an integer from 1 to ${MAX_ITERATIONS}`);
  }
  if (input.privateKey.type !== 'private') {
    throw badRequest('PKCS12_KEY_INVALID', 'privateKey must be a private KeyObject');
  }
  const certs = [input.certificate, ...input.chain].map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch (e) {
      const which = i === 0 ? 'the leaf certificate' : `chain certificate ${i}`;
      throw malformed('PKCS12_CERTIFICATE_INVALID', `${which} is not a DER X.509 certificate`, { cause: e });
    }
  });
  const leaf = certs[0];
  if (leaf === undefined) throw new Error('unreachable: the leaf is always first');
  if (!leaf.checkPrivateKey(input.privateKey)) {
    throw badRequest('PKCS12_KEY_MISMATCH', 'the private key does not belong to the leaf certificate; pass the key the certificate was issued for');
  }
  return { leaf, iterations };
}

/**
 * ```asn1
 * PFX ::= SEQUENCE {
 *   version    INTEGER {v3(3)}(v3,...),
 *   authSafe   ContentInfo,      -- data: OCTET STRING (AuthenticatedSafe)
 *   macData    MacData OPTIONAL
 * }
 * AuthenticatedSafe ::= SEQUENCE OF ContentInfo
 * ```
 * Layout as OpenSSL writes it: an encryptedData ContentInfo with the
 * certificate bags (leaf first), then a data ContentInfo with the
 * pkcs8ShroudedKeyBag. The leaf and the key carry friendlyName and
 * localKeyId (SHA-1 of the leaf DER); CA certificates carry no attributes.
 */
export async function buildPkcs12(input: BuildPkcs12Input): Promise<Buffer> {
  const { iterations } = checkBuildInput(input);
  const legacy = input.legacy === true;
  const secret: Secret = { utf8: Buffer.from(input.password, 'utf8'), bmp: bmpPassword(input.password) };
  const attrs = bagAttributes(input.friendlyName, createHash('sha1').update(input.certificate).digest());

  const certContents = serialize(new SafeContents([certBag(input.certificate, attrs), ...input.chain.map((c) => certBag(c))]));
  const pkcs8 = input.privateKey.export({ type: 'pkcs8', format: 'der' });
  const encrypt = (plain: Uint8Array): Promise<Encrypted> =>
    legacy ? Promise.resolve(encryptPkcs12Pbe3Des(plain, secret, iterations)) : encryptPbes2(plain, secret, iterations);
  const encryptions = Promise.all([encrypt(certContents), encrypt(pkcs8)]);
  // The MAC key needs only the password and salt: derive it on this thread while PBKDF2 runs on the pool.
  const mac = macSetup(hashInfo(legacy ? 'sha1' : 'sha256'), secret.bmp, iterations, legacy ? 8 : 16);
  const [encCerts, encKey] = await encryptions;

  const authSafe = serialize(new AuthenticatedSafe([encryptedContentInfo(encCerts), dataContentInfo([shroudedKeyBag(encKey, attrs)])]));
  const pfx = new PFX({
    version: 3,
    authSafe: new ContentInfo({ contentType: id_data, content: arrayBuffer(octetStringDer(authSafe)) }),
    macData: macData(mac, authSafe),
  });
  return serialize(pfx);
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

export interface Pkcs12Contents {
  privateKey: KeyObject;
  /** DER leaf certificate (the one matching the key). */
  certificate: Buffer;
  /** DER CA certificates, ordered from the leaf's issuer upwards when they chain; others after. */
  chain: Buffer[];
  friendlyName?: string;
}

interface BagMeta {
  friendlyName?: string;
  localKeyId?: Buffer;
}

interface Found {
  keys: Array<BagMeta & { key: KeyObject }>;
  certs: Array<BagMeta & { der: Buffer }>;
}

/**
 * friendlyName and localKeyId of a bag. They only label and pair bags, so an
 * attribute that does not parse (a producer writing another string type) is
 * skipped rather than failing the whole file.
 */
function readBagMeta(attributes: PKCS12Attribute[] | undefined): BagMeta {
  const meta: BagMeta = {};
  for (const a of attributes ?? []) {
    const value = a.attrValues[0];
    if (value === undefined) continue;
    try {
      if (a.attrId === id_pkcs9_at_friendlyName) meta.friendlyName = AsnConvert.parse(value, FriendlyName).value;
      else if (a.attrId === id_pkcs9_at_localKeyId) meta.localKeyId = octetStringContent(value);
    } catch {
      // unreadable label: ignored (see above)
    }
  }
  return meta;
}

function privateKeyFromPkcs8(der: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw damaged('the key bag does not hold a usable PKCS#8 private key', e);
  }
}

const MAX_SAFE_CONTENTS_DEPTH = 4;

/** Collects keys and certificates from one SafeContents (recursing into safeContentsBag). */
function collectBags(safeContents: Uint8Array, secret: Secret, found: Found, depth: number): void {
  if (depth > MAX_SAFE_CONTENTS_DEPTH) throw damaged('SafeContents nesting is too deep');
  for (const bag of parseAsn(safeContents, SafeContents, 'SafeContents')) {
    const meta = () => readBagMeta(bag.bagAttributes);
    switch (bag.bagId) {
      case id_pkcs8ShroudedKeyBag: {
        const info = parseAsn(bag.bagValue, EncryptedPrivateKeyInfo, 'the shrouded key bag');
        const pkcs8 = decrypt(info.encryptionAlgorithm, new Uint8Array(info.encryptedData.buffer), secret, 'key bag');
        found.keys.push({ ...meta(), key: privateKeyFromPkcs8(pkcs8) });
        break;
      }
      case id_keyBag:
        found.keys.push({ ...meta(), key: privateKeyFromPkcs8(Buffer.from(bag.bagValue)) });
        break;
      case id_certBag: {
        const cb = parseAsn(bag.bagValue, CertBag, 'a certificate bag');
        if (cb.certId !== id_x509Certificate) throw unsupported(`certificate type ${describeOid(cb.certId)}`);
        found.certs.push({ ...meta(), der: octetStringContent(cb.certValue) });
        break;
      }
      case id_SafeContents:
        collectBags(new Uint8Array(bag.bagValue), secret, found, depth + 1);
        break;
      default:
        break; // CRL and secret bags are not part of a delivery file: ignored, as OpenSSL does
    }
  }
}

/** The plaintext SafeContents of one AuthenticatedSafe entry. */
function safeContentsOf(ci: ContentInfo, secret: Secret): Buffer {
  if (ci.contentType === id_data) return octetStringContent(ci.content);
  if (ci.contentType !== id_encryptedData) throw unsupported(`content type ${describeOid(ci.contentType)}`);
  const ed = parseAsn(ci.content, Pkcs12EncryptedData, 'EncryptedData');
  const eci = ed.encryptedContentInfo;
  const content = eci.encryptedContent;
  const pieces = content?.value !== undefined ? [content.value] : content?.constructedValue ?? [];
  const ciphertext = Buffer.concat(pieces.map((p) => new Uint8Array(p.buffer)));
  if (ciphertext.length === 0) throw damaged('an EncryptedData has no content');
  return decrypt(eci.contentEncryptionAlgorithm, ciphertext, secret, 'certificate bag');
}

function parseCertificate(der: Buffer): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (e) {
    throw damaged('a certificate bag does not hold a valid X.509 certificate', e);
  }
}

/** Picks the leaf (the certificate for the key) and orders the rest from its issuer upwards. */
function assemble(found: Found): Pkcs12Contents {
  const [key, ...moreKeys] = found.keys;
  if (key === undefined) throw malformed('PKCS12_NO_KEY', 'the PKCS#12 file holds no private key; export it again with the key included');
  if (moreKeys.length > 0) throw unsupported(`${found.keys.length} private keys in one file (sekisho reads exactly one)`);
  const certs = found.certs.map((c) => ({ ...c, x509: parseCertificate(c.der) }));
  if (certs.length === 0) {
    throw malformed('PKCS12_NO_CERTIFICATE', 'the PKCS#12 file holds no certificate; export it again with the certificate included');
  }
  const id = key.localKeyId;
  const byId = id === undefined ? undefined : certs.find((c) => c.localKeyId?.equals(id) === true);
  const leaf = byId !== undefined && byId.x509.checkPrivateKey(key.key) ? byId : certs.find((c) => c.x509.checkPrivateKey(key.key));
  if (leaf === undefined) {
    throw badRequest('PKCS12_KEY_MISMATCH', 'no certificate in the PKCS#12 file matches its private key; export the key with its own certificate');
  }
  const rest = certs.filter((c) => c !== leaf);
  const chain: typeof certs = [];
  for (let current = leaf; ; ) {
    const issuer = rest.find((c) => !chain.includes(c) && current.x509.checkIssued(c.x509));
    if (issuer === undefined) break;
    chain.push(issuer);
    current = issuer;
  }
  chain.push(...rest.filter((c) => !chain.includes(c)));
  const friendlyName = leaf.friendlyName ?? key.friendlyName;
  return {
    privateKey: key.key,
    certificate: leaf.der,
    chain: chain.map((c) => c.der),
    ...(friendlyName === undefined ? {} : { friendlyName }),
  };
}

/**
 * Reads a PKCS#12 file: verifies the MAC with `password` (constant-time
 * compare) before decrypting anything, then returns the key, the leaf and the
 * CA chain. Wrong password → PKCS12_BAD_PASSWORD; damaged input →
 * PKCS12_MALFORMED; algorithms sekisho does not run (RC2, RC4, PBMAC1,
 * public-key modes) → PKCS12_UNSUPPORTED naming the OID.
 */
export function readPkcs12(der: Buffer, password: string): Pkcs12Contents {
  try {
    const pfx = parseAsn(der, PFX, 'PFX');
    if (pfx.version !== 3) throw damaged(`PFX version ${String(pfx.version)} (expected 3)`);
    if (pfx.authSafe.contentType !== id_data) throw unsupported(`integrity mode ${describeOid(pfx.authSafe.contentType)}`);
    const authSafe = octetStringContent(pfx.authSafe.content);
    const secret = verifyMac(pfx.macData, authSafe, password);
    const found: Found = { keys: [], certs: [] };
    for (const ci of parseAsn(authSafe, AuthenticatedSafe, 'AuthenticatedSafe')) {
      collectBags(safeContentsOf(ci, secret), secret, found, 0);
    }
    return assemble(found);
  } catch (e) {
    if (isSekishoError(e)) throw e;
    throw damaged('unexpected structure', e);
  }
}
