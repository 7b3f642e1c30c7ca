import type { CertificateView } from '../pki/index.js';
import { judgeClientChain, type ClientCertificateRule, type DatedException } from './client-certificate-policy.js';
import type { PolicyState } from './policy-schedule.js';
import { classifySuite } from './suite-standing.js';
import { allowsLegacyHandshake } from './tls-server-options.js';
import { PROTOCOL_ORDER, type ComplianceProfile, type Protocol } from './tls-compliance.js';

/**
 * Would this client's connection pass a policy? The gateway records the
 * verdict under the coming policy beside the one in force (observation
 * before enforcement), the self-check page and the vendor endpoint show it,
 * and the migration report counts it. Judged from what one connection showed:
 * the negotiated version and suite when the handshake completed, or what the
 * ClientHello offered when it did not, and the client's chain.
 */
export interface ConnectionFacts {
  /** The negotiated version; absent when the handshake did not complete. */
  protocol?: Protocol;
  /** The negotiated suite (IANA name). */
  suite?: string;
  /** What the ClientHello offered (highest version first is not assumed). */
  offered?: { protocols: readonly Protocol[]; suites: readonly string[]; groups?: readonly string[] };
  /**
   * The signature algorithms the client and the server share (OpenSSL's
   * names, as `TLSSocket.getSharedSigalgs()` gives them: `ECDSA+SHA256`,
   * `RSA-PSS+SHA256`, `RSA+SHA1`, …): what the client could sign its
   * CertificateVerify with. Absent when unknown.
   */
  signatureAlgorithms?: readonly string[];
  /** The client's chain, leaf first, to and including the trust anchor; empty or absent when no certificate was shown. */
  clientChain?: readonly CertificateView[];
  /** The facility the certificate names, when known (exceptions are per facility). */
  facility?: string;
}

export type ConnectionProblemCode = 'PROTOCOL_TOO_OLD' | 'SUITE_NOT_ALLOWED' | 'SIGNATURE_ALGORITHM_NOT_ALLOWED' | 'CLIENT_CERT_MISSING' | ClientCertificateRule;

export interface ConnectionProblem {
  code: ConnectionProblemCode;
  en: string;
  ja: string;
  /** What the clinic (or its vendor) should change. */
  fixEn: string;
  fixJa: string;
}

export interface ConnectionVerdict {
  profile: string;
  accepted: boolean;
  problems: ConnectionProblem[];
  /** Exceptions the connection passes only because of. */
  exceptionsUsed: DatedException[];
}

/** A suite the profile's server would negotiate (TLS 1.3 suites and TLS ≤ 1.2 suites alike). */
export function suiteAccepted(name: string, profile: ComplianceProfile): boolean {
  if (name.startsWith('TLS_AES_') || name.startsWith('TLS_CHACHA20_')) return profile.tls13SuitesListed.includes(name);
  return profile.suitesListed.length ? profile.suitesListed.includes(name) : classifySuite(name, profile) !== 'forbidden';
}

function protocolProblem(used: readonly Protocol[], profile: ComplianceProfile): ConnectionProblem {
  const allowed = profile.protocolsAllowed.filter((p) => p !== 'SSLv3').sort((a, b) => PROTOCOL_ORDER.indexOf(a) - PROTOCOL_ORDER.indexOf(b));
  const list = allowed.map((p) => p.replace('v', ' ')).join(', ');
  const shown = used.map((p) => p.replace('v', ' ')).join(', ') || 'none';
  return {
    code: 'PROTOCOL_TOO_OLD',
    en: `the client used or offered ${shown}; the ${profile.name} policy accepts only ${list}`,
    ja: `この端末は ${shown} で接続しました（または提示しました）。${profile.nameJa} のポリシーで使えるのは ${list} だけです`,
    fixEn: `enable ${allowed.at(-2)?.replace('v', ' ') ?? list} or newer in the browser or the transmission software (Firefox: security.tls.version.max; Internet Explorer: "Use TLS 1.2"), or update the software`,
    fixJa: `ブラウザや送信ソフトで ${allowed.at(-2)?.replace('v', ' ') ?? list} 以上を有効にしてください（Firefox は about:config の security.tls.version.max、Internet Explorer は「TLS 1.2 の使用」）。できない場合はソフトウェアを更新してください`,
  };
}

