import { createHash } from 'node:crypto';
import type { CertificateView } from '../pki/index.js';
import { subjectKeyProblem, type KeyProblem } from './key-policy.js';
import { OPERATOR_SUBJECT_OU } from './certificate-profiles.js';

/**
 * Which client certificates a service center accepts, beyond a valid chain
 * (../shared/reference/tls-profiles.json `client_authentication`; MHLW 6.0,
 * IHE ITI-19): no SHA-1 signature anywhere in the chain, the leaf usable for
 * clientAuth, the key of every certificate in the chain within the issuing
 * key policy (key-policy.ts: strength, and only the SubjectPublicKeyInfo forms
 * RFC 5480/8017 allow, so no explicit EC parameters, no RSA e = 3). Each
 * rule is checked explicitly and named, not left to OpenSSL's security level
 * (which reports a SHA-1 refusal as "UNSPECIFIED").
 *
 * A policy may carry dated exceptions for migrations: "accept SHA-1 client
 * chains from facility X until date D". An exception is used only while it is
 * in force and only for the facility it names; the gateway reports each use.
 */
export type ClientCertificateRule = 'SHA1_SIGNATURE' | 'WRONG_EKU' | 'KEY_TOO_WEAK' | 'KEY_NOT_CONFORMANT' | 'LEGACY_SUBJECT' | 'RETIRING_CA' | 'OPERATOR_CERTIFICATE';
/** Rules a dated exception may relax (a key in a form verifiers refuse, or a person's operator certificate, is never excepted). */
export const EXCEPTABLE_RULES: readonly ClientCertificateRule[] = ['SHA1_SIGNATURE', 'WRONG_EKU', 'KEY_TOO_WEAK', 'LEGACY_SUBJECT', 'RETIRING_CA'];

export interface DatedException {
  /** The 10-digit facility number the exception is for; absent: network-wide (every client). */
  facility?: string;
  /** The rule the exception relaxes. */
  allow: ClientCertificateRule;
  /** First day in force (inclusive), YYYY-MM-DD, Japan time; absent: in force from the start. */
  from?: string;
  /** Last day in force (inclusive), YYYY-MM-DD, Japan time. */
  until: string;
  /** RETIRING_CA: the anchor it keeps accepted (SHA-256 of its SubjectPublicKeyInfo, lowercase hex). */
  anchor?: string;
  /** Why (ticket, migration plan), shown in reports. */
  note?: string;
}

/** A trust anchor being retired: chains ending at it pass only under a RETIRING_CA exception in force. */
export interface RetiringAnchor {
  /** SHA-256 of the anchor's SubjectPublicKeyInfo, lowercase hex. */
  spki: string;
  /** Its subject, for messages. */
  name: string;
}

export interface ClientCertificatePolicy {
  exceptions: readonly DatedException[];
  /** The client certificate's subject must carry a 10-digit facility number (CN, or OU for a device); a chain-verified certificate without one is refused as LEGACY_SUBJECT. Pinned certificates are exempt. */
  facilitySubjectRequired?: boolean;
  /** Anchors accepted only under a dated RETIRING_CA exception (kept here after the exception ends, so that the anchor is then refused). */
  retiringAnchors?: readonly RetiringAnchor[];
}

export const DEFAULT_CLIENT_CERTIFICATE_POLICY: ClientCertificatePolicy = { exceptions: [] };

const SHA1_SIGNATURE_OIDS = new Set([
  '1.2.840.113549.1.1.5', // sha1WithRSAEncryption
  '1.2.840.10045.4.1', // ecdsa-with-SHA1
  '1.2.840.10040.4.3', // dsa-with-sha1
  '1.3.14.3.2.29', // sha1WithRSASignature (OIW)
]);
const MD_SIGNATURE_OIDS = new Set(['1.2.840.113549.1.1.4', '1.2.840.113549.1.1.2', '1.2.840.113549.1.1.3']);
const EKU_CLIENT_AUTH = 'clientAuth';
const EKU_ANY = '2.5.29.37.0'; // anyExtendedKeyUsage

