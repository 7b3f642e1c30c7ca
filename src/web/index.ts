/**
 * The enrollment server: every HTTP surface of the CA over one HTTPS listener.
 *
 * | Path | Method | What |
 * |---|---|---|
 * | `/` | GET | the portal page (Japanese/English): two IDs, a password twice, download |
 * | `/enroll` | POST form | the page's form without script: result page with ZIP, .p12, root-ca.cer, thumbprints.txt |
 * | `/api/enroll` | POST JSON | `{requestId, referenceId, password, legacy?, keyType?}` → PKCS#12 (base64); used by `sekisho enroll` |
 * | `/api/enroll-csr` | POST JSON | `{requestId, referenceId, csr}` → certificate + chain (PEM); the page's WebCrypto mode |
 * | `/.well-known/est/cacerts`, `simpleenroll`, `simplereenroll` | GET/POST | EST (RFC 7030) |
 * | `/crl`, `/crl.pem` | GET | the current CRL (signed again after each revocation) |
 * | `/root.crl`, `/issuing.cer` | GET | the root's CRL, the issuing CA certificate (also on the plain-HTTP revocation listener: revocation-server.ts) |
 * | `/ocsp`, `/ocsp/{base64}` | POST/GET | OCSP (RFC 6960), signed by the issuing CA |
 * | `/root.cer`, `/root.pem`, `/ca-chain.pem` | GET | the root (DER/PEM) and the chain |
 * | `/healthz` | GET | `ok` |
 *
 * ```ts
 * const ca = await CertificateAuthority.open({ home });
 * await ca.unlock(passphrase);
 * const web = await startWebServer({ authority: ca, listen: { host: '127.0.0.1', port: 8080 }, tls: { cert, key, chain: [issuingPem] } });
 * console.log(web.url); // https://127.0.0.1:8080/
 * await web.close();
 * ```
 * For tests, `testing/enrollment-server.ts` `startTestEnrollment()` makes a CA
 * in a temporary home, a server certificate for localhost/127.0.0.1, and this
 * server on a free port.
 */
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { GuardedListener, ListenerLedger, applyHttpLimits, refuseRenegotiation, resolveLimits, stderrLimitLog, type LimitLog, type ListenerLimits } from '../listener/index.js';
import type { CertificateAuthority, RevocationPublisher } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { complianceProfile, tlsServerOptions, type ComplianceProfileName } from '../policy/index.js';
import { createWebApp } from './app.js';
import type { RateLimitOptions } from './rate-limit.js';

export { createWebApp, createWebHono, type WebAppOptions } from './app.js';
export { startRevocationServer, REVOCATION_SERVER_LIMITS, type RevocationServer, type RevocationServerOptions } from './revocation-server.js';
export { AttemptLimiter, type AttemptCounter, type RateLimitOptions } from './rate-limit.js';
export { parseEnrollForm, parseEnrollJson, parseCsrEnrollJson, type EnrollRequest, type CsrEnrollRequest } from './forms.js';
export { parseBasicAuth, estCsrDer, EST_PREFIX } from './est.js';
export { zipStore } from './zip.js';
export {
  HTTP_STATUS,
  httpStatus,
  kindOfStatus,
  publicError,
  stderrErrorLog,
  send,
  sendJson,
  sendError,
  wrongMethod,
  route,
  nodeListener,
  readBody,
  mediaType,
  clientAddress,
  CSP,
  SECURITY_HEADERS,
  type PublicError,
  type ServerErrorLog,
  type WebEnv,
  type WebContext,
} from './http.js';
export { messagePage } from './portal-page.js';