function suiteProblem(shown: readonly string[], profile: ComplianceProfile): ConnectionProblem {
  const s = shown.slice(0, 4).join(', ') + (shown.length > 4 ? ', …' : '');
  return {
    code: 'SUITE_NOT_ALLOWED',
    en: `no cipher suite the client used or offered (${s || 'none'}) is allowed by the ${profile.name} policy`,
    ja: `この端末が使った（提示した）暗号スイート（${s || 'なし'}）は ${profile.nameJa} のポリシーで許されていません`,
    fixEn: 'update the browser or transmission software so that it offers AES-GCM or ChaCha20-Poly1305 with ECDHE',
    fixJa: 'ECDHE と AES-GCM（または ChaCha20-Poly1305）を使えるよう、ブラウザや送信ソフトを更新してください',
  };
}

/** Whether an OpenSSL signature-algorithm name signs with one of the profile's hashes (SHA-256/384/512). */
function signsWithProfileHash(name: string, profile: ComplianceProfile): boolean {
  const bits = /sha-?(256|384|512)\b/i.exec(name)?.[1];
  return bits !== undefined && profile.certificate.signatureHashes.some((h) => h.replace(/-/g, '').toUpperCase() === `SHA${bits}`);
}

function signatureProblem(shared: readonly string[], profile: ComplianceProfile): ConnectionProblem {
  const s = shared.slice(0, 4).join(', ') || 'none';
  return {
    code: 'SIGNATURE_ALGORITHM_NOT_ALLOWED',
    en: `the client can sign its certificate's handshake signature only with ${s}; the ${profile.name} policy accepts SHA-2 (${profile.certificate.signatureHashes.join(', ')}) only`,
    ja: `この端末は証明書による署名に ${s} しか使えません。${profile.nameJa} のポリシーでは SHA-2（${profile.certificate.signatureHashes.join('、')}）が必要です`,
    fixEn: 'update the browser or transmission software (or its TLS library) so that it signs with SHA-256 or stronger',
    fixJa: 'SHA-256 以上で署名できるよう、ブラウザや送信ソフト（またはその TLS ライブラリ）を更新してください',
  };
}

const CERT_TEXT: Record<ClientCertificateRule | 'CLIENT_CERT_MISSING', { ja: string; fixEn: string; fixJa: string }> = {
  CLIENT_CERT_MISSING: {
    ja: 'クライアント証明書が提示されませんでした',
    fixEn: 'install the facility certificate from the issuance notice in this browser or token, and choose it when asked',
    fixJa: '発行通知書にしたがって施設の証明書をこのブラウザ（またはトークン）に導入し、接続時に選んでください',
  },
  SHA1_SIGNATURE: {
    ja: '証明書（またはその発行元）が SHA-1 で署名されています',
    fixEn: 'download a SHA-2 certificate with a new issuance notice and install it in place of the old one',
    fixJa: '新しい発行通知書で SHA-2 の証明書を取得し、古い証明書と入れ替えてください',
  },
  WRONG_EKU: {
    ja: '証明書の用途（拡張鍵用途）にクライアント認証が含まれていません',
    fixEn: 'use the facility certificate the center issued for client authentication',
    fixJa: 'センターが発行したクライアント認証用の施設証明書を使ってください',
  },
  KEY_TOO_WEAK: {
    ja: '証明書の鍵が短すぎます（RSA 2048 ビット以上、ECDSA 256 ビット以上が必要です）',
    fixEn: 'obtain a new certificate with an RSA 2048-bit or ECDSA P-256 key',
    fixJa: 'RSA 2048 ビット以上または ECDSA P-256 の鍵で新しい証明書を取得してください',
  },
  LEGACY_SUBJECT: {
    ja: '証明書の主体者名に医療機関コード（10 桁）が含まれていません（旧形式の証明書です）',
    fixEn: 'obtain a facility certificate naming your 10-digit facility number with a new issuance notice',
    fixJa: '新しい発行通知書で、医療機関コード（10 桁）を記載した施設証明書を取得してください',
  },
  OPERATOR_CERTIFICATE: {
    ja: '提示された証明書は運営主体の職員がコンソールに入るためのもので、医療機関や端末の証明書ではありません',
    fixEn: "choose the facility's certificate, not an operator's console certificate",
    fixJa: '職員用のコンソール証明書ではなく、医療機関の証明書を選んでください',
  },
  RETIRING_CA: {
    ja: '証明書の発行元は廃止予定（または廃止済み）の認証局です',
    fixEn: 'replace the certificate with one from the current certificate authority (a new issuance notice)',
    fixJa: '現在の認証局が発行した証明書（新しい発行通知書）に入れ替えてください',
  },
  KEY_NOT_CONFORMANT: {
    ja: '証明書の鍵の形式が受け付けられません',
    fixEn: 'obtain a new certificate from the center',
    fixJa: 'センターから新しい証明書を取得してください',
  },
};

