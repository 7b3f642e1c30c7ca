import { subjectKeyProblem } from './key-policy.js';
import { isFacilityNumber } from './facility-number.js';
import { keyUsageFor, OPERATOR_SUBJECT_OU, type CertificateProfile } from './certificate-profiles.js';
import { nameValue, type CertificateView } from '../pki/index.js';

/** What a lint needs besides the certificate: facts about its issuer. */
export interface LintContext {
  /** The issuer's notAfter; a child never outlives its issuer. Absent for a self-signed root. */
  issuerNotAfter?: Date;
  issuerKeyIdentifier?: Buffer;
  /** Whether the CA is configured with CRL/OCSP URLs (then they must appear). */
  revocationUrlsConfigured: boolean;
}

/** One rule: a name, the document it comes from, and a check returning a problem or nothing. */
export interface Lint {
  name: string;
  cites: string;
  check(cert: CertificateView, profile: CertificateProfile, ctx: LintContext): string | undefined;
}

const DAY = 86_400_000;
const sameSet = (a: readonly string[] = [], b: readonly string[] = []) => a.length === b.length && a.every((x) => b.includes(x));

/** Applied in this order; every problem is reported, not only the first. */
export const CERTIFICATE_LINTS: readonly Lint[] = [
  {
    name: 'signature_hash_sha2',
    cites: 'CRYPTREC GL-3001 (SHA-1 forbidden); tls-profiles.json certificates.signature_hashes',
    check: (c) => (c.signatureAlgorithm ? undefined : `signature algorithm ${c.signatureAlgorithmOid} is not one of ECDSA/RSA with SHA-256 or SHA-384`),
  },
  {
    name: 'serial_entropy',
    cites: 'RFC 5280 §4.1.2.2; CA/B BR 7.1 (≥ 64 random bits)',
    check: (c) => (c.serialHex.length < 17 || c.serialHex.length > 40 ? `serial ${c.serialHex} must hold 64 to 159 bits` : undefined),
  },
  {
    name: 'validity_order',
    cites: 'RFC 5280 §4.1.2.5',
    check: (c) => (c.notAfter <= c.notBefore ? 'notAfter is not after notBefore' : undefined),
  },
  {
    name: 'validity_cap',
    cites: 'IHE ITI-19 (node certificates at most 2 years); profile maxValidityDays',
    check: (c, p) => {
      const days = (c.notAfter.getTime() - c.notBefore.getTime()) / DAY;
      return days > p.maxValidityDays + 1e-9 ? `validity of ${days.toFixed(1)} days exceeds the ${p.name} profile's ${p.maxValidityDays} days` : undefined;
    },
  },
  {
    name: 'within_issuer_validity',
    cites: 'RFC 5280 §6.1.3 (a chain is valid only while every certificate is)',
    check: (c, _p, ctx) => (ctx.issuerNotAfter && c.notAfter > ctx.issuerNotAfter ? `notAfter ${c.notAfter.toISOString()} is after the issuer's ${ctx.issuerNotAfter.toISOString()}` : undefined),
  },
  {
    name: 'subject_key',
    cites: 'CRYPTREC GL-3001 high security; RFC 5480 §2.1.1 (namedCurve only), RFC 3279 §2.3.1, CA/B BR §6.1.6 (RSA exponent); key-policy.ts',
    check: (c) => {
      const p = subjectKeyProblem(c.spki);
      return p ? `${p.code}: ${p.message}` : undefined;
    },
  },
  {
    name: 'basic_constraints',
    cites: 'RFC 5280 §4.2.1.9',
    check: (c, p) => {
      const bc = c.extensions.basicConstraints;
      if (!bc) return 'basicConstraints is missing';
      if (bc.ca !== p.ca) return `basicConstraints cA=${bc.ca} but the ${p.name} profile needs cA=${p.ca}`;
      if (!c.extensions.present.find((e) => e.oid === '2.5.29.19')?.critical) return 'basicConstraints must be critical';
      return p.ca && bc.pathLength !== p.pathLength ? `pathLenConstraint ${bc.pathLength} differs from the profile's ${p.pathLength}` : undefined;
    },
  },
  {
    name: 'key_usage',
    cites: 'RFC 5280 §4.2.1.3; RFC 5480 §3 (no keyEncipherment for EC); NSS needs keyEncipherment on RSA server keys',
    check: (c, p) => {
      if (!c.extensions.present.find((e) => e.oid === '2.5.29.15')?.critical) return 'keyUsage must be present and critical';
      const want = keyUsageFor(p, c.spki);
      return sameSet(c.extensions.keyUsage, want) ? undefined : `keyUsage ${c.extensions.keyUsage?.join(',')} differs from the profile's ${want.join(',')} for this key type`;
    },
  },
  {
    name: 'extended_key_usage',
    cites: 'RFC 5280 §4.2.1.12; MHLW 6.0 (client authentication)',
    check: (c, p) => {
      if (p.extendedKeyUsage.length === 0) return c.extensions.extendedKeyUsage ? 'a CA certificate carries no extendedKeyUsage in this hierarchy' : undefined;
      return sameSet(c.extensions.extendedKeyUsage, p.extendedKeyUsage) ? undefined : `extendedKeyUsage ${c.extensions.extendedKeyUsage?.join(',') ?? 'none'} differs from the profile's ${p.extendedKeyUsage.join(',')}`;
    },
  },
  {
    name: 'unique_extensions',
    cites: 'RFC 5280 §4.2',
    check: (c) => (new Set(c.extensions.present.map((e) => e.oid)).size !== c.extensions.present.length ? 'an extension appears twice' : undefined),
  },
  {
    name: 'key_identifiers',
    cites: 'RFC 5280 §4.2.1.1, §4.2.1.2',
    check: (c, _p, ctx) => {
      if (!c.extensions.subjectKeyIdentifier) return 'subjectKeyIdentifier is missing';
      if (ctx.issuerKeyIdentifier && !c.extensions.authorityKeyIdentifier?.equals(ctx.issuerKeyIdentifier)) return "authorityKeyIdentifier does not match the issuer's key";
      return undefined;
    },
  },
  {
    name: 'name_upper_bounds',
    cites: 'RFC 5280 Appendix A (ub-organization-name 64, ub-common-name 64, ub-organizational-unit-name 64)',
    check: (c) => {
      const long = c.subject.filter((a) => ['O', 'OU', 'CN'].includes(a.type) && [...a.value].length > 64);
      return long.length ? `subject ${long.map((a) => a.type).join(', ')} longer than 64 characters` : undefined;
    },
  },
  {
    name: 'subject_country',
    cites: 'sekisho profile (C=JP)',
    check: (c) => (nameValue(c.subject, 'C') === 'JP' ? undefined : 'subject C must be JP'),
  },
  {
    name: 'facility_subject',
    cites: 'sekisho facility profile (CN = 医療機関番号, O = facility name)',
    check: (c, p) => {
      if (p.name === 'facility') {
        const cn = nameValue(c.subject, 'CN') ?? '';
        if (!isFacilityNumber(cn)) return `subject CN "${cn}" is not a valid 10-digit facility number`;
        if (!nameValue(c.subject, 'O')) return 'subject O (facility name) is missing';
      }
      if (p.name === 'operator') {
        // Never a facility's or a device's identity: the gateway maps CN = 10 digits and OU = 10 digits to facilities.
        if (nameValue(c.subject, 'OU') !== OPERATOR_SUBJECT_OU) return `operator subject OU must be "${OPERATOR_SUBJECT_OU}"`;
        if (!/^[a-z][a-z0-9._-]{0,31}$/.test(nameValue(c.subject, 'CN') ?? '')) return 'operator subject CN must be an operator name (a letter, then letters, digits, . _ -)';
      }
      if (p.name === 'device') {
        if (!isFacilityNumber(nameValue(c.subject, 'OU') ?? '')) return 'device subject OU must be the facility number';
        if (!nameValue(c.subject, 'CN')) return 'device subject CN (device name) is missing';
      }
      return undefined;
    },
  },
  {
    name: 'subject_alt_name',
    cites: 'RFC 6125 / CA/B BR (server names in SAN)',
    check: (c, p) => {
      const san = c.extensions.subjectAltName;
      return p.requireSubjectAltName && !(san && san.dns.length + san.ip.length > 0) ? 'a server certificate needs at least one DNS or IP subjectAltName' : undefined;
    },
  },
  {
    name: 'revocation_pointers',
    cites: 'RFC 5280 §4.2.1.13, §4.2.2.1',
    check: (c, p, ctx) => (p.revocationPointers && ctx.revocationUrlsConfigured && !c.extensions.crlDistributionPoints?.length ? 'cRLDistributionPoints is missing' : undefined),
  },
  {
    name: 'revocation_pointers_http',
    cites: 'RFC 5280 §4.2.1.13 / §4.2.2.1, RFC 6960 Appendix A (fetched over HTTP); NSS fetches CRL and OCSP only over http://',
    check: (c) => {
      const urls = [...(c.extensions.crlDistributionPoints ?? []), ...(c.extensions.ocspUrls ?? []), ...(c.extensions.caIssuersUrls ?? [])];
      const other = urls.filter((u) => !u.startsWith('http://'));
      return other.length ? `revocation and issuer URLs must be plain http:// (relying parties such as NSS fetch nothing else): ${other.join(', ')}` : undefined;
    },
  },
];

export interface LintProblem {
  lint: string;
  cites: string;
  problem: string;
}

export function lintCertificate(cert: CertificateView, profile: CertificateProfile, ctx: LintContext): LintProblem[] {
  const out: LintProblem[] = [];
  for (const l of CERTIFICATE_LINTS) {
    const problem = l.check(cert, profile, ctx);
    if (problem) out.push({ lint: l.name, cites: l.cites, problem });
  }
  return out;
}
