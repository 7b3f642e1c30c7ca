import { badRequest } from '../errors/index.js';
import {
  certificateProblemFor,
  complianceProfile,
  isComplianceProfileName,
  judgeConnection,
  type ClientCertificateRule,
  type ComplianceProfile,
  type ConnectionFacts,
  type ConnectionProblem,
  type Protocol,
} from '../policy/index.js';
import { CertificateRepository, FacilityRepository, ObservationRepository, type ObservationRow, type SqlExecutor } from '../store/index.js';

/**
 * Migration readiness: who can connect once a stricter profile is enforced,
 * judged from the gateway's observations (gateway/connection-observer.ts)
 * by the same rules the gateway will enforce (policy/connection-verdict.ts),
 * with no dated exception (an exception only postpones). Per facility:
 * ready, at risk (each problem with its fix in Japanese and English), not
 * seen since the window began, never seen; clients that showed no
 * certificate, per address and ClientHello (an old protocol is refused
 * before any certificate is sent); per day the counts; and the certificate
 * exceptions: who still presents a SHA-1 or otherwise legacy certificate,
 * and who holds a newer certificate of ours but has not used it.
 */
export interface MigrationFilter {
  /** The profile to be enforced. */
  to: string;
  /** First day of the window (YYYY-MM-DD, Japan time), inclusive. */
  since: string;
  /** Last day (today, Japan time). */
  until: string;
  selfCheckUrl?: string;
}

export type FacilityStanding = 'ready' | 'at-risk' | 'not-seen-since' | 'never-seen';

export interface ProblemSeen extends ConnectionProblem {
  connections: number;
  lastSeen: string;
  /** "TLSv1.2 TLS_ECDHE_…" (or "offered TLSv1.0" for a refused hello). */
  seenWith: string[];
  serials: string[];
  /** Dated exceptions the gateway applies today ("SHA1_SIGNATURE<=2027-03-31"): postponed, not solved. */
  exceptions: string[];
}

export interface FacilityReadiness {
  facility: string;
  name: string | null;
  registered: boolean;
  standing: FacilityStanding;
  connections: number;
  /** Connections the target profile would refuse. */
  wouldBeRefused: number;
  lastSeen: string | null;
  problems: ProblemSeen[];
  /** Refusals that do not depend on the policy (expired, revoked, …), by code. */
  otherRefusals: Record<string, number>;
  /** How it connected (protocol and suite), most used first. */
  seenWith: string[];
}

export interface UnidentifiedClient {
  address: string;
  hello: string;
  offeredVersions: string;
  offeredSuites: string;
  groups: string;
  connections: number;
  lastSeen: string;
  refusal: string;
  problems: ConnectionProblem[];
}

export interface LegacyCertificate {
  facility: string | null;
  serial: string;
  rule: string;
  signature: string;
  key: string;
  exceptions: string;
  connections: number;
  lastSeen: string;
  /** The serial is one the store issued (false: a certificate from elsewhere, e.g. an old CA). */
  inStore: boolean;
}

export interface UnusedCertificate {
  facility: string;
  serial: string;
  issuedAt: string | null;
  notAfter: string;
  /** The serials the facility still connects with. */
  stillUsing: string[];
}

