/**
 * Parsers for what a server sends in answer to a ClientHello, up to
 * ServerHelloDone (TLS ≤ 1.2) or the ServerHello / HelloRetryRequest (TLS 1.3,
 * after which everything is encrypted): ServerHello, Certificate,
 * CertificateStatus, ServerKeyExchange, CertificateRequest, ServerHelloDone;
 * and `ServerFlight`, which feeds socket bytes through the record layer and
 * collects those messages.
 *
 * Hostile input only ever raises a SekishoError (all reads go through
 * `ByteReader`); sizes are bounded (messages, certificate counts, CA names).
 */
import { malformed } from '../../errors/index.js';
import { suiteByCode, type KeyExchange } from '../../policy/cipher-suites.js';
import { EXTENSION, TLS_VERSION } from './client-hello.js';
import { ALERT, ALERT_LEVEL, ByteReader, CONTENT_TYPE, HANDSHAKE_TYPE, HandshakeReader, RecordReader, parseAlert, type Alert } from './records.js';

// ---------------------------------------------------------------------------
// ServerHello
// ---------------------------------------------------------------------------

/** SHA-256("HelloRetryRequest"): the random of a HelloRetryRequest (RFC 8446 §4.1.3). */
export const HELLO_RETRY_REQUEST_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');
const DOWNGRADE_TLS12 = Buffer.from('444f574e47524401', 'hex');
const DOWNGRADE_TLS11 = Buffer.from('444f574e47524400', 'hex');

export interface TlsExtension {
  type: number;
  data: Buffer;
}

export interface ServerHello {
  /** legacy_version as sent. */
  legacyVersion: number;
  /** The negotiated version: supported_versions when present (TLS 1.3), else legacy_version. */
  version: number;
  random: Buffer;
  sessionId: Buffer;
  cipherSuite: number;
  compression: number;
  extensions: TlsExtension[];
  /** A TLS 1.3 HelloRetryRequest (a ServerHello with the special random). */
  helloRetryRequest: boolean;
  /** TLS 1.3: the group of the server's key share, or the group a HelloRetryRequest asks for. */
  keyShareGroup?: number;
  /** renegotiation_info present (RFC 5746). */
  secureRenegotiation: boolean;
  /** status_request acknowledged: the server will staple an OCSP response. */
  statusRequest: boolean;
  extendedMasterSecret: boolean;
  /** RFC 8446 §4.1.3 downgrade marker in the random: the server supports a higher version than it chose. */
  downgradeSentinel?: 'TLSv1.2' | 'TLSv1.1';
}

function parseExtensions(r: ByteReader, what: string): TlsExtension[] {
  if (r.remaining === 0) return []; // SSL 3.0-era servers send no extensions block
  const block = r.sub(2, `${what} extensions`);
  const out: TlsExtension[] = [];
  const seen = new Set<number>();
  while (block.remaining > 0) {
    const type = block.u16('an extension type');
    const data = block.vector(2, 'extension data');
    if (seen.has(type)) throw malformed('TLS_EXTENSION_DUPLICATE', `${what} carries extension ${type} twice`);
    seen.add(type);
    out.push({ type, data });
  }
  r.done();
  return out;
}

