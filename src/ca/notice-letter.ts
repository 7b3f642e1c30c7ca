import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { badRequest, internal } from '../errors/index.js';
import { fingerprint } from '../pki/index.js';
import type { CreatedNotice } from './notices.js';
import { backupAdvice } from './notice-downloads.js';

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface NoticeLetterInput {
  notice: CreatedNotice;
  /** The operator (運営主体) named as sender. */
  organization: string;
  portalUrl: string;
  rootDer: Buffer;
}

const jaDate = (iso: string) => {
  const d = new Date(iso);
  // The deadline as a clinic in Japan reads it (JST).
  const j = new Date(d.getTime() + 9 * 3_600_000);
  return `${j.getUTCFullYear()}年${j.getUTCMonth() + 1}月${j.getUTCDate()}日`;
};

/** The letter's print CSS: one A4 page per `main`, a page break after each. */
const LETTER_STYLE = `  @page { size: A4; margin: 12mm 16mm; }
  * { box-sizing: border-box; }
  body { font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Yu Gothic", sans-serif; color: #111; font-size: 10pt; line-height: 1.4; margin: 0; }
  main { max-width: 178mm; margin: 0 auto; break-after: page; }
  main:last-child { break-after: auto; }
  p { margin: 2mm 0; }
  header { display: flex; justify-content: space-between; align-items: flex-start; border-bottom: 2px solid #111; padding-bottom: 3mm; }
  h1 { font-size: 18pt; margin: 0; letter-spacing: 0.1em; }
  .en { color: #555; font-size: 8.5pt; }
  .meta { text-align: right; font-size: 9pt; }
  table { width: 100%; border-collapse: collapse; margin: 3mm 0; }
  th, td { border: 1px solid #999; padding: 1.1mm 3mm; text-align: left; vertical-align: middle; }
  th { width: 42mm; background: #f2f2f2; font-weight: 600; }
  .id { font-family: "Noto Sans Mono CJK JP", "DejaVu Sans Mono", monospace; font-size: 15pt; font-weight: 700; letter-spacing: 0.12em; }
  .id b { color: #888; font-weight: 400; padding: 0 0.15em; }
  .fp { font-family: "DejaVu Sans Mono", monospace; font-size: 8.2pt; word-break: break-all; }
  .deadline { font-size: 13pt; font-weight: 700; }
  ol { margin: 1mm 0 2mm 5mm; padding-left: 4mm; }
  li { margin-bottom: 0.5mm; }
  ol.backup { font-size: 9pt; line-height: 1.35; }
  ol.backup li { margin-bottom: 0.6mm; }
  .warn { border: 1.5px solid #b00; padding: 1.5mm 3mm; margin: 2mm 0; }
  .warn strong { color: #b00; }
  footer { margin-top: 3mm; font-size: 8.5pt; color: #444; border-top: 1px solid #999; padding-top: 2mm; }
  @media screen { body { background: #ddd; } main { background: #fff; padding: 16mm 18mm; margin: 8mm auto; max-width: 210mm; min-height: 297mm; box-shadow: 0 0 4mm #999; } }
`;

function letterDocument(title: string, mains: string): string {
  return `<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
${LETTER_STYLE}</style>
</head>
<body>
${mains}
</body>
</html>
`;
}


/**
 * A long facility name (up to 64 characters) must not push the letter onto
 * a second page: a campaign PDF is one page per notice, matched row by row
 * with its mail-merge CSV. The salutation stays on one line (its size
 * shrinks with the name), and the table cell takes two lines of a smaller
 * size, no taller than its two-line heading.
 */
function nameFit(name: string): { salutation: string; cell: string } {
  const chars = [...name].length;
  return {
    salutation: chars <= 44 ? '' : ` style="font-size:${Math.max(7, Math.floor(4400 / chars) / 10)}pt;white-space:nowrap"`,
    cell: chars <= 36 ? '' : ' style="font-size:8pt;line-height:1.25"',
  };
}

