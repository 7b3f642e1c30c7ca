// The enrollment portal's script. Without it the form still works (the server
// makes the key). With it: typos in the IDs are caught before anything is
// sent (the same Luhn mod 26 check character as ca/notice-id.ts), and by
// default the key pair and the PKCS#12 are made here with WebCrypto, so only
// a CSR reaches the server and the private key never exists there.
const form = document.getElementById('enroll');
const ALPHABET = form ? form.dataset.alphabet : '';
const MIN_PASSWORD = form ? Number(form.dataset.minPassword) : 8;
const N = ALPHABET.length;

function compact(s) {
  return s.normalize('NFKC').toUpperCase().replace(/[\s\-‐-―ー－]+/g, '');
}
function checkCharacter(kind, data) {
  const s = (kind === 'request' ? 'R' : 'F') + data;
  let factor = 2;
  let sum = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    let addend = factor * ALPHABET.indexOf(s[i]);
    factor = factor === 2 ? 1 : 2;
    addend = Math.floor(addend / N) + (addend % N);
    sum += addend;
  }
  return ALPHABET[(N - (sum % N)) % N];
}
const FIELD = { request: ['申請ID', 'request ID'], reference: ['参照ID', 'reference ID'] };
/** The same judgement as the server's noticeIdProblem(), as a message (or '' when fine). */
function idProblem(kind, value) {
  const c = compact(value);
  const [ja, en] = FIELD[kind];
  if (!c) return '';
  if (c.length !== 16) return `${ja}は16文字です（いま${c.length}文字）/ The ${en} has 16 characters`;
  for (const ch of c) if (!ALPHABET.includes(ch)) return `「${ch}」は${ja}に使われない文字です / "${ch}" is not used in IDs (no 0, O, 1, I, 2, Z, 5, S, 8, B)`;
  const data = c.slice(0, -1);
  if (checkCharacter(kind, data) === c.slice(-1)) return '';
  const other = kind === 'request' ? 'reference' : 'request';
  if (checkCharacter(other, data) === c.slice(-1)) return `申請IDと参照IDが入れ替わっているようです / The two IDs seem to be swapped`;
  return `${ja}に入力ミスがあります。通知書と照らし合わせてください / The ${en} has a typo`;
}

function showError(ja, en, code) {
  const box = document.getElementById('error');
  box.hidden = false;
  box.dataset.code = code || '';
  box.replaceChildren();
  for (const [cls, text] of [['ja', ja], ['en', en], ['code', code]]) {
    if (!text) continue;
    const p = document.createElement('p');
    p.className = cls;
    p.textContent = text;
    box.append(p);
  }
  box.scrollIntoView({ block: 'center' });
}

