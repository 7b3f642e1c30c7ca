/**
 * Steps 3–4: which TLS versions and suites the center accepts from here
 * (the scanner's byte-level enumeration, judged with the scanner's checks and
 * the agent's profile from policy/), and the center's certificate chain
 * against the root thumbprint printed on the notice letter.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { isIP } from 'node:net';
import { certificatesFromPem } from '../../pki/index.js';
import { complianceProfile } from '../../policy/index.js';
import { enumerateTls, handshake, judge, peerChain, type Findings, type WireFindings } from '../../scan/index.js';
import { openTunnel } from './network.js';
import { fail, ok, warn, type StepResult } from './result.js';
import type { DoctorTarget } from './target.js';

const MODERN = ['TLSv1.2', 'TLSv1.3'];

/** SNI only for a name (RFC 6066 forbids an IP address there). */
export const sni = (t: DoctorTarget) => (isIP(t.serverName) ? {} : { serverName: t.serverName });

export interface TlsEvidence {
  /** The chain the center sent, leaf first (DER). */
  chain: Buffer[];
}

export async function tlsStep(t: DoctorTarget, timeoutMs: number, now: Date): Promise<{ result: StepResult; evidence: TlsEvidence }> {
  if (t.httpProxy) return tlsThroughProxy(t, timeoutMs);
  const wire: WireFindings = await enumerateTls({ host: t.center.host, port: t.center.port, ...sni(t) }, { timeoutMs, concurrency: 4 });
  const profile = complianceProfile(t.profile);
  const offered = wire.protocols.filter((p) => p.supported).map((p) => p.protocol);
  let chain = wire.certificateFromHello ?? [];
  if (!chain.length) chain = (await handshake({ host: t.center.host, port: t.center.port, ...sni(t) }, undefined, timeoutMs)).chain;
  const details = { offered, suites: Object.fromEntries(wire.protocols.filter((p) => p.supported).map((p) => [p.protocol, p.suites])), profile: t.profile };
  if (offered.length === 0) {
    return {
      evidence: { chain },
      result: fail(
        'tls',
        'TLS_NO_HANDSHAKE',
        { ja: `${t.center.host}:${t.center.port} はTLSで応答しません（TLSサーバーではないか、途中で通信が遮断されています）。`, en: `${t.center.host}:${t.center.port} does not answer TLS (not a TLS server, or something in between cuts the connection)` },
        { ja: 'ポート番号を確認し、通信を検査・遮断する機器（UTMなど）がないか担当ベンダーに確認してください。', en: 'check the port, and ask your vendor whether a device in between (a UTM, a filtering proxy) interferes' },
        { ...details, notes: wire.notes },
      ),
    };
  }
  if (!offered.some((v) => MODERN.includes(v) && profile.protocolsAllowed.includes(v))) {
    return {
      evidence: { chain },
      result: fail(
        'tls',
        'TLS_VERSION_TOO_OLD',
        { ja: `運営主体のサーバーは ${offered.join(', ')} しか受け付けません。医療情報安全管理ガイドラインでは TLS 1.2 以上が必要なため、接続できません。`, en: `the center accepts only ${offered.join(', ')}; TLS 1.2 or newer is required (MHLW guideline, CRYPTREC), so sekisho will not connect` },
        { ja: '運営主体に、サーバーを TLS 1.2 以上に対応させるよう連絡してください（この端末側では直せません）。', en: 'tell the network operator that its server must accept TLS 1.2 or newer (nothing to fix on this machine)' },
        details,
      ),
    };
  }
  const findings: Findings = { ...wire, notes: wire.notes };
  const verdict = judge(findings, profile, { hostname: t.serverName, trustAnchors: [], now });
  const tls12Ok = wire.protocols.find((p) => p.protocol === 'TLSv1.2' && p.supported)?.suites.some((s) => profile.suitesListed.includes(s));
  const tls13Ok = offered.includes('TLSv1.3') && profile.protocolsAllowed.includes('TLSv1.3');
  if (!tls12Ok && !tls13Ok) {
    return {
      evidence: { chain },
      result: fail(
        'tls',
        'TLS_NO_COMMON_SUITE',
        { ja: `運営主体のサーバーが受け付ける暗号スイートに、推奨（${profile.nameJa}）のものがありません。`, en: `none of the suites the center accepts is in the ${profile.name} profile` },
        { ja: '運営主体に、CRYPTREC の推奨暗号スイートを有効にするよう連絡してください。', en: 'tell the network operator to enable the CRYPTREC-listed suites' },
        details,
      ),
    };
  }
  const bad = verdict.results.filter((r) => ['protocol-versions', 'cipher-suites-tls12', 'cipher-suites-tls13'].includes(r.check) && r.status === 'fail');
  if (bad.length) {
    return {
      evidence: { chain },
      result: warn(
        'tls',
        'TLS_CENTER_ACCEPTS_WEAK',
        { ja: `接続はできますが、運営主体のサーバーは弱い設定も受け付けています（${bad.map((b) => b.found).join('; ')}）。`, en: `this machine can connect, but the center also accepts weak settings (${bad.map((b) => b.found).join('; ')})` },
        { ja: '運営主体に知らせてください（この端末側の問題ではありません）。', en: 'let the network operator know (not a problem of this machine)' },
        details,
      ),
    };
  }
  return { evidence: { chain }, result: ok('tls', 'TLS_OK', { ja: `運営主体のサーバーは ${offered.join(', ')} で接続できます。`, en: `the center accepts ${offered.join(', ')} with profile-listed suites` }, details) };
}