/** One letter's page (the `main` element). */
function letterPage(input: NoticeLetterInput): string {
  const n = input.notice;
  const e = escapeHtml;
  const sha256 = fingerprint(input.rootDer);
  const sha1 = fingerprint(input.rootDer, 'sha1');
  const backup = backupAdvice('notice');
  const uses = n.maxDownloads > 1 ? `有効期限内は${n.maxDownloads}回までダウンロードできます。` : 'IDは一度だけ使用できます。';
  const usesEn = n.maxDownloads > 1 ? `up to ${n.maxDownloads}; each revokes the certificate before it` : 'once';
  const ids = (id: string) => id.split('-').map((g) => `<span>${e(g)}</span>`).join('<b>-</b>');
  return `<main>
<header>
  <div>
    <h1>証明書発行通知書</h1>
    <div class="en">Certificate issuance notice</div>
  </div>
  <div class="meta">
    発行日 ${e(jaDate(n.createdAt))}<br>
    通知書番号 ${e(n.id)}<br>
    ${e(input.organization)}
  </div>
</header>
<p${nameFit(n.facility.name).salutation}>${e(n.facility.name)} 御中</p>
<p>貴院（貴施設）のクライアント証明書を発行する準備ができました。下記の申請IDと参照IDを使って、有効期限までに証明書をダウンロードしてください。${e(uses)}</p>
<table>
  <tr><th>医療機関名<div class="en">Facility</div></th><td${nameFit(n.facility.name).cell}>${e(n.facility.name)}</td></tr>
  <tr><th>医療機関番号<div class="en">Facility number</div></th><td>${e(n.facility.number)}</td></tr>
  <tr><th>申請ID<div class="en">Request ID</div></th><td class="id" data-field="request-id">${ids(n.requestId)}</td></tr>
  <tr><th>参照ID<div class="en">Reference ID</div></th><td class="id" data-field="reference-id">${ids(n.referenceId)}</td></tr>
  <tr><th>有効期限<div class="en">Valid until</div></th><td class="deadline">${e(jaDate(n.expiresAt))}まで <span class="en">(${e(n.expiresAt.slice(0, 10))})</span></td></tr>
  <tr><th>ダウンロード回数<div class="en">Downloads</div></th><td data-field="max-downloads">${n.maxDownloads}回まで${n.maxDownloads > 1 ? '（前の証明書は失効します）' : ''} <span class="en">(${e(usesEn)})</span></td></tr>
  <tr><th>ダウンロードサイト<div class="en">Portal</div></th><td class="fp" style="font-size:10.5pt">${e(input.portalUrl)}</td></tr>
  <tr><th>ルート証明書の拇印<div class="en">Root thumbprints</div></th><td class="fp">SHA-256: ${e(sha256)}<br>SHA-1: ${e(sha1)}</td></tr>
</table>
<h2 style="font-size:11.5pt;margin:2mm 0 1mm">ダウンロードとインストールの手順</h2>
<ol>
  <li>ダウンロードサイトを開き、申請IDと参照IDを入力します（ハイフンと大文字・小文字の区別は不要です）。</li>
  <li>証明書のパスワードを決めて2回入力し、ダウンロードします（証明書ファイル .p12、ルート証明書 root-ca.cer、拇印の記載されたテキスト）。</li>
  <li>root-ca.cer を開き、拇印（SHA-256 または SHA-1）が上の表と一致することを確認してから「信頼されたルート証明機関」にインストールします。</li>
  <li>.p12 ファイルを開き、決めたパスワードを入力してインストールします。</li>
</ol>
<div class="warn"><strong>Windows をお使いの場合：</strong>インポート時の「秘密キーの保護を強力にする」には<strong>チェックを入れないでください</strong>。連携するアプリケーションが認証できなくなります。</div>
<p class="en">Open the portal, enter both IDs, choose a certificate password (twice) and download. Check the root certificate's thumbprint against this letter before trusting it. On Windows, leave “Enable strong private key protection” unchecked.</p>
<h2 style="font-size:11.5pt;margin:2mm 0 1mm" id="backup">バックアップと端末の入れ替え <span class="en">Backup and a replacement PC</span></h2>
<ol class="backup">
${backup.ja.map((ja, i) => `  <li>${e(ja)} <span class="en">${e(backup.en[i]!)}</span></li>`).join('\n')}
</ol>
<footer>
  この通知書は施錠できる場所に保管し、第三者に見せないでください。心当たりのない通知書や、使用済みと表示された場合は、すぐに運営主体（${e(input.organization)}）にご連絡ください。
</footer>
</main>`;
}

/**
 * The issuance notice (証明書発行通知書) as one printable A4 page: HTML with
 * print CSS, Japanese first. The PDF is this page printed by Chromium.
 */
