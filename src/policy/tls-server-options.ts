import { constants } from 'node:crypto';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { suiteByName } from './cipher-suites.js';
import { PROTOCOL_ORDER, type ComplianceProfile, type Protocol } from './tls-compliance.js';
import { tlsProfile } from './tls-profiles.js';

const NODE_VERSION: Partial<Record<Protocol, 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'>> = {
  'TLSv1.0': 'TLSv1',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.3': 'TLSv1.3',
};

/** A protocol as the policy spells it, from Node's name for it (`TLSSocket.getProtocol()`: TLSv1, TLSv1.1, …); undefined for anything else. */
export function policyProtocol(nodeName: string | null | undefined): Protocol | undefined {
  return nodeName ? BY_NODE_NAME.get(nodeName) : undefined;
}
const BY_NODE_NAME = new Map<string, Protocol>([['SSLv3', 'SSLv3'], ...(Object.entries(NODE_VERSION) as [Protocol, string][]).map(([p, n]): [string, Protocol] => [n, p])]);

/** Named groups as OpenSSL's groups list spells them. */
const OPENSSL_GROUP: Record<string, string> = { x25519: 'X25519', x448: 'X448', secp256r1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521', ffdhe2048: 'ffdhe2048', ffdhe3072: 'ffdhe3072', ffdhe4096: 'ffdhe4096' };

/**
 * The TLS server settings a profile implies, for Node's `tls` (the gateway
 * and every HTTPS surface use them; the scanner judges with the same
 * profile). TLS 1.2 suites in the profile's order and TLS 1.3 suites named
 * explicitly (OpenSSL enables the CCM suites only when named); the server's
 * order wins. Client-initiated renegotiation is refused by OpenSSL
 * (SSL_OP_NO_RENEGOTIATION): Node's own limit applies only to sockets a
 * tls.Server wraps itself, and the gateway wraps its sockets itself.
 */
export function tlsServerOptions(profile: ComplianceProfile): Pick<TlsOptions & SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers' | 'honorCipherOrder' | 'ecdhCurve' | 'dhparam' | 'sigalgs' | 'secureOptions'> {
  const versions = profile.protocolsAllowed.filter((p) => NODE_VERSION[p]).sort((a, b) => PROTOCOL_ORDER.indexOf(a) - PROTOCOL_ORDER.indexOf(b));
  const tls12 = profile.suitesListed.map((n) => suiteByName(n)?.openssl).filter((n): n is string => Boolean(n));
  const groups = (tlsProfile('high').key_exchange?.groups ?? []).map((g) => OPENSSL_GROUP[g]).filter((g): g is string => Boolean(g));
  const legacy = allowsLegacyHandshake(profile);
  return {
    minVersion: NODE_VERSION[versions[0]!]!,
    maxVersion: NODE_VERSION[versions[versions.length - 1]!]!,
    // Node takes TLS 1.3 suites (TLS_…) in the same string as the TLS 1.2 ones.
    // Security level 0 only where the profile allows TLS 1.0/1.1 (their handshake signs with MD5-SHA1/SHA-1, which OpenSSL 3 refuses above level 0).
    ciphers: [...profile.tls13SuitesListed, ...tls12, ...(legacy ? ['@SECLEVEL=0'] : [])].join(':'),
    honorCipherOrder: true,
    ecdhCurve: groups.join(':'),
    dhparam: 'auto',
    sigalgs: signatureAlgorithms(profile.certificate.signatureHashes, legacy),
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
}

/**
 * Whether a profile allows TLS 1.0 or 1.1 (CRYPTREC's exception type): its
 * server then runs at OpenSSL security level 0 and accepts SHA-1 handshake
 * signatures, which those versions cannot do without. No other profile does.
 */
export function allowsLegacyHandshake(profile: ComplianceProfile): boolean {
  return profile.protocolsAllowed.includes('TLSv1.0') || profile.protocolsAllowed.includes('TLSv1.1');
}

/**
 * Signature algorithms offered and accepted in handshakes (also for a
 * client's CertificateVerify): ECDSA, RSA-PSS and RSA PKCS#1 with the
 * profile's SHA-2 hashes, so no SHA-1 signature is negotiated, except under
 * a profile that allows TLS 1.0/1.1, where SHA-1 comes last (a TLS 1.0/1.1
 * peer signs with MD5-SHA1 or SHA-1; a TLS 1.2 peer that offers SHA-2 gets SHA-2).
 */
function signatureAlgorithms(hashes: readonly string[], legacy: boolean): string {
  const bits = hashes.map((h) => /^sha-?(256|384|512)$/i.exec(h)?.[1]).filter((b): b is string => Boolean(b));
  const use = bits.length ? bits : ['256', '384', '512'];
  return [
    ...use.map((b) => `ECDSA+SHA${b}`),
    ...use.map((b) => `rsa_pss_rsae_sha${b}`),
    ...use.map((b) => `rsa_pss_pss_sha${b}`),
    ...use.map((b) => `RSA+SHA${b}`),
    ...(legacy ? ['ECDSA+SHA1', 'RSA+SHA1'] : []),
  ].join(':');
}
