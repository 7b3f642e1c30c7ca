/**
 * Steps 5–7: the token (present, PIN tries left, locked), the client
 * certificate in it (present, within its validity, its key in the token:
 * a challenge signed by the token and verified with the certificate's public
 * key, and again by the token), and its revocation status by OCSP at the
 * certificate's AIA address. The PIN is used for one login and never shown.
 */
import { randomBytes, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { isSekishoError } from '../../errors/index.js';
import { buildOcspRequest, readOcspResponse } from '../../pki/index.js';
import {
  CKF,
  listCredentials,
  signMechanismFor,
  type TokenCredential,
  type TokenModule,
  type TokenSession,
} from '../../token/index.js';
import { readPin } from '../pin.js';
import { openAgentToken } from '../facility-credential.js';
import { fail, ok, warn, type StepResult } from './result.js';
import type { DoctorTarget } from './target.js';

export interface OpenToken {
  module: TokenModule;
  session: TokenSession;
  keyLabel: string;
}

const DAY = 86_400_000;

export async function tokenStep(t: DoctorTarget, env: NodeJS.ProcessEnv): Promise<{ result: StepResult; open?: OpenToken }> {
  const token = t.token!;
  const where = token.kind === 'software' ? token.file : token.uri;
  let opened: Awaited<ReturnType<typeof openAgentToken>>;
  try {
    opened = await openAgentToken(token);
  } catch (e) {
    return { result: tokenMissing(where, e) };
  }
  const { module, slot, keyLabel } = opened;
  let info;
  try {
    info = await module.tokenInfo(slot);
  } catch (e) {
    await module.close();
    return { result: tokenMissing(where, e) };
  }
  const counters = info.maxUserPinTries !== undefined ? { userPinFailures: info.userPinFailures, triesLeft: info.maxUserPinTries - (info.userPinFailures ?? 0) } : {};
  const details = { token: info.label, kind: token.kind, flags: flagList(info.flags), ...counters };
  const close = async (r: StepResult) => {
    await module.close();
    return { result: r };
  };
  if (info.flags & CKF.USER_PIN_LOCKED) {
    return close(
      fail(
        'token',
        'TOKEN_LOCKED',
        { ja: `トークン「${info.label}」はPINを続けて間違えたためロックされています。`, en: `the token "${info.label}" is locked after too many wrong PINs` },
        { ja: '管理者（SO）に "sekisho token unlock" でロックを解除してもらってください。PINは試していません。', en: 'have the security officer unlock it ("sekisho token unlock"); the doctor did not try the PIN' },
        details,
      ),
    );
  }
  if (info.flags & CKF.USER_PIN_FINAL_TRY) {
    return close(
      fail(
        'token',
        'TOKEN_PIN_FINAL_TRY',
        { ja: `トークン「${info.label}」は、あと1回PINを間違えるとロックされます。診断ではPINを試していません。`, en: `one more wrong PIN locks the token "${info.label}"; the doctor did not try the PIN` },
        { ja: 'PINの設定（環境変数・PINファイル）が正しいことを確かめてから、"sekisho token info" で一度ログインしてください（正しいPINで回数が戻ります）。', en: 'make sure the PIN source (environment variable, PIN file) is right, then log in once with "sekisho token info" (a right PIN resets the count)' },
        details,
      ),
    );
  }
  let pin: string;
  try {
    pin = await readPin(t.pin ?? { env: 'SEKISHO_PIN' }, { env, isTTY: false });
  } catch (e) {
    const code = isSekishoError(e) ? e.code : 'PIN_REQUIRED';
    return close(
      fail(
        'token',
        code,
        { ja: isSekishoError(e) && e.ja ? e.ja : 'トークンのPINを読めません。', en: isSekishoError(e) ? e.message : 'the token PIN cannot be read' },
        { ja: 'PINは環境変数（--pin-env / credential.pin.env）か、本人だけが読めるPINファイル（--pin-file）で渡してください。', en: 'give the PIN through an environment variable (--pin-env, credential.pin.env) or a PIN file only you can read (--pin-file)' },
        details,
      ),
    );
  }
  const session = await module.openSession(slot);
  try {
    await session.login('user', pin);
  } catch (e) {
    await session.close();
    const after = await module.tokenInfo(slot).catch(() => undefined);
    const left = after?.maxUserPinTries !== undefined ? after.maxUserPinTries - (after.userPinFailures ?? 0) : undefined;
    if (isSekishoError(e) && e.code === 'PIN_LOCKED') {
      return close(fail('token', 'TOKEN_LOCKED', { ja: 'PINが違い、トークンがロックされました。', en: 'wrong PIN: the token is now locked' }, { ja: '管理者（SO）にロック解除を依頼してください。', en: 'have the security officer unlock it ("sekisho token unlock")' }, details));
    }
    return close(
      fail(
        'token',
        isSekishoError(e) ? e.code : 'TOKEN_LOGIN_FAILED',
        { ja: `PINが違います${left !== undefined ? `（あと${left}回間違えるとロックされます）` : ''}。`, en: `the PIN is wrong${left !== undefined ? ` (${left} ${left === 1 ? 'try' : 'tries'} left before the token locks)` : ''}` },
        { ja: 'PINの設定（環境変数・PINファイル）を確認してください。続けて間違えるとロックされるので、診断を繰り返す前に確認してください。', en: 'check the PIN source (environment variable, PIN file) before running the doctor again: more wrong PINs lock the token' },
        { ...details, ...(left !== undefined ? { triesLeft: left } : {}) },
      ),
    );
  }
  const open = { module, session, keyLabel };
  if (info.flags & CKF.USER_PIN_COUNT_LOW) {
    return {
      open,
      result: warn(
        'token',
        'TOKEN_PIN_COUNT_LOW',
        { ja: `トークン「${info.label}」にログインできましたが、以前にPINの間違いがありました。`, en: `logged in to the token "${info.label}", but wrong PINs were entered before` },
        { ja: '心当たりがなければ管理者に知らせてください（正しいPINで回数はリセットされました）。', en: 'if nobody you know mistyped it, tell your administrator (the right PIN reset the count)' },
        details,
      ),
    };
  }
  return { open, result: ok('token', 'TOKEN_OK', { ja: `トークン「${info.label}」にログインできました。`, en: `logged in to the token "${info.label}"` }, details) };
}

function tokenMissing(where: string, e: unknown): StepResult {
  const code = isSekishoError(e) ? e.code : 'TOKEN_UNAVAILABLE';
  return fail(
    'token',
    code === 'TOKEN_FILE_MISSING' || code === 'TOKEN_NOT_FOUND' || code === 'TOKEN_NOT_PRESENT' ? 'TOKEN_NOT_FOUND' : code,
    { ja: `トークン（${where}）が見つからないか、読めません（${code}）。`, en: `the token (${where}) is missing or unreadable (${isSekishoError(e) ? e.message : String(e)})` },
    { ja: 'ICカードやUSBトークンが挿さっているか、設定のトークンの場所（credential.token / --token）が正しいか確認してください。', en: 'check that the card or USB token is inserted, and that credential.token / --token names it' },
    { where, error: code },
  );
}

function flagList(flags: number): string[] {
  return (['USER_PIN_COUNT_LOW', 'USER_PIN_FINAL_TRY', 'USER_PIN_LOCKED', 'USER_PIN_TO_BE_CHANGED'] as const).filter((n) => flags & CKF[n]);
}

export async function clientCertificateStep(open: OpenToken, now: Date): Promise<{ result: StepResult; credential?: TokenCredential }> {
  const all = (await listCredentials(open.session, open.keyLabel)).filter((c) => c.certificate);
  const c = all[0];
  if (!c) {
    return {
      result: fail(
        'client-certificate',
        'CLIENT_CERT_MISSING',
        { ja: `トークンに鍵「${open.keyLabel}」の証明書がありません。`, en: `the token holds no certificate for the key "${open.keyLabel}"` },
        { ja: '運営主体から届いた PKCS#12 を "sekisho token import" で取り込むか、発行通知書で証明書を取得してください。', en: 'import the PKCS#12 from the network operator ("sekisho token import"), or enroll with the issuance notice' },
        { key: open.keyLabel },
      ),
    };
  }
  const cert = c.certificate!;
  const x = new X509Certificate(cert.der);
  const details = { subject: cert.subject, serial: cert.serial, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() };
  // The key in the token answers for the certificate: a fresh challenge signed in the token verifies with the certificate's key.
  const challenge = randomBytes(32);
  const keyType = x.publicKey.asymmetricKeyType === 'ec' ? 'ec' : 'rsa';
  const mech = signMechanismFor(keyType, 'sha256');
  let matches = false;
  try {
    const sig = await open.session.sign(mech, c.privateKey, challenge);
    matches = cryptoVerify('sha256', challenge, keyType === 'ec' ? { key: x.publicKey, dsaEncoding: 'ieee-p1363' } : x.publicKey, sig);
    const [pub] = await open.session.findObjects({ class: 'public-key', id: c.id });
    if (matches && pub) matches = await open.session.verify(mech, pub, challenge, sig);
  } catch {
    matches = false;
  }
  if (!matches) {
    return {
      credential: c,
      result: fail(
        'client-certificate',
        'CLIENT_KEY_MISMATCH',
        { ja: 'トークン内の秘密鍵と証明書が対応していません（署名の検証に失敗しました）。', en: 'the private key in the token does not match the certificate (a signed challenge did not verify)' },
        { ja: '証明書を取り込み直してください。解決しない場合は運営主体に再発行を依頼してください。', en: 'import the certificate again; if that does not help, ask the network operator for a new issuance' },
        details,
      ),
    };
  }
  if (now > cert.notAfter) {
    return {
      credential: c,
      result: fail(
        'client-certificate',
        'CLIENT_CERT_EXPIRED',
        { ja: `施設の証明書は ${cert.notAfter.toISOString()} に有効期限が切れています。`, en: `the facility certificate expired on ${cert.notAfter.toISOString()}` },
        { ja: '運営主体に新しい発行通知書を依頼し、再発行を受けてください。', en: 'ask the network operator for a new issuance notice and enroll again' },
        details,
      ),
    };
  }
  if (now < cert.notBefore) {
    return {
      credential: c,
      result: fail(
        'client-certificate',
        'CLIENT_CERT_NOT_YET_VALID',
        { ja: `施設の証明書は ${cert.notBefore.toISOString()} から有効です（この端末の時刻ではまだ有効になっていません）。`, en: `the facility certificate is valid only from ${cert.notBefore.toISOString()} (not yet, by this machine's clock)` },
        { ja: 'この端末の時刻を確認してください（「clock」の結果）。', en: 'check this machine\'s clock (the "clock" step)' },
        details,
      ),
    };
  }
  const days = Math.floor((cert.notAfter.getTime() - now.getTime()) / DAY);
  if (days < 30) {
    return {
      credential: c,
      result: warn(
        'client-certificate',
        'CLIENT_CERT_EXPIRES_SOON',
        { ja: `施設の証明書はあと${days}日で有効期限が切れます（${cert.notAfter.toISOString()}）。`, en: `the facility certificate expires in ${days} days (${cert.notAfter.toISOString()})` },
        { ja: 'エージェントの自動更新が動いているか確認し、動いていなければ運営主体に連絡してください。', en: 'check that the agent\'s renewal runs; if not, contact the network operator' },
        { ...details, daysLeft: days },
      ),
    };
  }
  return { credential: c, result: ok('client-certificate', 'CLIENT_CERT_OK', { ja: `施設の証明書は有効で（あと${days}日）、鍵はトークンの中にあります。`, en: `the facility certificate is valid (${days} days left) and its key is in the token` }, { ...details, daysLeft: days }) };
}

/** The issuer of `cert` from the token's CA certificates, the root, or the AIA caIssuers address. */
async function findIssuer(open: OpenToken, cert: X509Certificate, extra: Buffer[], t: DoctorTarget, timeoutMs: number): Promise<Buffer | undefined> {
  const pool = [...extra];
  for (const h of await open.session.findObjects({ class: 'certificate' })) {
    const v = (await open.session.getAttributes(h)).value;
    if (v) pool.push(v);
  }
  const found = pool.find((d) => {
    const x = new X509Certificate(d);
    return x.ca && cert.checkIssued(x) && cert.verify(x.publicKey);
  });
  if (found) return found;
  const url = aia(cert, 'CA Issuers');
  if (!url) return undefined;
  const got = await httpFetch(url, t, timeoutMs).catch(() => undefined);
  if (!got || got.status !== 200) return undefined;
  // Fetched over plain http: taken only if it really issued this certificate (its key verifies the signature), else
  // anyone on the way could hand over a CA of their own and an OCSP answer it signed.
  try {
    const x = new X509Certificate(got.body);
    return x.ca && cert.checkIssued(x) && cert.verify(x.publicKey) ? Buffer.from(x.raw) : undefined;
  } catch {
    return undefined;
  }
}

/** How far the OCSP answer's times may be off this machine's clock before an answer without this request's nonce is refused as not current. */
const OCSP_CLOCK_TOLERANCE_MS = 5 * 60_000;

function aia(cert: X509Certificate, kind: 'OCSP' | 'CA Issuers'): string | undefined {
  const m = new RegExp(`${kind} - URI:(http://\\S+)`).exec(cert.infoAccess ?? '');
  return m?.[1];
}

interface HttpResult {
  status: number;
  body: Buffer;
  date?: string;
}

/** A plain-http request (OCSP and caIssuers are http:// by RFC 5280), through the HTTP proxy when one is set. */
function httpFetch(url: string, t: DoctorTarget, timeoutMs: number, post?: Buffer): Promise<HttpResult> {
  const u = new URL(url);
  const proxy = t.httpProxy;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: proxy ? proxy.hostname.replace(/^\[|\]$/g, '') : u.hostname.replace(/^\[|\]$/g, ''),
        port: proxy ? Number(proxy.port || 80) : Number(u.port || 80),
        path: proxy ? u.href : `${u.pathname}${u.search}`,
        method: post ? 'POST' : 'GET',
        headers: { host: u.host, ...(post ? { 'content-type': 'application/ocsp-request', 'content-length': String(post.length) } : {}) },
        timeout: timeoutMs,
      },
      (res) => {
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > 1 << 20) req.destroy(new Error('answer too large'));
          else parts.push(d);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), ...(res.headers.date ? { date: res.headers.date } : {}) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(post);
  });
}

