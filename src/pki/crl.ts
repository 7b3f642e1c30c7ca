/**
 * X.509 v2 CRLs (RFC 5280 §5), written straight into one preallocated buffer
 * so that a million entries take well under a second: one pass measures and
 * validates the entries, a second writes them; nothing per entry is allocated.
 *
 * ```asn1
 * CertificateList  ::=  SEQUENCE  {
 *      tbsCertList          TBSCertList,
 *      signatureAlgorithm   AlgorithmIdentifier,
 *      signatureValue       BIT STRING  }
 *
 * TBSCertList  ::=  SEQUENCE  {
 *      version                 Version OPTIONAL,  -- if present, MUST be v2 (INTEGER 1)
 *      signature               AlgorithmIdentifier,
 *      issuer                  Name,
 *      thisUpdate              Time,
 *      nextUpdate              Time OPTIONAL,
 *      revokedCertificates     SEQUENCE OF SEQUENCE  {
 *           userCertificate         CertificateSerialNumber,
 *           revocationDate          Time,
 *           crlEntryExtensions      Extensions OPTIONAL  -- if present, version MUST be v2
 *                                }  OPTIONAL,
 *      crlExtensions           [0]  EXPLICIT Extensions OPTIONAL }
 * ```
 */
import { verify, type KeyObject } from 'node:crypto';
import { badRequest, internal, malformed } from '../errors/index.js';
import {
  TAG,
  bigintToUnsigned,
  bitString,
  contextExplicit,
  contextPrimitive,
  decodeInteger,
  decodeTime,
  decodeOid,
  expectTlv,
  integerFromUnsigned,
  octetString,
  oid,
  readTlv,
  sequence,
  time,
  timeSize,
  tlvSize,
  unsignedIntegerContentLength,
  writeLength,
  writeTime,
  type Tlv,
} from './der.js';
import { REVOCATION_REASON_CODES, reasonFromCode, type RevocationReason } from './revocation-reason.js';
import { SHA2_SIGNATURE_HASH, SIGNATURE_ALGORITHM_DER, type Signer } from './signer.js';

/**
 * One revoked certificate.
 *
 * ```asn1
 * SEQUENCE {
 *      userCertificate    CertificateSerialNumber,   -- INTEGER, positive, at most 20 octets
 *      revocationDate     Time,
 *      crlEntryExtensions Extensions OPTIONAL }      -- here only reasonCode
 * ```
 */
export interface RevokedEntry {
  /** The certificate's serial as unsigned big-endian bytes (leading zeros are dropped, a 0x00 is added when the top bit is set). */
  serial: Buffer;
  revokedAt: Date;
  /** Written as the reasonCode entry extension, except `unspecified`, which RFC 5280 §5.3.1 says to omit. */
  reason?: RevocationReason;
}

/** What a full (non-delta) v2 CRL is built from. See the module comment for the ASN.1. */
export interface CrlInput {
  /** The issuer Name as DER, byte-for-byte the CA certificate's subject (RFC 5280 §5.1.2.3). */
  issuer: Buffer;
  /** Signs TBSCertList; its algorithm gives both AlgorithmIdentifiers. */
  signer: Signer;
  /** The keyIdentifier of the CA certificate's subjectKeyIdentifier (RFC 5280 §5.2.1). */
  authorityKeyIdentifier: Buffer;
  /** Monotonically increasing per CA, non-negative, at most 20 octets (RFC 5280 §5.2.3). */
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Each serial at most once; order is kept as given. */
  entries: Iterable<RevokedEntry>;
}

/** id-ce-authorityKeyIdentifier, id-ce-cRLNumber, id-ce-cRLReasons (RFC 5280 §4.2.1.1, §5.2.3, §5.3.1). */
export const OID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
export const OID_CRL_NUMBER = '2.5.29.20';
export const OID_CRL_REASON = '2.5.29.21';

