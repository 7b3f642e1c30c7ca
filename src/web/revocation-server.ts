import { createServer, type Server } from 'node:http';
import { RevocationPublisher, REVOCATION_PATHS, type CertificateAuthority } from '../ca/index.js';
import { GuardedListener, ListenerLedger, applyHttpLimits, resolveLimits, stderrLimitLog, type LimitLog, type ListenerLimits } from '../listener/index.js';
import { Hono } from 'hono';
import { nodeListener, send, type ServerErrorLog, type WebEnv } from './http.js';
import { revocationRoutes } from './revocation-routes.js';

/** Headers and requests per connection on the revocation listener (the OCSP body is capped at OCSP_MAX_REQUEST by its route). */
export const REVOCATION_SERVER_LIMITS = { maxHeaderSize: 8 * 1024, maxRequestsPerSocket: 100 } as const;

export interface RevocationServerOptions {
  /** An opened, unlocked CA (OCSP and the issuing CRL are signed on demand). */
  authority: CertificateAuthority;
  listen: { host: string; port: number };
  /** Shared with the portal (one CRL cache); default a new one. */
  publisher?: RevocationPublisher;
  /** Timeouts and connection caps (default: the revocation listener's share of this process's file-descriptor limit). */
  limits?: ListenerLimits;
  /** Counters shared with the process's other listeners. */
  ledger?: ListenerLedger;
  /** Where refusals over the caps are logged, in sums (default: stderr, JSON). */
  log?: LimitLog;
  /** Where the detail of a request that failed is written (default: stderr, JSON); a client sees none of it. */
  errorLog?: ServerErrorLog;
}

export interface RevocationServer {
  /** http://host:port (as bound) */
  url: string;
  address: { host: string; port: number };
  server: Server;
  /** The TCP front that enforces the connection caps. */
  front: GuardedListener;
  close(): Promise<void>;
}

/**
 * The CA's revocation information over plain HTTP, as relying parties fetch
 * it (RFC 5280 §4.2.1.13, RFC 6960 Appendix A; NSS/Firefox fetches nothing
 * else): GET /crl, GET /root.crl, POST /ocsp and GET /ocsp/{base64}, GET
 * /issuing.cer and /root.cer. Everything it serves is signed; it serves
 * nothing else (404) and takes no other method (405).
 */
export async function startRevocationServer(o: RevocationServerOptions): Promise<RevocationServer> {
  const ca = o.authority;
  const app = new Hono<WebEnv>();
  app.route('/', revocationRoutes(ca, o.publisher ?? new RevocationPublisher(ca), o.errorLog));
  app.notFound(() => send(404, 'text/plain; charset=utf-8', `NOT_FOUND: this address serves only ${Object.values(REVOCATION_PATHS).join(', ')}\n`));
  const limits = o.limits ?? resolveLimits({}, 1).revocation;
  const log: LimitLog = o.log ?? stderrLimitLog;
  const server = createServer({ maxHeaderSize: REVOCATION_SERVER_LIMITS.maxHeaderSize }, nodeListener(app, o.errorLog));
  server.maxRequestsPerSocket = REVOCATION_SERVER_LIMITS.maxRequestsPerSocket;
  server.on('clientError', (_e, socket) => socket.destroy());
  // The server never listens itself: the TCP front admits sockets under the caps and hands them over.
  applyHttpLimits(server, limits);
  const front = new GuardedListener({ name: 'revocation', host: o.listen.host, port: o.listen.port, limits, ledger: o.ledger ?? new ListenerLedger(), log, setting: '--revocation-listen', onConnection: (raw) => server.emit('connection', raw) });
  const a = await front.listen();
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return {
    url: `http://${host}:${a.port}`,
    address: a,
    server,
    front,
    close: async () => {
      await front.closeHttp(server);
    },
  };
}
