import type { CertificateView } from '../pki/index.js';
import { subjectKeyProblem, type KeyProblem } from './key-policy.js';

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
export type ClientCertificateRule = 'SHA1_SIGNATURE' | 'WRONG_EKU' | 'KEY_TOO_WEAK' | 'KEY_NOT_CONFORMANT';
/** Rules a dated exception may relax (a key in a form verifiers refuse is never excepted). */
export const EXCEPTABLE_RULES: readonly ClientCertificateRule[] = ['SHA1_SIGNATURE', 'WRONG_EKU', 'KEY_TOO_WEAK'];

export interface DatedException {
  /** The 10-digit facility number the exception is for. */
  facility: string;
  /** The rule the exception relaxes. */
  allow: ClientCertificateRule;
  /** Last day in force (inclusive), YYYY-MM-DD, Japan time. */
  until: string;
  /** Why (ticket, migration plan), shown in reports. */
  note?: string;
}

export interface ClientCertificatePolicy {
  exceptions: readonly DatedException[];
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

export function exceptionInForce(policy: ClientCertificatePolicy, facility: string | undefined, rule: ClientCertificateRule, at: Date): DatedException | undefined {
  if (!facility) return undefined;
  const day = japanDay(at);
  return policy.exceptions.find((e) => e.facility === facility && e.allow === rule && day <= e.until);
}

/**
 * Judges a client chain, leaf first, ending at (and including) the trust
 * anchor. Signatures of every certificate count, the anchor's own included
 * ("SHA-1 signatures anywhere in the client chain are refused").
 */
export function judgeClientChain(chain: readonly CertificateView[], facility: string | undefined, policy: ClientCertificatePolicy, at: Date): ClientChainJudgement {
  const exceptionsUsed: DatedException[] = [];
  const broken = (rule: ClientCertificateRule, detail: string): ClientChainJudgement | undefined => {
    const ex = exceptionInForce(policy, facility, rule, at);
    if (ex) {
      exceptionsUsed.push(ex);
      return undefined;
    }
    return { refusal: { rule, detail }, exceptionsUsed };
  };
  const leaf = chain[0];
  if (!leaf) return { refusal: { rule: 'WRONG_EKU', detail: 'no certificate' }, exceptionsUsed };
  for (const [i, c] of chain.entries()) {
    const where = i === 0 ? 'the client certificate' : `chain certificate ${i} (${c.subject.map((a) => a.value).join(', ')})`;
    if (SHA1_SIGNATURE_OIDS.has(c.signatureAlgorithmOid) || MD_SIGNATURE_OIDS.has(c.signatureAlgorithmOid)) {
      const r = broken('SHA1_SIGNATURE', `${where} is signed with ${MD_SIGNATURE_OIDS.has(c.signatureAlgorithmOid) ? 'MD5/MD2' : 'SHA-1'} (${c.signatureAlgorithmOid}); SHA-2 is required`);
      if (r) return r;
    }
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

/** Validates configured exceptions (fail at start-up, not at the first client). */
export function checkDatedExceptions(list: readonly DatedException[]): string | undefined {
  for (const [i, e] of list.entries()) {
    if (!/^\d{10}$/.test(e.facility)) return `exception ${i + 1}: facility must be a 10-digit facility number`;
    if (!EXCEPTABLE_RULES.includes(e.allow)) return `exception ${i + 1}: allow must be SHA1_SIGNATURE, WRONG_EKU or KEY_TOO_WEAK`;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(e.until) || Number.isNaN(Date.parse(e.until))) return `exception ${i + 1}: until must be a date YYYY-MM-DD`;
  }
  return undefined;
}