export interface WebServerOptions {
  /** An opened CA; unlocked, or issuance, CRLs and OCSP answer "not ready". */
  authority: CertificateAuthority;
  /** Where to listen; port 0 picks a free port. */
  listen: { host: string; port: number };
  /** The server's own certificate and key (PEM) and any intermediates. */
  tls: { cert: string; key: string; chain?: string[] };
  /** The portal's public address (for letters and the summary); default the listening address. */
  publicUrl?: string;
  /** Notice attempts per client address (default 20 per 600 s). */
  rateLimit?: RateLimitOptions;
  /** Seconds an OCSP response stays valid (default 3600). */
  ocspValiditySeconds?: number;
  /**
   * Ask clients for a certificate (never required) so EST simplereenroll can
   * authenticate by the current certificate. Default true; the request names
   * only this CA, so browsers without a sekisho certificate are not prompted.
   */
  requestClientCertificate?: boolean;
  /** The TLS profile (default CRYPTREC "recommended": TLS 1.2 and 1.3). */
  tlsProfile?: ComplianceProfileName;
  /** Seconds between runs of the CA's due revocations (superseded certificates whose overlap ended; default 60). */
  dueRevocationSeconds?: number;
  /** Timeouts and connection caps (default: the portal's share of this process's file-descriptor limit). */
  limits?: ListenerLimits;
  /** Counters shared with the process's other listeners (the gateway's /metrics shows them). */
  ledger?: ListenerLedger;
  /** The server's log: refusals over the caps (in sums) and the detail of errors a client is not shown (default: JSON lines on stderr). */
  log?: LimitLog;
  /** Shared with the plain-HTTP revocation listener (one CRL cache). */
  revocation?: RevocationPublisher;
}

export interface WebServer {
  /** The portal's URL (publicUrl, or https://host:port/ as bound). */
  url: string;
  /** The bound address (useful with port 0). */
  address: { host: string; port: number };
  server: Server;
  /** The TCP front that enforces the connection caps (its counters: `front.counts`). */
  front: GuardedListener;
  close(): Promise<void>;
}

/**
 * Starts the enrollment server over HTTPS (TLS 1.2+, the CRYPTREC
 * "recommended" profile's settings): the portal, EST, CRL, OCSP and the root
 * certificate. Resolves once listening; `close()` stops accepting, ends idle
 * connections and resolves when the server has closed.
 */
export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const ca = options.authority;
  const profile = complianceProfile(options.tlsProfile ?? 'recommended');
  const limits = options.limits ?? resolveLimits({}, 1).portal;
  const ledger = options.ledger ?? new ListenerLedger();
  const log: LimitLog = options.log ?? stderrLimitLog;
  const server = createServer(
    {
      ...tlsServerOptions(profile),
      cert: [options.tls.cert, ...(options.tls.chain ?? [])].join('\n'),
      key: options.tls.key,
      requestCert: options.requestClientCertificate !== false,
      rejectUnauthorized: false,
      ca: ca.chain().map(certificateToPem),
      // Node's default holds a half-open handshake for 120 s.
      handshakeTimeout: limits.handshakeTimeoutMs,
    },
    createWebApp({ authority: ca, ...(options.revocation ? { revocation: options.revocation } : {}), ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}), ...(options.ocspValiditySeconds ? { ocspValiditySeconds: options.ocspValiditySeconds } : {}), log: (msg: string, fields: Record<string, unknown>) => log.log('error', msg, { server: 'portal', ...fields }) }),
  );
  // The server never listens itself: the TCP front admits sockets under the caps and hands them over.
  applyHttpLimits(server, limits);
  const front = new GuardedListener({ name: 'portal', host: options.listen.host, port: options.listen.port, limits, ledger, log, setting: '--portal', onConnection: (raw) => server.emit('connection', raw) });
  server.on('tlsClientError', (e: NodeJS.ErrnoException) => {
    if (e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') front.counts.handshakeTimeouts++;
  });
  server.on('secureConnection', (socket: TLSSocket) => refuseRenegotiation(socket, () => front.counts.renegotiationsRefused++, true));
  // The CA process applies due revocations (renewed certificates whose overlap ended) on its own,
  // so they reach the store, OCSP, the CRL and gateways even when nobody asks for a CRL.
  const applyDue = () =>
    void ca.applyDueRevocations().catch((e: unknown) => log.log('error', 'due revocations could not be applied; the next run, CRL or OCSP answer tries again', { server: 'portal', error: e instanceof Error ? e.message : String(e) }));
  applyDue();
  const dueTimer = setInterval(applyDue, (options.dueRevocationSeconds ?? 60) * 1000).unref();
  const a = await front.listen();
  const hostForUrl = a.host.includes(':') ? `[${a.host}]` : a.host;
  const url = options.publicUrl ?? `https://${hostForUrl}:${a.port}/`;
  return {
    url,
    address: a,
    server,
    front,
    close: async () => {
      clearInterval(dueTimer);
      await front.closeHttp(server);
    },
  };
}
