/**
 * The enrollment portal's page script, bundled by esbuild into
 * dist/src/web/assets/portal.js (scripts/postbuild.mjs). Without it the form
 * still works (the server makes the key). With it: typos in the IDs are
 * caught before anything is sent (ca/notice-id.ts, the server's own check),
 * and by default the key pair and the PKCS#12 are made here with WebCrypto,
 * so only a CSR reaches the server and the private key never exists there.
 *
 * Everything it builds comes from the server's modules: the CSR from
 * pki/csr-core.ts, the PKCS#12 from pki/pkcs12-core.ts, the ZIP from
 * web/zip.ts, file names from ca/file-name.ts. It is type-checked with the
 * DOM library (tsconfig.browser.json), which has no Node types, so a Node
 * built-in reached from here fails the build.
 *
 * The module's exports are for tests (portal-bundle.test.ts imports it in
 * Chromium); the page only runs it.
 */
import { isSekishoError } from '../../errors/index.js';
import { compactNoticeId, noticeIdProblem, parseNoticeId, type NoticeIdKind, type NoticeIdProblem } from '../../ca/notice-id.js';
import { safeFileName } from '../../ca/file-name.js';
import { assemblePkcs12, checkPkcs12Iterations, checkPkcs12Profile, webCryptoPkcs12 } from '../../pki/pkcs12-core.js';
import { checkPkcs12Password } from '../../policy/password-policy.js';
import { buildCsrWith, ecdsaSignatureToDer, EMPTY_NAME_DER } from '../../pki/csr-core.js';
import { zipStore } from '../zip.js';

export { noticeIdProblem, zipStore };

export type BrowserKeyType = 'rsa-2048' | 'ecdsa-p256';

/** The server's judgement of a typed ID (ca/notice-id.ts), as the message it would send: undefined when fine. */
export function idMessage(kind: NoticeIdKind, value: string): { code: string; ja: string; en: string } | undefined {
  try {
    parseNoticeId(kind, value);
    return undefined;
  } catch (e) {
    if (!isSekishoError(e)) throw e;
    return { code: e.code, ja: e.ja ?? '', en: e.message };
  }
}

