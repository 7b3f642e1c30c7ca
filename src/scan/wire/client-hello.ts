/**
 * ClientHello messages built byte by byte, for any version from SSL 3.0 to
 * TLS 1.3 and any list of suites, including those Node's own TLS refuses to
 * offer. The scanner never finishes a handshake, so nothing here keeps key
 * material beyond the public halves of the TLS 1.3 key shares (real keys, so
 * 1.3 servers answer with a ServerHello rather than a HelloRetryRequest).
 *
 * Shape by version:
 * - SSL 3.0: no extensions (SSL 3.0 servers may choke on them); secure
 *   renegotiation is asked for with TLS_EMPTY_RENEGOTIATION_INFO_SCSV.
 * - TLS 1.0/1.1: server_name, supported_groups, ec_point_formats,
 *   renegotiation_info, status_request, extended_master_secret,
 *   encrypt_then_mac (none of the 1.2-only extensions).
 * - TLS 1.2: the above plus signature_algorithms.
 * - TLS 1.3: legacy_version 1.2, a 32-byte legacy session id,
 *   supported_versions (1.3 only), key_share, psk_key_exchange_modes,
 *   signature_algorithms.
 * A hello of 256..511 bytes gets an RFC 7685 padding extension (some
 * load balancers drop hellos of that size).
 */
import { createECDH, generateKeyPairSync, randomBytes } from 'node:crypto';
import { badRequest } from '../../errors/index.js';
import type { ProtocolName } from '../findings.js';
import { TLS_EMPTY_RENEGOTIATION_INFO_SCSV, TLS_FALLBACK_SCSV } from '../../policy/cipher-suites.js';
import { EC_LEGACY, groupName } from '../../policy/named-groups.js';
import { CONTENT_TYPE, HANDSHAKE_TYPE, encodeHandshake, encodeRecords, uint16List, vec } from './records.js';

export const TLS_VERSION: Readonly<Record<ProtocolName, number>> = {
  SSLv3: 0x0300,
  'TLSv1.0': 0x0301,
  'TLSv1.1': 0x0302,
  'TLSv1.2': 0x0303,
  'TLSv1.3': 0x0304,
};

export function versionName(version: number): ProtocolName | undefined {
  for (const [name, v] of Object.entries(TLS_VERSION)) if (v === version) return name as ProtocolName;
  return undefined;
}

export const EXTENSION = {
  serverName: 0,
  statusRequest: 5,
  supportedGroups: 10,
  ecPointFormats: 11,
  signatureAlgorithms: 13,
  alpn: 16,
  padding: 21,
  encryptThenMac: 22,
  extendedMasterSecret: 23,
  sessionTicket: 35,
  supportedVersions: 43,
  pskKeyExchangeModes: 45,
  keyShare: 51,
  renegotiationInfo: 0xff01,
} as const;

// ---------------------------------------------------------------------------
// Named groups
// ---------------------------------------------------------------------------

export { NAMED_GROUPS, groupName, groupByName, type NamedGroup } from '../../policy/named-groups.js';
export const GROUP = { secp256r1: 0x17, secp384r1: 0x18, secp521r1: 0x19, x25519: 0x1d, x448: 0x1e } as const;

/** Modern first, then the legacy curves: what a TLS ≤ 1.2 hello offers by default. */
export const DEFAULT_GROUPS_TLS12: readonly number[] = [0x1d, 0x17, 0x1e, 0x18, 0x19, 0x1a, 0x1b, 0x1c, ...EC_LEGACY.map((_, i) => i + 1).reverse()];
/** What a TLS 1.3 hello offers by default. */
export const DEFAULT_GROUPS_TLS13: readonly number[] = [0x1d, 0x17, 0x1e, 0x18, 0x19, 0x100, 0x101, 0x102, 0x103, 0x104];

/**
 * Signature schemes offered: everything a server might sign with, SHA-1 and
 * DSA included, so a server is never refused for lack of a scheme.
 */