export interface ClientChainJudgement {
  /** The first rule broken and not excepted, with a sentence saying where. */
  refusal?: { rule: ClientCertificateRule; detail: string };
  /** Exceptions this chain relies on (it is accepted only because of them). */
  exceptionsUsed: DatedException[];
}

/**
 * The key judgement of a certificate view, computed once per view: the
 * gateway caches views per chain, and an RSA key's check (small factors) costs
 * tens of microseconds, too much for every handshake.
 */
const keyProblems = new WeakMap<CertificateView, KeyProblem | null>();
function keyProblemOf(c: CertificateView): KeyProblem | undefined {
  let p = keyProblems.get(c);
  if (p === undefined) keyProblems.set(c, (p = subjectKeyProblem(c.spki) ?? null));
  return p ?? undefined;
}

/** The day (YYYY-MM-DD) in Japan time, which is what dates in exceptions mean. */
function japanDay(at: Date): string {
  return new Date(at.getTime() + 9 * 3_600_000).toISOString().slice(0, 10);
}

/**
 * The exception that relaxes `rule` for this client at `at`: a per-facility
 * one for the certificate's facility, or a network-wide one; in force from
 * its `from` day through its `until` day (Japan time). A RETIRING_CA
 * exception counts only for its own anchor.
 */
export function exceptionInForce(policy: ClientCertificatePolicy, facility: string | undefined, rule: ClientCertificateRule, at: Date, anchor?: string): DatedException | undefined {
  const day = japanDay(at);
  const inForce = (e: DatedException) => e.allow === rule && day <= e.until && (!e.from || e.from <= day) && (rule !== 'RETIRING_CA' || e.anchor === anchor);
  // A facility's own exception first (it is the more specific), then a network-wide one.
  return policy.exceptions.find((e) => inForce(e) && facility !== undefined && e.facility === facility) ?? policy.exceptions.find((e) => inForce(e) && e.facility === undefined);
}

const spkiHashes = new WeakMap<CertificateView, string>();
/** SHA-256 of a certificate's SubjectPublicKeyInfo (lowercase hex), computed once per view. */
export function spkiSha256(c: CertificateView): string {
  let h = spkiHashes.get(c);
  if (!h) spkiHashes.set(c, (h = createHash('sha256').update(c.spki).digest('hex')));
  return h;
}

/**
 * Judges a client chain, leaf first, ending at (and including) the trust
 * anchor. Signatures of every certificate count, the anchor's own included
 * ("SHA-1 signatures anywhere in the client chain are refused").
 */
