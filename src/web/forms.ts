import { badRequest, malformed } from '../errors/index.js';
import { isKeyType, type KeyType } from '../pki/index.js';

/** What the portal's form (or the JSON API) asks for. Secrets stay in this object only. */
export interface EnrollRequest {
  requestId: string;
  referenceId: string;
  password: string;
  legacy: boolean;
  keyType?: KeyType;
}

export interface CsrEnrollRequest {
  requestId: string;
  referenceId: string;
  /** PEM or base64 DER PKCS#10. */
  csr: string;
}

/** key_mode is the page's own choice (browser or server); when it reaches the server, the server makes the key. */
const FORM_FIELDS = new Set(['request_id', 'reference_id', 'password', 'password_confirm', 'legacy', 'key_type', 'key_mode']);
const MAX_FIELD = 1024;

function decodeUtf8(body: Buffer): string {
  const text = body.toString('utf8');
  if (Buffer.byteLength(text, 'utf8') !== body.length || text.includes('\uFFFD')) throw malformed('FORM_ENCODING', 'the form is not valid UTF-8');
  return text;
}

function passwordsMatch(password: string, confirm: string | undefined): void {
  if (confirm !== undefined && password !== confirm) {
    throw badRequest('PASSWORD_MISMATCH', 'the two passwords differ; type the same password twice', { ja: '確認用のパスワードが一致しません。同じパスワードを2回入力してください。' });
  }
}

function keyTypeOf(v: unknown): KeyType | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !isKeyType(v)) throw malformed('FORM_FIELD_INVALID', 'key_type must be rsa-2048 or ecdsa-p256');
  return v;
}

/**
 * Parses the portal's application/x-www-form-urlencoded body. Unknown or
 * repeated fields, over-long values and bad encoding are FORM_* errors that
 * never echo a value.
 */
export function parseEnrollForm(body: Buffer): EnrollRequest {
  const params = new URLSearchParams(decodeUtf8(body));
  const seen = new Map<string, string>();
  for (const [k, v] of params) {
    if (!FORM_FIELDS.has(k)) throw malformed('FORM_FIELD_UNKNOWN', `the form has an unexpected field "${k.slice(0, 40).replace(/[^\w-]/g, '?')}"`);
    if (seen.has(k)) throw malformed('FORM_FIELD_REPEATED', `the form field ${k} appears twice`);
    if (v.length > MAX_FIELD) throw malformed('FORM_FIELD_TOO_LONG', `the form field ${k} is longer than ${MAX_FIELD} characters`);
    seen.set(k, v);
  }
  const password = seen.get('password') ?? '';
  if (!password) throw badRequest('PASSWORD_MISSING', 'choose a password for the certificate file and type it twice', { ja: '証明書ファイルのパスワードを決めて、2回入力してください。' });
  passwordsMatch(password, seen.get('password_confirm') ?? '');
  const legacy = seen.get('legacy');
  if (legacy !== undefined && legacy !== 'on' && legacy !== '1') throw malformed('FORM_FIELD_INVALID', 'legacy must be "on" when present');
  const keyType = keyTypeOf(seen.get('key_type'));
  const mode = seen.get('key_mode');
  if (mode !== undefined && mode !== 'server' && mode !== 'browser') throw malformed('FORM_FIELD_INVALID', 'key_mode must be browser or server');
  return { requestId: seen.get('request_id') ?? '', referenceId: seen.get('reference_id') ?? '', password, legacy: legacy !== undefined, ...(keyType ? { keyType } : {}) };
}

function jsonObject(body: Buffer, allowed: readonly string[]): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(decodeUtf8(body));
  } catch (e) {
    if ((e as { code?: string }).code === 'FORM_ENCODING') throw e;
    throw malformed('JSON_INVALID', 'the request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed('JSON_INVALID', 'the request body must be a JSON object');
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw malformed('FORM_FIELD_UNKNOWN', `unexpected field "${k.slice(0, 40).replace(/[^\w-]/g, '?')}"`);
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string, max = MAX_FIELD): string {
  const v = o[k];
  if (v === undefined) return '';
  if (typeof v !== 'string' || v.length > max) throw malformed('FORM_FIELD_INVALID', `${k} must be a string of at most ${max} characters`);
  return v;
}

/** The JSON API's body for a CA-made key: {requestId, referenceId, password, legacy?, keyType?}. */
export function parseEnrollJson(body: Buffer): EnrollRequest {
  const o = jsonObject(body, ['requestId', 'referenceId', 'password', 'legacy', 'keyType']);
  const password = str(o, 'password');
  if (!password) throw badRequest('PASSWORD_MISSING', 'a password for the PKCS#12 file is required', { ja: '証明書ファイルのパスワードを入力してください。' });
  if (o.legacy !== undefined && typeof o.legacy !== 'boolean') throw malformed('FORM_FIELD_INVALID', 'legacy must be true or false');
  const keyType = keyTypeOf(o.keyType);
  return { requestId: str(o, 'requestId'), referenceId: str(o, 'referenceId'), password, legacy: o.legacy === true, ...(keyType ? { keyType } : {}) };
}

/** The JSON API's body for a browser- or device-made key: {requestId, referenceId, csr}. */
export function parseCsrEnrollJson(body: Buffer): CsrEnrollRequest {
  const o = jsonObject(body, ['requestId', 'referenceId', 'csr']);
  const csr = str(o, 'csr', 32 * 1024);
  if (!csr) throw malformed('CSR_MISSING', 'the request carries no CSR');
  return { requestId: str(o, 'requestId'), referenceId: str(o, 'referenceId'), csr };
}
