import { backupAdvice, escapeHtml as e, NOTICE_ID_ALPHABET, redemptionText, type NoticeRedemption } from '../ca/index.js';

export interface PortalPageInput {
  organization: string;
  rootSha256: string;
  rootSha1: string;
  minPasswordLength: number;
  /** The operator's PKCS#12 iteration count (config pkcs12.iterations): the page's own PKCS#12 uses it too. */
  pkcs12Iterations: number;
  error?: { code: string; message: string; ja?: string };
  /** Typed IDs to keep in the form after an error (never the password). */
  requestId?: string;
  referenceId?: string;
}

function layout(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<link rel="stylesheet" href="/assets/portal.css">
<script type="module" src="/assets/portal.js"></script>
</head>
<body>
${body}
</body>
</html>
`;
}

function errorBox(err: PortalPageInput['error']): string {
  if (!err) return '<div id="error" class="error" role="alert" hidden></div>';
  return `<div id="error" class="error" role="alert" data-code="${e(err.code)}">${err.ja ? `<p class="ja">${e(err.ja)}</p>` : ''}<p class="en">${e(err.message)}</p><p class="code">${e(err.code)}</p></div>`;
}

/** The enrollment page: two IDs from the letter, a password twice, download. */
export function portalPage(p: PortalPageInput): string {
  return layout(
    '証明書ダウンロード / Certificate download',
    `<main>
<header><h1>証明書ダウンロード</h1><p class="en">Certificate download — ${e(p.organization)}</p></header>
${errorBox(p.error)}
<form id="enroll" method="post" action="/enroll" autocomplete="off" data-alphabet="${NOTICE_ID_ALPHABET}" data-min-password="${p.minPasswordLength}" data-pkcs12-iterations="${p.pkcs12Iterations}">
  <fieldset>
    <legend>1. 通知書のID <span class="en">IDs from the notice</span></legend>
    <label for="request_id">申請ID <span class="en">Request ID</span></label>
    <input id="request_id" name="request_id" required spellcheck="false" autocapitalize="characters" placeholder="XXXX-XXXX-XXXX-XXXX" maxlength="40" value="${e(p.requestId ?? '')}">
    <p class="hint" id="request_id_hint" aria-live="polite"></p>
    <label for="reference_id">参照ID <span class="en">Reference ID</span></label>
    <input id="reference_id" name="reference_id" required spellcheck="false" autocapitalize="characters" placeholder="XXXX-XXXX-XXXX-XXXX" maxlength="40" value="${e(p.referenceId ?? '')}">
    <p class="hint" id="reference_id_hint" aria-live="polite"></p>
  </fieldset>
  <fieldset>
    <legend>2. 証明書のパスワード <span class="en">Certificate password</span></legend>
    <p class="note">${p.minPasswordLength}文字以上。証明書のインストール時に必要です。<span class="en">At least ${p.minPasswordLength} characters; you need it to install the certificate.</span></p>
    <label for="password">パスワード <span class="en">Password</span></label>
    <input id="password" name="password" type="password" required minlength="${p.minPasswordLength}" autocomplete="new-password">
    <label for="password_confirm">パスワード（確認） <span class="en">Password again</span></label>
    <input id="password_confirm" name="password_confirm" type="password" required minlength="${p.minPasswordLength}" autocomplete="new-password">
  </fieldset>
  <fieldset>
    <legend>3. 形式 <span class="en">Options</span></legend>
    <div id="keymode" hidden>
      <label class="choice"><input type="radio" name="key_mode" value="browser" checked> このブラウザ内で鍵を作成（推奨：秘密鍵がサーバーに存在しません） <span class="en">Make the key in this browser (recommended: the private key never exists on the server)</span></label>
      <label class="choice"><input type="radio" name="key_mode" value="server"> サーバーで鍵を作成 <span class="en">Make the key on the server</span></label>
    </div>
    <label for="key_type">鍵の種類 <span class="en">Key type</span></label>
    <select id="key_type" name="key_type"><option value="rsa-2048" selected>RSA 2048</option><option value="ecdsa-p256">ECDSA P-256</option></select>
    <label class="choice"><input type="checkbox" id="legacy" name="legacy" value="on"> 古い Windows 用の形式（3DES / SHA-1） <span class="en">Legacy format for old Windows</span></label>
  </fieldset>
  <button type="submit" id="submit">証明書をダウンロード <span class="en">Download certificate</span></button>
</form>
<section id="result" hidden></section>
<aside>
  <h2>ルート証明書の拇印 <span class="en">Root certificate thumbprints</span></h2>
  <p>通知書の拇印と一致することを確認してください。<span class="en">Check them against the notice.</span></p>
  <p class="fp">SHA-256: ${e(p.rootSha256)}<br>SHA-1: ${e(p.rootSha1)}</p>
  <p><a href="/root.cer" download="root-ca.cer">root-ca.cer</a></p>
</aside>
</main>`,
  );
}

export interface DownloadFile {
  name: string;
  type: string;
  data: Buffer;
}

export interface ResultPageInput {
  facilityName: string;
  facilityNumber: string;
  serial: string;
  notAfter: Date;
  files: DownloadFile[];
  /** Which download of the notice this was: what it superseded, how many are left. */
  redemption?: NoticeRedemption;
}

/** What this download did to the one before and how many are left (id="redemption", data-* for scripts and tests). */
function redemptionBox(r: NoticeRedemption | undefined): string {
  if (!r) return '';
  const t = redemptionText(r);
  const data = `data-download="${r.download}" data-max="${r.maxDownloads}" data-left="${r.left}"${r.superseded ? ` data-superseded="${e(r.superseded.serial)}"` : ''}`;
  return `<div class="${r.superseded ? 'warn' : 'note'}" id="redemption" role="status" ${data}><p class="ja">${e(t.ja)}</p><p class="en">${e(t.en)}</p></div>`;
}

/** Back the PKCS#12 up apart from the terminal, delete the download, reinstall on a replacement PC. */
export function backupSteps(): string {
  const a = backupAdvice('notice');
  return `<h2 id="backup">バックアップと端末の入れ替え <span class="en">Backup and a replacement PC</span></h2>
<ol>
${a.ja.map((ja, i) => `<li>${e(ja)}<br><span class="en">${e(a.en[i]!)}</span></li>`).join('\n')}
</ol>`;
}

/** After a successful download: the files as links (data: URLs, nothing kept on the server) and the next steps. */
export function resultPage(r: ResultPageInput): string {
  const links = r.files
    .map((f) => `<li><a class="download" download="${e(f.name)}" href="data:${e(f.type)};base64,${f.data.toString('base64')}">${e(f.name)}</a></li>`)
    .join('\n');
  return layout(
    '証明書の発行が完了しました / Certificate issued',
    `<main>
<header><h1>証明書の発行が完了しました</h1><p class="en">Your certificate is ready</p></header>
<div class="ok" id="issued" data-serial="${e(r.serial)}">
  <p>${e(r.facilityName)}（${e(r.facilityNumber)}）</p>
  <p>シリアル番号 <span class="en">Serial</span>: ${e(r.serial)} ／ 有効期限 <span class="en">Valid until</span>: ${e(r.notAfter.toISOString().slice(0, 10))}</p>
</div>
${redemptionBox(r.redemption)}
<p><strong>このページを閉じると、これらのファイルはもう表示できません。今すぐ保存してください。</strong><span class="en">This page is the only copy of these files: save them now.</span></p>
<ul class="files">
${links}
</ul>
${installSteps()}
${backupSteps()}
</main>`,
  );
}

export function installSteps(): string {
  return `<h2>インストール手順 <span class="en">Install</span></h2>
<ol>
<li>root-ca.cer を開き、拇印が通知書と一致することを確認して「信頼されたルート証明機関」にインストールします。</li>
<li>.p12 ファイルを開き、決めたパスワードを入力してインストールします。</li>
<li><strong>Windows：</strong>「秘密キーの保護を強力にする」には<strong>チェックを入れないでください</strong>。<span class="en">Leave “Enable strong private key protection” unchecked.</span></li>
</ol>`;
}

/** A short page for errors outside the form (404, 405). */
export function messagePage(title: string, ja: string, en: string): string {
  return layout(title, `<main><header><h1>${e(title)}</h1></header><div class="error" role="alert"><p class="ja">${e(ja)}</p><p class="en">${e(en)}</p></div><p><a href="/">← 証明書ダウンロード / Certificate download</a></p></main>`);
}