export function parseServerHello(body: Buffer): ServerHello {
  const r = new ByteReader(body, 'the ServerHello');
  const legacyVersion = r.u16('legacy_version');
  if (legacyVersion >> 8 !== 3) throw malformed('TLS_VERSION_INVALID', `the ServerHello names version 0x${legacyVersion.toString(16)}`);
  const random = r.bytes(32, 'random');
  const sessionId = r.vector(1, 'session_id', 0, 32);
  const cipherSuite = r.u16('cipher_suite');
  const compression = r.u8('compression_method');
  const extensions = parseExtensions(r, 'the ServerHello');
  const helloRetryRequest = random.equals(HELLO_RETRY_REQUEST_RANDOM);
  const sh: ServerHello = {
    legacyVersion,
    version: legacyVersion,
    random,
    sessionId,
    cipherSuite,
    compression,
    extensions,
    helloRetryRequest,
    secureRenegotiation: false,
    statusRequest: false,
    extendedMasterSecret: false,
  };
  for (const e of extensions) {
    const x = new ByteReader(e.data, `ServerHello extension ${e.type}`);
    switch (e.type) {
      case EXTENSION.supportedVersions:
        sh.version = x.u16('selected_version');
        x.done();
        break;
      case EXTENSION.keyShare:
        sh.keyShareGroup = x.u16('the key_share group');
        if (!helloRetryRequest) x.vector(2, 'key_exchange', 1);
        x.done();
        break;
      case EXTENSION.renegotiationInfo:
        x.vector(1, 'renegotiated_connection');
        x.done();
        sh.secureRenegotiation = true;
        break;
      case EXTENSION.statusRequest:
        sh.statusRequest = true;
        break;
      case EXTENSION.extendedMasterSecret:
        sh.extendedMasterSecret = true;
        break;
      default:
        break;
    }
  }
  if (helloRetryRequest && sh.version !== TLS_VERSION['TLSv1.3']) {
    throw malformed('TLS_HRR_INVALID', 'a HelloRetryRequest must select TLS 1.3 in supported_versions');
  }
  const tail = random.subarray(24);
  if (tail.equals(DOWNGRADE_TLS12)) sh.downgradeSentinel = 'TLSv1.2';
  else if (tail.equals(DOWNGRADE_TLS11)) sh.downgradeSentinel = 'TLSv1.1';
  return sh;
}

// ---------------------------------------------------------------------------
// Certificate, CertificateStatus
// ---------------------------------------------------------------------------

export const MAX_CERTIFICATES = 64;

export interface CertificateMessage {
  /** DER certificates as sent, leaf first. */
  certificates: Buffer[];
}

/** Certificate (RFC 5246 §7.4.2; with `tls13`, the RFC 8446 §4.4.2 form with context and per-entry extensions). */
export function parseCertificate(body: Buffer, tls13 = false): CertificateMessage {
  const r = new ByteReader(body, 'the Certificate message');
  if (tls13) r.vector(1, 'certificate_request_context');
  const list = r.sub(3, 'certificate_list');
  r.done();
  const certificates: Buffer[] = [];
  while (list.remaining > 0) {
    if (certificates.length >= MAX_CERTIFICATES) throw malformed('TLS_TOO_MANY_CERTIFICATES', `the server sent more than ${MAX_CERTIFICATES} certificates`);
    const der = list.vector(3, 'a certificate', 1);
    if (der[0] !== 0x30) throw malformed('TLS_CERTIFICATE_INVALID', 'a certificate in the Certificate message is not a DER SEQUENCE');
    certificates.push(der);
    if (tls13) list.vector(2, 'certificate extensions');
  }
  return { certificates };
}

export interface CertificateStatus {
  /** 1 = ocsp. */
  statusType: number;
  /** The DER OCSPResponse. */
  response: Buffer;
}

export function parseCertificateStatus(body: Buffer): CertificateStatus {
  const r = new ByteReader(body, 'the CertificateStatus message');
  const statusType = r.u8('status_type');
  const response = r.vector(3, 'the OCSP response', 1);
  r.done();
  return { statusType, response };
}

// ---------------------------------------------------------------------------
// ServerKeyExchange
// ---------------------------------------------------------------------------

export type ServerKeyExchange =
  | { kind: 'dh'; primeBits: number; generatorBits: number; publicBits: number }
  | { kind: 'ecdh'; namedGroup: number; publicKeyLength: number }
  | { kind: 'ecdh-explicit'; curveType: number }
  | { kind: 'rsa'; modulusBits: number }
  | { kind: 'srp'; primeBits: number }
  | { kind: 'psk'; identityHint: Buffer }
  | { kind: 'unknown'; length: number };

/** Bit length of an unsigned big-endian integer. */
export function bitLength(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i] as number));
}

/**
 * Reads the key-exchange parameters (not the signature) of a
 * ServerKeyExchange for the chosen suite's key exchange (RFC 5246 §7.4.3,
 * RFC 8422 §5.4, RFC 4279, RFC 5054; RSA for the export suites).
 */
