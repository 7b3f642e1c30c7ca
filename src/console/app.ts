import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { HttpBindings } from '@hono/node-server';
import type { CertificateAuthority } from '../ca/index.js';
import { forbidden, tooLarge, unsupportedMediaType } from '../errors/index.js';
import { publicError, type ServerErrorLog } from '../web/index.js';
import { checkSameOrigin, csrfGuard, CSRF_FIELD, type CsrfGuard } from './csrf.js';
import { CONSOLE_CSS, page, type Markup, type NavLink, type PageInput } from './layout.js';
import { peerCertificateOf, signInOperator, type SignedInOperator } from './operator-auth.js';
import { may, type Permission } from './roles.js';
import { html } from 'hono/html';

export type ConsoleEnv = { Bindings: HttpBindings; Variables: { operator: SignedInOperator } };
export type ConsoleContext = Context<ConsoleEnv>;

/** What every view and API module may use. */
export interface ConsoleDeps {
  ca: CertificateAuthority;
  csrf: CsrfGuard;
  /** Chromium for printing letters as PDF (absent: the letter is handed out as HTML to print from the browser). */
  chromium?: string;
  /** The portal's URL printed on letters. */
  portalUrl: string;
  now: () => Date;
  log: ServerErrorLog;
}

/** A navigation entry: shown only to operators whose role has `permission`; `order` sorts the menu. */
export interface NavEntry extends NavLink {
  permission: Permission;
  order: number;
}

export type PageHandler = (c: ConsoleContext, form: Record<string, string>) => Response | Promise<Response>;
export type ApiHandler = (c: ConsoleContext, body: Record<string, unknown>) => Response | Promise<Response>;

/**
 * How a module adds itself to the console (see index.ts). Authorization is
 * applied here, before any handler runs: the permission is looked up in
 * roles.ts for the signed-in operator's role; a POST page must carry the
 * form's CSRF token and come from the same origin; a POST to the API must
 * be JSON and come from the same origin.
 */
export interface ConsoleRoutes {
  readonly deps: ConsoleDeps;
  nav(entry: NavEntry): void;
  /** An HTML route. For POST, `form` is the parsed form (strings only) and the CSRF token has been checked. */
  page(method: 'GET' | 'POST', path: string, permission: Permission, handler: PageHandler): void;
  /** A JSON route under /api/v1 (path given without that prefix). For POST, `body` is the parsed JSON object. */
  api(method: 'GET' | 'POST', path: string, permission: Permission, handler: ApiHandler): void;
  /** Renders a page in the layout with the navigation this operator may use. */
  render(c: ConsoleContext, p: Omit<PageInput, 'operator' | 'nav'>, status?: number): Response | Promise<Response>;
  /** A CSRF token for this request's operator (every form that POSTs carries it: `csrfField(r.token(c))`). */
  token(c: ConsoleContext): string;
}

export type ConsoleModule = (r: ConsoleRoutes) => void;

export interface ConsoleAppOptions {
  authority: CertificateAuthority;
  modules: readonly ConsoleModule[];
  portalUrl: string;
  chromium?: string;
  csrf?: CsrfGuard;
  now?: () => Date;
  log: ServerErrorLog;
  /** The presented certificate of a request (default: the TLS socket's verified peer certificate). */
  peerCertificate?: (c: ConsoleContext) => Buffer | undefined;
}

const MAX_BODY = 64 * 1024;