export const DEFAULT_SIGNATURE_ALGORITHMS: readonly number[] = [
  0x0403, 0x0503, 0x0603, // ecdsa_secp256r1_sha256, _secp384r1_sha384, _secp521r1_sha512
  0x0807, 0x0808, // ed25519, ed448
  0x081a, 0x081b, 0x081c, // ecdsa_brainpoolP*r1tls13
  0x0804, 0x0805, 0x0806, // rsa_pss_rsae_sha256/384/512
  0x0809, 0x080a, 0x080b, // rsa_pss_pss_sha256/384/512
  0x0401, 0x0501, 0x0601, // rsa_pkcs1_sha256/384/512
  0x0303, 0x0301, 0x0302, // sha224 with ecdsa, rsa, dsa
  0x0402, 0x0502, 0x0602, // dsa with sha256/384/512
  0x0203, 0x0201, 0x0202, // sha1 with ecdsa, rsa, dsa
];

// ---------------------------------------------------------------------------
// Key shares (TLS 1.3)
// ---------------------------------------------------------------------------

const shares = new Map<number, Buffer>();

function rawOkp(type: 'x25519' | 'x448'): Buffer {
  const { publicKey } = type === 'x25519' ? generateKeyPairSync('x25519') : generateKeyPairSync('x448');
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

/**
 * The public key_exchange value for a group (RFC 8446 §4.2.8.2): raw
 * X25519/X448 keys, uncompressed NIST points. Made once per process: the
 * handshake is never completed, so reuse gives nothing away. Undefined for a
 * group this scanner cannot make a share for.
 */
export function keyShareFor(group: number): Buffer | undefined {
  let s = shares.get(group);
  if (s) return s;
  if (group === GROUP.x25519) s = rawOkp('x25519');
  else if (group === GROUP.x448) s = rawOkp('x448');
  else if (group === GROUP.secp256r1 || group === GROUP.secp384r1 || group === GROUP.secp521r1) {
    const ecdh = createECDH(group === GROUP.secp256r1 ? 'prime256v1' : group === GROUP.secp384r1 ? 'secp384r1' : 'secp521r1');
    s = ecdh.generateKeys();
  }
  if (s) shares.set(group, s);
  return s;
}

// ---------------------------------------------------------------------------
// The hello
// ---------------------------------------------------------------------------

export interface ClientHelloOptions {
  /** The version offered: legacy_version for ≤ 1.2, supported_versions for 1.3. */
  version: ProtocolName;
  /** Suites in preference order (signalling values are added by the flags below). */
  cipherSuites: readonly number[];
  /** SNI host name; leave out for IP addresses. */
  serverName?: string;
  /** supported_groups; defaults by version. An empty list sends no extension. */
  groups?: readonly number[];
  /** TLS 1.3 key shares; default x25519 and secp256r1. `[]` sends an empty key_share, which makes a 1.3 server answer with a HelloRetryRequest naming its group. */
  keyShares?: readonly number[];
  signatureAlgorithms?: readonly number[];
  /** Offer DEFLATE compression (method 1) before null. */
  offerCompression?: boolean;
  /** Append TLS_FALLBACK_SCSV (RFC 7507). */
  fallbackScsv?: boolean;
  /** How to ask for RFC 5746 secure renegotiation; default the extension, the SCSV for SSL 3.0. */
  renegotiation?: 'extension' | 'scsv' | 'none';
  /** Ask for OCSP stapling (status_request); default true when extensions are sent. */
  statusRequest?: boolean;
  /** Send extensions at all; default true except for SSL 3.0. */
  extensions?: boolean;
  random?: Buffer;
  sessionId?: Buffer;
}

function ext(type: number, data: Buffer): Buffer {
  return Buffer.concat([uint16List([type]), vec(2, data)]);
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** The ClientHello handshake message (type, length and body), without record framing. */
export function clientHelloMessage(o: ClientHelloOptions): Buffer {
  const version = TLS_VERSION[o.version];
  if (version === undefined) throw badRequest('TLS_VERSION_UNKNOWN', `unknown protocol version ${String(o.version)}`);
  const tls13 = version === TLS_VERSION['TLSv1.3'];
  const withExtensions = o.extensions ?? version !== TLS_VERSION.SSLv3;
  const renegotiation = o.renegotiation ?? (withExtensions ? 'extension' : 'scsv');

  const suites = [...o.cipherSuites];
  if (renegotiation === 'scsv' && !suites.includes(TLS_EMPTY_RENEGOTIATION_INFO_SCSV)) suites.push(TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
  if (o.fallbackScsv && !suites.includes(TLS_FALLBACK_SCSV)) suites.push(TLS_FALLBACK_SCSV);
  if (suites.length === 0) throw badRequest('TLS_NO_SUITES', 'a ClientHello needs at least one cipher suite');
  if (suites.length > 32767) throw badRequest('TLS_TOO_MANY_SUITES', `${suites.length} cipher suites do not fit a ClientHello`);

  const random = o.random ?? randomBytes(32);
  if (random.length !== 32) throw badRequest('TLS_RANDOM_INVALID', 'the client random must be 32 bytes');
  const sessionId = o.sessionId ?? (tls13 ? randomBytes(32) : Buffer.alloc(0));
  if (sessionId.length > 32) throw badRequest('TLS_SESSION_ID_INVALID', 'a session id has at most 32 bytes');

  const exts: Buffer[] = [];
  if (withExtensions) {
    if (o.serverName && !isIpLiteral(o.serverName)) {
      const host = Buffer.from(o.serverName, 'ascii');
      exts.push(ext(EXTENSION.serverName, vec(2, Buffer.concat([Buffer.from([0]), vec(2, host)]))));
    }
    const groups = o.groups ?? (tls13 ? DEFAULT_GROUPS_TLS13 : DEFAULT_GROUPS_TLS12);
    if (groups.length > 0) {
      exts.push(ext(EXTENSION.supportedGroups, vec(2, uint16List(groups))));
      if (!tls13) exts.push(ext(EXTENSION.ecPointFormats, vec(1, Buffer.from([0, 1, 2]))));
    }
    if (o.statusRequest ?? true) exts.push(ext(EXTENSION.statusRequest, Buffer.from([1, 0, 0, 0, 0])));
    if (version >= TLS_VERSION['TLSv1.2']) {
      exts.push(ext(EXTENSION.signatureAlgorithms, vec(2, uint16List(o.signatureAlgorithms ?? DEFAULT_SIGNATURE_ALGORITHMS))));
    }
    if (!tls13) {
      exts.push(ext(EXTENSION.encryptThenMac, Buffer.alloc(0)));
      exts.push(ext(EXTENSION.extendedMasterSecret, Buffer.alloc(0)));
    }
    if (renegotiation === 'extension') exts.push(ext(EXTENSION.renegotiationInfo, Buffer.from([0])));
    if (tls13) {
      exts.push(ext(EXTENSION.supportedVersions, vec(1, uint16List([TLS_VERSION['TLSv1.3']]))));
      exts.push(ext(EXTENSION.pskKeyExchangeModes, vec(1, Buffer.from([1])))); // psk_dhe_ke
      const entries = (o.keyShares ?? [GROUP.x25519, GROUP.secp256r1]).map((g) => {
        const share = keyShareFor(g);
        if (!share) throw badRequest('TLS_KEY_SHARE_UNSUPPORTED', `no key share can be made for ${groupName(g)}; offer it in groups with keyShares: [] instead`);
        return Buffer.concat([uint16List([g]), vec(2, share)]);
      });
      exts.push(ext(EXTENSION.keyShare, vec(2, entries)));
    }
  }

  const fixed = Buffer.concat([
    uint16List([tls13 ? TLS_VERSION['TLSv1.2'] : version]),
    random,
    vec(1, sessionId),
    vec(2, uint16List(suites)),
    vec(1, Buffer.from(o.offerCompression ? [1, 0] : [0])),
  ]);
  if (!withExtensions) return encodeHandshake(HANDSHAKE_TYPE.clientHello, fixed);

  // RFC 7685: keep the hello out of 256..511 bytes.
  const length = 4 + fixed.length + 2 + exts.reduce((n, e) => n + e.length, 0);
  if (length >= 256 && length < 512) {
    let pad = 512 - length;
    pad = pad >= 5 ? pad - 4 : 1;
    exts.push(ext(EXTENSION.padding, Buffer.alloc(pad)));
  }
  return encodeHandshake(HANDSHAKE_TYPE.clientHello, Buffer.concat([fixed, vec(2, exts)]));
}

/** The ClientHello as the bytes to write to the socket (record-framed). */
export function buildClientHello(o: ClientHelloOptions): Buffer {
  const recordVersion = o.version === 'SSLv3' ? TLS_VERSION.SSLv3 : TLS_VERSION['TLSv1.0'];
  return encodeRecords(CONTENT_TYPE.handshake, recordVersion, clientHelloMessage(o));
}