export function idProblem(kind: NoticeIdKind, value: string): NoticeIdProblem | undefined {
  return noticeIdProblem(kind, value);
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function pemToDer(pem: string): Uint8Array {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

export function csrPem(der: Uint8Array): string {
  return `-----BEGIN CERTIFICATE REQUEST-----\n${base64(der).replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** A new key pair in this browser and its CSR (empty subject: the CA writes the facility's subject from its registry). */
export async function makeKeyAndCsr(keyType: BrowserKeyType): Promise<{ csr: Uint8Array; pkcs8: Uint8Array }> {
  const subtle = globalThis.crypto.subtle;
  const ec = keyType === 'ecdsa-p256';
  const alg: EcKeyGenParams | RsaHashedKeyGenParams = ec
    ? { name: 'ECDSA', namedCurve: 'P-256' }
    : { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  const keys = (await subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const spki = new Uint8Array(await subtle.exportKey('spki', keys.publicKey));
  const csr = await buildCsrWith(EMPTY_NAME_DER, spki, ec ? 'ecdsa-with-SHA256' : 'sha256WithRSAEncryption', async (info) => {
    const sig = new Uint8Array(await subtle.sign(ec ? { name: 'ECDSA', hash: 'SHA-256' } : 'RSASSA-PKCS1-v1_5', keys.privateKey, new Uint8Array(info)));
    return ec ? ecdsaSignatureToDer(sig) : sig;
  });
  const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', keys.privateKey));
  return { csr, pkcs8 };
}

/** The PKCS#12 of a key made here (modern profile: PBES2/AES-256-CBC, HMAC-SHA256; WebCrypto has no 3DES, so `legacy` is refused). */
export function buildBrowserPkcs12(input: { pkcs8: Uint8Array; certificate: Uint8Array; chain: Uint8Array[]; password: string; friendlyName: string; legacy?: boolean; iterations?: number }): Promise<Uint8Array> {
  return assemblePkcs12(input, webCryptoPkcs12);
}

/**
 * What the PKCS#12 build here would refuse, judged before the CSR is sent:
 * the server counts the download (and revokes the certificate of the one
 * before) when it answers, so a refusal after that leaves the clinic with
 * nothing. The password policy is the server's own (policy/password-policy.ts);
 * the legacy format cannot be made with WebCrypto; the iteration count is the
 * operator's (the page's data-pkcs12-iterations). Undefined when fine.
 */
export function browserPkcs12Problem(o: { password: string; minPassword: number; legacy: boolean; iterations: number }): { code: string; ja: string; en: string } | undefined {
  try {
    checkPkcs12Password(o.password, o.minPassword);
    checkPkcs12Profile(webCryptoPkcs12, o.legacy);
    checkPkcs12Iterations(o.iterations);
    return undefined;
  } catch (e) {
    if (!isSekishoError(e)) throw e;
    return { code: e.code, ja: e.ja ?? '', en: e.message };
  }
}

// ---------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------

interface DownloadFile {
  name: string;
  type: string;
  data: Uint8Array;
}

interface CsrAnswer {
  facility: { number: string; name: string };
  serial: string;
  notAfter: string;
  certificate: string;
  chain: string[];
  friendlyName: string;
  thumbprints: string;
  /** This download's place in the notice's allowance, and what it superseded (texts from the server). */
  download?: { number: number; max: number; left: number; superseded?: string; ja: string; en: string };
  /** The backup advice, step by step (Japanese and English side by side). */
  backup?: { ja: string[]; en: string[] };
}

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

function showError(ja: string, en: string, code: string): void {
  const box = byId('error');
  box.hidden = false;
  box.dataset.code = code;
  box.replaceChildren();
  for (const [cls, text] of [['ja', ja], ['en', en], ['code', code]] as const) {
    if (!text) continue;
    const p = document.createElement('p');
    p.className = cls;
    p.textContent = text;
    box.append(p);
  }
  box.scrollIntoView({ block: 'center' });
}

function showResult(form: HTMLFormElement, issued: CsrAnswer, files: DownloadFile[]): void {
  const section = byId('result');
  section.replaceChildren();
  const h = document.createElement('h2');
  h.textContent = '証明書の発行が完了しました / Your certificate is ready';
  const ok = document.createElement('div');
  ok.className = 'ok';
  ok.id = 'issued';
  ok.dataset.serial = issued.serial;
  ok.textContent = `${issued.facility.name}（${issued.facility.number}） シリアル ${issued.serial} ／ 有効期限 ${issued.notAfter.slice(0, 10)}`;
  const note = document.createElement('p');
  const strong = document.createElement('strong');
  strong.textContent = '秘密鍵はこのブラウザ内で作成され、サーバーには送られていません。このページを閉じる前にファイルを保存してください。';
  const en = document.createElement('span');
  en.className = 'en';
  en.textContent = 'The private key was made in this browser and never sent. Save the files before closing this page.';
  note.append(strong, ' ', en);
  const ul = document.createElement('ul');
  ul.className = 'files';
  for (const f of files) {
    const a = document.createElement('a');
    a.className = 'download';
    a.download = f.name;
    a.href = URL.createObjectURL(new Blob([new Uint8Array(f.data)], { type: f.type }));
    a.textContent = f.name;
    const li = document.createElement('li');
    li.append(a);
    ul.append(li);
  }
  section.append(h, ok);
  // What this download superseded and how many are left, and the backup advice: text from the server.
  if (issued.download) {
    const d = document.createElement('div');
    d.id = 'redemption';
    d.className = issued.download.superseded ? 'warn' : 'note';
    d.dataset.left = String(issued.download.left);
    if (issued.download.superseded) d.dataset.superseded = issued.download.superseded;
    for (const [cls, text] of [['ja', issued.download.ja], ['en', issued.download.en]] as const) d.append(Object.assign(document.createElement('p'), { className: cls, textContent: text }));
    section.append(d);
  }
  section.append(note, ul);
  if (issued.backup) {
    const backup = issued.backup;
    const h3 = Object.assign(document.createElement('h3'), { id: 'backup', textContent: 'バックアップと端末の入れ替え / Backup and a replacement PC' });
    const ol = document.createElement('ol');
    backup.ja.forEach((ja, i) => {
      const li = Object.assign(document.createElement('li'), { textContent: `${ja} ` });
      li.append(Object.assign(document.createElement('span'), { className: 'en', textContent: backup.en[i] ?? '' }));
      ol.append(li);
    });
    section.append(h3, ol);
  }
  section.hidden = false;
  form.hidden = true;
}

function field(form: HTMLFormElement, name: string): string {
  const el = form.elements.namedItem(name);
  return el instanceof HTMLInputElement || el instanceof HTMLSelectElement ? el.value : el instanceof RadioNodeList ? el.value : '';
}

/** The operator's iteration count, as the server's own PKCS#12 uses it (the page's data-pkcs12-iterations). */
function pkcs12Iterations(form: HTMLFormElement): number {
  return Number(form.dataset.pkcs12Iterations ?? NaN);
}

function checked(form: HTMLFormElement, name: string): boolean {
  const el = form.elements.namedItem(name);
  return el instanceof HTMLInputElement && el.checked;
}

async function enrollInBrowser(form: HTMLFormElement): Promise<void> {
  const keyType = field(form, 'key_type') === 'ecdsa-p256' ? 'ecdsa-p256' : 'rsa-2048';
  const { csr, pkcs8 } = await makeKeyAndCsr(keyType);
  const res = await fetch('/api/enroll-csr', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ requestId: field(form, 'request_id'), referenceId: field(form, 'reference_id'), csr: csrPem(csr) }),
  });
  const body = (await res.json().catch(() => ({ error: { code: 'INTERNAL', message: `HTTP ${res.status}` } }))) as CsrAnswer & { error?: { code: string; message: string; ja?: string } };
  if (!res.ok || body.error) {
    const err = body.error ?? { code: 'INTERNAL', message: `HTTP ${res.status}` };
    showError(err.ja ?? '', err.message, err.code);
    return;
  }
  const certificate = pemToDer(body.certificate);
  const chain = body.chain.map(pemToDer);
  const p12 = await buildBrowserPkcs12({ pkcs8, certificate, chain, password: field(form, 'password'), friendlyName: body.friendlyName, legacy: checked(form, 'legacy'), iterations: pkcs12Iterations(form) });
  pkcs8.fill(0);
  const base = `${safeFileName(body.facility.name)}_${body.facility.number}`;
  const files: DownloadFile[] = [
    { name: `${base}.p12`, type: 'application/x-pkcs12', data: p12 },
    { name: 'root-ca.cer', type: 'application/pkix-cert', data: chain[chain.length - 1] ?? new Uint8Array(0) },
    { name: 'thumbprints.txt', type: 'text/plain;charset=utf-8', data: new TextEncoder().encode(body.thumbprints) },
  ];
  showResult(form, body, [{ name: `${base}.zip`, type: 'application/zip', data: zipStore(files) }, ...files]);
}

function start(form: HTMLFormElement): void {
  const minPassword = Number(form.dataset.minPassword ?? 8);
  for (const kind of ['request', 'reference'] as const) {
    const input = byId<HTMLInputElement>(`${kind}_id`);
    const hint = byId(`${kind}_id_hint`);
    input.addEventListener('input', () => {
      const c = compactNoticeId(input.value);
      const problem = c.length >= 16 ? idMessage(kind, input.value) : undefined;
      hint.textContent = problem ? `${problem.ja} / ${problem.en}` : c.length === 16 ? '✓' : '';
      hint.className = problem ? 'hint bad' : c.length === 16 ? 'hint good' : 'hint';
    });
  }
  const keymode = byId('keymode');
  if (globalThis.crypto?.subtle && window.isSecureContext) keymode.hidden = false;
  form.addEventListener('submit', async (ev) => {
    for (const kind of ['request', 'reference'] as const) {
      const problem = idMessage(kind, byId<HTMLInputElement>(`${kind}_id`).value);
      if (problem) {
        ev.preventDefault();
        showError(problem.ja, problem.en, problem.code);
        return;
      }
    }
    const password = field(form, 'password');
    if ([...password].length < minPassword) {
      ev.preventDefault();
      showError(`パスワードは${minPassword}文字以上にしてください。`, `Use at least ${minPassword} characters.`, 'PASSWORD_TOO_SHORT');
      return;
    }
    if (password !== field(form, 'password_confirm')) {
      ev.preventDefault();
      showError('確認用のパスワードが一致しません。', 'The two passwords differ.', 'PASSWORD_MISMATCH');
      return;
    }
    const browserMode = !keymode.hidden && field(form, 'key_mode') === 'browser';
    if (!browserMode) return; // the server makes the key; the form posts normally
    ev.preventDefault();
    // Before anything is sent: a file the page cannot build would cost a download (and the certificate before it).
    const refused = browserPkcs12Problem({ password, minPassword, legacy: checked(form, 'legacy'), iterations: pkcs12Iterations(form) });
    if (refused) {
      showError(refused.ja, refused.en, refused.code);
      return;
    }
    const button = byId<HTMLButtonElement>('submit');
    button.disabled = true;
    try {
      await enrollInBrowser(form);
    } catch (e) {
      const detail = isSekishoError(e) ? e.code : e instanceof Error ? e.message : String(e);
      showError('証明書を作成できませんでした。「サーバーで鍵を作成」を選んで再度お試しください。', `The browser could not make the certificate (${detail}); choose "Make the key on the server" and try again.`, 'BROWSER_ENROLL_FAILED');
    } finally {
      button.disabled = false;
    }
  });
}

const form = typeof document === 'undefined' ? null : document.getElementById('enroll');
if (form instanceof HTMLFormElement) start(form);
