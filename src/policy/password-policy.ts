import { badRequest } from '../errors/index.js';

/** The operator's PKCS#12 password rule (minimum length; default 8). */
export function checkPkcs12Password(password: string, minLength: number): void {
  const length = [...password].length;
  if (length < minLength) {
    throw badRequest('PASSWORD_TOO_SHORT', `the certificate password has ${length} characters; use at least ${minLength}`, {
      ja: `証明書パスワードが短すぎます（${length}文字）。${minLength}文字以上にしてください。`,
    });
  }
}