// ---- DER (just what a CSR and a PKCS#12 need) ----
function len(n) {
  if (n < 0x80) return [n];
  const b = [];
  while (n > 0) {
    b.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return [0x80 | b.length, ...b];
}
function tlv(tag, ...parts) {
  const body = concat(...parts);
  return concat(new Uint8Array([tag, ...len(body.length)]), body);
}
function concat(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
const seq = (...p) => tlv(0x30, ...p);
const set = (...p) => tlv(0x31, ...p);
const octet = (b) => tlv(0x04, b);
const ctx = (n, ...p) => tlv(0xa0 | n, ...p);
const NULL = new Uint8Array([5, 0]);
function int(n) {
  const b = [];
  do {
    b.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  if (b[0] & 0x80) b.unshift(0);
  return tlv(0x02, new Uint8Array(b));
}
function uint(bytes) {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = bytes.slice(i);
  return tlv(0x02, b[0] & 0x80 ? concat(new Uint8Array([0]), b) : b);
}
function oid(dotted) {
  const a = dotted.split('.').map(Number);
  const out = [40 * a[0] + a[1]];
  for (const v of a.slice(2)) {
    const b = [v & 0x7f];
    let x = Math.floor(v / 128);
    while (x > 0) {
      b.unshift(0x80 | (x & 0x7f));
      x = Math.floor(x / 128);
    }
    out.push(...b);
  }
  return tlv(0x06, new Uint8Array(out));
}
const bits = (b) => tlv(0x03, concat(new Uint8Array([0]), b));
function bmp(s) {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    out[2 * i] = s.charCodeAt(i) >> 8;
    out[2 * i + 1] = s.charCodeAt(i) & 0xff;
  }
  return out;
}
function pemToDer(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
function b64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}
const subtle = globalThis.crypto && globalThis.crypto.subtle;
const sha = async (alg, data) => new Uint8Array(await subtle.digest(alg, data));

// ---- the key and the CSR ----
async function makeKeyAndCsr(keyType) {
  const ec = keyType === 'ecdsa-p256';
  const alg = ec ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  const keys = await subtle.generateKey(alg, true, ['sign', 'verify']);
  const spki = new Uint8Array(await subtle.exportKey('spki', keys.publicKey));
  // The subject is left empty: the CA writes the facility's subject from its registry.
  const info = seq(int(0), seq(), spki, ctx(0));
  let sig = new Uint8Array(await subtle.sign(ec ? { name: 'ECDSA', hash: 'SHA-256' } : 'RSASSA-PKCS1-v1_5', keys.privateKey, info));
  if (ec) sig = seq(uint(sig.slice(0, 32)), uint(sig.slice(32)));
  const sigAlg = ec ? seq(oid('1.2.840.10045.4.3.2')) : seq(oid('1.2.840.113549.1.1.11'), NULL);
  const csr = seq(info, sigAlg, bits(sig));
  const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', keys.privateKey));
  return { csr, pkcs8 };
}

// ---- PKCS#12 (RFC 7292): PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, HMAC-SHA256 MAC ----
const ITERATIONS = 2048;
async function pkcs12KdfSha256(password, salt, iterations) {
  const v = 64;
  const pass = concat(bmp(password), new Uint8Array([0, 0]));
  const fill = (src) => {
    if (src.length === 0) return new Uint8Array(0);
    const out = new Uint8Array(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length];
    return out;
  };
  const D = new Uint8Array(v).fill(3); // ID 3: MAC key
  let A = await sha('SHA-256', concat(D, fill(salt), fill(pass)));
  for (let i = 1; i < iterations; i++) A = await sha('SHA-256', A);
  return A; // 32 bytes: one block is all a SHA-256 MAC key needs
}
async function encryptPbes2(password, plain) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  const base = await subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveKey']);
  const key = await subtle.deriveKey({ name: 'PBKDF2', salt, iterations: ITERATIONS, hash: 'SHA-256' }, base, { name: 'AES-CBC', length: 256 }, false, ['encrypt']);
  const enc = new Uint8Array(await subtle.encrypt({ name: 'AES-CBC', iv }, key, plain));
  const alg = seq(
    oid('1.2.840.113549.1.5.13'),
    seq(seq(oid('1.2.840.113549.1.5.12'), seq(octet(salt), int(ITERATIONS), seq(oid('1.2.840.113549.2.9'), NULL))), seq(oid('2.16.840.1.101.3.4.1.42'), octet(iv))),
  );
  return seq(alg, octet(enc));
}
async function buildPkcs12({ pkcs8, certificate, chain, password, friendlyName }) {
  const localKeyId = await sha('SHA-1', certificate);
  const attrs = set(seq(oid('1.2.840.113549.1.9.20'), set(tlv(0x1e, bmp(friendlyName)))), seq(oid('1.2.840.113549.1.9.21'), set(octet(localKeyId))));
  const certBag = (der, withAttrs) => seq(oid('1.2.840.113549.1.12.10.1.3'), ctx(0, seq(oid('1.2.840.113549.1.9.22.1'), ctx(0, octet(der)))), ...(withAttrs ? [attrs] : []));
  const data = (content) => seq(oid('1.2.840.113549.1.7.1'), ctx(0, octet(content)));
  const certs = seq(certBag(certificate, true), ...chain.map((c) => certBag(c, false)));
  const keyBag = seq(seq(oid('1.2.840.113549.1.12.10.1.2'), ctx(0, await encryptPbes2(password, pkcs8)), attrs));
  const authSafe = seq(data(certs), data(keyBag));
  const macSalt = crypto.getRandomValues(new Uint8Array(16));
  const macKey = await subtle.importKey('raw', await pkcs12KdfSha256(password, macSalt, ITERATIONS), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await subtle.sign('HMAC', macKey, authSafe));
  const macData = seq(seq(seq(oid('2.16.840.1.101.3.4.2.1'), NULL), octet(mac)), octet(macSalt), int(ITERATIONS));
  return seq(int(3), data(authSafe), macData);
}

// ---- a stored ZIP, as web/zip.ts writes it ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b) {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function zip(files) {
  const parts = [];
  const central = [];
  let offset = 0;
  const le = (n, size) => Array.from({ length: size }, (_, i) => (n >>> (8 * i)) & 0xff);
  for (const f of files) {
    const name = new TextEncoder().encode(f.name);
    const crc = crc32(f.data);
    const head = [...le(20, 2), ...le(0x0800, 2), ...le(0, 2), ...le(0, 2), ...le(0x21, 2), ...le(crc, 4), ...le(f.data.length, 4), ...le(f.data.length, 4), ...le(name.length, 2), ...le(0, 2)];
    parts.push(new Uint8Array([...le(0x04034b50, 4), ...head]), name, f.data);
    central.push(new Uint8Array([...le(0x02014b50, 4), ...le(20, 2), ...head, ...le(0, 2), ...le(0, 2), ...le(0, 2), ...le(0, 4), ...le(offset, 4)]), name);
    offset += 30 + name.length + f.data.length;
  }
  const size = central.reduce((n, p) => n + p.length, 0);
  const end = new Uint8Array([...le(0x06054b50, 4), 0, 0, 0, 0, ...le(files.length, 2), ...le(files.length, 2), ...le(size, 4), ...le(offset, 4), 0, 0]);
  return concat(...parts, ...central, end);
}

