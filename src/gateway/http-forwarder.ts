import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { allows, type AccessRule } from './access-rule.js';
import type { ClientIdentity } from './client-identity.js';
import { forwardHeaders, responseHeaders } from './identity-headers.js';
import { refusalPage } from './refusal-page.js';
import { normalizeTarget, type RequestTarget } from './request-target.js';
import { isSekishoError, type SekishoError } from '../errors/index.js';
import type { RefusalReason } from './refusal.js';

export interface HttpRoute {
  /** Path prefix ("/" matches everything); the longest matching prefix wins. */
  path: string;
  upstream: URL;
  allow: AccessRule;
}

/** What the TLS side decided about a connection before any request is read. */
export type ConnectionState = { identity: ClientIdentity } | { refusal: RefusalReason; identity?: ClientIdentity };

export interface HttpForwarderOptions {
  routes: readonly HttpRoute[];
  stateOf: (socket: TLSSocket) => ConnectionState | undefined;
  contact?: string;
  /** The self-check page's address, shown on refusal pages. */
  selfCheckUrl?: string;
  onAccessDenied: (socket: TLSSocket, identity: ClientIdentity, path: string) => void;
  /** A request target that cannot be normalized safely (answered 400). */
  onBadTarget: (socket: TLSSocket, identity: ClientIdentity, error: SekishoError) => void;
  /** Every answered request; `path` is the normalized path (undefined when the target could not be normalized, or the connection was refused). */
  onRequest: (status: number, socket: TLSSocket, req: IncomingMessage, identity: ClientIdentity | undefined, path?: string) => void;
  onUpstreamError: (message: string) => void;
}

/**
 * HTTP mode: requests on authenticated connections go to the route's
 * upstream over kept-alive connections, with the identity headers; a known
 * client that may not in gets a page saying why, in Japanese and English.
 */
export function httpForwarder(o: HttpForwarderOptions): { server: Server; closeUpstreams(): void } {
  // Per route, once: the upstream's path prefix; longest route path first.
  const routes = [...o.routes]
    .sort((a, b) => b.path.length - a.path.length)
    .map((r) => ({ ...r, prefix: r.upstream.pathname === '/' ? '' : r.upstream.pathname.replace(/\/$/, '') }));
  const agents = new Map<string, Agent>();
  const agentFor = (u: URL) => {
    let a = agents.get(u.host);
    if (!a) agents.set(u.host, (a = new Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256 })));
    return a;
  };
  const page = (res: ServerResponse, status: number, reason: RefusalReason, id: ClientIdentity | undefined, close: boolean) => {
    const body = refusalPage(reason, {
      ...(id?.facilityNumber ? { facilityNumber: id.facilityNumber } : {}),
      ...(id?.facilityName ? { facilityName: id.facilityName } : {}),
      ...(id ? { serial: id.serial } : {}),
      ...(o.contact ? { contact: o.contact } : {}),
      ...(o.selfCheckUrl ? { selfCheckUrl: o.selfCheckUrl } : {}),
    });
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-sekisho-refusal': reason,
      ...(close ? { connection: 'close' } : {}),
    });
    res.end(body);
  };
  const server = createServer({ keepAliveTimeout: 60_000, headersTimeout: 30_000, requestTimeout: 300_000 }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const state = o.stateOf(socket);
    if (!state || 'refusal' in state) {
      const reason = state && 'refusal' in state ? state.refusal : 'HANDSHAKE_FAILED';
      page(res, 403, reason, state?.identity, true);
      o.onRequest(403, socket, req, state?.identity);
      res.once('finish', () => socket.end());
      return;
    }
    const id = state.identity;
    // Route rules judge, and the upstream receives, the one normalized path (request-target.ts).
    let target: RequestTarget;
    try {
      target = normalizeTarget(req.url ?? '');
    } catch (e) {
      if (!isSekishoError(e)) throw e;
      o.onBadTarget(socket, id, e);
      const body = 'bad request target / 不正なリクエストです\n';
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', connection: 'close' });
      res.end(body);
      o.onRequest(400, socket, req, id, '(bad request target)');
      return;
    }
    const path = target.path;
    const route = routes.find((r) => path.startsWith(r.path) || (r.path.endsWith('/') && path === r.path.slice(0, -1)));
    if (!route || !allows(route.allow, id)) {
      o.onAccessDenied(socket, id, path);
      page(res, 403, 'ACCESS_DENIED', id, false);
      o.onRequest(403, socket, req, id, path);
      return;
    }
    const up = route.upstream;
    const fwd = request(
      {
        host: up.hostname,
        port: up.port || 80,
        method: req.method,
        path: route.prefix + path + target.query,
        headers: forwardHeaders(req.headers, id, socket.remoteAddress ?? '', up.host),
        agent: agentFor(up),
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, responseHeaders(upRes.headers));
        upRes.pipe(res);
        upRes.once('end', () => o.onRequest(upRes.statusCode ?? 502, socket, req, id, path));
      },
    );
    fwd.on('error', (e) => {
      o.onUpstreamError(e.message);
      if (!res.headersSent) {
        const body = 'upstream unavailable / 接続先のサービスに接続できません\n';
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        o.onRequest(502, socket, req, id, path);
      } else res.destroy();
    });
    req.pipe(fwd);
  });
  // A client that half-closes after its request (TLS 1.3 close_notify, FIN)
  // still gets the answer: with httpAllowHalfOpen Node's HTTP server marks the
  // pending response as the last one and ends the connection after writing it,
  // instead of aborting the request at the client's end of stream.
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  return {
    server,
    closeUpstreams: () => {
      for (const a of agents.values()) a.destroy();
    },
  };
}