/** Through a proxy the byte-level enumeration cannot run: one handshake with the agent's own profile shows what gets through. */
async function tlsThroughProxy(t: DoctorTarget, timeoutMs: number): Promise<{ result: StepResult; evidence: TlsEvidence }> {
  const socket = await openTunnel(t, timeoutMs);
  const profile = complianceProfile(t.profile);
  const r = await new Promise<{ protocol?: string; chain: Buffer[]; error?: string }>((resolve) => {
    const s = tlsConnect({ socket, ...(isIP(t.serverName) ? {} : { servername: t.serverName }), rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    const timer = setTimeout(() => done({ chain: [], error: 'timed out' }), timeoutMs);
    const done = (x: { protocol?: string; chain: Buffer[]; error?: string }) => {
      clearTimeout(timer);
      s.destroy();
      resolve(x);
    };
    s.on('secureConnect', () => done({ protocol: s.getProtocol() ?? undefined, chain: peerChain(s) }));
    s.on('error', (e) => done({ chain: [], error: e.message }));
  });
  if (!r.protocol || !profile.protocolsAllowed.includes(r.protocol as never)) {
    return {
      evidence: { chain: r.chain },
      result: fail(
        'tls',
        'TLS_VERSION_TOO_OLD',
        { ja: `プロキシ経由で TLS 1.2 以上の接続ができません（${r.error ?? r.protocol}）。`, en: `no TLS 1.2+ handshake through the proxy (${r.error ?? r.protocol})` },
        { ja: 'プロキシが TLS を検査・改変していないか、運営主体のサーバーが TLS 1.2 以上に対応しているか確認してください。', en: 'check that the proxy does not intercept TLS, and that the center accepts TLS 1.2 or newer' },
        { proxy: t.httpProxy!.host },
      ),
    };
  }
  return { evidence: { chain: r.chain }, result: ok('tls', 'TLS_OK', { ja: `プロキシ経由で ${r.protocol} で接続できます（プロキシ経由では受け付ける全バージョンの列挙はしません）。`, en: `${r.protocol} through the proxy (versions and suites are not enumerated through a proxy)` }, { negotiated: r.protocol, proxy: t.httpProxy!.host }) };
}

const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');

/** The chain ends at the root whose SHA-256 is the letter's thumbprint, every link verifies, and the leaf names the center. */
export function chainStep(t: DoctorTarget, evidence: TlsEvidence, now: Date): StepResult {
  const chain = evidence.chain;
  const expected = t.rootThumbprint;
  const fixRoot = {
    ja: '通信経路上で別の証明書に差し替えられている（なりすまし・TLS検査装置）か、ルート証明書の指紋の入力誤りです。発行通知書の指紋と照合し、一致しない場合は運営主体に連絡してください。接続しないでください。',
    en: 'the connection is answered with another certificate (an impostor, or a TLS-inspecting device), or the thumbprint was mistyped: compare it with the notice letter, and if it differs, call the network operator; do not connect',
  };
  if (!chain.length) {
    return fail('chain', 'CHAIN_NOT_SEEN', { ja: '運営主体のサーバー証明書を受け取れませんでした。', en: 'the center sent no certificate chain that could be read' }, { ja: '前の手順（tls）の結果を確認してください。', en: 'see the "tls" step' });
  }
  const candidates = [...chain];
  if (t.rootFile) {
    try {
      const text = readFileSync(t.rootFile);
      candidates.push(...(text.includes('-----BEGIN') ? certificatesFromPem(text.toString('latin1')) : [text]));
    } catch {
      /* named below when the root is not found */
    }
  }
  const root = candidates.find((c) => sha256(c) === expected);
  const seen = chain.map((c) => ({ subject: new X509Certificate(c).subject.replace(/\n/g, ', '), sha256: sha256(c) }));
  if (!root) {
    return fail(
      'chain',
      'ROOT_THUMBPRINT_MISMATCH',
      { ja: 'サーバー証明書のルートが、発行通知書のルート証明書の指紋（SHA-256）と一致しません。', en: 'the center\'s chain does not lead to the root whose SHA-256 thumbprint the notice letter printed' },
      fixRoot,
      { expected, seen, ...(t.rootFile ? { rootFile: t.rootFile } : {}) },
    );
  }
  // Walk leaf → root through what the server sent (and the root).
  const rootX = new X509Certificate(root);
  let cur = new X509Certificate(chain[0]!);
  const pool = [...chain.slice(1).map((c) => new X509Certificate(c)), rootX];
  for (let hops = 0; hops < 6 && cur.fingerprint256 !== rootX.fingerprint256; hops++) {
    const issuer = pool.find((p) => cur.checkIssued(p) && cur.verify(p.publicKey));
    if (!issuer) {
      return fail(
        'chain',
        'ROOT_THUMBPRINT_MISMATCH',
        { ja: `サーバー証明書（${cur.subject.replace(/\n/g, ', ')}）は、指紋が一致するルート証明書につながりません。`, en: `the certificate ${cur.subject.replace(/\n/g, ', ')} does not chain to the root with the letter's thumbprint` },
        fixRoot,
        { expected, seen },
      );
    }
    const from = new Date(cur.validFrom);
    const to = new Date(cur.validTo);
    if (now < from || now > to) {
      return fail(
        'chain',
        'SERVER_CERT_NOT_VALID_NOW',
        { ja: `運営主体の証明書（${cur.subject.replace(/\n/g, ', ')}）は、この端末の時刻（${now.toISOString()}）では有効期間外です（${from.toISOString()}〜${to.toISOString()}）。`, en: `the center's certificate ${cur.subject.replace(/\n/g, ', ')} is outside its validity (${from.toISOString()} – ${to.toISOString()}) at this machine's time ${now.toISOString()}` },
        { ja: 'この端末の時刻が正しいか確認してください（「clock」の結果）。正しければ運営主体に連絡してください。', en: 'check this machine\'s clock (the "clock" step); if it is right, tell the network operator' },
        { seen },
      );
    }
    cur = issuer;
  }
  const leaf = new X509Certificate(chain[0]!);
  const named = isIP(t.serverName) ? leaf.checkIP(t.serverName) : leaf.checkHost(t.serverName);
  if (!named) {
    return fail(
      'chain',
      'SERVER_NAME_MISMATCH',
      { ja: `サーバー証明書は ${t.serverName} のものではありません（${leaf.subjectAltName ?? '名前なし'}）。`, en: `the center's certificate is not for ${t.serverName} (${leaf.subjectAltName ?? 'no names'})` },
      { ja: '接続先のサーバー名（center.serverName / --server-name）を運営主体の案内と照合してください。', en: 'compare the server name (center.serverName / --server-name) with the network operator\'s instructions' },
      { seen },
    );
  }
  return ok('chain', 'CHAIN_OK', { ja: `運営主体の証明書は、発行通知書の指紋と一致するルート証明書につながっています（${t.serverName}）。`, en: `the center's certificate chains to the root with the letter's thumbprint, and names ${t.serverName}` }, { root: expected, seen });
}
