import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { forbidden } from '../errors/index.js';

/**
 * Cross-site request forgery. A request that changes something is accepted only when
 * 1. the browser says it is not cross-site: `Sec-Fetch-Site` absent, `same-origin` or
 *    `none`, and `Origin`, when present, is this console's own origin;
 * 2. a form carries `_csrf`, an HMAC (server secret) over the signed-in certificate's
 *    SHA-256 fingerprint and the time it was made: a token copied from another
 *    operator's page, or from before a restart, is refused; the JSON API instead
 *    requires `Content-Type: application/json`, which no cross-site form can send
 *    without a CORS preflight the console never answers.
 */
export interface CsrfGuard {
  /** A token for forms shown to the holder of this certificate. */
  token(fingerprint: string): string;
  /** Throws CSRF_TOKEN_INVALID unless the token was made for this certificate and is not older than maxAgeMs. */
  check(token: string | undefined, fingerprint: string): void;
}

export const CSRF_FIELD = '_csrf';

export function csrfGuard(options: { secret?: Buffer; now?: () => number; maxAgeMs?: number } = {}): CsrfGuard {
  const secret = options.secret ?? randomBytes(32);
  if (secret.length < 32) throw new Error('the CSRF secret must have at least 32 bytes');
  const now = options.now ?? Date.now;
  const maxAge = options.maxAgeMs ?? 12 * 3_600_000;
  const mac = (fp: string, t: string) => createHmac('sha256', secret).update(`sekisho-console-csrf\0${fp}\0${t}`).digest('base64url');
  return {
    token: (fp) => {
      const t = String(now());
      return `${t}.${mac(fp, t)}`;
    },
    check: (token, fp) => {
      const refuse = () => forbidden('CSRF_TOKEN_INVALID', 'the form is stale or was not made for this certificate; reload the page and try again', { ja: 'フォームの有効期限が切れたか、別の証明書のものです。ページを再読み込みしてやり直してください。' });
      const m = /^(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(token ?? '');
      if (!m) throw refuse();
      const age = now() - Number(m[1]);
      if (age < 0 || age > maxAge) throw refuse();
      const want = Buffer.from(mac(fp, m[1]!));
      const got = Buffer.from(m[2]!);
      if (!timingSafeEqual(want, got)) throw refuse();
    },
  };
}

/** Refuses a request the browser marks as cross-site, or whose Origin is not `origin` (HOST's https origin). */
export function checkSameOrigin(headers: { origin: string | undefined; secFetchSite: string | undefined; host: string | undefined }): void {
  const refuse = () => forbidden('CROSS_SITE_REQUEST', 'requests from other sites are refused; use the console itself', { ja: '他のサイトからの操作は受け付けません。' });
  const site = headers.secFetchSite;
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw refuse();
  if (headers.origin !== undefined && (headers.host === undefined || headers.origin !== `https://${headers.host}`)) throw refuse();
}
