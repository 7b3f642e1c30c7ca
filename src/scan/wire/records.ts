/**
 * TLS record framing (RFC 8446 §5, RFC 5246 §6.2) for the scanner's
 * byte-level probes: writing records, and a reassembling reader that takes
 * TCP reads of any size, cuts them into records, joins handshake messages
 * split across records, and reads alerts.
 *
 * Everything that reads server bytes goes through `ByteReader`, whose every
 * read is bounds-checked and raises `malformed(...)`: hostile input can only
 * ever produce a SekishoError. Buffers are bounded (`maxBuffered`,
 * `maxMessage`) so a server cannot make a probe hold more than a few hundred
 * KiB.
 */
import { malformed } from '../../errors/index.js';

export const CONTENT_TYPE = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
  heartbeat: 24,
} as const;

/** Largest plaintext fragment (2^14) and largest record a peer may send (2^14 + 2048, TLS 1.2 ciphertext). */
export const MAX_FRAGMENT = 16384;
export const MAX_RECORD = 16384 + 2048;

export const HANDSHAKE_TYPE = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  newSessionTicket: 4,
  encryptedExtensions: 8,
  certificate: 11,
  serverKeyExchange: 12,
  certificateRequest: 13,
  serverHelloDone: 14,
  certificateVerify: 15,
  clientKeyExchange: 16,
  finished: 20,
  certificateStatus: 22,
} as const;

// ---------------------------------------------------------------------------
// Bounded reading
// ---------------------------------------------------------------------------

/** A cursor over a Buffer whose reads never go past its end (they raise TLS_TRUNCATED instead). */
export class ByteReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, field: string): void {
    if (n > this.end - this.pos) {
      throw malformed('TLS_TRUNCATED', `${this.what} ends inside ${field} (needs ${n} bytes at offset ${this.pos}, ${this.end - this.pos} left)`);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++] as number;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(field: string): number {
    this.need(3, field);
    const v = this.buf.readUIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A vector with a 1-, 2- or 3-byte length prefix; `min`/`max` bound its length. */
  vector(lengthBytes: 1 | 2 | 3, field: string, min = 0, max = Infinity): Buffer {
    const n = lengthBytes === 1 ? this.u8(field) : lengthBytes === 2 ? this.u16(field) : this.u24(field);
    if (n < min || n > max) throw malformed('TLS_LENGTH_INVALID', `${this.what}: ${field} has ${n} bytes, outside ${min}..${max}`);
    return this.bytes(n, field);
  }

  /** A reader over a length-prefixed vector (consumes it here). */
  sub(lengthBytes: 1 | 2 | 3, field: string, min = 0, max = Infinity): ByteReader {
    return new ByteReader(this.vector(lengthBytes, field, min, max), `${this.what} ${field}`);
  }

  rest(): Buffer {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  /** Refuses trailing bytes. */
  done(): void {
    if (this.pos !== this.end) throw malformed('TLS_TRAILING_BYTES', `${this.what} has ${this.end - this.pos} unexpected bytes at its end`);
  }
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function u24(n: number): Buffer {
  const b = Buffer.allocUnsafe(3);
  b.writeUIntBE(n, 0, 3);
  return b;
}

/** `body` prefixed with its length in 1, 2 or 3 bytes. */
export function vec(lengthBytes: 1 | 2 | 3, body: Buffer | readonly Buffer[]): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.concat(body as Buffer[]);
  const max = 2 ** (8 * lengthBytes) - 1;
  if (b.length > max) throw malformed('TLS_VECTOR_TOO_LONG', `a vector of ${b.length} bytes does not fit a ${lengthBytes}-byte length`);
  const len = lengthBytes === 1 ? Buffer.from([b.length]) : lengthBytes === 2 ? u16(b.length) : u24(b.length);
  return Buffer.concat([len, b]);
}

export function uint16List(values: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(values.length * 2);
  values.forEach((v, i) => b.writeUInt16BE(v, i * 2));
  return b;
}

/** A handshake message: type, 3-byte length, body. */
export function encodeHandshake(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), u24(body.length), body]);
}

