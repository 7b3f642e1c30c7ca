import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context, Hono } from 'hono';
import { getRequestListener, RequestError, type HttpBindings } from '@hono/node-server';
import { forbidden, isSekishoError, tooLarge, type ErrorKind, type SekishoError } from '../errors/index.js';

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

/** What every handler of the web edge has: Hono on @hono/node-server, with the Node request and response behind it. */
export type WebEnv = { Bindings: HttpBindings };
export type WebContext = Context<WebEnv>;

/**
 * Reads a request body up to `limit` bytes; a larger one is BODY_TOO_LARGE.
 * A declared Content-Length over the limit is refused before a byte is read;
 * otherwise the stream is read chunk by chunk and reading stops at the first
 * chunk past the limit (the rest is never buffered: @hono/node-server drains
 * and discards it after the answer, closing the connection past 64 MiB or
 * 500 ms).
 */
export async function readBody(req: Request, limit: number): Promise<Buffer> {
  const tooBig = () => tooLarge('BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`);
  const declared = Number(req.headers.get('content-length') ?? 0);
  if (declared > limit) throw tooBig();
  if (!req.body) return Buffer.alloc(0);
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) throw tooBig();
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(parts);
}

/** Headers on every answer of the web edge. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Strict-Transport-Security': 'max-age=31536000',
};

/** The portal's Content-Security-Policy: its own script and style only, no framing, forms post only here. */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** An answer with the security headers, its type and length; `headers` are added last (and win). */
export function send(status: number, type: string, body: string | Uint8Array, headers: Record<string, string> = {}): Response {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return new Response(status === 204 || status === 304 ? null : new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length), {
    status,
    headers: { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(bytes.length), ...headers },
  });
}

export function sendJson(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  return send(status, 'application/json; charset=utf-8', JSON.stringify(value), { 'Cache-Control': 'no-store', ...headers });
}

/** Problem JSON: `{ error: { code, message, ja } }`. */
export function sendError(e: unknown, log?: ServerErrorLog): Response {
  const p = publicError(e, log);
  return sendJson(p.status, { error: { code: p.code, message: p.message, ...(p.ja ? { ja: p.ja } : {}) } }, p.headers);
}

/** 405 with the methods a path takes in Allow. */
export function wrongMethod(allow: string): Response {
  return send(405, 'text/plain; charset=utf-8', `METHOD_NOT_ALLOWED: use ${allow}\n`, { Allow: allow });
}

/**
 * Refuses a request a browser sent on behalf of another site's page (a form
 * or a no-cors fetch on a hostile page, which needs no preflight): its
 * `Sec-Fetch-Site` is neither `same-origin` nor `none`, or, from a browser
 * without that header, its `Origin` is neither the request's host nor the
 * published portal address (`null` included). Clients that are not browsers
 * (`sekisho enroll`, curl, EST clients) send neither header and pass. Run it
 * before an attempt is counted: a hostile page otherwise spends its
 * visitors' allowance (a clinic's NAT address) and their addresses' guesses.
 */
export function refuseCrossSite(req: Request, publicUrl?: string): void {
  const site = req.headers.get('sec-fetch-site');
  const origin = req.headers.get('origin');
  // Browsers that send Sec-Fetch-Site are judged by it alone (a proxy rewriting Host cannot confuse it); older ones by
  // Origin, which must be this request's host or the portal's public address (urls.portal: behind a proxy that rewrites Host).
  let cross = false;
  if (site !== null) cross = site !== 'same-origin' && site !== 'none';
  else if (origin !== null) {
    try {
      const from = new URL(origin);
      const ownHost = from.host === (req.headers.get('host') ?? '').toLowerCase();
      const published = publicUrl !== undefined && from.origin === new URL(publicUrl).origin;
      cross = origin === 'null' || !(ownHost || published);
    } catch {
      cross = true;
    }
  }
  if (cross) {
    throw forbidden('CROSS_SITE_REQUEST', 'a request sent from another site\'s page is refused; open the portal at the address printed on the notice and enter the IDs there', {
      ja: '他のサイトのページから送信された申請は受け付けません。通知書に記載のアドレスでポータルを直接開き、そこで入力してください。',
    });
  }
}

/** The media type of a request body, lower case, without parameters. */
export function mediaType(req: Request): string {
  return (req.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The client's address as the socket has it (IPv4-mapped IPv6 shown as IPv4). */
export function clientAddress(c: WebContext): string {
  return (c.env.incoming.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
}

/**
 * A path served only with the methods in `allow` (GET also answers HEAD);
 * any other method gets 405 with Allow. The one way web/ registers a route.
 */
export function route(app: Hono<WebEnv>, path: string, allow: readonly ('GET' | 'POST')[], handler: (c: WebContext) => Response | Promise<Response>): void {
  const allowed = new Set<string>(allow.includes('GET') ? [...allow, 'HEAD'] : allow);
  app.all(path, (c) => (allowed.has(c.req.method) ? handler(c) : wrongMethod(allow.join(', '))));
}

/**
 * The Node request listener for a Hono app of the web edge. A request whose
 * URL or Host header cannot be read gets 400 URL_INVALID; anything a handler throws becomes
 * the problem JSON of `sendError` (detail to `log`). Node's global Request and
 * Response are left alone.
 */
export function nodeListener(app: Hono<WebEnv>, log?: ServerErrorLog): (req: IncomingMessage, res: ServerResponse) => void {
  app.onError((e) => sendError(e, log));
  const listener = getRequestListener(app.fetch, {
    overrideGlobalObjects: false,
    // Nothing here is built from the Host header; a request without one (HTTP/1.0 OCSP clients) is still served.
    hostname: 'localhost',
    errorHandler: (e) => (e instanceof RequestError ? send(400, 'text/plain; charset=utf-8', 'URL_INVALID\n') : sendError(e, log)),
  });
  return (req, res) => void listener(req, res);
}
