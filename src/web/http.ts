import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSekishoError, tooLarge, type ErrorKind, type SekishoError } from '../errors/index.js';

/** The one place an error kind becomes an HTTP status; the code never decides it. */
export const HTTP_STATUS: Readonly<Record<ErrorKind, number>> = {
  malformed: 400,
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  methodNotAllowed: 405,
  conflict: 409,
  gone: 410,
  tooLarge: 413,
  unsupportedMediaType: 415,
  locked: 423,
  rateLimited: 429,
  internal: 500,
  unavailable: 503,
};

export function httpStatus(e: SekishoError): number {
  return HTTP_STATUS[e.kind];
}

/** The kind an HTTP status stands for (a client of our own API reading an answer): the first kind with that status. */
export function kindOfStatus(status: number): ErrorKind {
  return (Object.keys(HTTP_STATUS) as ErrorKind[]).find((k) => HTTP_STATUS[k] === status) ?? (status >= 500 ? 'unavailable' : 'badRequest');
}

/** What a web client sees of an error that is the operator's to fix: what happened, and what to do, without the detail. */
const GENERIC: Record<'internal' | 'unavailable', { code: string; message: string; ja: string }> = {
  internal: {
    code: 'INTERNAL',
    message: 'the server could not complete the request; try again later, and tell the network operator if it persists',
    ja: 'サーバーで処理を完了できませんでした。時間をおいて再度お試しください。解決しない場合は運営主体にお問い合わせください。',
  },
  unavailable: {
    code: 'SERVICE_UNAVAILABLE',
    message: 'the service is not available right now; try again later, and tell the network operator if it persists',
    ja: 'ただいまサービスを利用できません。時間をおいて再度お試しください。解決しない場合は運営主体にお問い合わせください。',
  },
};

export interface PublicError {
  status: number;
  code: string;
  message: string;
  ja?: string;
  /** HTTP headers that go with the status (Retry-After). */
  headers: Record<string, string>;
}

/** Where the web edge writes what it does not show a client (the operator reads it). */
export type ServerErrorLog = (msg: string, fields: Record<string, unknown>) => void;

export const stderrErrorLog: ServerErrorLog = (msg, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg, ...fields })}\n`);
};

/**
 * What a client may see of an error. `internal` and `unavailable` (and
 * anything that is not a SekishoError) become a generic message; their detail
 * goes to `log`, never to the client.
 */
export function publicError(e: unknown, log: ServerErrorLog = stderrErrorLog): PublicError {
  const kind: ErrorKind = isSekishoError(e) ? e.kind : 'internal';
  const headers: Record<string, string> = {};
  const retry = isSekishoError(e) ? e.retryAfterSeconds : undefined;
  if (retry !== undefined && (kind === 'rateLimited' || kind === 'unavailable')) headers['Retry-After'] = String(retry);
  const status = HTTP_STATUS[kind];
  if (kind === 'internal' || kind === 'unavailable') {
    const detail = isSekishoError(e) ? { code: e.code, detail: e.message } : { code: 'INTERNAL', detail: e instanceof Error ? e.message : String(e) };
    log('request failed', { status, ...detail });
    const g = GENERIC[kind];
    return { status, code: g.code, message: g.message, ja: g.ja, headers };
  }
  const s = e as SekishoError;
  return { status, code: s.code, message: s.message, ...(s.ja ? { ja: s.ja } : {}), headers };
}

/** Reads a request body up to `limit` bytes; a larger one is BODY_TOO_LARGE (and the rest is not read). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(tooLarge('BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`));
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
        reject(tooLarge('BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`));
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
export function sendError(res: ServerResponse, e: unknown, log?: ServerErrorLog): void {
  const p = publicError(e, log);
  sendJson(res, p.status, { error: { code: p.code, message: p.message, ...(p.ja ? { ja: p.ja } : {}) } }, p.headers);
}

export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export function clientAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
}