/** `version Version` = v2, i.e. `INTEGER 1`. */
const VERSION_V2 = Buffer.from([TAG.INTEGER, 1, 1]);

/**
 * crlEntryExtensions holding only reasonCode, less its last byte (the code):
 * `SEQUENCE { SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED code } } }`
 * (non-critical, so `critical` is absent as DER requires for a default).
 */
const REASON_EXTENSIONS_PREFIX = Buffer.from('300c300a0603551d1504030a01', 'hex');
const REASON_EXTENSIONS_SIZE = REASON_EXTENSIONS_PREFIX.length + 1;

/** Marks "no reasonCode extension" in the per-entry reason table. */
const NO_REASON = 0xff;
const REMOVE_FROM_CRL = REVOCATION_REASON_CODES.removeFromCRL;
const MAX_SERIAL_CONTENT = 20;

function serialHex(serial: Uint8Array): string {
  return Buffer.from(serial.buffer, serial.byteOffset, serial.byteLength).toString('hex').toUpperCase() || '(empty)';
}

/** Content length of the serial's INTEGER; refuses zero, and more than 20 octets (RFC 5280 §4.1.2.2). */
function serialContentLength(serial: unknown, index: number): number {
  if (!(serial instanceof Uint8Array)) throw malformed('CRL_ENTRY_SERIAL_INVALID', `CRL entry ${index} has no serial bytes; pass the serial as a Buffer of unsigned big-endian bytes`);
  let i = 0;
  while (i < serial.length && serial[i] === 0) i++;
  if (i === serial.length) throw malformed('CRL_ENTRY_SERIAL_INVALID', `CRL entry ${index} has serial ${serialHex(serial)}, which is zero; serial numbers are positive`);
  const len = unsignedIntegerContentLength(serial);
  if (len > MAX_SERIAL_CONTENT) {
    throw malformed('CRL_ENTRY_SERIAL_INVALID', `CRL entry ${index} has serial ${serialHex(serial)}, which needs ${len} octets; RFC 5280 allows at most ${MAX_SERIAL_CONTENT}`);
  }
  return len;
}

function entryTimeMs(e: RevokedEntry, index: number): number {
  const d = e.revokedAt;
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(ms)) {
    throw malformed('CRL_ENTRY_DATE_INVALID', `CRL entry ${index} (serial ${serialHex(e.serial)}) has no valid revocation date`);
  }
  return ms;
}

function entryReasonCode(e: RevokedEntry, index: number): number {
  const r = e.reason;
  if (r === undefined || r === 'unspecified') return NO_REASON;
  const code = (REVOCATION_REASON_CODES as Record<string, number | undefined>)[r];
  if (code === undefined) {
    throw badRequest('REVOCATION_REASON_UNKNOWN', `CRL entry ${index} (serial ${serialHex(e.serial)}) has unknown revocation reason "${String(r)}"`);
  }
  if (code === REMOVE_FROM_CRL) {
    throw badRequest('REVOCATION_REASON_NOT_FOR_REVOKE', `CRL entry ${index} (serial ${serialHex(e.serial)}) has reason removeFromCRL, which only belongs in a delta CRL; drop the entry from the full CRL instead`);
  }
  return code;
}

/** Size of one revokedCertificates element's content. Always below 128 (at most 23 + 17 + 14). */
function entryContentSize(serialLen: number, ms: number, code: number): number {
  return 2 + serialLen + timeSize(ms) + (code === NO_REASON ? 0 : REASON_EXTENSIONS_SIZE);
}

/** Pass one: validates every entry and returns the total size of the revokedCertificates content plus each entry's reason code. */
function measureEntries(list: readonly RevokedEntry[]): { size: number; codes: Uint8Array } {
  const codes = new Uint8Array(list.length);
  let size = 0;
  for (let i = 0; i < list.length; i++) {
    const e = list[i] as RevokedEntry;
    if (e === null || typeof e !== 'object') throw malformed('CRL_ENTRY_INVALID', `CRL entry ${i} is not an object with serial and revokedAt`);
    const code = entryReasonCode(e, i);
    codes[i] = code;
    size += 2 + entryContentSize(serialContentLength(e.serial, i), entryTimeMs(e, i), code);
  }
  return { size, codes };
}

