/**
 * What a client offered in its first flight, read from the bytes as they
 * arrived, before TLS took the socket: the versions, suites and groups of a
 * ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2), or of an SSL 2.0-style
 * hello (RFC 6101 Appendix E.2, still sent by some very old stacks). The
 * gateway records it for clients the handshake refuses (an old protocol, no
 * shared suite), which show nothing else.
 *
 * Attack surface: these bytes come from anyone who can open a TCP
 * connection. The parser reads only inside the buffer it is given (at most
 * one record, MAX_HELLO_BYTES), never allocates from a length field, keeps
 * at most MAX_LIST codes per list, and returns a summary marked `truncated`
 * instead of throwing; it never decides anything (OpenSSL still does the
 * handshake on the same bytes).
 */
export const MAX_HELLO_BYTES = 5 + 16384;
/** Codes kept per list (suites, groups, versions); the rest are counted. */
export const MAX_LIST = 64;

export interface ClientHelloSummary {
  format: 'tls' | 'sslv2';
  /** The record layer's version (TLS) or 0x0002 (SSL 2.0 header). */
  recordVersion: number;
  /** ClientHello.legacy_version (client_version). */
  legacyVersion: number;
  /** supported_versions (RFC 8446 §4.2.1), GREASE left out; empty when the extension is absent. */
  supportedVersions: number[];
  /** Cipher suite codes in the client's order, GREASE left out (SSL 2.0 hellos: only the TLS suites, 0x00XXXX). */
  suites: number[];
  /** supported_groups codes, GREASE left out. */
  groups: number[];
  /** Entries beyond MAX_LIST, not kept. */
  dropped: number;
  /** The bytes ended (or a length was inconsistent) before the hello did: what was read so far. */
  truncated: boolean;
}

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SUPPORTED_GROUPS = 10;
const EXT_SUPPORTED_VERSIONS = 43;

/** RFC 8701: 0x?A?A with both bytes equal. */
export function isGrease(code: number): boolean {
  return (code & 0x0f0f) === 0x0a0a && code >> 8 === (code & 0xff);
}

/** How many bytes the first record needs in all, once at least its header has arrived; undefined while it has not, or for a non-TLS first byte. */
export function firstRecordLength(head: Buffer): number | undefined {
  if (head.length < 1) return undefined;
  const b0 = head[0]!;
  if (b0 & 0x80) {
    // SSL 2.0 header: 2 bytes, 15-bit length.
    if (head.length < 2) return undefined;
    return 2 + (((b0 & 0x7f) << 8) | head[1]!);
  }
  if (b0 !== RECORD_HANDSHAKE) return undefined;
  if (head.length < 5) return undefined;
  return Math.min(5 + head.readUInt16BE(3), MAX_HELLO_BYTES);
}