function certificateProblem(code: ClientCertificateRule | 'CLIENT_CERT_MISSING', en: string): ConnectionProblem {
  const t = CERT_TEXT[code];
  return { code, en, ja: t.ja, fixEn: t.fixEn, fixJa: t.fixJa };
}

/**
 * The verdict of one connection under one policy state, at `at` (dated
 * exceptions count only while in force then). Every problem is listed, not
 * only the first, so a clinic fixes everything in one visit.
 */
export function judgeConnection(facts: ConnectionFacts, state: PolicyState, at: Date): ConnectionVerdict {
  const profile = state.profile;
  const problems: ConnectionProblem[] = [];
  const allowed = (p: Protocol) => profile.protocolsAllowed.includes(p);

  const protocols = facts.protocol ? [facts.protocol] : [...(facts.offered?.protocols ?? [])];
  const protocolOk = protocols.some(allowed);
  if (protocols.length && !protocolOk) problems.push(protocolProblem(protocols, profile));

  const suites = facts.suite ? [facts.suite] : [...(facts.offered?.suites ?? [])];
  if (suites.length && protocolOk) {
    // Judge only the suites usable with an allowed version: a TLS 1.3 suite counts only when TLS 1.3 is allowed and used/offered.
    const tls13 = protocols.includes('TLSv1.3') && allowed('TLSv1.3');
    const tls12 = protocols.some((p) => p !== 'TLSv1.3' && allowed(p));
    const usable = suites.filter((s) => (s.startsWith('TLS_AES_') || s.startsWith('TLS_CHACHA20_') ? tls13 : tls12));
    if (!usable.some((s) => suiteAccepted(s, profile))) problems.push(suiteProblem(suites, profile));
  }

  const exceptionsUsed: DatedException[] = [];
  const chain = facts.clientChain ?? [];
  // The client's CertificateVerify (TLS 1.2 and 1.3 name the algorithm): the gateway accepts SHA-2 only, except where the profile allows TLS 1.0/1.1.
  const modern = protocols.some((p) => p === 'TLSv1.2' || p === 'TLSv1.3');
  if (chain.length && modern && facts.signatureAlgorithms && !allowsLegacyHandshake(profile) && !facts.signatureAlgorithms.some((a) => signsWithProfileHash(a, profile))) {
    problems.push(signatureProblem(facts.signatureAlgorithms, profile));
  }
  if (chain.length === 0) {
    if (profile.clientCertificate === 'required') problems.push(certificateProblem('CLIENT_CERT_MISSING', 'no client certificate was shown; the policy requires one'));
  } else {
    const j = judgeClientChain(chain, facts.facility, state.clientPolicy, at);
    exceptionsUsed.push(...j.exceptionsUsed);
    if (j.refusal) problems.push(certificateProblem(j.refusal.rule, j.refusal.detail));
  }
  return { profile: profile.name, accepted: problems.length === 0, problems, exceptionsUsed };
}

/**
 * The problem a certificate rule makes, with its fixes: for a verdict read
 * back from a record that kept the rule's code but not the chain (the
 * migration report judges stored observations).
 */
export function certificateProblemFor(code: ClientCertificateRule | 'CLIENT_CERT_MISSING', detail = ''): ConnectionProblem {
  return certificateProblem(code, detail || code);
}
