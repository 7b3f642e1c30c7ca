/**
 * A small DER (X.690) writer and reader for hot paths: CRLs with a million
 * entries, OCSP responses. Pure functions over Buffer; no ASN.1 object model.
 *
 * Two styles: `tlv`, `sequence`, `integerFromUnsigned`, … return a fresh
 * Buffer (for the few fixed fields of a structure); `writeLength`,
 * `writeUnsignedInteger`, `writeTime` write into a caller's preallocated
 * Buffer at an offset and return the next offset (for the repeated part).
 * Only low tag numbers (< 31) and definite lengths are supported, which is all
 * X.509 needs.
 */
import { malformed } from '../errors/index.js';

/** Universal tags used here (X.680 §8.4). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---------------------------------------------------------------------------
// Lengths
// ---------------------------------------------------------------------------

/**
 * Bytes the DER length octets take for a content length (X.690 §8.1.3, §10.1:
 * short form below 128, otherwise 0x80|k followed by k big-endian bytes).
 */
export function lengthOfLength(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw malformed('DER_LENGTH_INVALID', `a DER length must be an integer in 0..2^32-1, not ${n}`);
  if (n < 0x80) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  if (n < 0x1000000) return 4;
  return 5;
}

/** Total size of a TLV with one-byte tag and `contentLength` content bytes. */
export function tlvSize(contentLength: number): number {
  return 1 + lengthOfLength(contentLength) + contentLength;
}

/** Writes the DER length octets of `n` at `off`; returns the next offset. */
export function writeLength(buf: Buffer, off: number, n: number): number {
  const k = lengthOfLength(n);
  if (k === 1) {
    buf[off] = n;
    return off + 1;
  }
  buf[off++] = 0x80 | (k - 1);
  for (let i = k - 2; i >= 0; i--) buf[off++] = Math.floor(n / 2 ** (8 * i)) & 0xff;
  return off;
}

/** The DER length octets of `n` (`0x7f` → `7f`, `0x80` → `81 80`, `0x100` → `82 01 00`). */
export function encodeLength(n: number): Buffer {
  const b = Buffer.allocUnsafe(lengthOfLength(n));
  writeLength(b, 0, n);
  return b;
}

// ---------------------------------------------------------------------------
// Generic TLV and constructed types
// ---------------------------------------------------------------------------

function concatParts(content: Uint8Array | readonly Uint8Array[]): Uint8Array {
  return content instanceof Uint8Array ? content : Buffer.concat(content);
}

/** Any single TLV: `tag length content` (one-byte tag, definite length). */
export function tlv(tag: number, content: Uint8Array | readonly Uint8Array[]): Buffer {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff || (tag & 0x1f) === 0x1f) {
    throw malformed('DER_TAG_INVALID', `tag 0x${tag.toString(16)} is not a one-byte low-tag-number identifier`);
  }
  const c = concatParts(content);
  const out = Buffer.allocUnsafe(tlvSize(c.length));
  out[0] = tag;
  const off = writeLength(out, 1, c.length);
  out.set(c, off);
  return out;
}

/** `SEQUENCE { parts… }`: the parts are already-encoded TLVs, in order. */
export function sequence(...parts: Uint8Array[]): Buffer {
  return tlv(TAG.SEQUENCE, parts);
}

/** `SET { parts… }` (the caller orders the parts: DER sorts SET OF by encoding). */
export function set(...parts: Uint8Array[]): Buffer {
  return tlv(TAG.SET, parts);
}

function checkTagNumber(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw malformed('DER_TAG_INVALID', `context tag number ${n} is not in 0..30`);
}

/** `[n] EXPLICIT T`: constructed context tag 0xa0|n wrapping the TLV(s) of T. */
export function contextExplicit(n: number, ...parts: Uint8Array[]): Buffer {
  checkTagNumber(n);
  return tlv(0xa0 | n, parts);
}

/** `[n] IMPLICIT T` for a primitive T (e.g. KeyIdentifier ::= OCTET STRING): tag 0x80|n, T's content bytes. */
export function contextPrimitive(n: number, content: Uint8Array): Buffer {
  checkTagNumber(n);
  return tlv(0x80 | n, content);
}

