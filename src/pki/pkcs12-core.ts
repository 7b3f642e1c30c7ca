/**
 * The part of PKCS#12 (RFC 7292) that runs the same on the server and in the
 * portal's browser code: the ASN.1 structures, the Appendix B KDF and the
 * assembly of a delivery file. Pure: Uint8Array and @peculiar/asn1-*, no
 * Buffer and no node:crypto. The cryptography comes from a `Pkcs12Crypto`:
 * `webCryptoPkcs12` (WebCrypto, browsers and Node) here, and pkcs12.ts's
 * node:crypto one for the server (faster Appendix B hashing, and 3DES for the
 * legacy profile, which WebCrypto does not have).
 */
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
  id_certBag,
  id_pbeWithSHAAnd2_KeyTripleDES_CBC,
  id_pbeWithSHAAnd3_KeyTripleDES_CBC,
  id_pkcs8ShroudedKeyBag,
  id_x509Certificate,
} from '@peculiar/asn1-pfx';
import { badRequest } from '../errors/index.js';

// ---------------------------------------------------------------------------
// Object identifiers and hashes
// ---------------------------------------------------------------------------

export const PKCS12_OID = {
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

/** Hashes the Appendix B KDF, PBKDF2 PRFs and MACs may use, as Node's crypto names them. */
export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

export interface HashInfo {
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

export const PKCS12_HASHES: readonly HashInfo[] = [
  { name: 'sha1', oid: '1.3.14.3.2.26', hmacOid: '1.2.840.113549.2.7', outLen: 20, blockLen: 64 },
  { name: 'sha224', oid: '2.16.840.1.101.3.4.2.4', hmacOid: '1.2.840.113549.2.8', outLen: 28, blockLen: 64 },
  { name: 'sha256', oid: '2.16.840.1.101.3.4.2.1', hmacOid: '1.2.840.113549.2.9', outLen: 32, blockLen: 64 },
  { name: 'sha384', oid: '2.16.840.1.101.3.4.2.2', hmacOid: '1.2.840.113549.2.10', outLen: 48, blockLen: 128 },
  { name: 'sha512', oid: '2.16.840.1.101.3.4.2.3', hmacOid: '1.2.840.113549.2.11', outLen: 64, blockLen: 128 },
];

export function hashInfo(name: HashName): HashInfo {
  const h = PKCS12_HASHES.find((x) => x.name === name);
  if (h === undefined) throw new Error(`no hash ${name}`); // unreachable: HashName is closed
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
// Bytes
// ---------------------------------------------------------------------------

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A copy of exactly `b`'s bytes as an ArrayBuffer (what @peculiar's fields take; a Buffer's own slice() shares its pool). */
export function arrayBufferOf(b: Uint8Array): ArrayBuffer {
  return new Uint8Array(b).buffer;
}

function serialize(obj: unknown): Uint8Array {
  return new Uint8Array(AsnConvert.serialize(obj));
}

export function octetStringDer(content: Uint8Array): Uint8Array {
  return serialize(new OctetString(content));
}

/** BMPString form of a password: UTF-16BE with a two-byte zero terminator (RFC 7292 Appendix B.1). */
export function bmpPassword(password: string): Uint8Array {
  const s = `${password}\u0000`;
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[2 * i] = c >> 8;
    out[2 * i + 1] = c & 0xff;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The RFC 7292 Appendix B KDF
// ---------------------------------------------------------------------------

export type Pkcs12KdfPurpose = 1 | 2 | 3; // 1 key, 2 IV, 3 MAC key

/** One step of the KDF asked of the hash: H^iterations(data). */
export interface IteratedDigest {
  hash: HashName;
  data: Uint8Array;
  iterations: number;
}

/** Repeats `src` to fill v·⌈len/v⌉ bytes (empty for empty `src`). */
function fillBlocks(src: Uint8Array, v: number): Uint8Array {
  if (src.length === 0) return new Uint8Array(0);
  const out = new Uint8Array(v * Math.ceil(src.length / v));
  for (let i = 0; i < out.length; i++) out[i] = src[i % src.length] ?? 0;
  return out;
}

/** I_j = (I_j + B + 1) mod 2^(8v), in place, big-endian. */
function addBlock(i: Uint8Array, offset: number, b: Uint8Array, v: number): void {
  let carry = 1;
  for (let k = v - 1; k >= 0; k--) {
    const sum = (i[offset + k] ?? 0) + (b[k] ?? 0) + carry;
    i[offset + k] = sum & 0xff;
    carry = sum >> 8;
  }
}

/**
 * RFC 7292 Appendix B.2 (OpenSSL's PKCS12_key_gen_uni), generic over the
 * hash, as steps: it yields each iterated digest it needs and is given the
 * result, so the same code runs on a synchronous hash (server) or WebCrypto's
 * asynchronous one (browser). Run it with `runKdf`.
 */
export function* pkcs12KdfSteps(
  hash: HashName,
  bmpPass: Uint8Array,
  salt: Uint8Array,
  purpose: Pkcs12KdfPurpose,
  iterations: number,
  n: number,
): Generator<IteratedDigest, Uint8Array, Uint8Array> {
  const { outLen: u, blockLen: v } = hashInfo(hash);
  const d = new Uint8Array(v).fill(purpose);
  const i = concatBytes([fillBlocks(salt, v), fillBlocks(bmpPass, v)]);
  const blocks: Uint8Array[] = [];
  for (let done = 0; done < n; done += u) {
    const a = yield { hash, data: concatBytes([d, i]), iterations };
    blocks.push(a);
    if (done + u >= n) break;
    const b = fillBlocks(a, v);
    for (let off = 0; off < i.length; off += v) addBlock(i, off, b, v);
  }
  return concatBytes(blocks).subarray(0, n);
}

/** Runs KDF steps on `digest`: synchronously when every digest is, otherwise as a promise. */
export function runKdf(steps: Generator<IteratedDigest, Uint8Array, Uint8Array>, digest: (r: IteratedDigest) => Uint8Array | Promise<Uint8Array>): Uint8Array | Promise<Uint8Array> {
  let r = steps.next();
  while (!r.done) {
    const v = digest(r.value);
    if (v instanceof Promise) {
      return (async () => {
        let x = await v;
        for (;;) {
          r = steps.next(x);
          if (r.done) return r.value;
          x = await digest(r.value);
        }
      })();
    }
    r = steps.next(v);
  }
  return r.value;
}

// ---------------------------------------------------------------------------
// The cryptography a build needs
// ---------------------------------------------------------------------------

export interface Pkcs12Crypto {
  randomBytes(n: number): Uint8Array;
  /** H^iterations(data) (the Appendix B KDF's inner loop). */
  iteratedDigest(r: IteratedDigest): Uint8Array | Promise<Uint8Array>;
  pbkdf2(passwordUtf8: Uint8Array, salt: Uint8Array, iterations: number, keyLength: number, hash: 'sha256'): Promise<Uint8Array>;
  aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, plain: Uint8Array): Promise<Uint8Array>;
  /** Only for the legacy profile; absent where 3DES is not available (WebCrypto). */
  desEde3CbcEncrypt?(key: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array;
  hmac(hash: HashName, key: Uint8Array, data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

const WEB_HASH: Record<HashName, string> = { sha1: 'SHA-1', sha224: 'SHA-224', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

/** WebCrypto (`globalThis.crypto`, in browsers and Node); no 3DES, so the modern profile only. */
export const webCryptoPkcs12: Pkcs12Crypto = {
  randomBytes: (n) => globalThis.crypto.getRandomValues(new Uint8Array(n)),
  async iteratedDigest({ hash, data, iterations }) {
    const subtle = globalThis.crypto.subtle;
    let a = new Uint8Array(await subtle.digest(WEB_HASH[hash], new Uint8Array(data)));
    for (let r = 1; r < iterations; r++) a = new Uint8Array(await subtle.digest(WEB_HASH[hash], a));
    return a;
  },
  async pbkdf2(password, salt, iterations, keyLength, hash) {
    const subtle = globalThis.crypto.subtle;
    const base = await subtle.importKey('raw', new Uint8Array(password), 'PBKDF2', false, ['deriveBits']);
    return new Uint8Array(await subtle.deriveBits({ name: 'PBKDF2', salt: new Uint8Array(salt), iterations, hash: WEB_HASH[hash] }, base, keyLength * 8));
  },
  async aesCbcEncrypt(key, iv, plain) {
    const subtle = globalThis.crypto.subtle;
    const k = await subtle.importKey('raw', new Uint8Array(key), 'AES-CBC', false, ['encrypt']);
    return new Uint8Array(await subtle.encrypt({ name: 'AES-CBC', iv: new Uint8Array(iv) }, k, new Uint8Array(plain)));
  },
  async hmac(hash, key, data) {
    const subtle = globalThis.crypto.subtle;
    const k = await subtle.importKey('raw', new Uint8Array(key), { name: 'HMAC', hash: WEB_HASH[hash] }, false, ['sign']);
    return new Uint8Array(await subtle.sign('HMAC', k, new Uint8Array(data)));
  },
};

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

/**
 * Upper bound on any iteration count, written or read. It matches the range
 * `ca/config.ts` accepts for `pkcs12.iterations`, so every file sekisho can be
 * configured to write reads back. The Appendix B KDF runs in JavaScript on the
 * calling thread at about 0.7 µs per iteration (SHA-256), so a hostile file at
 * this bound costs seconds of CPU in readPkcs12.
 */
export const MAX_ITERATIONS = 10_000_000;
export const DEFAULT_ITERATIONS = 2048;
/** pkcs-9-ub-friendlyName. */
export const MAX_FRIENDLY_NAME = 255;

/**
 * The passwords a build can encode (the BMPString of the MAC and PKCS#12 PBE,
 * UTF-8 for PBES2): not empty, no NUL, no unpaired surrogate. The password
 * policy (policy/password-policy.ts) applies this rule too, so a password
 * the build would refuse is refused before anything is issued.
 */
export function checkPkcs12PasswordText(password: string): void {
  if (password.length === 0) {
    throw badRequest('PKCS12_PASSWORD_EMPTY', 'a PKCS#12 delivery file needs a password; issue one with the file');
  }
  if (password.includes('\u0000') || new TextDecoder().decode(new TextEncoder().encode(password)) !== password) {
    throw badRequest('PKCS12_PASSWORD_INVALID', 'the password contains a NUL or an unpaired surrogate; choose another password', {
      ja: 'パスワードに使えない文字（NUL 文字、または対になっていないサロゲート）が含まれています。別のパスワードにしてください。',
    });
  }
}

/**
 * Whether `c` can make the profile asked for: the legacy one needs 3DES,
 * which WebCrypto does not have (PKCS12_LEGACY_UNAVAILABLE). The portal's
 * page asks this before its CSR is sent, so the clinic never spends a
 * download on a file that cannot be made, nor gets the modern one instead.
 */
export function checkPkcs12Profile(c: Pkcs12Crypto, legacy: boolean): void {
  if (legacy && c.desEde3CbcEncrypt === undefined) throw legacyUnavailable();
}

const legacyUnavailable = () =>
  badRequest('PKCS12_LEGACY_UNAVAILABLE', 'the legacy format for old Windows (3DES) cannot be made in the browser; choose "Make the key on the server", or leave the legacy format unchecked', {
    ja: '古い Windows 用の形式（3DES）はブラウザ内では作成できません。「サーバーで鍵を作成」を選ぶか、古い Windows 用の形式のチェックを外してください。',
  });

/** The checks on a build's password, friendly name and iteration count; returns the iteration count. */
export function checkPkcs12Text(password: string, friendlyName: string, iterations: number = DEFAULT_ITERATIONS): number {
  checkPkcs12PasswordText(password);
  if (friendlyName.length === 0 || friendlyName.length > MAX_FRIENDLY_NAME) {
    throw badRequest('PKCS12_FRIENDLY_NAME_INVALID', `the friendly name must be 1 to ${MAX_FRIENDLY_NAME} characters`);
  }
  return checkPkcs12Iterations(iterations);
}

/** An iteration count a build writes (and reads back): an integer from 1 to MAX_ITERATIONS; returns it. */
export function checkPkcs12Iterations(iterations: number): number {
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw badRequest('PKCS12_ITERATIONS_INVALID', `iterations must be an integer from 1 to ${MAX_ITERATIONS}`);
  }
  return iterations;
}

function algorithm(oid: string, parameters: ArrayBuffer | null): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: oid, parameters });
}

interface Encrypted {
  algorithm: AlgorithmIdentifier;
  ciphertext: Uint8Array;
}

/** PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, as OpenSSL 3 writes it (keyLength omitted). */
async function encryptPbes2(c: Pkcs12Crypto, plain: Uint8Array, passwordUtf8: Uint8Array, iterations: number): Promise<Encrypted> {
  const salt = c.randomBytes(16);
  const iv = c.randomBytes(16);
  const key = await c.pbkdf2(passwordUtf8, salt, iterations, 32, 'sha256');
  const kdf = new Pbkdf2Params();
  kdf.salt = arrayBufferOf(salt);
  kdf.iterationCount = iterations;
  kdf.prf = algorithm(hashInfo('sha256').hmacOid, null);
  const params = new Pbes2Params();
  params.keyDerivationFunc = algorithm(PKCS12_OID.pbkdf2, AsnConvert.serialize(kdf));
  params.encryptionScheme = algorithm(PKCS12_OID.aes256Cbc, arrayBufferOf(octetStringDer(iv)));
  return {
    algorithm: algorithm(PKCS12_OID.pbes2, AsnConvert.serialize(params)),
    ciphertext: await c.aesCbcEncrypt(key, iv, plain),
  };
}

/** pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C): key and IV from the Appendix B KDF with SHA-1. */
async function encryptPkcs12Pbe3Des(c: Pkcs12Crypto, plain: Uint8Array, bmp: Uint8Array, iterations: number): Promise<Encrypted> {
  if (c.desEde3CbcEncrypt === undefined) throw legacyUnavailable();
  const salt = c.randomBytes(8);
  const digest = (r: IteratedDigest) => c.iteratedDigest(r);
  const key = await runKdf(pkcs12KdfSteps('sha1', bmp, salt, 1, iterations, 24), digest);
  const iv = await runKdf(pkcs12KdfSteps('sha1', bmp, salt, 2, iterations, 8), digest);
  const params = new Pkcs12PbeParams();
  params.salt = arrayBufferOf(salt);
  params.iterations = iterations;
  return {
    algorithm: algorithm(PKCS12_OID.pbe3Des, AsnConvert.serialize(params)),
    ciphertext: c.desEde3CbcEncrypt(key, iv, plain),
  };
}

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
function bagAttributes(friendlyName: string, localKeyId: Uint8Array): PKCS12Attribute[] {
  return [attribute(id_pkcs9_at_friendlyName, new FriendlyName(friendlyName)), attribute(id_pkcs9_at_localKeyId, new OctetString(localKeyId))];
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
function certBag(der: Uint8Array, attributes?: PKCS12Attribute[]): SafeBag {
  const bag = new CertBag({ certId: id_x509Certificate, certValue: arrayBufferOf(octetStringDer(der)) });
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
  return new ContentInfo({ contentType: id_data, content: arrayBufferOf(octets) });
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

export interface AssemblePkcs12Input {
  /** DER PKCS#8 PrivateKeyInfo (unencrypted; it is encrypted here). */
  pkcs8: Uint8Array;
  /** DER leaf certificate. */
  certificate: Uint8Array;
  /** DER CA certificates, issuing CA first, root last. */
  chain: readonly Uint8Array[];
  password: string;
  friendlyName: string;
  /** 3DES + HMAC-SHA1 for old Windows importers (needs `desEde3CbcEncrypt`). */
  legacy?: boolean;
  iterations?: number;
}

/**
 * ```asn1
 * PFX ::= SEQUENCE {
 *   version    INTEGER {v3(3)}(v3,...),
 *   authSafe   ContentInfo,      -- data: OCTET STRING (AuthenticatedSafe)
 *   macData    MacData OPTIONAL
 * }
 * AuthenticatedSafe ::= SEQUENCE OF ContentInfo
 * MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
 * ```
 * Layout as OpenSSL writes it: an encryptedData ContentInfo with the
 * certificate bags (leaf first), then a data ContentInfo with the
 * pkcs8ShroudedKeyBag. The leaf and the key carry friendlyName and
 * localKeyId (SHA-1 of the leaf DER); CA certificates carry no attributes.
 * Checks the text inputs (checkPkcs12Text); that the key belongs to the
 * certificate is the caller's to check where it can (the server does).
 */
export async function assemblePkcs12(input: AssemblePkcs12Input, c: Pkcs12Crypto): Promise<Uint8Array> {
  const iterations = checkPkcs12Text(input.password, input.friendlyName, input.iterations);
  const legacy = input.legacy === true;
  checkPkcs12Profile(c, legacy);
  const utf8 = new TextEncoder().encode(input.password);
  const bmp = bmpPassword(input.password);
  const localKeyId = await c.iteratedDigest({ hash: 'sha1', data: input.certificate, iterations: 1 });
  const attrs = bagAttributes(input.friendlyName, localKeyId);

  const certContents = serialize(new SafeContents([certBag(input.certificate, attrs), ...input.chain.map((x) => certBag(x))]));
  const encrypt = (plain: Uint8Array): Promise<Encrypted> => (legacy ? encryptPkcs12Pbe3Des(c, plain, bmp, iterations) : encryptPbes2(c, plain, utf8, iterations));
  const encryptions = Promise.all([encrypt(certContents), encrypt(input.pkcs8)]);
  // The MAC key needs only the password and salt: with a synchronous hash it is derived here while PBKDF2 runs elsewhere.
  const macHash = hashInfo(legacy ? 'sha1' : 'sha256');
  const macSalt = c.randomBytes(legacy ? 8 : 16);
  const macKey = runKdf(pkcs12KdfSteps(macHash.name, bmp, macSalt, 3, iterations, macHash.outLen), (r) => c.iteratedDigest(r));
  const [encCerts, encKey] = await encryptions;

  const authSafe = serialize(new AuthenticatedSafe([encryptedContentInfo(encCerts), dataContentInfo([shroudedKeyBag(encKey, attrs)])]));
  const mac = new MacData();
  // DigestInfo comes from @peculiar/asn1-rsa, which is not a direct dependency: use MacData's own instance.
  mac.mac.digestAlgorithm = algorithm(macHash.oid, null);
  mac.mac.digest = new OctetString(await c.hmac(macHash.name, await macKey, authSafe));
  mac.macSalt = new OctetString(macSalt);
  mac.iterations = iterations;
  const pfx = new PFX({
    version: 3,
    authSafe: new ContentInfo({ contentType: id_data, content: arrayBufferOf(octetStringDer(authSafe)) }),
    macData: mac,
  });
  return serialize(pfx);
}