export function judgeClientChain(chain: readonly CertificateView[], facility: string | undefined, policy: ClientCertificatePolicy, at: Date): ClientChainJudgement {
  const exceptionsUsed: DatedException[] = [];
  const broken = (rule: ClientCertificateRule, detail: string, anchor?: string): ClientChainJudgement | undefined => {
    const ex = exceptionInForce(policy, facility, rule, at, anchor);
    if (ex) {
      exceptionsUsed.push(ex);
      return undefined;
    }
    return { refusal: { rule, detail }, exceptionsUsed };
  };
  const leaf = chain[0];
  if (!leaf) return { refusal: { rule: 'WRONG_EKU', detail: 'no certificate' }, exceptionsUsed };
  // An operator's console sign-in (OU=operator) is a person's credential, never a node's, whatever a route allows.
  if (leaf.subject.some((a) => a.type === 'OU' && a.value === OPERATOR_SUBJECT_OU)) {
    return { refusal: { rule: 'OPERATOR_CERTIFICATE', detail: `the client certificate is an operator's console sign-in (OU=${OPERATOR_SUBJECT_OU}), not a facility's or a device's` }, exceptionsUsed };
  }
  // A chain (not a pinned certificate alone) that ends at an anchor being retired.
  const top = chain.length > 1 ? chain[chain.length - 1]! : undefined;
  const retiring = top && policy.retiringAnchors?.length ? policy.retiringAnchors.find((a) => a.spki === spkiSha256(top)) : undefined;
  if (retiring) {
    const r = broken('RETIRING_CA', `the certificate chains to ${retiring.name}, a CA being retired and no longer accepted; a certificate from the current CA is required`, retiring.spki);
    if (r) return r;
  }
  if (policy.facilitySubjectRequired && chain.length > 1 && !facility) {
    const r = broken('LEGACY_SUBJECT', `the client certificate's subject (${leaf.subject.map((a) => `${a.type}=${a.value}`).join(', ')}) names no 10-digit facility number`);
    if (r) return r;
  }
  for (const [i, c] of chain.entries()) {
    const where = i === 0 ? 'the client certificate' : `chain certificate ${i} (${c.subject.map((a) => a.value).join(', ')})`;
    if (SHA1_SIGNATURE_OIDS.has(c.signatureAlgorithmOid) || MD_SIGNATURE_OIDS.has(c.signatureAlgorithmOid)) {
      const r = broken('SHA1_SIGNATURE', `${where} is signed with ${MD_SIGNATURE_OIDS.has(c.signatureAlgorithmOid) ? 'MD5/MD2' : 'SHA-1'} (${c.signatureAlgorithmOid}); SHA-2 is required`);
      if (r) return r;
    }
  }
  // keyUsage, when present, must allow the signature a TLS client makes (or ECDH key agreement), as OpenSSL's sslclient purpose requires.
  const ku = leaf.extensions.keyUsage;
  if (ku && !ku.includes('digitalSignature') && !ku.includes('keyAgreement')) {
    const r = broken('WRONG_EKU', `the client certificate's keyUsage (${ku.join(', ') || 'empty'}) allows neither digitalSignature nor keyAgreement`);
    if (r) return r;
  }
  const eku = leaf.extensions.extendedKeyUsage;
  if (eku && !eku.includes(EKU_CLIENT_AUTH) && !(eku as readonly string[]).includes(EKU_ANY)) {
    const r = broken('WRONG_EKU', `the client certificate's extendedKeyUsage (${eku.join(', ') || 'empty'}) lacks clientAuth`);
    if (r) return r;
  }
  for (const [i, c] of chain.entries()) {
    const problem = keyProblemOf(c);
    if (!problem) continue;
    const where = i === 0 ? "the client certificate's key" : `the key of chain certificate ${i} (${c.subject.map((a) => a.value).join(', ')})`;
    if (problem.weak) {
      const r = broken('KEY_TOO_WEAK', `${where} is too weak: ${problem.message}`);
      if (r) return r;
    } else return { refusal: { rule: 'KEY_NOT_CONFORMANT', detail: `${where} is refused (${problem.code}): ${problem.message}` }, exceptionsUsed };
  }
  return { exceptionsUsed };
}

const isDay = (d: string) => /^\d{4}-\d{2}-\d{2}$/.test(d) && !Number.isNaN(Date.parse(d)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d);

/** Validates configured exceptions (fail at start-up, not at the first client). */
export function checkDatedExceptions(list: readonly DatedException[]): string | undefined {
  for (const [i, e] of list.entries()) {
    if (e.facility !== undefined && !/^\d{10}$/.test(e.facility)) return `exception ${i + 1}: facility must be a 10-digit facility number (omit it for a network-wide exception)`;
    if (!EXCEPTABLE_RULES.includes(e.allow)) return `exception ${i + 1}: allow must be one of ${EXCEPTABLE_RULES.join(', ')}`;
    if (!isDay(e.until)) return `exception ${i + 1}: until must be a date YYYY-MM-DD`;
    if (e.from !== undefined && !isDay(e.from)) return `exception ${i + 1}: from must be a date YYYY-MM-DD`;
    if (e.from !== undefined && e.from > e.until) return `exception ${i + 1}: from (${e.from}) is after until (${e.until})`;
    if (e.allow === 'LEGACY_SUBJECT' && e.facility !== undefined) return `exception ${i + 1}: a LEGACY_SUBJECT exception is network-wide (a legacy subject names no facility)`;
    if (e.allow === 'RETIRING_CA' && !e.anchor) return `exception ${i + 1}: a RETIRING_CA exception names the anchor it keeps accepted`;
    if (e.allow !== 'RETIRING_CA' && e.anchor !== undefined) return `exception ${i + 1}: anchor goes only with RETIRING_CA`;
  }
  return undefined;
}
