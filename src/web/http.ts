import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSekishoError, malformed, type ErrorKind, type SekishoError } from '../errors/index.js';

/** The one place an error kind (or a code that needs its own) becomes an HTTP status. */
const STATUS_BY_KIND: Record<ErrorKind, number> = { malformed: 400, badRequest: 400, unauthorized: 401, notFound: 404, conflict: 409, internal: 500 };
const STATUS_BY_CODE: Record<string, number> = {
  RATE_LIMITED: 429,
  NOTICE_LOCKED: 423,
  NOTICE_EXPIRED: 410,
  NOTICE_USED: 410,
  NOTICE_REVOKED: 410,
  BODY_TOO_LARGE: 413,
  CONTENT_TYPE_UNSUPPORTED: 415,
  METHOD_NOT_ALLOWED: 405,
  CA_LOCKED: 503,
  FACILITY_SUSPENDED: 403,
  CLIENT_CERT_REQUIRED: 403,
  CLIENT_CERT_REVOKED: 403,
  CLIENT_CERT_EXPIRED: 403,
  CLIENT_CERT_UNTRUSTED: 403,
  CLIENT_CERT_UNKNOWN: 403,
  CLIENT_CERT_INVALID: 403,
  REENROLL_SUBJECT_MISMATCH: 400,
  CLIENT_CERT_SUPERSEDED: 403,
  RENEWAL_RATE_LIMITED: 429,
};

export function httpStatus(e: SekishoError): number {
  return STATUS_BY_CODE[e.code] ?? STATUS_BY_KIND[e.kind];
}

/** What a client may see of an error: internal details never leave the process. */
export function publicError(e: unknown): { status: number; code: string; message: string; ja?: string } {
  if (isSekishoError(e) && e.kind !== 'internal') return { status: httpStatus(e), code: e.code, message: e.message, ...(e.ja ? { ja: e.ja } : {}) };
  if (isSekishoError(e) && e.code === 'CA_LOCKED') return { status: 503, code: e.code, message: 'the certificate authority is not ready; try again later', ja: '認証局の準備ができていません。しばらくしてから再度お試しください。' };
  return { status: 500, code: 'INTERNAL', message: 'the server could not complete the request; try again later, and tell the network operator if it persists', ja: 'サーバーで処理を完了できませんでした。時間をおいて再度お試しください。' };
}

/** Reads a request body up to `limit` bytes; a larger one is BODY_TOO_LARGE (and the rest is not read). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(malformed('BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`));
      req.resume();
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        done = true;
        reject(malformed('BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`));
        return;
      }
      parts.push(c);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(parts));
      }
    });
    req.on('error', (e) => {
      if (!done) {
        done = true;
        reject(e);
      }
    });
  });
}

const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Strict-Transport-Security': 'max-age=31536000',
};

export function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(buf.length), ...headers });
  res.end(buf);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), { 'Cache-Control': 'no-store', ...headers });
}

/** Problem JSON: `{ error: { code, message, ja } }`. */
export function sendError(res: ServerResponse, e: unknown, headers: Record<string, string> = {}): void {
  const p = publicError(e);
  sendJson(res, p.status, { error: { code: p.code, message: p.message, ...(p.ja ? { ja: p.ja } : {}) } }, headers);
}

export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export function clientAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
}