/** A summary of the hello in `bytes` (the start of the connection), or undefined when they are not a ClientHello at all. */
export function parseClientHello(bytes: Buffer): ClientHelloSummary | undefined {
  if (bytes.length < 1) return undefined;
  if (bytes[0]! & 0x80) return parseSslv2(bytes);
  if (bytes[0] !== RECORD_HANDSHAKE || bytes.length < 6) return undefined;
  const recordVersion = bytes.readUInt16BE(1);
  if (recordVersion >> 8 !== 3) return undefined;
  const end = Math.min(bytes.length, 5 + bytes.readUInt16BE(3), MAX_HELLO_BYTES);
  if (bytes[5] !== HANDSHAKE_CLIENT_HELLO) return undefined;
  const out: ClientHelloSummary = { format: 'tls', recordVersion, legacyVersion: 0, supportedVersions: [], suites: [], groups: [], dropped: 0, truncated: false };
  let p = 6;
  const fail = () => {
    out.truncated = true;
    return out;
  };
  if (p + 3 > end) return fail();
  const bodyEnd = Math.min(end, p + 3 + bytes.readUIntBE(p, 3));
  const bodyComplete = p + 3 + bytes.readUIntBE(p, 3) <= end;
  p += 3;
  if (p + 2 > bodyEnd) return fail();
  out.legacyVersion = bytes.readUInt16BE(p);
  p += 2 + 32; // random
  if (p + 1 > bodyEnd) return fail();
  p += 1 + bytes[p]!; // session id
  if (p + 2 > bodyEnd) return fail();
  const suitesLen = bytes.readUInt16BE(p);
  p += 2;
  const suitesEnd = p + suitesLen;
  for (; p + 2 <= Math.min(suitesEnd, bodyEnd); p += 2) keep(out, out.suites, bytes.readUInt16BE(p));
  if (suitesEnd > bodyEnd || suitesLen % 2) return fail();
  p = suitesEnd;
  if (p + 1 > bodyEnd) return fail();
  p += 1 + bytes[p]!; // compression methods
  if (p === bodyEnd && bodyComplete) return out; // no extensions (SSL 3.0, old TLS 1.0 stacks)
  if (p + 2 > bodyEnd) return fail();
  const extEnd = p + 2 + bytes.readUInt16BE(p);
  p += 2;
  while (p + 4 <= Math.min(extEnd, bodyEnd)) {
    const type = bytes.readUInt16BE(p);
    const len = bytes.readUInt16BE(p + 2);
    const data = p + 4;
    if (data + len > Math.min(extEnd, bodyEnd)) return fail();
    if (type === EXT_SUPPORTED_GROUPS && len >= 2) {
      const n = bytes.readUInt16BE(data);
      for (let q = data + 2; q + 2 <= Math.min(data + 2 + n, data + len); q += 2) keep(out, out.groups, bytes.readUInt16BE(q));
    } else if (type === EXT_SUPPORTED_VERSIONS && len >= 1) {
      const n = bytes[data]!;
      for (let q = data + 1; q + 2 <= Math.min(data + 1 + n, data + len); q += 2) keep(out, out.supportedVersions, bytes.readUInt16BE(q));
    }
    p = data + len;
  }
  if (p !== extEnd || extEnd > bodyEnd || !bodyComplete) return fail();
  return out;
}

function keep(out: ClientHelloSummary, list: number[], code: number): void {
  if (isGrease(code)) return;
  if (list.length >= MAX_LIST) out.dropped++;
  else list.push(code);
}

/** SSL 2.0 CLIENT-HELLO: msg type 1, version, three lengths, 3-byte cipher specs (TLS suites are 0x00XXXX). */
function parseSslv2(bytes: Buffer): ClientHelloSummary | undefined {
  if (bytes.length < 3 || bytes[2] !== 1) return undefined;
  const declared = 2 + (((bytes[0]! & 0x7f) << 8) | bytes[1]!);
  const end = Math.min(bytes.length, declared);
  const out: ClientHelloSummary = { format: 'sslv2', recordVersion: 0x0002, legacyVersion: 0, supportedVersions: [], suites: [], groups: [], dropped: 0, truncated: bytes.length < declared };
  if (end < 11) {
    out.truncated = true;
    return out;
  }
  out.legacyVersion = bytes.readUInt16BE(3);
  const specsLen = bytes.readUInt16BE(5);
  let p = 11;
  const specsEnd = p + specsLen;
  for (; p + 3 <= Math.min(specsEnd, end); p += 3) {
    if (bytes[p] === 0) keep(out, out.suites, bytes.readUInt16BE(p + 1));
  }
  if (specsEnd > end || specsLen % 3) out.truncated = true;
  return out;
}

/** The highest version a hello offers: supported_versions when present, otherwise its legacy version. */
export function offeredVersions(h: ClientHelloSummary): number[] {
  if (h.supportedVersions.length) return h.supportedVersions;
  return h.legacyVersion ? [h.legacyVersion] : [];
}
