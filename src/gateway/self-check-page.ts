import { createHash } from 'node:crypto';
import type { SelfCheckContact } from './config.js';
import type { SelfCheckPolicyVerdict, SelfCheckProblem, SelfCheckReport } from './self-check-report.js';

/**
 * The self-check page: plain HTML, Japanese first and English beside, no
 * script at all (it must work in any browser that completed a handshake,
 * Internet Explorer included). Every value that comes from the client's
 * certificate or the configuration is escaped; the one style sheet is
 * inline and allowed by its hash (SELF_CHECK_CSP), nothing else loads.
 */
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = `body{font-family:"Noto Sans CJK JP","Hiragino Sans","Yu Gothic",Meiryo,sans-serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.7;color:#222}
h1{font-size:1.5em;border-bottom:3px solid #246;padding-bottom:.3em}h2{font-size:1.2em;margin-top:1.8em;border-left:6px solid #246;padding-left:.5em}
.en{color:#555;font-size:.95em}table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.4em .6em;text-align:left;vertical-align:top}th{background:#f3f5f8;width:30%}
.ok{color:#0a6b2d;font-weight:bold}.ng{color:#b00020;font-weight:bold}.warn{color:#8a5a00;font-weight:bold}.verdict{border:2px solid #ccc;border-radius:6px;padding:.6em 1em;margin:1em 0}
.verdict.accepted{border-color:#0a6b2d;background:#f1faf3}.verdict.refused{border-color:#b00020;background:#fdf2f3}code{background:#f3f3f3;padding:.1em .3em;overflow-wrap:anywhere}
li{margin:.3em 0}.this-browser{background:#fffbe6;border:1px solid #e6c200;padding:.2em .6em}.small{font-size:.85em;color:#555}`;

/** The page's Content-Security-Policy: nothing loads, no script runs, only the inline style of this module. */
export const SELF_CHECK_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; img-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'`;

const PROTOCOL_TEXT: Record<string, string> = { 'TLSv1.0': 'TLS 1.0', 'TLSv1.1': 'TLS 1.1', 'TLSv1.2': 'TLS 1.2', 'TLSv1.3': 'TLS 1.3', SSLv3: 'SSL 3.0' };

/** Signature algorithms by OID, for people (SHA-1 named as such). */
const SIGNATURE_NAMES: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'RSA / SHA-1',
  '1.2.840.113549.1.1.11': 'RSA / SHA-256',
  '1.2.840.113549.1.1.12': 'RSA / SHA-384',
  '1.2.840.113549.1.1.13': 'RSA / SHA-512',
  '1.2.840.113549.1.1.10': 'RSA-PSS',
  '1.2.840.10045.4.1': 'ECDSA / SHA-1',
  '1.2.840.10045.4.3.2': 'ECDSA / SHA-256',
  '1.2.840.10045.4.3.3': 'ECDSA / SHA-384',
  '1.2.840.10045.4.3.4': 'ECDSA / SHA-512',
  '1.2.840.113549.1.1.4': 'RSA / MD5',
};

type BrowserFamily = 'edge' | 'chrome' | 'firefox' | 'safari' | 'ie';