export function parseServerKeyExchange(body: Buffer, kx: KeyExchange | undefined): ServerKeyExchange {
  const r = new ByteReader(body, 'the ServerKeyExchange');
  let identityHint: Buffer | undefined;
  if (kx === 'PSK' || kx === 'RSA_PSK' || kx === 'DHE_PSK' || kx === 'ECDHE_PSK') {
    identityHint = r.vector(2, 'psk_identity_hint');
    if (kx === 'PSK' || kx === 'RSA_PSK') return { kind: 'psk', identityHint };
  }
  switch (kx) {
    case 'DHE':
    case 'DHE_PSK': {
      const p = r.vector(2, 'dh_p', 1);
      const g = r.vector(2, 'dh_g', 1);
      const ys = r.vector(2, 'dh_Ys', 1);
      return { kind: 'dh', primeBits: bitLength(p), generatorBits: bitLength(g), publicBits: bitLength(ys) };
    }
    case 'ECDHE':
    case 'ECDHE_PSK': {
      const curveType = r.u8('curve_type');
      if (curveType !== 3) return { kind: 'ecdh-explicit', curveType };
      const namedGroup = r.u16('named_curve');
      const point = r.vector(1, 'the public point', 1);
      return { kind: 'ecdh', namedGroup, publicKeyLength: point.length };
    }
    case 'RSA': {
      const modulus = r.vector(2, 'rsa_modulus', 1);
      r.vector(2, 'rsa_exponent', 1);
      return { kind: 'rsa', modulusBits: bitLength(modulus) };
    }
    case 'SRP': {
      const n = r.vector(2, 'srp_N', 1);
      r.vector(2, 'srp_g', 1);
      r.vector(1, 'srp_s');
      r.vector(2, 'srp_B', 1);
      return { kind: 'srp', primeBits: bitLength(n) };
    }
    default:
      return { kind: 'unknown', length: body.length };
  }
}

// ---------------------------------------------------------------------------
// CertificateRequest, ServerHelloDone
// ---------------------------------------------------------------------------

export const MAX_CA_NAMES = 1024;

export interface CertificateRequest {
  /** ClientCertificateType values (1 rsa_sign, 2 dss_sign, 64 ecdsa_sign, …). */
  certificateTypes: number[];
  /** TLS 1.2 only: supported_signature_algorithms. */
  signatureAlgorithms?: number[];
  /** DER DistinguishedNames of acceptable CAs (may be empty). */
  certificateAuthorities: Buffer[];
}

/** CertificateRequest of TLS ≤ 1.2 (RFC 5246 §7.4.4; TLS 1.0/1.1 lack the signature algorithms). */
export function parseCertificateRequest(body: Buffer, version: number): CertificateRequest {
  const r = new ByteReader(body, 'the CertificateRequest');
  const certificateTypes = [...r.vector(1, 'certificate_types', 1)];
  let signatureAlgorithms: number[] | undefined;
  if (version >= TLS_VERSION['TLSv1.2']) {
    const s = r.sub(2, 'supported_signature_algorithms', 2);
    signatureAlgorithms = [];
    while (s.remaining > 0) signatureAlgorithms.push(s.u16('a signature algorithm'));
  }
  const cas = r.sub(2, 'certificate_authorities');
  r.done();
  const certificateAuthorities: Buffer[] = [];
  while (cas.remaining > 0) {
    if (certificateAuthorities.length >= MAX_CA_NAMES) throw malformed('TLS_TOO_MANY_CA_NAMES', `the CertificateRequest lists more than ${MAX_CA_NAMES} CA names`);
    certificateAuthorities.push(cas.vector(2, 'a distinguished name', 1));
  }
  return { certificateTypes, ...(signatureAlgorithms ? { signatureAlgorithms } : {}), certificateAuthorities };
}

export function parseServerHelloDone(body: Buffer): void {
  if (body.length !== 0) throw malformed('TLS_TRAILING_BYTES', `ServerHelloDone must be empty, it has ${body.length} bytes`);
}

// ---------------------------------------------------------------------------
// The server's flight
// ---------------------------------------------------------------------------

export interface ServerFlightResult {
  serverHello?: ServerHello;
  certificate?: CertificateMessage;
  certificateStatus?: CertificateStatus;
  serverKeyExchange?: ServerKeyExchange;
  certificateRequest?: CertificateRequest;
  serverHelloDone: boolean;
  /** The fatal alert (or close_notify) that ended the flight. */
  alert?: Alert;
  /** Warning alerts seen on the way (unrecognized_name is common before a ServerHello). */
  warnings: Alert[];
}

export interface ServerFlightLimits {
  /** Bytes read from the server before giving up (default 1 MiB). */
  maxBytes?: number;
  /** Largest single handshake message (default 256 KiB). */
  maxMessage?: number;
}