export function renderNoticeLetter(input: NoticeLetterInput): string {
  return letterDocument(`証明書発行通知書 ${input.notice.facility.name}`, letterPage(input));
}

/** The letters of several notices as one document, one A4 page each, in the order given (a campaign's PDF). */
export function renderNoticeLetters(notices: readonly CreatedNotice[], context: Omit<NoticeLetterInput, 'notice'>, title = '証明書発行通知書'): string {
  return letterDocument(title, notices.map((notice) => letterPage({ ...context, notice })).join('\n'));
}

/**
 * The mail-merge columns of a batch of letters, in order. The request and
 * reference IDs are in it: the CSV is as secret as the letters.
 */
export const LETTER_CSV_HEADER = ['facilityNumber', 'facilityName', 'address', 'contact', 'noticeId', 'requestId', 'referenceId', 'validUntil', 'validUntilJa', 'portalUrl', 'rootSha256', 'rootSha1', 'organization', 'replacesSerial', 'replacesNotAfter'] as const;

/** One CSV row per letter (for a mail merge), safe against formula injection (report/csv's rules). */
export function noticeLettersCsvRows(notices: readonly (CreatedNotice & { serial?: string; notAfter?: string })[], context: Omit<NoticeLetterInput, 'notice'>): string[][] {
  const sha256 = fingerprint(context.rootDer);
  const sha1 = fingerprint(context.rootDer, 'sha1');
  return notices.map((n) => [n.facility.number, n.facility.name, n.facility.address ?? '', n.facility.contact ?? '', n.id, n.requestId, n.referenceId, n.expiresAt.slice(0, 10), jaDate(n.expiresAt), context.portalUrl, sha256, sha1, context.organization, n.serial ?? '', n.notAfter?.slice(0, 10) ?? '']);
}

/** Chromium (or Chrome) for printing the letter: $SEKISHO_CHROMIUM, else the usual paths. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env.SEKISHO_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  return candidates.find((c): c is string => Boolean(c) && existsSync(c!));
}

/**
 * Prints an HTML page to an A4 PDF with headless Chromium
 * (`--print-to-pdf`); the page's @page rule sets size and margins.
 */
export async function printToPdf(html: string, chromium: string): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-letter-'));
  try {
    const page = join(dir, 'letter.html');
    const pdf = join(dir, 'letter.pdf');
    writeFileSync(page, html);
    const args = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-pdf-header-footer', `--user-data-dir=${join(dir, 'profile')}`, `--print-to-pdf=${pdf}`, pathToFileURL(page).href];
    const stderr: Buffer[] = [];
    const status = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.on('data', (d: Buffer) => stderr.length < 64 && stderr.push(d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    if (status !== 0 || !existsSync(pdf)) {
      throw internal('LETTER_PDF_FAILED', `Chromium could not print the letter to PDF (exit ${status}): ${Buffer.concat(stderr).toString().split('\n').filter(Boolean).slice(-2).join(' ')}`);
    }
    return readFileSync(pdf);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The letters of these notices as one HTML document and its PDF (one A4 page each), printed by Chromium. */
export async function printNoticeLetters(notices: readonly CreatedNotice[], context: Omit<NoticeLetterInput, 'notice'>, chromium: string): Promise<{ html: string; pdf: Buffer }> {
  const html = notices.length === 1 ? renderNoticeLetter({ ...context, notice: notices[0]! }) : renderNoticeLetters(notices, context);
  return { html, pdf: await printToPdf(html, chromium) };
}

/** The portal URL printed on letters: the one given, else the config's, else the default; https only. */
export function letterPortalUrl(given: string | undefined, configured: string | undefined, fallback = 'https://127.0.0.1:8080/'): string {
  const url = given ?? configured ?? fallback;
  if (!/^https:\/\/[^\s]+$/.test(url)) throw badRequest('PORTAL_URL_INVALID', `the portal URL must be https://… (got "${url.slice(0, 80)}")`);
  return url;
}

/** Chromium for a letter's PDF, or CHROMIUM_MISSING saying how to get it. */
export function requireChromium(env: NodeJS.ProcessEnv = process.env, hint = ''): string {
  const c = findChromium(env);
  if (!c) throw badRequest('CHROMIUM_MISSING', `printing letters as PDF needs Chromium (apt-get install chromium, or set SEKISHO_CHROMIUM)${hint}`);
  return c;
}