/** Which browser family a User-Agent names (only to mark its section; nothing depends on it). */
export function browserFamily(userAgent: string | undefined): BrowserFamily | undefined {
  const ua = userAgent ?? '';
  if (/Trident\/|MSIE /.test(ua)) return 'ie';
  if (/Edg(e|A|iOS)?\//.test(ua)) return 'edge';
  if (/Firefox\//.test(ua)) return 'firefox';
  if (/Chrome\/|Chromium\//.test(ua)) return 'chrome';
  if (/Safari\//.test(ua)) return 'safari';
  return undefined;
}

/** An instant as a clinic in Japan reads it (policy dates and exceptions are Japan days). */
const date = (iso: string) => {
  const jst = new Date(Date.parse(iso) + 9 * 3_600_000).toISOString();
  return `${jst.slice(0, 10)} ${jst.slice(11, 16)} JST`;
};

function problemList(problems: readonly SelfCheckProblem[]): string {
  if (!problems.length) return '';
  return `<ol class="problems">${problems
    .map(
      (p) => `<li data-code="${esc(p.code)}"><strong>${esc(p.ja)}</strong><br><span class="en">${esc(p.en)}</span>
<br>対処 / What to do: ${esc(p.fixJa)}<br><span class="en">${esc(p.fixEn)}</span> <code>${esc(p.code)}</code></li>`,
    )
    .join('\n')}</ol>`;
}

function verdictBox(id: string, titleJa: string, titleEn: string, v: SelfCheckPolicyVerdict): string {
  const since = v.since ? `${esc(date(v.since))}〜` : '';
  const head = v.accepted
    ? `<p class="ok">接続できます <span class="en">This connection would be accepted</span></p>`
    : `<p class="ng">接続できません（${v.problems.length} 件の問題） <span class="en">This connection would be refused (${v.problems.length} problem${v.problems.length === 1 ? '' : 's'})</span></p>`;
  const exceptions = v.exceptionsUsed.length
    ? `<p class="warn">期限付きの例外により接続できています：${v.exceptionsUsed.map((e) => `${esc(e.allow)}（${esc(e.until)} まで）`).join('、')} <span class="en">Accepted only because of dated exceptions, which end on their own dates.</span></p>`
    : '';
  return `<section id="${id}" class="verdict ${v.accepted ? 'accepted' : 'refused'}" data-accepted="${v.accepted}" data-profile="${esc(v.profile)}">
<h3>${esc(titleJa)} <span class="en">${esc(titleEn)}</span></h3>
<p>ポリシー / Policy: <strong>${esc(v.profileJa)}</strong> <code>${esc(v.profile)}</code> ${since}</p>
${head}${exceptions}${problemList(v.problems)}
</section>`;
}

function certificateSection(r: SelfCheckReport): string {
  const c = r.certificate;
  if (!r.connection.clientCertificateOffered || !c) {
    return `<table id="certificate" data-offered="false"><tr><th>クライアント証明書<br><span class="en">Client certificate</span></th><td><span class="ng">提示されていません</span> <span class="en">None was offered.</span><br>
<span class="small">証明書を導入したのに提示されない場合は、証明書が本ネットワークの認証局のものか、ブラウザで選択したかを確認してください。<span class="en">If one is installed, check that it is from this network's CA and that you chose it when the browser asked.</span></span></td></tr></table>`;
  }
  const rev = c.revocation;
  const revocation =
    rev.state === 'revoked'
      ? `<span class="ng" id="revoked">失効しています</span> <span class="en">Revoked</span>`
      : rev.state === 'good'
        ? `<span class="ok">失効していません</span> <span class="en">Not revoked</span>`
        : `<span class="warn">確認できません</span> <span class="en">Unknown</span>`;
  const days = c.daysLeft < 0 ? `<span class="ng">期限切れ</span> <span class="en">expired</span>` : c.daysLeft <= 30 ? `<span class="warn">残り ${c.daysLeft} 日</span> <span class="en">${c.daysLeft} days left</span>` : `残り ${c.daysLeft} 日 <span class="en">${c.daysLeft} days left</span>`;
  const facility = c.facility
    ? `${esc(c.facility.name ?? '')} <code>${esc(c.facility.number)}</code>${c.facility.status && c.facility.status !== 'active' ? ` <span class="ng">${esc(c.facility.status)}</span>` : ''}`
    : `<span class="small">（本ネットワークの証明書でないため表示しません / not shown: not a certificate of this network）</span>`;
  const chain = c.chain.trusted
    ? `<span class="ok">本ネットワークの認証局につながります</span> <span class="en">Chains to this network's CA${c.chain.pinned ? ' (pinned)' : ''}</span>`
    : `<span class="ng">本ネットワークの認証局につながりません</span> <span class="en">Does NOT chain to this network's CA: ${esc(c.chain.detail ?? '')}</span>`;
  const certs = c.chain.certificates.map((x) => `<li><code>${esc(x.subject)}</code> <span class="small">${esc(SIGNATURE_NAMES[x.signatureAlgorithm] ?? x.signatureAlgorithm)}</span></li>`).join('');
  return `<table id="certificate" data-offered="true" data-trusted="${c.chain.trusted}" data-revocation="${esc(rev.state)}">
<tr><th>クライアント証明書<br><span class="en">Client certificate</span></th><td><span class="ok">提示されました</span> <span class="en">Offered</span></td></tr>
<tr><th>医療機関<br><span class="en">Facility</span></th><td id="facility">${facility}</td></tr>
<tr><th>サブジェクト<br><span class="en">Subject</span></th><td><code id="subject">${esc(c.subject)}</code></td></tr>
<tr><th>発行者<br><span class="en">Issuer</span></th><td><code>${esc(c.issuer)}</code></td></tr>
<tr><th>シリアル番号<br><span class="en">Serial</span></th><td><code>${esc(c.serial)}</code></td></tr>
<tr><th>有効期限<br><span class="en">Expires</span></th><td id="expires">${esc(date(c.notAfter))}（${days}）</td></tr>
<tr><th>失効<br><span class="en">Revocation</span></th><td id="revocation">${revocation}${rev.detail ? `<br><span class="small">${esc(rev.detail)}</span>` : ''}</td></tr>
<tr><th>証明書チェーン<br><span class="en">Chain</span></th><td id="chain">${chain}<ul>${certs}</ul></td></tr>
</table>`;
}

function browserGuide(family: BrowserFamily | undefined): string {
  const mark = (...f: BrowserFamily[]) => (family && f.includes(family) ? ' class="this-browser"' : '');
  const yours = (f: BrowserFamily) => (f === family ? ' <strong>（お使いのブラウザ / your browser）</strong>' : '');
  return `<h2>ブラウザごとの設定 <span class="en">What to do, browser by browser</span></h2>
<h3${mark('edge', 'chrome')}>Microsoft Edge / Google Chrome${yours('edge')}${yours('chrome')}</h3>
<ul>
<li>ブラウザを最新版に更新してください（TLS 1.2 / 1.3 は標準で有効です）。<span class="en">Update the browser: TLS 1.2 and 1.3 are on by default.</span></li>
<li>Windows では証明書（.p12）をダブルクリックして「個人」ストアに導入します。「秘密キーの保護を強力にする」にはチェックを入れないでください。<span class="en">On Windows, double-click the .p12 to import it into the Personal store; leave “Enable strong private key protection” unchecked.</span></li>
<li>接続時に証明書の選択画面が出たら、医療機関の証明書を選んでください。<span class="en">Choose the facility certificate when the browser asks for one.</span></li>
</ul>
<h3${mark('firefox')}>Mozilla Firefox${yours('firefox')}</h3>
<ul>
<li>アドレスバーに <code>about:config</code> と入力し、<code>security.tls.version.min</code> を <code>3</code>（TLS 1.2）、<code>security.tls.version.max</code> を <code>4</code>（TLS 1.3）にしてください。<span class="en">Open <code>about:config</code>; set <code>security.tls.version.min</code> to <code>3</code> (TLS 1.2) and <code>security.tls.version.max</code> to <code>4</code> (TLS 1.3).</span></li>
<li>証明書は「設定」→「プライバシーとセキュリティ」→「証明書を表示」→「あなたの証明書」→「インポート」で導入します（Firefox は Windows の証明書ストアを使いません）。<span class="en">Import the certificate under Settings → Privacy &amp; Security → View Certificates → Your Certificates → Import (Firefox keeps its own store).</span></li>
</ul>
<h3${mark('safari')}>Safari (macOS)${yours('safari')}</h3>
<ul>
<li>macOS を更新してください（Safari は OS とともに更新されます）。<span class="en">Update macOS; Safari is updated with it.</span></li>
<li>.p12 をダブルクリックして「キーチェーンアクセス」の「ログイン」キーチェーンに導入します。<span class="en">Double-click the .p12 to import it into the login keychain (Keychain Access).</span></li>
</ul>
<h3${mark('ie')}>Internet Explorer${yours('ie')}</h3>
<ul>
<li>「インターネット オプション」→「詳細設定」→「セキュリティ」で「TLS 1.2 を使用する」にチェックを入れ、「SSL 3.0 を使用する」「TLS 1.0 を使用する」「TLS 1.1 を使用する」のチェックを外してください。<span class="en">Internet Options → Advanced → Security: check “Use TLS 1.2”; uncheck “Use SSL 3.0”, “Use TLS 1.0” and “Use TLS 1.1”.</span></li>
<li>Internet Explorer はサポートが終了しています。Microsoft Edge への移行をお勧めします。<span class="en">Internet Explorer is retired; move to Microsoft Edge.</span></li>
</ul>
<h3>送信ソフト（レセプト・検査結果など） <span class="en">Transmission software</span></h3>
<ul><li>ソフトウェアの提供元に、TLS 1.2 以上とクライアント証明書に対応した版を確認してください。提供元は <code>/self-check.json</code> で自社製品の接続を事前に確認できます。<span class="en">Ask the vendor for a version with TLS 1.2+ and client certificates; vendors can test their client against <code>/self-check.json</code> before release.</span></li></ul>`;
}

function contactSection(contact: SelfCheckContact | undefined, fallback: string | undefined): string {
  const rows: string[] = [];
  if (contact?.name) rows.push(`<li>${esc(contact.name)}</li>`);
  if (contact?.phone) rows.push(`<li>電話 / Phone: ${esc(contact.phone)}</li>`);
  if (contact?.email) rows.push(`<li>メール / E-mail: ${esc(contact.email)}</li>`);
  if (contact?.hours) rows.push(`<li>受付時間 / Hours: ${esc(contact.hours)}</li>`);
  if (contact?.url) rows.push(`<li><a href="${esc(contact.url)}">${esc(contact.url)}</a></li>`);
  if (!rows.length && fallback) rows.push(`<li>${esc(fallback)}</li>`);
  if (!rows.length) return '';
  return `<h2>お問い合わせ先 <span class="en">Contact</span></h2><ul id="contact">${rows.join('')}</ul>`;
}

export interface SelfCheckPageInput {
  report: SelfCheckReport;
  userAgent?: string;
  contact?: SelfCheckContact;
  /** The gateway's one-line contact, when the self-check has none of its own. */
  fallbackContact?: string;
}

export function selfCheckPage(p: SelfCheckPageInput): string {
  const r = p.report;
  const protocol = PROTOCOL_TEXT[r.connection.protocol] ?? r.connection.protocol;
  const old = r.connection.protocol !== 'TLSv1.2' && r.connection.protocol !== 'TLSv1.3';
  const coming = r.policies.coming;
  return `<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>接続診断 / Connection self-check</title>
<style>${STYLE}</style>
</head>
<body>
<h1>接続診断 <span class="en">Connection self-check</span></h1>
<p>このページは、このブラウザ（またはソフトウェア）がいま使った接続を診断します。何も転送せず、何の権限も与えません。<br><span class="en">This page shows what this browser (or software) used to reach it. It forwards nothing and grants nothing.</span></p>
<h2>接続 <span class="en">Connection</span></h2>
<table id="connection" data-protocol="${esc(r.connection.protocol)}">
<tr><th>TLS バージョン<br><span class="en">TLS version</span></th><td id="protocol"><span class="${old ? 'ng' : 'ok'}">${esc(protocol)}</span></td></tr>
<tr><th>暗号スイート<br><span class="en">Cipher suite</span></th><td><code id="suite">${esc(r.connection.suite)}</code></td></tr>
</table>
<h2>証明書 <span class="en">Certificate</span></h2>
${certificateSection(r)}
<h2>判定 <span class="en">Verdict</span></h2>
${verdictBox('in-force', '現在のポリシー', 'Policy in force', r.policies.inForce)}
${coming ? verdictBox('coming', `${date(coming.since ?? r.checkedAt).slice(0, 10)} からのポリシー`, `Policy from ${date(coming.since ?? r.checkedAt).slice(0, 10)}`, coming) : '<p id="coming-none">予定されているポリシー変更はありません。<span class="en">No policy change is scheduled.</span></p>'}
${browserGuide(browserFamily(p.userAgent))}
${contactSection(p.contact, p.fallbackContact)}
<p class="small">診断日時 / Checked at ${esc(date(r.checkedAt))} ・ 機械可読版 / Machine-readable: <a href="/self-check.json">/self-check.json</a></p>
</body>
</html>
`;
}