/** `[n] IMPLICIT T` for a constructed T (SEQUENCE, SET): tag 0xa0|n, T's content bytes. */
export function contextConstructed(n: number, content: Uint8Array | readonly Uint8Array[]): Buffer {
  checkTagNumber(n);
  return tlv(0xa0 | n, content);
}

// ---------------------------------------------------------------------------
// Primitive types
// ---------------------------------------------------------------------------

/** `OCTET STRING`. */
export function octetString(content: Uint8Array): Buffer {
  return tlv(TAG.OCTET_STRING, content);
}

/** `BIT STRING` whose first content byte is the number of unused bits in the last byte (0 for keys and signatures). */
export function bitString(bits: Uint8Array, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bits.length === 0 && unusedBits !== 0)) {
    throw malformed('DER_BIT_STRING_INVALID', `a BIT STRING cannot have ${unusedBits} unused bits over ${bits.length} bytes`);
  }
  const out = Buffer.allocUnsafe(tlvSize(bits.length + 1));
  out[0] = TAG.BIT_STRING;
  let off = writeLength(out, 1, bits.length + 1);
  out[off++] = unusedBits;
  out.set(bits, off);
  return out;
}

/** `BOOLEAN` (DER: TRUE is 0xff). */
export function boolean(value: boolean): Buffer {
  return Buffer.from([TAG.BOOLEAN, 1, value ? 0xff : 0x00]);
}

/** `NULL` (05 00), e.g. the RSA AlgorithmIdentifier parameters. */
export function nullValue(): Buffer {
  return Buffer.from([TAG.NULL, 0]);
}

/** Index of the first byte that is not a redundant leading zero of an unsigned big-endian value (keeps at least one byte). */
function firstSignificant(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return i;
}

/**
 * Content length of `INTEGER` holding the unsigned big-endian value `bytes`:
 * leading zeros stripped, plus one 0x00 when the top bit of the first
 * remaining byte is set (so the value stays positive). Zero encodes as `00`.
 */
export function unsignedIntegerContentLength(bytes: Uint8Array): number {
  if (bytes.length === 0) return 1;
  const i = firstSignificant(bytes);
  return bytes.length - i + ((bytes[i] as number) >= 0x80 ? 1 : 0);
}

/** Writes the `INTEGER` TLV of the unsigned big-endian value `bytes` at `off`; returns the next offset. */
export function writeUnsignedInteger(buf: Buffer, off: number, bytes: Uint8Array): number {
  const len = unsignedIntegerContentLength(bytes);
  buf[off++] = TAG.INTEGER;
  off = writeLength(buf, off, len);
  if (bytes.length === 0) {
    buf[off] = 0;
    return off + 1;
  }
  let i = firstSignificant(bytes);
  if ((bytes[i] as number) >= 0x80) buf[off++] = 0;
  // A loop beats Buffer#set for the ~9-byte serials this sees a million times.
  for (const end = bytes.length; i < end; i++) buf[off++] = bytes[i] as number;
  return off;
}

/** `INTEGER` from an unsigned big-endian byte string (a serial number, a CRL number). */
export function integerFromUnsigned(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(tlvSize(unsignedIntegerContentLength(bytes)));
  writeUnsignedInteger(out, 0, bytes);
  return out;
}

/** Minimal unsigned big-endian bytes of a non-negative bigint (0n → `00`). */
export function bigintToUnsigned(n: bigint): Buffer {
  if (n < 0n) throw malformed('DER_INTEGER_NEGATIVE', `expected a non-negative integer, got ${n}`);
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
}

/** `INTEGER` of a non-negative bigint. */
export function integerFromBigInt(n: bigint): Buffer {
  return integerFromUnsigned(bigintToUnsigned(n));
}

/** `ENUMERATED` of a non-negative value (encoded like INTEGER, tag 0x0a). */
export function enumerated(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw malformed('DER_ENUMERATED_INVALID', `ENUMERATED value ${value} must be a non-negative integer`);
  const b = integerFromBigInt(BigInt(value));
  b[0] = TAG.ENUMERATED;
  return b;
}