function safeName(name) {
  return name.normalize('NFC').replace(/[\\/:*?"<>|\u0000-\u001f]/g, '_').replace(/\s+/g, '_').slice(0, 60) || 'facility';
}

function showResult(issued, files) {
  const section = document.getElementById('result');
  section.replaceChildren();
  const h = document.createElement('h2');
  h.textContent = '証明書の発行が完了しました / Your certificate is ready';
  const ok = document.createElement('div');
  ok.className = 'ok';
  ok.id = 'issued';
  ok.dataset.serial = issued.serial;
  ok.textContent = `${issued.facility.name}（${issued.facility.number}） シリアル ${issued.serial} ／ 有効期限 ${issued.notAfter.slice(0, 10)}`;
  const note = document.createElement('p');
  note.innerHTML = '<strong>秘密鍵はこのブラウザ内で作成され、サーバーには送られていません。このページを閉じる前にファイルを保存してください。</strong> <span class="en">The private key was made in this browser and never sent. Save the files before closing this page.</span>';
  const ul = document.createElement('ul');
  ul.className = 'files';
  for (const f of files) {
    const a = document.createElement('a');
    a.className = 'download';
    a.download = f.name;
    a.href = URL.createObjectURL(new Blob([f.data], { type: f.type }));
    a.textContent = f.name;
    const li = document.createElement('li');
    li.append(a);
    ul.append(li);
  }
  section.append(h, ok);
  // What this download superseded and how many are left, and the backup advice: text from the server (JSON).
  if (issued.download) {
    const d = document.createElement('div');
    d.id = 'redemption';
    d.className = issued.download.superseded ? 'warn' : 'note';
    d.dataset.left = String(issued.download.left);
    if (issued.download.superseded) d.dataset.superseded = issued.download.superseded;
    for (const [cls, text] of [['ja', issued.download.ja], ['en', issued.download.en]]) d.append(Object.assign(document.createElement('p'), { className: cls, textContent: text }));
    section.append(d);
  }
  section.append(note, ul);
  if (issued.backup) {
    const h3 = Object.assign(document.createElement('h3'), { id: 'backup', textContent: 'バックアップと端末の入れ替え / Backup and a replacement PC' });
    const ol = document.createElement('ol');
    issued.backup.ja.forEach((ja, i) => {
      const li = Object.assign(document.createElement('li'), { textContent: `${ja} ` });
      li.append(Object.assign(document.createElement('span'), { className: 'en', textContent: issued.backup.en[i] ?? '' }));
      ol.append(li);
    });
    section.append(h3, ol);
  }
  section.hidden = false;
  form.hidden = true;
}

async function enrollInBrowser() {
  const keyType = form.key_type.value;
  const { csr, pkcs8 } = await makeKeyAndCsr(keyType);
  const res = await fetch('/api/enroll-csr', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ requestId: form.request_id.value, referenceId: form.reference_id.value, csr: `-----BEGIN CERTIFICATE REQUEST-----\n${b64(csr)}\n-----END CERTIFICATE REQUEST-----\n` }),
  });
  const body = await res.json().catch(() => ({ error: { code: 'INTERNAL', message: `HTTP ${res.status}` } }));
  if (!res.ok) {
    showError(body.error.ja, body.error.message, body.error.code);
    return;
  }
  const certificate = pemToDer(body.certificate);
  const chain = body.chain.map(pemToDer);
  const p12 = await buildPkcs12({ pkcs8, certificate, chain, password: form.password.value, friendlyName: body.friendlyName });
  pkcs8.fill(0);
  const base = `${safeName(body.facility.name)}_${body.facility.number}`;
  const files = [
    { name: `${base}.p12`, type: 'application/x-pkcs12', data: p12 },
    { name: 'root-ca.cer', type: 'application/pkix-cert', data: chain[chain.length - 1] },
    { name: 'thumbprints.txt', type: 'text/plain;charset=utf-8', data: new TextEncoder().encode(body.thumbprints) },
  ];
  showResult(body, [{ name: `${base}.zip`, type: 'application/zip', data: zip(files) }, ...files]);
}

