import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RevocationPublisher, REVOCATION_PATHS, type CertificateAuthority } from '../ca/index.js';
import { send, sendError } from './http.js';
import { revocationRoutes } from './revocation-routes.js';

/**
 * Limits of the revocation listener, in one place (the stack's listeners
 * take their connection limits from one table on the same pattern): small
 * headers, short timeouts, a bounded number of requests per connection. The
 * OCSP request body is capped at OCSP_MAX_REQUEST by the route itself.
 */
export const REVOCATION_SERVER_LIMITS = {
  maxHeaderSize: 8 * 1024,
  headersTimeout: 10_000,
  requestTimeout: 20_000,
  keepAliveTimeout: 5_000,
  maxRequestsPerSocket: 100,
} as const;

export interface RevocationServerOptions {
  /** An opened, unlocked CA (OCSP and the issuing CRL are signed on demand). */
  authority: CertificateAuthority;
  listen: { host: string; port: number };
  /** Shared with the portal (one CRL cache); default a new one. */
  publisher?: RevocationPublisher;
}

export interface RevocationServer {
  /** http://host:port (as bound) */
  url: string;
  address: { host: string; port: number };
  server: Server;
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
  const route = revocationRoutes(ca, o.publisher ?? new RevocationPublisher(ca));
  const server = createServer({ ...REVOCATION_SERVER_LIMITS }, (req, res) => {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://x').pathname;
    } catch {
      return send(res, 400, 'text/plain; charset=utf-8', 'URL_INVALID\n');
    }
    route(req, res, path)
      .then((handled) => {
        if (!handled) send(res, 404, 'text/plain; charset=utf-8', `NOT_FOUND: this address serves only ${Object.values(REVOCATION_PATHS).join(', ')}\n`);
      })
      .catch((e: unknown) => {
        if (!res.headersSent) sendError(res, e);
        else res.destroy();
      });
  });
  server.maxRequestsPerSocket = REVOCATION_SERVER_LIMITS.maxRequestsPerSocket;
  server.keepAliveTimeout = REVOCATION_SERVER_LIMITS.keepAliveTimeout;
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listen.port, o.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}`,
    address: { host: a.address, port: a.port },
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
