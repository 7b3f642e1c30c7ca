/**
 * The operator's web console: the office of the network operator (運営主体事務局)
 * registers facilities, prints notices and revokes certificates here instead of
 * on the CA host's shell. Its own HTTPS listener (CRYPTREC profile settings, the
 * TCP front's caps, no renegotiation), signed in by an operator certificate
 * (`sekisho operator add`) that the handshake requires and verifies and every
 * request checks again against the store (operator-auth.ts). No passwords, no
 * cookies: the session is the certificate. Roles in roles.ts; CSRF in csrf.ts.
 *
 * ## Adding a view (and its API routes)
 * 1. Write `views/<thing>.ts` exporting `register<Thing>View(r: ConsoleRoutes)`:
 *    - `r.nav({ path: '/thing', ja: '…', en: '…', permission: 'reports.read', order: 40 })`
 *      adds the menu entry (shown only to roles that have the permission; order:
 *      facilities 10, certificates 20, notices 30, then expiring 40, refusals 50,
 *      audit 60, migration 70; operators is 90);
 *    - `r.page('GET', '/thing', 'reports.read', (c) => r.render(c, { title: { ja, en }, current: '/thing', body: html`…` }))`
 *      (build markup only with `html` from hono/html: it escapes every value);
 *    - a form that changes something: `method="post"`, `${csrfField(r.token(c))}`
 *      inside it, `r.page('POST', '/thing', 'campaigns.write', async (c, form) => { …; return c.redirect('/thing?done=<code>', 303); })`
 *      with the code's message in flash.ts; act with `c.get('operator').actor` as the audit actor.
 * 2. Its JSON: `r.api('GET' | 'POST', '/thing', permission, (c, body) => c.json(…))` (served
 *    under /api/v1; POST bodies arrive parsed, JSON only, same-origin checked).
 * 3. A new permission: add it to `PERMISSIONS` and the roles that have it in roles.ts (the only table).
 * 4. Add the register function to `CONSOLE_MODULES` below.
 * The registrar checks the role, the CSRF token and the origin before any handler
 * runs; a handler never checks them itself.
 */
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { getRequestListener } from '@hono/node-server';
import type { CertificateAuthority } from '../ca/index.js';
import { GuardedListener, ListenerLedger, applyHttpLimits, refuseRenegotiation, resolveLimits, stderrLimitLog, type LimitLog, type ListenerLimits } from '../listener/index.js';
import { certificateToPem } from '../pki/index.js';
import { complianceProfile, tlsServerOptions, type ComplianceProfileName } from '../policy/index.js';
import { createConsoleApp, type ConsoleModule, type ConsoleRoutes } from './app.js';
import { registerFacilitiesView } from './views/facilities.js';
import { registerCertificatesView } from './views/certificates.js';
import { registerNoticesView } from './views/notices.js';
import { registerOperatorsView } from './views/operators.js';
import { registerApi } from './api/v1.js';
import { registerExpiringView } from './views/expiring.js';
import { registerReportViews } from './views/reports.js';
import { registerCampaignApi } from './api/campaigns.js';
import { CampaignFiles } from './campaign-files.js';
import type { CsrfGuard } from './csrf.js';

export { createConsoleApp, type ConsoleModule, type ConsoleRoutes, type ConsoleDeps, type ConsoleContext, type NavEntry } from './app.js';
export { may, PERMISSIONS, ROLE_PERMISSIONS, ROLE_LABELS, type Permission } from './roles.js';
export { csrfGuard, checkSameOrigin, CSRF_FIELD, type CsrfGuard } from './csrf.js';
export { signInOperator, peerCertificateOf, type SignedInOperator } from './operator-auth.js';
export { page, bi, csrfField, CONSOLE_CSS, type Markup, type PageInput } from './layout.js';
export { FLASH, flashOf } from './flash.js';

