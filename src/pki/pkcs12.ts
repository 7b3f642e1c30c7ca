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
 * The structures, the KDF and the assembly are pkcs12-core.ts, shared with
 * the portal's browser code (which runs them on WebCrypto); this module runs
 * them on node:crypto and adds what only the server does: the key/certificate
 * checks and reading.
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
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { ContentInfo, id_data, id_encryptedData } from '@peculiar/asn1-cms';
import { EncryptedPrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { FriendlyName, id_pkcs9_at_friendlyName, id_pkcs9_at_localKeyId } from '@peculiar/asn1-pkcs9';
import { AuthenticatedSafe, CertBag, MacData, PFX, PKCS12Attribute, SafeContents, id_SafeContents, id_certBag, id_keyBag, id_pkcs8ShroudedKeyBag, id_x509Certificate } from '@peculiar/asn1-pfx';
import { badRequest, isSekishoError, malformed, unauthorized, type SekishoError } from '../errors/index.js';
import {
  assemblePkcs12,
  bmpPassword as bmpPasswordBytes,
  checkPkcs12Text,
  hashInfo,
  MAX_ITERATIONS,
  Pbes2Params,
  Pbkdf2Params,
  PKCS12_HASHES,
  PKCS12_OID as OID,
  Pkcs12EncryptedData,
  Pkcs12PbeParams,
  pkcs12KdfSteps,
  runKdf,
  type HashInfo,
  type HashName,
  type IteratedDigest,
  type Pkcs12Crypto,
  type Pkcs12KdfPurpose,
} from './pkcs12-core.js';

export { Pbkdf2Params, Pbes2Params, Pkcs12PbeParams, Pkcs12EncryptedData, type HashName, type Pkcs12KdfPurpose } from './pkcs12-core.js';

const pbkdf2Async = promisify(pbkdf2);

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

function hashByDigestOid(oid: string): HashInfo {
  const h = PKCS12_HASHES.find((x) => x.oid === oid);
  if (h === undefined) throw unsupported(`MAC digest ${describeOid(oid)}`);
  return h;
}

function hashByHmacOid(oid: string): HashInfo {
  const h = PKCS12_HASHES.find((x) => x.hmacOid === oid);
  if (h === undefined) throw unsupported(`PBKDF2 pseudo-random function ${describeOid(oid)}`);
  return h;
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

// ---------------------------------------------------------------------------
// Passwords and the RFC 7292 Appendix B KDF on node:crypto
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
  const b = bmpPasswordBytes(password);
  return Buffer.from(b.buffer, b.byteOffset, b.length);
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

/** H^iterations(data) on node:crypto's one-shot hash (synchronous: the KDF's thousands of tiny hashes cost less than a thread hop each). */
function iteratedDigest(r: IteratedDigest): Buffer {
  let a = digest(r.hash, r.data);
  for (let i = 1; i < r.iterations; i++) a = digest(r.hash, a);
  return a;
}

/**
 * RFC 7292 Appendix B.2: derives `n` bytes for `purpose` from the BMPString
 * password, generic over the hash (OpenSSL's PKCS12_key_gen_uni); the steps
 * are pkcs12-core.ts's, run synchronously here.
 */
export function pkcs12Kdf(
  hash: HashName,
  bmpPass: Uint8Array,
  salt: Uint8Array,
  purpose: Pkcs12KdfPurpose,
  iterations: number,
  n: number,
): Buffer {
  const out = runKdf(pkcs12KdfSteps(hash, bmpPass, salt, purpose, iterations, n), iteratedDigest) as Uint8Array;
  return Buffer.from(out.buffer, out.byteOffset, out.length);
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

function cbcEncrypt(cipher: string, key: Uint8Array, iv: Uint8Array, plain: Uint8Array): Buffer {
  const c = createCipheriv(cipher, key, iv);
  return Buffer.concat([c.update(plain), c.final()]);
}

/** Throws (any error) on a wrong key: callers decide what that means. */
function cbcDecrypt(cipher: string, key: Buffer, iv: Buffer, data: Uint8Array): Buffer {
  const d = createDecipheriv(cipher, key, iv);
  return Buffer.concat([d.update(data), d.final()]);
}

/** pkcs12-core's cryptography on node:crypto: PBKDF2 on the thread pool, the Appendix B hashing on this thread, 3DES for the legacy profile. */
const nodePkcs12Crypto: Pkcs12Crypto = {
  randomBytes: (n) => randomBytes(n),
  iteratedDigest,
  pbkdf2: (password, salt, iterations, keyLength, hash) => pbkdf2Async(password, salt, iterations, keyLength, hash),
  aesCbcEncrypt: async (key, iv, plain) => cbcEncrypt(`aes-${key.length * 8}-cbc`, key, iv, plain),
  desEde3CbcEncrypt: (key, iv, plain) => cbcEncrypt('des-ede3-cbc', key, iv, plain),
  hmac: (hash, key, data) => createHmac(hash, key).update(data).digest(),
};

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

/** The server's checks beyond pkcs12-core's text checks: the certificates parse and the key belongs to the leaf. */
function checkBuildInput(input: BuildPkcs12Input): { leaf: X509Certificate; iterations: number } {
  const iterations = checkPkcs12Text(input.password, input.friendlyName, input.iterations);
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

/** Writes a delivery file (layout and profiles: pkcs12-core.ts assemblePkcs12) after the server's checks. */
export async function buildPkcs12(input: BuildPkcs12Input): Promise<Buffer> {
  const { iterations } = checkBuildInput(input);
  const pkcs8 = input.privateKey.export({ type: 'pkcs8', format: 'der' });
  const pfx = await assemblePkcs12(
    { pkcs8, certificate: input.certificate, chain: input.chain, password: input.password, friendlyName: input.friendlyName, legacy: input.legacy === true, iterations },
    nodePkcs12Crypto,
  );
  return Buffer.from(pfx.buffer, pfx.byteOffset, pfx.length);
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
