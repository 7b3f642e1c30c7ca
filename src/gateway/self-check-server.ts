import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants, type X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { GuardedListener, ListenerLedger, applyHttpLimits, refuseRenegotiation, stderrLimitLog, type LimitLog, type ListenerLimits } from '../listener/index.js';
import { complianceProfile, policyProtocol, tlsServerOptions, type PolicyOutlook } from '../policy/index.js';
import type { TlsKeyOptions } from '../token/index.js';
import type { ClientInspection } from './client-verifier.js';
import type { SelfCheckContact } from './config.js';
import type { HostPort } from './gateway.js';
import { selfCheckPage, SELF_CHECK_CSP } from './self-check-page.js';
import { selfCheckReport, type SelfCheckReport } from './self-check-report.js';
import { presentedChain } from './tls-listener.js';

/** Headers and requests per connection: a page and its JSON. */
export const SELF_CHECK_SERVER_LIMITS = { maxHeaderSize: 8 * 1024, maxRequestsPerSocket: 20 } as const;

/** TLS 1.3 suites, every one OpenSSL has (the CCM ones only when named). */
const TLS13_ALL = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256'];

/**
 * The self-check listener's TLS settings: every version from TLS 1.0 to 1.3
 * and every suite OpenSSL has (the high profile's first, so a client that can
 * do better is judged on what it would use at the gateway). OpenSSL 3 allows
 * TLS 1.0/1.1 and SHA-1 signatures only at security level 0: set here, on
 * this listener only, because it is diagnostic: it must finish the handshake
 * with a broken client to tell it what is wrong. It proxies nothing and
 * grants nothing. A certificate is asked for (naming the trust anchors) and
 * never required; OpenSSL's verdict on it is not used.
 */
export function selfCheckTlsOptions(): { minVersion: 'TLSv1'; maxVersion: 'TLSv1.3'; ciphers: string; honorCipherOrder: true; dhparam: 'auto'; secureOptions: number } {
  const high = tlsServerOptions(complianceProfile('high'));
  const tls12 = high.ciphers!.split(':').filter((c) => !c.startsWith('TLS_'));
  return {
    minVersion: 'TLSv1',
    maxVersion: 'TLSv1.3',
    // No RSA key exchange: it would make this listener a decryption oracle (Bleichenbacher, Marvin) on the gateway's RSA key.
    ciphers: [...TLS13_ALL, ...tls12, 'ALL', '!kRSA', '@SECLEVEL=0'].join(':'),
    honorCipherOrder: true,
    dhparam: 'auto',
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
}

export interface SelfCheckCredentials {
  /** Server certificate chain, PEM (the gateway's own). */
  cert: string;
  key: TlsKeyOptions;
  /** Named in the certificate request, so browsers offer certificates of this network. */
  anchors: readonly X509Certificate[];
}

export interface SelfCheckServerOptions {
  listen: HostPort;
  credentials: SelfCheckCredentials;
  /** The gateway's verifier's view of a certificate; undefined while the gateway is not running yet (answered 503). */
  inspect: (leaf: X509Certificate, presented: readonly X509Certificate[]) => ClientInspection | undefined;
  /** The policy in force and the coming one, asked on every request. */
  outlook: () => PolicyOutlook;
  contact?: SelfCheckContact;
  /** The gateway's one-line contact, shown when the self-check has none of its own. */
  fallbackContact?: string;
  /** The page's public address (default https://HOST:PORT/ as bound). */
  url?: string;
  limits: ListenerLimits;
  ledger?: ListenerLedger;
  log?: LimitLog;
  now?: () => Date;
}

export interface SelfCheckServer {
  url: string;
  address: HostPort;
  server: Server;
  front: GuardedListener;
  /** New server certificate and anchors (after the gateway reloaded). */
  reload(c: SelfCheckCredentials): void;
  close(): Promise<void>;
}

function contextOptions(c: SelfCheckCredentials) {
  return { ...selfCheckTlsOptions(), cert: c.cert, ...c.key, ca: c.anchors.map((a) => a.toString()) };
}

const HTML_HEADERS = { 'Content-Security-Policy': SELF_CHECK_CSP, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' };

function answer(res: ServerResponse, status: number, type: string, body: string, head: boolean, extra: Record<string, string> = {}): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...HTML_HEADERS, 'Content-Type': type, 'Content-Length': String(buf.length), ...extra });
  res.end(head ? undefined : buf);
}