/** Content octets of an OBJECT IDENTIFIER in dotted form (X.690 §8.19: first two arcs as 40·a+b, base-128 arcs). */
export function oidContent(dotted: string): Buffer {
  const arcs = dotted.split('.');
  if (arcs.length < 2 || arcs.some((a) => !/^(0|[1-9][0-9]*)$/.test(a))) {
    throw malformed('DER_OID_INVALID', `"${dotted}" is not a dotted object identifier such as 2.5.29.20`);
  }
  const values = arcs.map((a) => BigInt(a));
  const [first, second] = values as [bigint, bigint];
  if (first > 2n || (first < 2n && second > 39n)) {
    throw malformed('DER_OID_INVALID', `"${dotted}": the first arc must be 0, 1 or 2, and the second below 40 unless the first is 2`);
  }
  const out: number[] = [];
  for (const v of [first * 40n + second, ...values.slice(2)]) {
    const groups: number[] = [Number(v & 0x7fn)];
    for (let rest = v >> 7n; rest > 0n; rest >>= 7n) groups.unshift(Number(rest & 0x7fn) | 0x80);
    out.push(...groups);
  }
  return Buffer.from(out);
}

/** `OBJECT IDENTIFIER`. */
export function oid(dotted: string): Buffer {
  return tlv(TAG.OID, oidContent(dotted));
}

// ---------------------------------------------------------------------------
// Time (RFC 5280 §4.1.2.5)
// ---------------------------------------------------------------------------

const MS_PER_DAY = 86_400_000;
/** 1950-01-01T00:00:00Z and 2050-01-01T00:00:00Z: UTCTime covers exactly this range. */
const UTC_TIME_FROM = Date.UTC(1950, 0, 1);
const UTC_TIME_UNTIL = Date.UTC(2050, 0, 1);
/** GeneralizedTime's four-digit years: 0000-01-01 .. 9999-12-31T23:59:59Z. */
const TIME_MIN = new Date('0000-01-01T00:00:00Z').getTime();
const TIME_MAX = new Date('9999-12-31T23:59:59.999Z').getTime();

function checkTime(ms: number): void {
  if (!Number.isFinite(ms)) throw malformed('DER_TIME_INVALID', 'the date is invalid (NaN); pass a real Date');
  if (ms < TIME_MIN || ms > TIME_MAX) {
    throw malformed('DER_TIME_OUT_OF_RANGE', `${new Date(ms).toISOString()} is outside the years 0000..9999 that GeneralizedTime can hold`);
  }
}

/** Whether RFC 5280 wants UTCTime (years 1950 through 2049) rather than GeneralizedTime for this instant. */
export function usesUtcTime(ms: number): boolean {
  return ms >= UTC_TIME_FROM && ms < UTC_TIME_UNTIL;
}

/** Size of the Time TLV for an instant: 15 (UTCTime `YYMMDDHHMMSSZ`) or 17 (GeneralizedTime `YYYYMMDDHHMMSSZ`). */
export function timeSize(ms: number): number {
  checkTime(ms);
  return usesUtcTime(ms) ? 15 : 17;
}

/** ASCII of "00".."99", two bytes per value: DIGITS[2v], DIGITS[2v+1]. */
const DIGITS = Uint8Array.from({ length: 200 }, (_, i) => 0x30 + (i % 2 === 0 ? Math.floor(i / 20) : (i >> 1) % 10));

function put2(buf: Buffer, off: number, v: number): void {
  buf[off] = DIGITS[2 * v] as number;
  buf[off + 1] = DIGITS[2 * v + 1] as number;
}

/** The civil date of the last day writeTime converted; CRL entries often share a day. */
let lastDays = NaN;
let lastYear = 0;
let lastMonth = 0;
let lastDay = 0;