if (form) {
  for (const kind of ['request', 'reference']) {
    const input = document.getElementById(`${kind}_id`);
    const hint = document.getElementById(`${kind}_id_hint`);
    input.addEventListener('input', () => {
      const c = compact(input.value);
      const problem = c.length >= 16 ? idProblem(kind, input.value) : '';
      hint.textContent = problem || (c.length === 16 ? '✓' : '');
      hint.className = problem ? 'hint bad' : c.length === 16 ? 'hint good' : 'hint';
    });
  }
  if (subtle && window.isSecureContext) document.getElementById('keymode').hidden = false;
  form.addEventListener('submit', async (ev) => {
    for (const kind of ['request', 'reference']) {
      const problem = idProblem(kind, document.getElementById(`${kind}_id`).value);
      if (problem) {
        ev.preventDefault();
        showError(problem, '', 'NOTICE_ID_MISTYPED');
        return;
      }
    }
    if ([...form.password.value].length < MIN_PASSWORD) {
      ev.preventDefault();
      showError(`パスワードは${MIN_PASSWORD}文字以上にしてください。`, `Use at least ${MIN_PASSWORD} characters.`, 'PASSWORD_TOO_SHORT');
      return;
    }
    if (form.password.value !== form.password_confirm.value) {
      ev.preventDefault();
      showError('確認用のパスワードが一致しません。', 'The two passwords differ.', 'PASSWORD_MISMATCH');
      return;
    }
    const browserMode = !document.getElementById('keymode').hidden && form.key_mode.value === 'browser';
    if (!browserMode) return; // the server makes the key; the form posts normally
    ev.preventDefault();
    const button = document.getElementById('submit');
    button.disabled = true;
    try {
      await enrollInBrowser();
    } catch (e) {
      showError('証明書を作成できませんでした。「サーバーで鍵を作成」を選んで再度お試しください。', `The browser could not make the certificate (${e && e.message}); choose "Make the key on the server" and try again.`, 'BROWSER_ENROLL_FAILED');
    } finally {
      button.disabled = false;
    }
  });
}
