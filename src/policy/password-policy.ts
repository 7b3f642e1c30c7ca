import { badRequest } from '../errors/index.js';
import { checkPkcs12PasswordText } from '../pki/pkcs12-core.js';

/**
 * The operator's PKCS#12 password rule (minimum length; default 8), and the
 * characters a PKCS#12 file can encode (no NUL, no unpaired surrogate): every
 * password a build would refuse is refused here, before a claim or a
 * signature. Pure: the portal's page runs it before its CSR is sent.
 */
export function checkPkcs12Password(password: string, minLength: number): void {
  const length = [...password].length;
  if (length < minLength) {
    throw badRequest('PASSWORD_TOO_SHORT', `the certificate password has ${length} characters; use at least ${minLength}`, {
      ja: `証明書パスワードが短すぎます（${length}文字）。${minLength}文字以上にしてください。`,
    });
  }
  checkPkcs12PasswordText(password);
}
