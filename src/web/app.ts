import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RevocationPublisher, type CertificateAuthority } from '../ca/index.js';
import { certificateToPem, crlToPem } from '../pki/index.js';
import { send, sendError, stderrErrorLog, type ServerErrorLog } from './http.js';
import { revocationRoutes } from './revocation-routes.js';
import { messagePage } from './portal-page.js';
import { Portal } from './portal.js';
import { EST_PREFIX, EstService } from './est.js';
import { AttemptLimiter, type RateLimitOptions } from './rate-limit.js';

export interface WebAppOptions {
  authority: CertificateAuthority;
  rateLimit?: RateLimitOptions;
  /** Seconds an OCSP response stays valid (default 3600). */
  ocspValiditySeconds?: number;
  /** Where the detail of internal/unavailable errors goes; clients only see a generic message (default: a JSON line on stderr). */
  log?: ServerErrorLog;
  /** The CRL/OCSP publisher to share with the plain-HTTP revocation listener (one CRL cache); default a new one. */
  revocation?: RevocationPublisher;
}

const ASSETS: Record<string, string> = { 'portal.js': 'text/javascript; charset=utf-8', 'portal.css': 'text/css; charset=utf-8' };
const assetCache = new Map<string, Buffer>();
function asset(name: string): Buffer {
  let b = assetCache.get(name);
  if (!b) assetCache.set(name, (b = readFileSync(new URL(`./assets/${name}`, import.meta.url))));
  return b;
}

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/**
 * Every HTTP surface of the enrollment server as one request handler:
 * the portal (/), EST (/.well-known/est/), the revocation endpoints
 * (revocation-routes.ts: /crl, /root.crl, /ocsp, /issuing.cer, /root.cer),
 * /crl.pem, /root.pem and /ca-chain.pem.
 */
export function createWebApp(o: WebAppOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const ca = o.authority;
  const limiter = new AttemptLimiter(ca.notices, { ...o.rateLimit, now: o.rateLimit?.now ?? (() => ca.now()) });
  const log = o.log ?? stderrErrorLog;
  const portal = new Portal({ authority: ca, limiter, log });
  const est = new EstService({ authority: ca, limiter, log });
  const revocation = o.revocation ?? new RevocationPublisher(ca, o.ocspValiditySeconds ? { ocspValiditySeconds: o.ocspValiditySeconds } : {});
  const revocationRoute = revocationRoutes(ca, revocation);
  const html = { 'Content-Security-Policy': CSP };

  const notFound = (res: ServerResponse) => send(res, 404, 'text/html; charset=utf-8', messagePage('Not found', 'ページが見つかりません。', 'There is no page at this address.'), html);
  const wrongMethod = (res: ServerResponse, allow: string) => send(res, 405, 'text/plain; charset=utf-8', `METHOD_NOT_ALLOWED: use ${allow}\n`, { Allow: allow });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'https://x').pathname;
    } catch {
      return send(res, 400, 'text/plain; charset=utf-8', 'URL_INVALID\n');
    }
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    if (path.startsWith(EST_PREFIX)) return est.handle(req, res, path.slice(EST_PREFIX.length));
    if (await revocationRoute(req, res, path)) return;
    switch (path) {
      case '/':
      case '/index.html':
        if (!get) return wrongMethod(res, 'GET');
        res.setHeader('Content-Security-Policy', CSP);
        return portal.showPage(res);
      case '/enroll':
        if (method !== 'POST') return wrongMethod(res, 'POST');
        res.setHeader('Content-Security-Policy', CSP);
        return portal.enrollForm(req, res);
      case '/api/enroll':
        if (method !== 'POST') return wrongMethod(res, 'POST');
        return portal.enrollJson(req, res);
      case '/api/enroll-csr':
        if (method !== 'POST') return wrongMethod(res, 'POST');
        return portal.enrollCsr(req, res);
      case '/root.pem':
        return get ? send(res, 200, 'application/x-pem-file', certificateToPem(ca.rootDer)) : wrongMethod(res, 'GET');
      case '/ca-chain.pem':
        return get ? send(res, 200, 'application/x-pem-file', ca.chain().map(certificateToPem).join('')) : wrongMethod(res, 'GET');
      case '/crl.pem':
        return get ? send(res, 200, 'application/x-pem-file', crlToPem(await revocation.crl()), { 'Cache-Control': 'max-age=60' }) : wrongMethod(res, 'GET');
      case '/healthz':
        return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    }
    if (path.startsWith('/assets/')) {
      const name = path.slice('/assets/'.length);
      const type = ASSETS[name];
      if (!type) return notFound(res);
      return get ? send(res, 200, type, asset(name), { 'Cache-Control': 'no-cache' }) : wrongMethod(res, 'GET');
    }
    return notFound(res);
  }

  return (req, res) => {
    route(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, e, log);
      else res.destroy();
    });
  };
}