/** Security headers on every answer: a strict CSP (no script at all, style only from /console.css), no framing, no caching. */
function securityHeaders(c: ConsoleContext): void {
  c.header('Content-Security-Policy', "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  c.header('X-Frame-Options', 'DENY');
  c.header('X-Content-Type-Options', 'nosniff');
  // same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` on form POSTs, which the origin check must refuse.
  c.header('Referrer-Policy', 'same-origin');
  c.header('Cache-Control', 'no-store');
  c.header('Strict-Transport-Security', 'max-age=31536000');
  c.header('Cross-Origin-Opener-Policy', 'same-origin');
  c.header('Cross-Origin-Resource-Policy', 'same-origin');
}

const isApi = (path: string) => path === '/api/v1' || path.startsWith('/api/v1/');

export function createConsoleApp(o: ConsoleAppOptions): Hono<ConsoleEnv> {
  const deps: ConsoleDeps = { ca: o.authority, csrf: o.csrf ?? csrfGuard(), portalUrl: o.portalUrl, now: o.now ?? (() => new Date()), log: o.log, ...(o.chromium ? { chromium: o.chromium } : {}) };
  const peer = o.peerCertificate ?? ((c: ConsoleContext) => peerCertificateOf(c.env?.incoming?.socket));
  const navEntries: NavEntry[] = [];
  const app = new Hono<ConsoleEnv>();

  const navFor = (op: SignedInOperator): NavLink[] =>
    [...navEntries].sort((a, b) => a.order - b.order).filter((n) => may(op.role, n.permission)).map(({ path, ja, en }) => ({ path, ja, en }));
  const render = (c: ConsoleContext, p: Omit<PageInput, 'operator' | 'nav'>, status = 200) => {
    const operator = c.get('operator') as SignedInOperator | undefined;
    return c.html(page({ ...p, ...(operator ? { operator, nav: navFor(operator) } : {}) }), status as 200);
  };

  app.onError((e, c) => {
    const p = publicError(e, deps.log);
    for (const [k, v] of Object.entries(p.headers)) c.header(k, v);
    if (isApi(c.req.path)) return c.json({ code: p.code, message: p.message, ...(p.ja ? { ja: p.ja } : {}) }, p.status as 400);
    return render(c, { title: { ja: 'エラー', en: 'Error' }, body: html`<p class="flash error">${p.ja ?? ''}<span class="en">${p.message}</span></p><p class="muted mono">${p.code}</p><p><a href="/">トップへ<span class="en">Back to the console</span></a></p>` }, p.status);
  });
  app.notFound((c) => {
    if (isApi(c.req.path)) return c.json({ code: 'NOT_FOUND', message: 'no such API route' }, 404);
    return render(c, { title: { ja: 'ページがありません', en: 'Not found' }, body: html`<p><a href="/">トップへ<span class="en">Back to the console</span></a></p>` }, 404);
  });

  app.use('*', async (c, next) => {
    securityHeaders(c);
    await next();
    securityHeaders(c);
  });
  app.get('/console.css', (c) => c.body(CONSOLE_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8' }));
  app.use('*', bodyLimit({ maxSize: MAX_BODY, onError: () => { throw tooLarge('BODY_TOO_LARGE', `the request body is over ${MAX_BODY} bytes`); } }));
  // Every other route: the certificate of this very request, checked live against the store.
  app.use('*', async (c, next) => {
    c.set('operator', await signInOperator(deps.ca, peer(c), deps.now()));
    await next();
  });

  const sameOrigin = (c: ConsoleContext) => checkSameOrigin({ origin: c.req.header('origin'), secFetchSite: c.req.header('sec-fetch-site'), host: c.req.header('host') });
  const authorize = (c: ConsoleContext, permission: Permission) => {
    const op = c.get('operator');
    if (!may(op.role, permission)) {
      throw forbidden('OPERATOR_ROLE_FORBIDDEN', `the ${op.role} role may not do this (${permission})`, { ja: 'この操作を行う権限がありません。' });
    }
  };

  const routes: ConsoleRoutes = {
    deps,
    nav: (entry) => void navEntries.push(entry),
    render,
    token: (c) => deps.csrf.token(c.get('operator').fingerprint),
    page(method, path, permission, handler) {
      if (isApi(path)) throw new Error(`page route ${path} is under /api/v1`);
      const h = async (c: ConsoleContext) => {
        authorize(c, permission);
        if (method === 'GET') return handler(c, {});
        sameOrigin(c);
        const ct = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
        if (ct !== 'application/x-www-form-urlencoded' && ct !== 'multipart/form-data') throw unsupportedMediaType('FORM_EXPECTED', 'send the form itself');
        const raw = await c.req.parseBody();
        const form: Record<string, string> = {};
        for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') form[k] = v;
        deps.csrf.check(form[CSRF_FIELD], c.get('operator').fingerprint);
        return handler(c, form);
      };
      if (method === 'GET') app.get(path, h);
      else app.post(path, h);
    },
    api(method, path, permission, handler) {
      const full = `/api/v1${path}`;
      const h = async (c: ConsoleContext) => {
        authorize(c, permission);
        if (method === 'GET') return handler(c, {});
        sameOrigin(c);
        const ct = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
        if (ct !== 'application/json') throw unsupportedMediaType('JSON_EXPECTED', 'the API takes Content-Type: application/json');
        let body: unknown;
        try {
          body = await c.req.json();
        } catch {
          throw unsupportedMediaType('JSON_EXPECTED', 'the body is not JSON');
        }
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw unsupportedMediaType('JSON_EXPECTED', 'the body must be a JSON object');
        return handler(c, body as Record<string, unknown>);
      };
      if (method === 'GET') app.get(full, h);
      else app.post(full, h);
    },
  };

  for (const m of o.modules) m(routes);
  // The home page: who is signed in and what they may open.
  app.get('/', (c) => {
    const op = c.get('operator');
    const links = navFor(op);
    return render(c, {
      title: { ja: '運営コンソール', en: 'Operator console' },
      current: '/',
      body: html`<p>${op.name} さん、ようこそ。<span class="en">Signed in as ${op.name} by certificate ${op.certificateSerial}.</span></p>
<ul>${links.map((l) => html`<li><a href="${l.path}">${l.ja}<span class="en">${l.en}</span></a></li>`)}</ul>`,
    });
  });
  app.get('/api/v1/me', (c) => {
    const op = c.get('operator');
    return c.json({ name: op.name, role: op.role, certificateSerial: op.certificateSerial, fingerprint: op.fingerprint });
  });
  return app;
}

export type { Markup };