export interface MigrationReadiness {
  schema: 'sekisho.migration-readiness/1';
  generatedAt: string;
  target: { profile: string; nameJa: string };
  window: { since: string; until: string };
  selfCheckUrl: string | null;
  totals: Record<FacilityStanding, number> & { unidentifiedClients: number };
  facilities: FacilityReadiness[];
  unidentified: UnidentifiedClient[];
  daily: { day: string; connections: number; wouldBeRefused: number; facilitiesSeen: number; facilitiesAtRisk: number }[];
  legacyCertificates: LegacyCertificate[];
  unusedCertificates: UnusedCertificate[];
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const bad = (m: string) => badRequest('REPORT_FILTER_INVALID', m);
const japanDay = (t: number) => new Date(t + 9 * 3_600_000).toISOString().slice(0, 10);

/** Validates --to, --since (default 30 days back) and --self-check-url before the store is opened. */
export function parseMigrationFilter(o: { to?: string; since?: string; selfCheckUrl?: string }, now: Date): MigrationFilter {
  if (o.to === undefined) throw bad('--to PROFILE is required (high, recommended, exception or mhlw)');
  if (!isComplianceProfileName(o.to)) throw bad(`--to "${o.to.slice(0, 40)}" is not a profile; use high, recommended, exception or mhlw`);
  const until = japanDay(now.getTime());
  const since = o.since ?? japanDay(now.getTime() - 29 * 86_400_000);
  if (!DATE.test(since) || new Date(`${since}T00:00:00Z`).toISOString().slice(0, 10) !== since) throw bad(`--since "${since.slice(0, 40)}" is not a date; write YYYY-MM-DD`);
  if (since > until) throw bad(`--since ${since} is after today (${until})`);
  if (o.selfCheckUrl !== undefined) {
    let u: URL;
    try {
      u = new URL(o.selfCheckUrl);
    } catch {
      throw bad('--self-check-url is not a URL');
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad('--self-check-url must be an http(s) URL');
  }
  return { to: o.to, since, until, ...(o.selfCheckUrl !== undefined ? { selfCheckUrl: o.selfCheckUrl } : {}) };
}

export interface ReadinessInput {
  rows: readonly ObservationRow[];
  lastSeenBefore: ReadonlyMap<string, string>;
  facilities: readonly { number: string; name: string; status: string }[];
  certificates: readonly { serial: string; facilityNumber?: string | null; status: string; issuedAt?: string | null; notAfter: string }[];
}

/** Reads the store and builds the report. */
export async function migrationReadiness(x: SqlExecutor, f: MigrationFilter, now: Date): Promise<MigrationReadiness> {
  const obs = new ObservationRepository(x);
  const [rows, lastSeenBefore, facilities, certificates] = await Promise.all([obs.list(f.since, f.until), obs.lastSeenBefore(f.since), new FacilityRepository(x).list(), new CertificateRepository(x).list({ status: 'issued' })]);
  return buildReadiness({ rows, lastSeenBefore, facilities, certificates }, f, now);
}

const POLICY_CODES: ReadonlySet<string> = new Set(['PROTOCOL_TOO_OLD', 'NO_SHARED_CIPHER', 'SUITE_NOT_ALLOWED', 'CLIENT_CERT_MISSING', 'SHA1_SIGNATURE', 'WRONG_EKU', 'KEY_TOO_WEAK', 'KEY_NOT_CONFORMANT', 'accepted', '']);
const CERT_RULES: ReadonlySet<string> = new Set(['SHA1_SIGNATURE', 'WRONG_EKU', 'KEY_TOO_WEAK', 'KEY_NOT_CONFORMANT']);
const PROTOCOLS: ReadonlySet<string> = new Set(['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']);
const serialOf = (s: string) => s.toLowerCase().replace(/^(00)+(?=.)/, '');
const list = (s: string) => s.split(',').filter((x) => x && !x.startsWith('+'));

/** The problems the target profile finds in what one row records (chain rules from the stored rule code). */
function judgeRow(r: ObservationRow, target: ComplianceProfile, at: Date): ConnectionProblem[] {
  const shownCert = r.serial !== '';
  // A client refused before the certificate stage showed none; only "no certificate" refusals count as missing.
  const relax = shownCert || (r.address !== null && !r.refusal.includes('NO_CLIENT_CERT'));
  const profile = relax ? { ...target, clientCertificate: 'optional' as const } : target;
  const asProtocol = (p: string): Protocol | undefined => (p === 'SSLv2' ? 'SSLv3' : PROTOCOLS.has(p) ? (p as Protocol) : undefined);
  const facts: ConnectionFacts = r.suite
    ? { ...(asProtocol(r.protocol) ? { protocol: asProtocol(r.protocol)! } : {}), suite: r.suite }
    : { offered: { protocols: list(r.offeredVersions).map(asProtocol).filter((p): p is Protocol => !!p), suites: list(r.offeredSuites) } };
  const v = judgeConnection(facts, { profile, clientPolicy: { exceptions: [] } }, at);
  const problems = [...v.problems];
  if (CERT_RULES.has(r.certRule) && !problems.some((p) => p.code === r.certRule)) problems.push(certificateProblemFor(r.certRule as ClientCertificateRule));
  return problems;
}

export function buildReadiness(input: ReadinessInput, f: MigrationFilter, now: Date): MigrationReadiness {
  const target = complianceProfile(f.to as Parameters<typeof complianceProfile>[0]);
  const cache = new Map<string, ConnectionProblem[]>();
  const judged = input.rows.map((r) => {
    const k = `${r.protocol}|${r.suite}|${r.offeredVersions}|${r.offeredSuites}|${r.certRule}|${r.serial !== ''}|${r.address !== null}|${r.refusal}`;
    let p = cache.get(k);
    if (!p) cache.set(k, (p = judgeRow(r, target, now)));
    const other = r.verdictNow.split('+').filter((c) => !POLICY_CODES.has(c));
    return { r, problems: p, other, refused: p.length > 0 || other.length > 0 };
  });

  const names = new Map(input.facilities.map((x) => [x.number, x.name]));
  const byFacility = new Map<string, typeof judged>();
  for (const j of judged) if (j.r.facility) (byFacility.get(j.r.facility) ?? byFacility.set(j.r.facility, []).get(j.r.facility)!).push(j);

  const facilities: FacilityReadiness[] = [];
  const numbers = [...new Set([...input.facilities.map((x) => x.number), ...byFacility.keys()])].sort();
  for (const number of numbers) {
    const rows = byFacility.get(number) ?? [];
    const base = { facility: number, name: names.get(number) ?? null, registered: names.has(number) };
    if (!rows.length) {
      const before = input.lastSeenBefore.get(number);
      facilities.push({ ...base, standing: before ? 'not-seen-since' : 'never-seen', connections: 0, wouldBeRefused: 0, lastSeen: before ?? null, problems: [], otherRefusals: {}, seenWith: [] });
      continue;
    }
    const problems = new Map<string, ProblemSeen>();
    const other: Record<string, number> = {};
    const used = new Map<string, number>();
    let connections = 0;
    let refused = 0;
    let lastSeen = '';
    for (const { r, problems: ps, other: os, refused: isRefused } of rows) {
      connections += r.connections;
      if (isRefused) refused += r.connections;
      if (r.lastSeen > lastSeen) lastSeen = r.lastSeen;
      const how = r.suite ? `${r.protocol} ${r.suite}` : `offered ${r.offeredVersions || r.protocol}`;
      used.set(how, (used.get(how) ?? 0) + r.connections);
      for (const o of os) other[o] = (other[o] ?? 0) + r.connections;
      for (const p of ps) {
        let seen = problems.get(p.code);
        if (!seen) problems.set(p.code, (seen = { ...p, connections: 0, lastSeen: '', seenWith: [], serials: [], exceptions: [] }));
        seen.connections += r.connections;
        if (r.lastSeen > seen.lastSeen) seen.lastSeen = r.lastSeen;
        if (!seen.seenWith.includes(how)) seen.seenWith.push(how);
        if (r.serial && !seen.serials.includes(r.serial)) seen.serials.push(r.serial);
        for (const e of list(r.exceptions)) if (e.startsWith(`${p.code}<=`) && !seen.exceptions.includes(e)) seen.exceptions.push(e);
      }
    }
    facilities.push({
      ...base,
      standing: problems.size ? 'at-risk' : 'ready',
      connections,
      wouldBeRefused: refused,
      lastSeen,
      problems: [...problems.values()],
      otherRefusals: other,
      seenWith: [...used].sort((a, b) => b[1] - a[1]).map(([k]) => k),
    });
  }

  const clients = new Map<string, UnidentifiedClient>();
  for (const { r, problems } of judged) {
    if (r.facility || r.subject === '*' || r.subject.startsWith('cert:')) continue;
    const k = `${r.address}|${r.hello}`;
    const c = clients.get(k);
    if (c) {
      c.connections += r.connections;
      if (r.lastSeen > c.lastSeen) c.lastSeen = r.lastSeen;
    } else {
      clients.set(k, { address: r.address ?? '', hello: r.hello, offeredVersions: r.offeredVersions, offeredSuites: r.offeredSuites, groups: r.groupsOffered, connections: r.connections, lastSeen: r.lastSeen, refusal: r.refusal, problems });
    }
  }

  const days = new Map<string, { day: string; connections: number; wouldBeRefused: number; seen: Set<string>; atRisk: Set<string> }>();
  for (const { r, problems, refused } of judged) {
    let d = days.get(r.day);
    if (!d) days.set(r.day, (d = { day: r.day, connections: 0, wouldBeRefused: 0, seen: new Set(), atRisk: new Set() }));
    d.connections += r.connections;
    if (refused) d.wouldBeRefused += r.connections;
    if (r.facility) {
      d.seen.add(r.facility);
      if (problems.length) d.atRisk.add(r.facility);
    }
  }

  const storeSerials = new Set(input.certificates.map((c) => serialOf(c.serial)));
  const legacy = new Map<string, LegacyCertificate>();
  for (const { r } of judged) {
    if (!CERT_RULES.has(r.certRule)) continue;
    const k = `${r.facility ?? r.subject}|${r.serial}`;
    const l = legacy.get(k);
    if (l) {
      l.connections += r.connections;
      if (r.lastSeen > l.lastSeen) l.lastSeen = r.lastSeen;
    } else legacy.set(k, { facility: r.facility, serial: r.serial, rule: r.certRule, signature: r.certSignature, key: r.certKey, exceptions: r.exceptions, connections: r.connections, lastSeen: r.lastSeen, inStore: storeSerials.has(serialOf(r.serial)) });
  }
  // A newer certificate of ours the facility has not used while it still connects with another one.
  const unused: UnusedCertificate[] = [];
  const nowIso = now.toISOString();
  for (const [number, rows] of byFacility) {
    const usedSerials = new Set(rows.map((j) => serialOf(j.r.serial)).filter(Boolean));
    if (!usedSerials.size) continue;
    const mine = input.certificates.filter((c) => c.facilityNumber === number && c.status === 'issued' && c.notAfter > nowIso);
    const newestUsed = mine.filter((c) => usedSerials.has(serialOf(c.serial))).reduce((m, c) => ((c.issuedAt ?? '') > m ? (c.issuedAt ?? '') : m), '');
    const usesForeign = [...usedSerials].some((s) => !storeSerials.has(s));
    for (const c of mine) {
      if (usedSerials.has(serialOf(c.serial))) continue;
      if (usesForeign || (c.issuedAt ?? '') > newestUsed) unused.push({ facility: number, serial: c.serial, issuedAt: c.issuedAt ?? null, notAfter: c.notAfter, stillUsing: [...usedSerials] });
    }
  }

  const count = (s: FacilityStanding) => facilities.filter((x) => x.standing === s).length;
  return {
    schema: 'sekisho.migration-readiness/1',
    generatedAt: now.toISOString(),
    target: { profile: target.name, nameJa: target.nameJa },
    window: { since: f.since, until: f.until },
    selfCheckUrl: f.selfCheckUrl ?? null,
    totals: { ready: count('ready'), 'at-risk': count('at-risk'), 'not-seen-since': count('not-seen-since'), 'never-seen': count('never-seen'), unidentifiedClients: clients.size },
    facilities,
    unidentified: [...clients.values()].sort((a, b) => b.connections - a.connections),
    daily: [...days.values()].sort((a, b) => (a.day < b.day ? -1 : 1)).map((d) => ({ day: d.day, connections: d.connections, wouldBeRefused: d.wouldBeRefused, facilitiesSeen: d.seen.size, facilitiesAtRisk: d.atRisk.size })),
    legacyCertificates: [...legacy.values()],
    unusedCertificates: unused,
  };
}

const STANDING_JA: Record<FacilityStanding, string> = { ready: '移行可', 'at-risk': '要対応', 'not-seen-since': '期間内の接続なし', 'never-seen': '接続記録なし' };

/** One CSV table: a row per facility problem (or per facility when it has none), per unidentified client and per certificate finding. */
export const MIGRATION_CSV_HEADER = ['kind', 'facility', 'name', 'standing', 'standingJa', 'connections', 'wouldBeRefused', 'lastSeen', 'code', 'problemJa', 'fixJa', 'problemEn', 'fixEn', 'seenWith', 'serials', 'exceptions', 'address', 'selfCheckUrl'] as const;

export function migrationCsvRows(m: MigrationReadiness): (string | number | null)[][] {
  const rows: (string | number | null)[][] = [];
  const url = m.selfCheckUrl;
  const tls = (code: string) => (code === 'PROTOCOL_TOO_OLD' || code === 'SUITE_NOT_ALLOWED' ? url : null);
  for (const f of m.facilities) {
    const base = ['facility', f.facility, f.name, f.standing, STANDING_JA[f.standing], f.connections, f.wouldBeRefused, f.lastSeen] as (string | number | null)[];
    if (!f.problems.length) rows.push([...base, Object.keys(f.otherRefusals).join('+') || null, null, null, null, null, f.seenWith.join('\n'), null, null, null, null]);
    for (const p of f.problems) rows.push([...base, p.code, p.ja, p.fixJa, p.en, p.fixEn, p.seenWith.join('\n'), p.serials.join('\n'), p.exceptions.join('\n'), null, tls(p.code)]);
  }
  for (const c of m.unidentified) {
    const p = c.problems;
    rows.push(['client', null, null, p.length ? 'at-risk' : 'ready', p.length ? STANDING_JA['at-risk'] : STANDING_JA.ready, c.connections, p.length ? c.connections : 0, c.lastSeen, p.map((x) => x.code).join('+') || c.refusal || null, p.map((x) => x.ja).join('\n') || null, p.map((x) => x.fixJa).join('\n') || null, p.map((x) => x.en).join('\n') || null, p.map((x) => x.fixEn).join('\n') || null, `offered ${c.offeredVersions}: ${c.offeredSuites}`, null, null, c.address, p.some((x) => tls(x.code)) ? url : null]);
  }
  for (const l of m.legacyCertificates) {
    const p = certificateProblemFor(l.rule as ClientCertificateRule);
    rows.push(['legacy-certificate', l.facility, null, 'at-risk', STANDING_JA['at-risk'], l.connections, l.connections, l.lastSeen, l.rule, p.ja, p.fixJa, p.en, p.fixEn, `${l.signature} ${l.key}`, l.serial, l.exceptions, null, null]);
  }
  for (const u of m.unusedCertificates) {
    rows.push(['unused-certificate', u.facility, null, null, '新しい証明書が未使用', null, null, null, 'NEWER_CERTIFICATE_UNUSED', `新しい証明書（シリアル ${u.serial}）が発行済みですが、まだ使われていません`, '新しい証明書をブラウザや送信ソフトに導入し、接続時に選んでください', `a newer certificate (serial ${u.serial}) is issued but has not been used`, 'install the newer certificate and choose it when connecting', null, `${u.serial}\n(using ${u.stillUsing.join(', ')})`, null, null, null]);
  }
  return rows;
}

/** A terminal summary, Japanese first. */
export function migrationText(m: MigrationReadiness): string {
  const t = m.totals;
  const lines = [
    `移行準備状況 Migration readiness → ${m.target.profile} (${m.target.nameJa})`,
    `期間 window: ${m.window.since} – ${m.window.until} (JST)`,
    `移行可 ready ${t.ready} / 要対応 at risk ${t['at-risk']} / 期間内の接続なし not seen since ${m.window.since} ${t['not-seen-since']} / 接続記録なし never seen ${t['never-seen']} / 証明書なしの接続元 clients without a certificate ${t.unidentifiedClients}`,
  ];
  if (m.selfCheckUrl) lines.push(`接続確認ページ self-check: ${m.selfCheckUrl}`);
  for (const f of m.facilities.filter((x) => x.standing === 'at-risk')) {
    lines.push('', `${f.facility} ${f.name ?? ''} — 要対応 at risk (${f.wouldBeRefused}/${f.connections} 接続 connections, 最終 last ${f.lastSeen})`);
    for (const p of f.problems) lines.push(`  ${p.code}: ${p.ja}`, `    対処: ${p.fixJa}`, `    fix: ${p.fixEn}`, `    (${p.seenWith.join('; ')}${p.exceptions.length ? `; 例外 exception ${p.exceptions.join(', ')}` : ''})`);
  }
  for (const c of m.unidentified.filter((x) => x.problems.length)) {
    lines.push('', `${c.address} (証明書なし no certificate; offered ${c.offeredVersions}) — ${c.connections} 接続 connections`);
    for (const p of c.problems) lines.push(`  ${p.code}: ${p.ja}`, `    対処: ${p.fixJa}`);
    if (m.selfCheckUrl) lines.push(`    接続確認: ${m.selfCheckUrl}`);
  }
  for (const l of m.legacyCertificates) lines.push('', `旧証明書 legacy certificate: ${l.facility ?? '-'} serial ${l.serial} ${l.rule} (${l.signature}, ${l.key})${l.exceptions ? ` 例外 exception ${l.exceptions}` : ''}, ${l.connections} 接続, 最終 ${l.lastSeen}`);
  for (const u of m.unusedCertificates) lines.push('', `未使用の新しい証明書 newer certificate unused: ${u.facility} serial ${u.serial} (issued ${u.issuedAt ?? '?'}; still using ${u.stillUsing.join(', ')})`);
  const never = m.facilities.filter((x) => x.standing === 'never-seen' || x.standing === 'not-seen-since');
  if (never.length) lines.push('', `接続が確認できない医療機関 not seen: ${never.map((x) => `${x.facility}${x.lastSeen ? ` (last ${x.lastSeen})` : ''}`).join(', ')}`);
  lines.push('', '日別 per day: day connections wouldBeRefused facilitiesSeen facilitiesAtRisk');
  for (const d of m.daily) lines.push(`  ${d.day} ${d.connections} ${d.wouldBeRefused} ${d.facilitiesSeen} ${d.facilitiesAtRisk}`);
  return lines.join('\n') + '\n';
}