/**
 * Collects the server's answer to one ClientHello. `push` each socket read;
 * it returns true once the flight is complete: ServerHelloDone, a TLS 1.3
 * ServerHello or HelloRetryRequest, or a fatal alert. Bytes after that are
 * ignored. Raises a SekishoError (malformed) on bytes that are not a valid
 * flight; what was read before stays in `result`.
 */
export class ServerFlight {
  readonly result: ServerFlightResult = { serverHelloDone: false, warnings: [] };
  private readonly records: RecordReader;
  private readonly handshake: HandshakeReader;
  private finished = false;

  constructor(limits: ServerFlightLimits = {}) {
    this.records = new RecordReader(limits.maxBytes ?? 1 << 20);
    this.handshake = new HandshakeReader(limits.maxMessage ?? 256 * 1024);
  }

  get complete(): boolean {
    return this.finished;
  }

  push(chunk: Buffer): boolean {
    if (this.finished) return true;
    this.records.push(chunk);
    for (let rec = this.records.next(); rec; rec = this.finished ? undefined : this.records.next()) {
      switch (rec.type) {
        case CONTENT_TYPE.alert: {
          const alert = parseAlert(rec.fragment);
          if (alert.level === ALERT_LEVEL.warning && alert.description !== ALERT.closeNotify) {
            if (this.result.warnings.length < 16) this.result.warnings.push(alert);
          } else {
            this.result.alert = alert;
            this.finished = true;
          }
          break;
        }
        case CONTENT_TYPE.handshake:
          this.handshake.push(rec.fragment);
          for (let m = this.handshake.next(); m && !this.finished; m = this.handshake.next()) this.onMessage(m.type, m.body);
          break;
        case CONTENT_TYPE.heartbeat:
          break;
        default:
          throw malformed('TLS_UNEXPECTED_RECORD', `record type ${rec.type} arrived ${this.result.serverHello ? 'before ServerHelloDone' : 'before the ServerHello'}`);
      }
    }
    return this.finished;
  }

  private onMessage(type: number, body: Buffer): void {
    const res = this.result;
    if (type === HANDSHAKE_TYPE.helloRequest && body.length === 0) return;
    if (!res.serverHello) {
      if (type !== HANDSHAKE_TYPE.serverHello) throw malformed('TLS_UNEXPECTED_MESSAGE', `handshake message ${type} arrived before the ServerHello`);
      const sh = parseServerHello(body);
      res.serverHello = sh;
      if (sh.helloRetryRequest || sh.version >= TLS_VERSION['TLSv1.3']) this.finished = true;
      return;
    }
    const once = (present: unknown, name: string) => {
      if (present !== undefined) throw malformed('TLS_UNEXPECTED_MESSAGE', `the server sent ${name} twice`);
    };
    switch (type) {
      case HANDSHAKE_TYPE.certificate:
        once(res.certificate, 'Certificate');
        res.certificate = parseCertificate(body);
        break;
      case HANDSHAKE_TYPE.certificateStatus:
        once(res.certificateStatus, 'CertificateStatus');
        res.certificateStatus = parseCertificateStatus(body);
        break;
      case HANDSHAKE_TYPE.serverKeyExchange:
        once(res.serverKeyExchange, 'ServerKeyExchange');
        res.serverKeyExchange = parseServerKeyExchange(body, suiteByCode(res.serverHello.cipherSuite)?.kx);
        break;
      case HANDSHAKE_TYPE.certificateRequest:
        once(res.certificateRequest, 'CertificateRequest');
        res.certificateRequest = parseCertificateRequest(body, res.serverHello.version);
        break;
      case HANDSHAKE_TYPE.serverHelloDone:
        parseServerHelloDone(body);
        res.serverHelloDone = true;
        this.finished = true;
        break;
      default:
        throw malformed('TLS_UNEXPECTED_MESSAGE', `handshake message ${type} arrived before ServerHelloDone`);
    }
  }
}

/** The flight in `bytes` as far as it goes (for tests and for replaying captured answers). */
export function readServerFlight(bytes: Buffer, limits?: ServerFlightLimits): ServerFlightResult {
  const f = new ServerFlight(limits);
  f.push(bytes);
  return f.result;
}
