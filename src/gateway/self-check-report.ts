import { formatName, type CertificateView } from '../pki/index.js';
import { judgeConnection, type ConnectionFacts, type PolicyOutlook, type PolicyState, type Protocol } from '../policy/index.js';
import type { CertificateStandingProblem, ClientInspection } from './client-verifier.js';
import { REFUSAL_ADVICE } from './refusal.js';

/**
 * What the self-check listener tells a client about its own connection: the
 * TLS version and suite it used, the certificate it showed (whose, until
 * when, revoked or not, chained to this network's CA or not), and the
 * verdict of the policy in force and of the coming one. The page and the
 * vendor endpoint (GET /self-check.json) render this one value; its field
 * names and problem codes are stable (schema "sekisho-self-check/1",
 * docs/self-check.md).
 */
export const SELF_CHECK_SCHEMA = 'sekisho-self-check/1';

export interface SelfCheckProblem {
  /** A ConnectionProblemCode (policy/connection-verdict.ts) or a certificate standing code (UNKNOWN_CA, REVOKED, …). */
  code: string;
  en: string;
  ja: string;
  fixEn: string;
  fixJa: string;
}

export interface SelfCheckPolicyVerdict {
  profile: string;
  profileJa: string;
  /** When this policy started (in force) or starts (coming); null: from the beginning. */
  since: string | null;
  /** Would the gateway let this connection in under this policy? */
  accepted: boolean;
  problems: SelfCheckProblem[];
  /** Dated exceptions the connection passes only because of. */
  exceptionsUsed: { facility: string | null; allow: string; until: string }[];
}

export interface SelfCheckCertificate {
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  /** Whole days from the check to notAfter (negative: expired). */
  daysLeft: number;
  /** Who it names, only when it chains to this network's CA (a stranger's certificate may name anyone). */
  profile: 'facility' | 'device' | 'other' | null;
  facility: { number: string; name: string | null; status: string | null } | null;
  chain: { trusted: boolean; pinned: boolean; detail: string | null; certificates: { subject: string; issuer: string; signatureAlgorithm: string }[] };
  revocation: { state: 'good' | 'revoked' | 'unknown'; detail: string | null };
}

export interface SelfCheckReport {
  schema: typeof SELF_CHECK_SCHEMA;
  checkedAt: string;
  connection: { protocol: Protocol; suite: string; clientCertificateOffered: boolean };
  certificate: SelfCheckCertificate | null;
  policies: { inForce: SelfCheckPolicyVerdict; coming: SelfCheckPolicyVerdict | null };
}

/** Japanese for the certificate standing problems (the English is the verifier's detail; the fix is the refusal page's advice). */
const STANDING_JA: Record<CertificateStandingProblem['reason'], string> = {
  UNKNOWN_CA: 'この証明書は本ネットワークの認証局の証明書につながりません（発行元が違うか、中間証明書が足りません）',
  REVOKED: 'この証明書（またはその発行元）は失効しています',
  REVOCATION_UNAVAILABLE: '現在、失効情報を確認できないため、ゲートウェイは接続を受け付けません',
  EXPIRED: '証明書の有効期限が切れています（または、その時点で切れています）',
  NOT_YET_VALID: '証明書の有効期間がまだ始まっていません',
  FACILITY_UNKNOWN: 'この医療機関は本ネットワークに登録されていません',
  FACILITY_SUSPENDED: 'この医療機関の利用は停止されています',
};

function standingProblem(p: CertificateStandingProblem): SelfCheckProblem {
  const advice = REFUSAL_ADVICE[p.reason];
  return { code: p.reason, en: p.detail, ja: STANDING_JA[p.reason], fixEn: advice.en, fixJa: advice.ja };
}


export interface SelfCheckInput {
  protocol: Protocol;
  suite: string;
  /** The signature algorithms client and listener share (`getSharedSigalgs()`): what the client could sign its CertificateVerify with. */
  signatureAlgorithms?: readonly string[];
  /** What the verifier knows of the certificate shown; absent: none was shown. */
  inspection?: ClientInspection;
  outlook: PolicyOutlook;
  now: Date;
}

function judge(input: SelfCheckInput, state: PolicyState, at: Date): SelfCheckPolicyVerdict {
  const i = input.inspection;
  const facts: ConnectionFacts = {
    protocol: input.protocol,
    suite: input.suite,
    ...(input.signatureAlgorithms ? { signatureAlgorithms: input.signatureAlgorithms } : {}),
    ...(i ? { clientChain: i.views } : {}),
    ...(i?.identity?.facilityNumber ? { facility: i.identity.facilityNumber } : {}),
  };
  // The gateway's listeners always require a client certificate (tls-listener.ts), whatever the profile says of servers.
  const enforced: PolicyState = { ...state, profile: { ...state.profile, clientCertificate: 'required' } };
  const v = judgeConnection(facts, enforced, at);
  const standing = i ? i.problemsAt(at).map(standingProblem) : [];
  const problems: SelfCheckProblem[] = [...v.problems.map((p) => ({ code: p.code, en: p.en, ja: p.ja, fixEn: p.fixEn, fixJa: p.fixJa })), ...standing];
  return {
    profile: state.profile.name,
    profileJa: state.profile.nameJa,
    since: state.since ? state.since.toISOString() : null,
    accepted: problems.length === 0,
    problems,
    exceptionsUsed: v.exceptionsUsed.map((e) => ({ facility: e.facility ?? null, allow: e.allow, until: e.until })),
  };
}

function certificateOf(i: ClientInspection, now: Date): SelfCheckCertificate | null {
  const leaf: CertificateView | undefined = i.views[0];
  if (!leaf) return null;
  const id = i.identity;
  return {
    subject: formatName(leaf.subject),
    issuer: formatName(leaf.issuer),
    serial: leaf.serialHex,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    daysLeft: Math.floor((leaf.notAfter.getTime() - now.getTime()) / 86_400_000),
    profile: id ? id.profile : null,
    facility: id?.facilityNumber ? { number: id.facilityNumber, name: i.facility?.name ?? id.facilityName ?? null, status: i.facility?.status ?? null } : null,
    chain: {
      trusted: i.trusted,
      pinned: i.pinned,
      detail: i.untrustedDetail ?? null,
      certificates: i.views.map((v) => ({ subject: formatName(v.subject), issuer: formatName(v.issuer), signatureAlgorithm: v.signatureAlgorithmOid })),
    },
    revocation: { state: i.revocation.state, detail: i.revocation.detail ?? null },
  };
}

/** The report of one connection: the policy in force judged now, the coming one judged at its start. */
export function selfCheckReport(input: SelfCheckInput): SelfCheckReport {
  const { outlook, now } = input;
  return {
    schema: SELF_CHECK_SCHEMA,
    checkedAt: now.toISOString(),
    connection: { protocol: input.protocol, suite: input.suite, clientCertificateOffered: input.inspection !== undefined },
    certificate: input.inspection ? certificateOf(input.inspection, now) : null,
    policies: {
      inForce: judge(input, outlook.inForce, now),
      coming: outlook.coming ? judge(input, outlook.coming, outlook.coming.since) : null,
    },
  };
}