/** Sets lastYear/lastMonth/lastDay from days since 1970-01-01 (H. Hinnant's civil_from_days). */
function civilFromDays(days: number): void {
  const z = days + 719_468; // days since 0000-03-01 (negative in January and February of year 0)
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097; // 0..146096, so the divisions below may truncate
  const yoe = ((doe - ((doe / 1460) | 0) + ((doe / 36_524) | 0) - ((doe / 146_096) | 0)) / 365) | 0;
  const doy = doe - (365 * yoe + ((yoe / 4) | 0) - ((yoe / 100) | 0));
  const mp = ((5 * doy + 2) / 153) | 0;
  lastDay = doy - (((153 * mp + 2) / 5) | 0) + 1;
  lastMonth = mp < 10 ? mp + 3 : mp - 9;
  lastYear = yoe + era * 400 + (lastMonth <= 2 ? 1 : 0);
  lastDays = days;
}

/**
 * Writes `Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }`
 * for the instant `ms` (epoch milliseconds) at `off`, per RFC 5280 §4.1.2.5:
 * UTCTime `YYMMDDHHMMSSZ` for 1950–2049, GeneralizedTime `YYYYMMDDHHMMSSZ`
 * otherwise; whole seconds (milliseconds dropped), always `Z`. Returns the
 * next offset. The civil date comes from integer arithmetic, not Date
 * getters, since this runs once per CRL entry.
 */
export function writeTime(buf: Buffer, off: number, ms: number): number {
  checkTime(ms);
  return writeTimeAs(buf, off, ms, usesUtcTime(ms));
}

/** writeTime with the CHOICE made by the caller (`ms` already checked; UTCTime only for 1950–2049). */
function writeTimeAs(buf: Buffer, off: number, ms: number, utc: boolean): number {
  const days = Math.floor(ms / MS_PER_DAY);
  const secOfDay = ((ms - days * MS_PER_DAY) / 1000) | 0;
  if (days !== lastDays) civilFromDays(days);
  const year = lastYear;
  if (utc) {
    buf[off++] = TAG.UTC_TIME;
    buf[off++] = 13;
    put2(buf, off, year % 100);
    off += 2;
  } else {
    buf[off++] = TAG.GENERALIZED_TIME;
    buf[off++] = 15;
    put2(buf, off, (year / 100) | 0);
    put2(buf, off + 2, year % 100);
    off += 4;
  }
  put2(buf, off, lastMonth);
  put2(buf, off + 2, lastDay);
  const minutes = (secOfDay / 60) | 0;
  put2(buf, off + 4, (minutes / 60) | 0);
  put2(buf, off + 6, minutes % 60);
  put2(buf, off + 8, secOfDay - minutes * 60);
  buf[off + 10] = 0x5a; // 'Z'
  return off + 11;
}

/** `Time` (UTCTime or GeneralizedTime as RFC 5280 §4.1.2.5 requires) for a Date. */
export function time(date: Date): Buffer {
  const ms = date.getTime();
  const out = Buffer.allocUnsafe(timeSize(ms));
  writeTime(out, 0, ms);
  return out;
}

/** `UTCTime` `YYMMDDHHMMSSZ`; only for 1950 through 2049. */
export function utcTime(date: Date): Buffer {
  const ms = date.getTime();
  checkTime(ms);
  if (!usesUtcTime(ms)) throw malformed('DER_TIME_OUT_OF_RANGE', `UTCTime only holds 1950 through 2049, not ${date.toISOString()}`);
  const out = Buffer.allocUnsafe(15);
  writeTimeAs(out, 0, ms, true);
  return out;
}

/** `GeneralizedTime` `YYYYMMDDHHMMSSZ` (any year 0000..9999; RFC 5280 wants it only outside 1950–2049). */
export function generalizedTime(date: Date): Buffer {
  const ms = date.getTime();
  checkTime(ms);
  const out = Buffer.allocUnsafe(17);
  writeTimeAs(out, 0, ms, false);
  return out;
}

// ---------------------------------------------------------------------------
// Reading (a minimal, linear, bounds-checked reader)
// ---------------------------------------------------------------------------