/** `payload` as one or more records of `type` (fragments of at most 2^14 bytes). */
export function encodeRecords(type: number, version: number, payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  do {
    const n = Math.min(MAX_FRAGMENT, payload.length - off);
    parts.push(Buffer.from([type]), u16(version), u16(n), payload.subarray(off, off + n));
    off += n;
  } while (off < payload.length);
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------
// Reading records
// ---------------------------------------------------------------------------

export interface TlsRecord {
  type: number;
  version: number;
  fragment: Buffer;
}

function printable(b: Buffer): string {
  return JSON.stringify(b.subarray(0, 16).toString('latin1').replace(/[^\x20-\x7e]/g, '.'));
}

/**
 * Bytes received in pieces. Pieces are joined only when a whole unit (record
 * or message) is there, so a peer dribbling one byte per read costs linear,
 * not quadratic, time.
 */
class ChunkQueue {
  private chunks: Buffer[] = [];
  size = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The first `n` bytes (n ≤ size) as one Buffer, joining pieces only as far as needed. */
  peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  take(n: number): Buffer {
    const head = this.peek(n);
    const out = head.subarray(0, n);
    if (head.length === n) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    this.size -= n;
    return out;
  }
}

/**
 * Cuts a byte stream into records. `push` what the socket read; `next`
 * returns each complete record in turn, or undefined until more bytes come.
 */
export class RecordReader {
  private readonly queue = new ChunkQueue();
  private total = 0;

  constructor(private readonly maxTotal = 1 << 20) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.total > this.maxTotal) throw malformed('TLS_FLIGHT_TOO_LARGE', `the server sent more than ${this.maxTotal} bytes before finishing its flight`);
    this.queue.push(chunk);
  }

  /** Bytes received but not yet returned as records. */
  get buffered(): number {
    return this.queue.size;
  }

  next(): TlsRecord | undefined {
    if (this.queue.size < 1) return undefined;
    const head = this.queue.peek(Math.min(this.queue.size, 5));
    const type = head[0] as number;
    if (type < CONTENT_TYPE.changeCipherSpec || type > CONTENT_TYPE.heartbeat) {
      const sslv2 = (type & 0x80) !== 0 && head.length >= 3 && head[2] === 0x04;
      throw malformed(
        'TLS_NOT_TLS',
        sslv2 ? 'the server answered with an SSL 2.0 record' : `the server did not answer with TLS (it sent ${printable(this.queue.peek(Math.min(this.queue.size, 16)))})`,
      );
    }
    if (this.queue.size < 5) return undefined;
    const version = head.readUInt16BE(1);
    if (version >> 8 !== 3) throw malformed('TLS_RECORD_VERSION_INVALID', `a record carries version 0x${version.toString(16).padStart(4, '0')}, not 3.x`);
    const len = head.readUInt16BE(3);
    if (len > MAX_RECORD) throw malformed('TLS_RECORD_TOO_LONG', `a record of ${len} bytes is longer than TLS allows (${MAX_RECORD})`);
    if (this.queue.size < 5 + len) return undefined;
    const fragment = this.queue.take(5 + len).subarray(5);
    return { type, version, fragment };
  }
}

// ---------------------------------------------------------------------------
// Handshake messages across records
// ---------------------------------------------------------------------------

export interface HandshakeMessage {
  type: number;
  body: Buffer;
}

/**
 * Joins handshake-record fragments into messages: a message may span records
 * and a record may hold several messages. Messages longer than `maxMessage`
 * are refused before they are buffered.
 */
export class HandshakeReader {
  private readonly queue = new ChunkQueue();

  constructor(private readonly maxMessage = 256 * 1024) {}

  push(fragment: Buffer): void {
    this.queue.push(fragment);
  }

  /** True while part of a message is waiting for the next record. */
  get pending(): boolean {
    return this.queue.size > 0;
  }

  next(): HandshakeMessage | undefined {
    if (this.queue.size < 4) return undefined;
    const head = this.queue.peek(4);
    const type = head[0] as number;
    const len = head.readUIntBE(1, 3);
    if (len > this.maxMessage) throw malformed('TLS_HANDSHAKE_TOO_LONG', `a handshake message (type ${type}) claims ${len} bytes, more than the ${this.maxMessage} this scanner reads`);
    if (this.queue.size < 4 + len) return undefined;
    const body = this.queue.take(4 + len).subarray(4);
    return { type, body };
  }
}

// ---------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------

export const ALERT_LEVEL = { warning: 1, fatal: 2 } as const;

/** Alert descriptions (RFC 8446 §6, RFC 5246 §7.2, RFC 7507). */
export const ALERT_NAMES: Readonly<Record<number, string>> = {
  0: 'close_notify',
  10: 'unexpected_message',
  20: 'bad_record_mac',
  21: 'decryption_failed',
  22: 'record_overflow',
  30: 'decompression_failure',
  40: 'handshake_failure',
  41: 'no_certificate',
  42: 'bad_certificate',
  43: 'unsupported_certificate',
  44: 'certificate_revoked',
  45: 'certificate_expired',
  46: 'certificate_unknown',
  47: 'illegal_parameter',
  48: 'unknown_ca',
  49: 'access_denied',
  50: 'decode_error',
  51: 'decrypt_error',
  60: 'export_restriction',
  70: 'protocol_version',
  71: 'insufficient_security',
  80: 'internal_error',
  86: 'inappropriate_fallback',
  90: 'user_canceled',
  100: 'no_renegotiation',
  109: 'missing_extension',
  110: 'unsupported_extension',
  111: 'certificate_unobtainable',
  112: 'unrecognized_name',
  113: 'bad_certificate_status_response',
  114: 'bad_certificate_hash_value',
  115: 'unknown_psk_identity',
  116: 'certificate_required',
  120: 'no_application_protocol',
};

export const ALERT = { closeNotify: 0, handshakeFailure: 40, protocolVersion: 70, inappropriateFallback: 86, unrecognizedName: 112 } as const;

export interface Alert {
  level: number;
  description: number;
}

export function alertName(description: number): string {
  return ALERT_NAMES[description] ?? `alert_${description}`;
}

/** The first alert of an alert record (a record may in theory carry several; servers send one). */
export function parseAlert(fragment: Buffer): Alert {
  const r = new ByteReader(fragment, 'an alert record');
  const level = r.u8('the alert level');
  const description = r.u8('the alert description');
  return { level, description };
}

export function encodeAlert(version: number, alert: Alert): Buffer {
  return encodeRecords(CONTENT_TYPE.alert, version, Buffer.from([alert.level, alert.description]));
}