/** Every module of the console, in menu order (see "Adding a view" above). */
export const CONSOLE_MODULES: readonly ConsoleModule[] = [registerFacilitiesView, registerCertificatesView, registerNoticesView, registerCampaigns, registerReportViews, registerOperatorsView, registerApi];

/** Expiring certificates and renewal campaigns (view and API), sharing the held letters of one console. */
function registerCampaigns(r: ConsoleRoutes): void {
  const files = new CampaignFiles();
  registerExpiringView(r, files);
  registerCampaignApi(r, files);
}

/** How long a request that prints a letter may keep its socket quiet (printToPdf gives Chromium 60 s). */
export const LETTER_PRINT_ALLOWANCE_MS = 90_000;

export interface ConsoleServerOptions {
  /** An opened, unlocked CA (the console revokes, and reads its store). */
  authority: CertificateAuthority;
  listen: { host: string; port: number };
  /** The server's certificate and key (PEM): the home's server credential. */
  tls: { cert: string; key: string; chain?: string[] };
  /** The portal's URL printed on letters. */
  portalUrl: string;
  /** Chromium for letter PDFs (absent: HTML letters). */
  chromium?: string;
  tlsProfile?: ComplianceProfileName;
  limits?: ListenerLimits;
  ledger?: ListenerLedger;
  log?: LimitLog;
  csrf?: CsrfGuard;
  /** Extra modules after CONSOLE_MODULES (tests). */
  modules?: readonly ConsoleModule[];
}

export interface ConsoleServer {
  url: string;
  address: { host: string; port: number };
  server: Server;
  front: GuardedListener;
  close(): Promise<void>;
}

/**
 * Starts the console over HTTPS. The handshake requires a client certificate
 * that chains to this CA (a browser without one gets a TLS alert, never a page).
 */
export async function startConsoleServer(o: ConsoleServerOptions): Promise<ConsoleServer> {
  const profile = complianceProfile(o.tlsProfile ?? 'recommended');
  const base = o.limits ?? resolveLimits({}, 1).admin;
  // Printing a letter (Chromium, up to 60 s on a loaded host) is a quiet socket; the idle timeout must outlast it.
  const limits: ListenerLimits = { ...base, idleTimeoutMs: Math.max(base.idleTimeoutMs, LETTER_PRINT_ALLOWANCE_MS) };
  const ledger = o.ledger ?? new ListenerLedger();
  const log: LimitLog = o.log ?? stderrLimitLog;
  const app = createConsoleApp({
    authority: o.authority,
    modules: [...CONSOLE_MODULES, ...(o.modules ?? [])],
    portalUrl: o.portalUrl,
    ...(o.chromium ? { chromium: o.chromium } : {}),
    ...(o.csrf ? { csrf: o.csrf } : {}),
    log: (msg, fields) => log.log('error', msg, { server: 'console', ...fields }),
  });
  const server = createServer(
    {
      ...tlsServerOptions(profile),
      cert: [o.tls.cert, ...(o.tls.chain ?? [])].join('\n'),
      key: o.tls.key,
      requestCert: true,
      rejectUnauthorized: true,
      ca: o.authority.chain().map(certificateToPem),
      handshakeTimeout: limits.handshakeTimeoutMs,
    },
    getRequestListener(app.fetch),
  );
  applyHttpLimits(server, limits);
  const front = new GuardedListener({ name: 'console', host: o.listen.host, port: o.listen.port, limits, ledger, log, setting: '--console-listen', onConnection: (raw) => server.emit('connection', raw) });
  server.on('tlsClientError', (e: NodeJS.ErrnoException) => {
    if (e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') front.counts.handshakeTimeouts++;
  });
  server.on('secureConnection', (socket: TLSSocket) => refuseRenegotiation(socket, () => front.counts.renegotiationsRefused++, true));
  const a = await front.listen();
  const hostForUrl = a.host.includes(':') ? `[${a.host}]` : a.host;
  return { url: `https://${hostForUrl}:${a.port}/`, address: a, server, front, close: () => front.closeHttp(server) };
}
