import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono } from 'hono';
import { RevocationPublisher, type CertificateAuthority } from '../ca/index.js';
import { certificateToPem, crlToPem } from '../pki/index.js';
import { CSP, nodeListener, route, send, stderrErrorLog, type ServerErrorLog, type WebEnv } from './http.js';
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

/** The static files under /assets/: portal.js is the bundle of src/web/browser/portal.ts (scripts/postbuild.mjs). */
const ASSETS: Record<string, string> = { 'portal.js': 'text/javascript; charset=utf-8', 'portal.css': 'text/css; charset=utf-8' };
const assetCache = new Map<string, Buffer>();
function asset(name: string): Buffer {
  let b = assetCache.get(name);
  if (!b) assetCache.set(name, (b = readFileSync(new URL(`./assets/${name}`, import.meta.url))));
  return b;
}

const withCsp = async (r: Response | Promise<Response>): Promise<Response> => {
  const res = await r;
  res.headers.set('Content-Security-Policy', CSP);
  return res;
};

/**
 * Every HTTP surface of the enrollment server as one Hono app: the portal
 * (/), EST (/.well-known/est/), the revocation endpoints
 * (revocation-routes.ts: /crl, /root.crl, /ocsp, /issuing.cer, /root.cer),
 * /crl.pem, /root.pem and /ca-chain.pem, /assets/.
 */
export function createWebHono(o: WebAppOptions): Hono<WebEnv> {
  const ca = o.authority;
  const limiter = new AttemptLimiter(ca.notices, { ...o.rateLimit, now: o.rateLimit?.now ?? (() => ca.now()) });
  const log = o.log ?? stderrErrorLog;
  const portal = new Portal({ authority: ca, limiter, log });
  const est = new EstService({ authority: ca, limiter, log });
  const revocation = o.revocation ?? new RevocationPublisher(ca, o.ocspValiditySeconds ? { ocspValiditySeconds: o.ocspValiditySeconds } : {});
  const pem = 'application/x-pem-file';

  const notFound = () => withCsp(send(404, 'text/html; charset=utf-8', messagePage('Not found', 'ページが見つかりません。', 'There is no page at this address.')));

  const app = new Hono<WebEnv>();
  app.all(`${EST_PREFIX}*`, (c) => (c.req.path.startsWith(EST_PREFIX) ? est.handle(c, c.req.path.slice(EST_PREFIX.length)) : notFound()));
  app.route('/', revocationRoutes(ca, revocation, log));
  for (const path of ['/', '/index.html']) route(app, path, ['GET'], () => withCsp(portal.showPage()));
  route(app, '/enroll', ['POST'], (c) => withCsp(portal.enrollForm(c)));
  route(app, '/api/enroll', ['POST'], (c) => portal.enrollJson(c));
  route(app, '/api/enroll-csr', ['POST'], (c) => portal.enrollCsr(c));
  route(app, '/root.pem', ['GET'], () => send(200, pem, certificateToPem(ca.rootDer)));
  route(app, '/ca-chain.pem', ['GET'], () => send(200, pem, ca.chain().map(certificateToPem).join('')));
  route(app, '/crl.pem', ['GET'], async () => send(200, pem, crlToPem(await revocation.crl()), { 'Cache-Control': 'max-age=60' }));
  app.all('/healthz', () => send(200, 'text/plain; charset=utf-8', 'ok\n'));
  for (const [name, type] of Object.entries(ASSETS)) route(app, `/assets/${name}`, ['GET'], () => send(200, type, asset(name), { 'Cache-Control': 'no-cache' }));
  app.notFound(notFound);
  return app;
}

/** createWebHono as a Node request listener (for node:https / node:http createServer). */
export function createWebApp(o: WebAppOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return nodeListener(createWebHono(o), o.log ?? stderrErrorLog);
}