/** Pass two: writes the revokedCertificates elements at `off`; returns the next offset. */
function writeEntries(buf: Buffer, off: number, list: readonly RevokedEntry[], codes: Uint8Array): number {
  const prefix = REASON_EXTENSIONS_PREFIX;
  const prefixLen = prefix.length;
  for (let i = 0; i < list.length; i++) {
    const e = list[i] as RevokedEntry;
    const serial = e.serial;
    const ms = e.revokedAt.getTime();
    const code = codes[i] as number;
    const serialLen = unsignedIntegerContentLength(serial);
    buf[off++] = TAG.SEQUENCE;
    buf[off++] = entryContentSize(serialLen, ms, code);
    // userCertificate INTEGER: strip leading zeros, pad 0x00 under a set top bit.
    buf[off++] = TAG.INTEGER;
    buf[off++] = serialLen;
    let j = 0;
    while (serial[j] === 0) j++;
    if ((serial[j] as number) >= 0x80) buf[off++] = 0;
    for (const end = serial.length; j < end; j++) buf[off++] = serial[j] as number;
    off = writeTime(buf, off, ms);
    if (code !== NO_REASON) {
      for (let k = 0; k < prefixLen; k++) buf[off++] = prefix[k] as number;
      buf[off++] = code;
    }
  }
  return off;
}

/**
 * `Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`,
 * non-critical (DER leaves the default out).
 */
function extension(id: string, value: Buffer): Buffer {
  return sequence(oid(id), octetString(value));
}

/**
 * `crlExtensions [0] EXPLICIT Extensions` with
 * `AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] KeyIdentifier OPTIONAL, … }` and
 * `CRLNumber ::= INTEGER (0..MAX)`.
 */
function crlExtensions(keyId: Buffer, crlNumber: Buffer): Buffer {
  return contextExplicit(
    0,
    sequence(
      extension(OID_AUTHORITY_KEY_IDENTIFIER, sequence(contextPrimitive(0, keyId))),
      extension(OID_CRL_NUMBER, integerFromUnsigned(crlNumber)),
    ),
  );
}

function checkedMs(d: unknown, what: string): number {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(ms)) throw malformed('CRL_DATE_INVALID', `the CRL's ${what} is not a valid Date`);
  return ms;
}

function checkIssuer(issuer: Buffer): void {
  let ok = false;
  try {
    const t = readTlv(issuer, 0);
    ok = t.tag === TAG.SEQUENCE && t.end === issuer.length;
  } catch {
    ok = false;
  }
  if (!ok) throw malformed('CRL_ISSUER_INVALID', "the CRL issuer must be one DER Name (a SEQUENCE): copy the CA certificate's subject bytes");
}