/**
 * The facility certificate's revocation status from its CA's OCSP responder
 * (over plain http, RFC 5280). The request carries a fresh nonce; an answer
 * with another nonce is refused, and one without any must be current by this
 * machine's clock (thisUpdate not ahead, nextUpdate not past): so a "good"
 * captured before a revocation cannot be replayed to hide it.
 */
export async function revocationStep(
  open: OpenToken,
  credential: TokenCredential,
  t: DoctorTarget,
  extraCerts: Buffer[],
  timeoutMs: number,
  now: Date = new Date(),
): Promise<{ result: StepResult; httpDate?: string; producedAt?: Date }> {
  const der = credential.certificate!.der;
  const cert = new X509Certificate(der);
  const url = aia(cert, 'OCSP');
  const details: Record<string, unknown> = { serial: credential.certificate!.serial, ...(url ? { ocsp: url } : {}) };
  if (!url) {
    return {
      result: warn(
        'revocation',
        'OCSP_NO_URL',
        { ja: '証明書にOCSPの問い合わせ先（AIA）がないため、失効状況を確認できません。', en: 'the certificate names no OCSP responder (AIA), so its revocation status cannot be checked' },
        { ja: '運営主体に失効状況の確認方法を問い合わせてください。', en: 'ask the network operator how to check revocation' },
        details,
      ),
    };
  }
  const issuer = await findIssuer(open, cert, extraCerts, t, timeoutMs);
  if (!issuer) {
    return {
      result: warn(
        'revocation',
        'OCSP_ISSUER_UNKNOWN',
        { ja: '証明書の発行者（中間CA証明書）が見つからないため、失効状況を確認できません。', en: 'the certificate\'s issuer (the issuing CA certificate) was not found, so revocation cannot be checked' },
        { ja: 'PKCS#12 を取り込み直して、CA証明書もトークンに入れてください。', en: 'import the PKCS#12 again so the CA certificates are in the token too' },
        details,
      ),
    };
  }
  const nonce = randomBytes(16);
  let answer: HttpResult;
  try {
    answer = await httpFetch(url, t, timeoutMs, buildOcspRequest(der, issuer, nonce));
  } catch (e) {
    return {
      result: warn(
        'revocation',
        'OCSP_UNREACHABLE',
        { ja: `OCSPサーバー（${url}）に接続できず、失効状況を確認できません（${(e as NodeJS.ErrnoException).code ?? (e as Error).message}）。`, en: `the OCSP responder ${url} cannot be reached (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); revocation not checked` },
        { ja: 'ファイアウォールでOCSP（http）への通信が許可されているか確認してください。', en: 'check that the firewall lets this machine reach the OCSP responder (http)' },
        details,
      ),
    };
  }
  let r;
  try {
    if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
    r = readOcspResponse(answer.body, der, issuer, { nonce });
    if (r.nonce !== 'echoed') {
      const ahead = r.thisUpdate.getTime() - now.getTime() > OCSP_CLOCK_TOLERANCE_MS;
      const past = !r.nextUpdate || now.getTime() - r.nextUpdate.getTime() > OCSP_CLOCK_TOLERANCE_MS;
      if (ahead || past) {
        throw new Error(
          `it is not current (thisUpdate ${r.thisUpdate.toISOString()}, nextUpdate ${r.nextUpdate?.toISOString() ?? 'none'}, this machine's clock ${now.toISOString()}) and does not carry this request's nonce: an old answer may have been replayed`,
        );
      }
    }
  } catch (e) {
    return {
      ...(answer.date ? { httpDate: answer.date } : {}),
      result: warn(
        'revocation',
        'OCSP_RESPONSE_INVALID',
        { ja: `OCSPサーバーの応答を検証できませんでした（${(e as Error).message}）。`, en: `the OCSP answer could not be used (${(e as Error).message})` },
        { ja: '時間をおいて再度診断してください。続く場合は運営主体に連絡してください。', en: 'run the doctor again later; if it persists, tell the network operator' },
        details,
      ),
    };
  }
  const common = { ...(answer.date ? { httpDate: answer.date } : {}), producedAt: r.producedAt };
  details.producedAt = r.producedAt.toISOString();
  if (r.certStatus.status === 'revoked') {
    return {
      ...common,
      result: fail(
        'revocation',
        'CLIENT_CERT_REVOKED',
        { ja: `施設の証明書は失効しています（${r.certStatus.revokedAt.toISOString()}${r.certStatus.reason ? `、理由: ${r.certStatus.reason}` : ''}）。運営主体は接続を拒否します。`, en: `the facility certificate was revoked on ${r.certStatus.revokedAt.toISOString()}${r.certStatus.reason ? ` (${r.certStatus.reason})` : ''}; the center refuses it` },
        { ja: '運営主体に連絡し、新しい発行通知書で再発行を受けてください。', en: 'contact the network operator and enroll again with a new issuance notice' },
        { ...details, revokedAt: r.certStatus.revokedAt.toISOString(), ...(r.certStatus.reason ? { reason: r.certStatus.reason } : {}) },
      ),
    };
  }
  if (r.certStatus.status === 'unknown') {
    return {
      ...common,
      result: fail(
        'revocation',
        'OCSP_UNKNOWN',
        { ja: 'OCSPサーバーはこの証明書を知りません（別の認証局の証明書の可能性があります）。', en: 'the OCSP responder does not know this certificate (it may come from another CA)' },
        { ja: '運営主体に、証明書のシリアル番号を伝えて確認してください。', en: 'give the network operator the certificate\'s serial number and ask' },
        details,
      ),
    };
  }
  return { ...common, result: ok('revocation', 'OCSP_GOOD', { ja: '施設の証明書は失効していません（OCSPで確認）。', en: 'the facility certificate is not revoked (OCSP)' }, details) };
}