/** One decoded TLV header: content is `buf[start, end)`, the whole TLV `buf[offset, end)`. */
export interface Tlv {
  tag: number;
  /** Offset of the identifier byte. */
  offset: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

/**
 * Reads the TLV header at `off` (which must lie before `limit`). Refuses
 * high tag numbers, the indefinite length and non-minimal length octets (DER),
 * and content running past `limit`.
 */
export function readTlv(buf: Uint8Array, off: number, limit: number = buf.length): Tlv {
  if (off + 2 > limit) throw malformed('DER_TRUNCATED', `DER ends at byte ${limit}, inside the header at ${off}`);
  const tag = buf[off] as number;
  if ((tag & 0x1f) === 0x1f) throw malformed('DER_TAG_UNSUPPORTED', `high tag numbers are not supported (byte ${off})`);
  const first = buf[off + 1] as number;
  let start = off + 2;
  let len = first;
  if (first >= 0x80) {
    const k = first & 0x7f;
    if (k === 0) throw malformed('DER_INDEFINITE_LENGTH', `indefinite length at byte ${off} is BER, not DER`);
    if (k > 4) throw malformed('DER_LENGTH_TOO_LONG', `a ${k}-byte length at byte ${off} is beyond what this reader accepts`);
    if (start + k > limit) throw malformed('DER_TRUNCATED', `DER ends inside the length at byte ${off}`);
    len = 0;
    for (let i = 0; i < k; i++) len = len * 256 + (buf[start + i] as number);
    if (len < 0x80 || buf[start] === 0) throw malformed('DER_LENGTH_NOT_MINIMAL', `the length at byte ${off} is not in its shortest form`);
    start += k;
  }
  const end = start + len;
  if (end > limit) throw malformed('DER_TRUNCATED', `the TLV at byte ${off} claims ${len} content bytes but only ${limit - start} remain`);
  return { tag, offset: off, start, end };
}

/** Reads the TLV at `off` and checks its tag. */
export function expectTlv(buf: Uint8Array, off: number, tag: number, what: string, limit: number = buf.length): Tlv {
  const t = readTlv(buf, off, limit);
  if (t.tag !== tag) {
    throw malformed('DER_UNEXPECTED_TAG', `expected ${what} (tag 0x${tag.toString(16).padStart(2, '0')}) at byte ${off}, found tag 0x${t.tag.toString(16).padStart(2, '0')}`);
  }
  return t;
}

/** The value of INTEGER content bytes (two's complement) as a bigint. */
export function decodeInteger(content: Uint8Array): bigint {
  if (content.length === 0) throw malformed('DER_INTEGER_EMPTY', 'an INTEGER has no content bytes');
  let v = BigInt(`0x${Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('hex')}`);
  if ((content[0] as number) >= 0x80) v -= 1n << BigInt(8 * content.length);
  return v;
}

/** Decodes UTCTime (tag 0x17, `YYMMDDHHMMSSZ`) or GeneralizedTime (0x18, `YYYYMMDDHHMMSSZ`) content as RFC 5280 restricts them. */
export function decodeTime(tag: number, content: Uint8Array): Date {
  const s = Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (tag === TAG.UTC_TIME && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    year = Number(m[1]);
  } else {
    throw malformed('DER_TIME_INVALID', `"${s}" (tag 0x${tag.toString(16)}) is not an RFC 5280 UTCTime or GeneralizedTime`);
  }
  const d = new Date(Date.UTC(2000, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  d.setUTCFullYear(year);
  return d;
}

/** The TLVs directly inside a constructed TLV, in order. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end; ) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

/** The whole TLV (header and content) as a Buffer view. */
export function tlvBytes(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.offset, t.end);
}

/** The content as a Buffer view. */
export function contentBytes(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.start, t.end);
}

/** Dotted form of OBJECT IDENTIFIER content bytes (X.690 §8.19). */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw malformed('DER_OID_INVALID', 'an OBJECT IDENTIFIER has no content bytes');
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i] as number;
    if (v === 0 && b === 0x80) throw malformed('DER_OID_INVALID', 'an OBJECT IDENTIFIER arc is not minimally encoded');
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER) throw malformed('DER_OID_INVALID', 'an OBJECT IDENTIFIER arc is too large');
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0;
    } else if (i === content.length - 1) throw malformed('DER_OID_INVALID', 'an OBJECT IDENTIFIER ends inside an arc');
  }
  const first = arcs[0] as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}
