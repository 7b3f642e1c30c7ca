/**
 * TLS named groups by code (IANA "Supported Groups" registry): the scanner
 * offers them, the gateway names what a ClientHello offered.
 */
export interface NamedGroup {
  code: number;
  /** IANA name (x25519, secp256r1, ffdhe2048, X25519MLKEM768, …). */
  name: string;
  kind: 'ec' | 'ffdhe' | 'hybrid';
  /** Usable with TLS 1.2 and older (RFC 8422 curves). */
  tls12: boolean;
  /** Usable with TLS 1.3. */
  tls13: boolean;
}

export const EC_LEGACY = [
  'sect163k1', 'sect163r1', 'sect163r2', 'sect193r1', 'sect193r2', 'sect233k1', 'sect233r1', 'sect239k1', 'sect283k1', 'sect283r1',
  'sect409k1', 'sect409r1', 'sect571k1', 'sect571r1', 'secp160k1', 'secp160r1', 'secp160r2', 'secp192k1', 'secp192r1', 'secp224k1',
  'secp224r1', 'secp256k1',
];

/** The named groups (RFC 8446 §4.2.7, RFC 8422, RFC 7919, RFC 8734, draft ML-KEM hybrids) the scanner and the gateway's observation know. */
export const NAMED_GROUPS: readonly NamedGroup[] = Object.freeze([
  ...EC_LEGACY.map((name, i): NamedGroup => ({ code: i + 1, name, kind: 'ec', tls12: true, tls13: false })),
  { code: 0x17, name: 'secp256r1', kind: 'ec', tls12: true, tls13: true },
  { code: 0x18, name: 'secp384r1', kind: 'ec', tls12: true, tls13: true },
  { code: 0x19, name: 'secp521r1', kind: 'ec', tls12: true, tls13: true },
  { code: 0x1a, name: 'brainpoolP256r1', kind: 'ec', tls12: true, tls13: false },
  { code: 0x1b, name: 'brainpoolP384r1', kind: 'ec', tls12: true, tls13: false },
  { code: 0x1c, name: 'brainpoolP512r1', kind: 'ec', tls12: true, tls13: false },
  { code: 0x1d, name: 'x25519', kind: 'ec', tls12: true, tls13: true },
  { code: 0x1e, name: 'x448', kind: 'ec', tls12: true, tls13: true },
  { code: 0x1f, name: 'brainpoolP256r1tls13', kind: 'ec', tls12: false, tls13: true },
  { code: 0x20, name: 'brainpoolP384r1tls13', kind: 'ec', tls12: false, tls13: true },
  { code: 0x21, name: 'brainpoolP512r1tls13', kind: 'ec', tls12: false, tls13: true },
  { code: 0x29, name: 'curveSM2', kind: 'ec', tls12: false, tls13: true },
  { code: 0x100, name: 'ffdhe2048', kind: 'ffdhe', tls12: false, tls13: true },
  { code: 0x101, name: 'ffdhe3072', kind: 'ffdhe', tls12: false, tls13: true },
  { code: 0x102, name: 'ffdhe4096', kind: 'ffdhe', tls12: false, tls13: true },
  { code: 0x103, name: 'ffdhe6144', kind: 'ffdhe', tls12: false, tls13: true },
  { code: 0x104, name: 'ffdhe8192', kind: 'ffdhe', tls12: false, tls13: true },
  { code: 0x11eb, name: 'SecP256r1MLKEM768', kind: 'hybrid', tls12: false, tls13: true },
  { code: 0x11ec, name: 'X25519MLKEM768', kind: 'hybrid', tls12: false, tls13: true },
  { code: 0x11ed, name: 'SecP384r1MLKEM1024', kind: 'hybrid', tls12: false, tls13: true },
  { code: 0x6399, name: 'X25519Kyber768Draft00', kind: 'hybrid', tls12: false, tls13: true },
]);

const GROUP_BY_CODE = new Map(NAMED_GROUPS.map((g) => [g.code, g]));
const GROUP_BY_NAME = new Map(NAMED_GROUPS.map((g) => [g.name.toLowerCase(), g]));

export function groupName(code: number): string {
  return GROUP_BY_CODE.get(code)?.name ?? `group_0x${code.toString(16).padStart(4, '0')}`;
}

export function groupByName(name: string): NamedGroup | undefined {
  const n = name.trim().toLowerCase();
  return GROUP_BY_NAME.get(n) ?? GROUP_BY_NAME.get({ p256: 'secp256r1', 'p-256': 'secp256r1', prime256v1: 'secp256r1', p384: 'secp384r1', 'p-384': 'secp384r1', p521: 'secp521r1', 'p-521': 'secp521r1' }[n] ?? '');
}