/** The fixed, validated parts of the TBSCertList. */
function headerParts(input: CrlInput): { prefix: Buffer; extensions: Buffer; signatureAlgorithm: Buffer } {
  const signatureAlgorithm = SIGNATURE_ALGORITHM_DER[input.signer.algorithm];
  if (signatureAlgorithm === undefined) throw badRequest('SIGNATURE_ALGORITHM_UNSUPPORTED', `the signer's algorithm "${String(input.signer.algorithm)}" has no AlgorithmIdentifier here`);
  checkIssuer(input.issuer);
  if (!(input.authorityKeyIdentifier instanceof Uint8Array) || input.authorityKeyIdentifier.length === 0) {
    throw badRequest('CRL_AKI_MISSING', "a CRL needs the CA's key identifier (its subjectKeyIdentifier) for authorityKeyIdentifier (RFC 5280 §5.2.1)");
  }
  if (typeof input.crlNumber !== 'bigint' || input.crlNumber < 0n) throw badRequest('CRL_NUMBER_INVALID', `the CRL number must be a non-negative bigint, not ${String(input.crlNumber)}`);
  const crlNumber = bigintToUnsigned(input.crlNumber);
  if (unsignedIntegerContentLength(crlNumber) > 20) throw badRequest('CRL_NUMBER_INVALID', `CRL number ${input.crlNumber} needs more than the 20 octets RFC 5280 §5.2.3 allows`);
  const thisMs = checkedMs(input.thisUpdate, 'thisUpdate');
  const nextMs = checkedMs(input.nextUpdate, 'nextUpdate');
  if (Math.floor(nextMs / 1000) <= Math.floor(thisMs / 1000)) {
    throw badRequest('CRL_NEXT_UPDATE_NOT_AFTER_THIS_UPDATE', `nextUpdate (${input.nextUpdate.toISOString()}) must be later than thisUpdate (${input.thisUpdate.toISOString()})`);
  }
  const prefix = Buffer.concat([VERSION_V2, signatureAlgorithm, input.issuer, time(input.thisUpdate), time(input.nextUpdate)]);
  return { prefix, extensions: crlExtensions(input.authorityKeyIdentifier, crlNumber), signatureAlgorithm };
}

/** The DER TBSCertList (what the signer signs). */
export function buildTbsCertList(input: CrlInput): Buffer {
  const { prefix, extensions } = headerParts(input);
  const list: readonly RevokedEntry[] = Array.isArray(input.entries) ? input.entries : Array.from(input.entries);
  const { size: entriesSize, codes } = measureEntries(list);
  const revokedSize = list.length === 0 ? 0 : tlvSize(entriesSize);
  const contentSize = prefix.length + revokedSize + extensions.length;
  const tbs = Buffer.allocUnsafe(tlvSize(contentSize));
  tbs[0] = TAG.SEQUENCE;
  let off = writeLength(tbs, 1, contentSize);
  off += prefix.copy(tbs, off);
  if (list.length > 0) {
    tbs[off++] = TAG.SEQUENCE;
    off = writeLength(tbs, off, entriesSize);
    off = writeEntries(tbs, off, list, codes);
  }
  off += extensions.copy(tbs, off);
  if (off !== tbs.length) throw internal('CRL_SIZE_MISMATCH', `the CRL was measured at ${tbs.length} bytes but ${off} were written`);
  return tbs;
}

/**
 * Builds and signs a full v2 CRL; returns the DER CertificateList. Linear in
 * the number of entries. Extensions: authorityKeyIdentifier and cRLNumber
 * (both non-critical); each entry carries reasonCode unless its reason is
 * absent or unspecified. With no entries, revokedCertificates is left out.
 */
export async function buildCrl(input: CrlInput): Promise<Buffer> {
  const tbs = buildTbsCertList(input);
  const signatureAlgorithm = SIGNATURE_ALGORITHM_DER[input.signer.algorithm];
  const signature = bitString(await input.signer.sign(tbs));
  const contentSize = tbs.length + signatureAlgorithm.length + signature.length;
  const out = Buffer.allocUnsafe(tlvSize(contentSize));
  out[0] = TAG.SEQUENCE;
  let off = writeLength(out, 1, contentSize);
  off += tbs.copy(out, off);
  off += signatureAlgorithm.copy(out, off);
  off += signature.copy(out, off);
  if (off !== out.length) throw internal('CRL_SIZE_MISMATCH', `the CertificateList was measured at ${out.length} bytes but ${off} were written`);
  return out;
}