/**
 * Starts the self-check listener: GET / (the page), GET /self-check.json
 * (the same verdict for vendors' software), GET /healthz; nothing else.
 * Every connection goes through its own GuardedListener (kind selfCheck:
 * its own caps and short timeouts), so a flood here touches no other listener.
 */
export async function startSelfCheckServer(o: SelfCheckServerOptions): Promise<SelfCheckServer> {
  const log = o.log ?? stderrLimitLog;
  const now = o.now ?? (() => new Date());
  const report = (req: IncomingMessage): SelfCheckReport | undefined => {
    const socket = req.socket as TLSSocket;
    const protocol = policyProtocol(socket.getProtocol() ?? '');
    const suite = socket.getCipher()?.standardName ?? '';
    if (!protocol) return undefined;
    const leaf = socket.getPeerX509Certificate();
    let inspection: ClientInspection | undefined;
    if (leaf) {
      inspection = o.inspect(leaf, presentedChain(socket));
      if (!inspection) return undefined;
    }
    // What the client could sign its CertificateVerify with (the gateway accepts SHA-2 only; this listener accepts anything, to tell).
    const signatureAlgorithms = socket.getSharedSigalgs();
    return selfCheckReport({ protocol, suite, signatureAlgorithms, ...(inspection ? { inspection } : {}), outlook: o.outlook(), now: now() });
  };
  const server = createServer(
    { ...contextOptions(o.credentials), requestCert: true, rejectUnauthorized: false, handshakeTimeout: o.limits.handshakeTimeoutMs, maxHeaderSize: SELF_CHECK_SERVER_LIMITS.maxHeaderSize },
    (req, res) => {
      let path: string;
      try {
        path = new URL(req.url ?? '/', 'https://x').pathname;
      } catch {
        return answer(res, 400, 'text/plain; charset=utf-8', 'URL_INVALID\n', false);
      }
      const method = req.method ?? 'GET';
      const head = method === 'HEAD';
      if (method !== 'GET' && !head) return answer(res, 405, 'text/plain; charset=utf-8', 'METHOD_NOT_ALLOWED: use GET\n', false, { Allow: 'GET, HEAD' });
      if (path === '/healthz') return answer(res, 200, 'text/plain; charset=utf-8', 'ok\n', head);
      if (path !== '/' && path !== '/self-check' && path !== '/self-check.json') return answer(res, 404, 'text/plain; charset=utf-8', 'NOT_FOUND: this address serves / and /self-check.json\n', head);
      let r: SelfCheckReport | undefined;
      try {
        r = report(req);
      } catch (e) {
        log.log('error', 'self-check failed', { listener: 'selfCheck', error: e instanceof Error ? e.message : String(e) });
        r = undefined;
      }
      if (!r) return answer(res, 503, 'text/plain; charset=utf-8', 'SERVICE_UNAVAILABLE: the gateway is not ready; try again in a moment / しばらくしてから再度お試しください\n', head, { 'Retry-After': '5' });
      if (path === '/self-check.json') return answer(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(r, null, 2)}\n`, head);
      return answer(res, 200, 'text/html; charset=utf-8', selfCheckPage({ report: r, ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}), ...(o.contact ? { contact: o.contact } : {}), ...(o.fallbackContact ? { fallbackContact: o.fallbackContact } : {}) }), head);
    },
  );
  server.maxRequestsPerSocket = SELF_CHECK_SERVER_LIMITS.maxRequestsPerSocket;
  server.on('clientError', (_e, socket) => socket.destroy());
  applyHttpLimits(server, o.limits);
  const front = new GuardedListener({ name: 'selfCheck', host: o.listen.host, port: o.listen.port, limits: o.limits, ledger: o.ledger ?? new ListenerLedger(), log, setting: 'selfCheck.listen (--self-check-listen)', onConnection: (raw) => server.emit('connection', raw) });
  server.on('tlsClientError', (e: NodeJS.ErrnoException) => {
    if (e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') front.counts.handshakeTimeouts++;
  });
  server.on('secureConnection', (socket: TLSSocket) => refuseRenegotiation(socket, () => front.counts.renegotiationsRefused++, true));
  const a = await front.listen();
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return {
    url: o.url ?? `https://${host}:${a.port}/`,
    address: a,
    server,
    front,
    reload: (c) => server.setSecureContext(contextOptions(c)),
    close: () => front.closeHttp(server),
  };
}