/** PEM with the label `X509 CRL` (RFC 7468 §6), base64 in 64-character lines. */
export function crlToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = ['-----BEGIN X509 CRL-----'];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  lines.push('-----END X509 CRL-----', '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Reading back (tests, inspection)
// ---------------------------------------------------------------------------

/** What `parseCrlSummary` reports. Serials are uppercase hex of the positive value, as openssl prints them. */
export interface CrlSummary {
  /** The cRLNumber extension, if present. */
  crlNumber: bigint | undefined;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** The issuer Name DER. */
  issuer: Buffer;
  /** Number of revokedCertificates entries. */
  count: number;
  /** With `{ entries: true }`: every serial, in order. */
  serials?: string[];
  /** With `{ entries: true }`: serial → reason, for entries with a reasonCode extension. */
  reasons?: Map<string, RevocationReason>;
  /** With `{ entries: true }`: serial → revocationDate. */
  revokedAt?: Map<string, Date>;
}

const OID_CRL_NUMBER_CONTENT = Buffer.from('551d14', 'hex');
const OID_CRL_REASON_CONTENT = Buffer.from('551d15', 'hex');

function isTime(tag: number): boolean {
  return tag === TAG.UTC_TIME || tag === TAG.GENERALIZED_TIME;
}

/** Walks `Extensions ::= SEQUENCE OF Extension`, calling `visit(extnID content, extnValue content)` for each. */
function forEachExtension(der: Buffer, exts: Tlv, visit: (id: Buffer, value: Buffer) => void): void {
  for (let off = exts.start; off < exts.end; ) {
    const ext = expectTlv(der, off, TAG.SEQUENCE, 'Extension', exts.end);
    const id = expectTlv(der, ext.start, TAG.OID, 'extnID', ext.end);
    let next = readTlv(der, id.end, ext.end);
    if (next.tag === TAG.BOOLEAN) next = readTlv(der, next.end, ext.end);
    if (next.tag !== TAG.OCTET_STRING) throw malformed('CRL_EXTENSION_INVALID', `the extension at byte ${ext.offset} has no extnValue OCTET STRING`);
    visit(der.subarray(id.start, id.end), der.subarray(next.start, next.end));
    off = ext.end;
  }
}

function positiveHex(content: Buffer): string {
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  return content.subarray(i).toString('hex').toUpperCase();
}

/**
 * Reads a DER CertificateList in one linear pass with the small reader in
 * der.ts (asn1-schema builds an object per entry and is far slower on large
 * lists). Does not check the signature.
 */
export function parseCrlSummary(
  der: Buffer,
  options: {
    entries?: boolean;
    /** Called with each entry's serial as a range of `der` (the INTEGER's content bytes), without building a string or object per entry. */
    onSerial?: (der: Buffer, start: number, end: number) => void;
  } = {},
): CrlSummary {
  const cl = expectTlv(der, 0, TAG.SEQUENCE, 'CertificateList');
  if (cl.end !== der.length) throw malformed('CRL_TRAILING_DATA', `the CRL has ${der.length - cl.end} bytes after its end`);
  const tbs = expectTlv(der, cl.start, TAG.SEQUENCE, 'TBSCertList', cl.end);
  let t = readTlv(der, tbs.start, tbs.end);
  if (t.tag === TAG.INTEGER) t = readTlv(der, t.end, tbs.end); // version
  if (t.tag !== TAG.SEQUENCE) throw malformed('CRL_INVALID', 'TBSCertList has no signature AlgorithmIdentifier');
  const issuerTlv = expectTlv(der, t.end, TAG.SEQUENCE, 'issuer Name', tbs.end);
  const issuer = Buffer.from(der.subarray(issuerTlv.offset, issuerTlv.end));
  t = readTlv(der, issuerTlv.end, tbs.end);
  if (!isTime(t.tag)) throw malformed('CRL_INVALID', 'TBSCertList has no thisUpdate');
  const thisUpdate = decodeTime(t.tag, der.subarray(t.start, t.end));
  let nextUpdate: Date | undefined;
  let off = t.end;
  let crlNumber: bigint | undefined;
  let count = 0;
  const want = options.entries === true;
  const serials: string[] = [];
  const reasons = new Map<string, RevocationReason>();
  const revokedAt = new Map<string, Date>();
  while (off < tbs.end) {
    t = readTlv(der, off, tbs.end);
    if (isTime(t.tag) && nextUpdate === undefined && count === 0) {
      nextUpdate = decodeTime(t.tag, der.subarray(t.start, t.end));
    } else if (t.tag === TAG.SEQUENCE) {
      for (let e = t.start; e < t.end; ) {
        const entry = expectTlv(der, e, TAG.SEQUENCE, 'revoked certificate', t.end);
        count++;
        if (options.onSerial) {
          const serial = expectTlv(der, entry.start, TAG.INTEGER, 'userCertificate', entry.end);
          options.onSerial(der, serial.start, serial.end);
        }
        if (want) {
          const serial = expectTlv(der, entry.start, TAG.INTEGER, 'userCertificate', entry.end);
          const hex = positiveHex(der.subarray(serial.start, serial.end));
          serials.push(hex);
          const date = readTlv(der, serial.end, entry.end);
          revokedAt.set(hex, decodeTime(date.tag, der.subarray(date.start, date.end)));
          if (date.end < entry.end) {
            forEachExtension(der, expectTlv(der, date.end, TAG.SEQUENCE, 'crlEntryExtensions', entry.end), (id, value) => {
              if (!id.equals(OID_CRL_REASON_CONTENT)) return;
              const en = expectTlv(value, 0, TAG.ENUMERATED, 'CRLReason');
              const r = reasonFromCode(Number(decodeInteger(value.subarray(en.start, en.end))));
              if (r !== undefined) reasons.set(hex, r);
            });
          }
        }
        e = entry.end;
      }
    } else if (t.tag === 0xa0) {
      forEachExtension(der, expectTlv(der, t.start, TAG.SEQUENCE, 'crlExtensions', t.end), (id, value) => {
        if (!id.equals(OID_CRL_NUMBER_CONTENT)) return;
        const n = expectTlv(value, 0, TAG.INTEGER, 'CRLNumber');
        crlNumber = decodeInteger(value.subarray(n.start, n.end));
      });
    } else {
      throw malformed('CRL_INVALID', `unexpected tag 0x${t.tag.toString(16)} at byte ${t.offset} in TBSCertList`);
    }
    off = t.end;
  }
  const summary: CrlSummary = { crlNumber, thisUpdate, nextUpdate, issuer, count };
  if (want) Object.assign(summary, { serials, reasons, revokedAt });
  return summary;
}

/**
 * Checks a CRL's signature with its issuer's public key. Only SHA-2
 * signatures count: a CRL signed with SHA-1 or anything else is refused
 * (CRL_SIGNATURE_ALGORITHM), a bad signature too (CRL_SIGNATURE_INVALID).
 */
export function verifyCrlSignature(der: Buffer, issuerKey: KeyObject): void {
  const cl = expectTlv(der, 0, TAG.SEQUENCE, 'CertificateList');
  const tbs = expectTlv(der, cl.start, TAG.SEQUENCE, 'TBSCertList', cl.end);
  const alg = expectTlv(der, tbs.end, TAG.SEQUENCE, 'signatureAlgorithm', cl.end);
  const algOid = expectTlv(der, alg.start, TAG.OID, 'signature algorithm OID', alg.end);
  const sig = expectTlv(der, alg.end, TAG.BIT_STRING, 'signatureValue', cl.end);
  const algorithm = decodeOid(der.subarray(algOid.start, algOid.end));
  const hash = SHA2_SIGNATURE_HASH[algorithm];
  if (!hash) throw malformed('CRL_SIGNATURE_ALGORITHM', `the CRL is signed with ${algorithm}; only SHA-2 RSA or ECDSA signatures are accepted`);
  const ok = verify(hash, der.subarray(tbs.offset, tbs.end), issuerKey, der.subarray(sig.start + 1, sig.end));
  if (!ok) throw malformed('CRL_SIGNATURE_INVALID', 'the CRL signature does not verify with the issuing CA key; the file is damaged or not from this CA');
}
