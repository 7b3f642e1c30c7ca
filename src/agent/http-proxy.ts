/**
 * The local HTTP forward proxy: an application sends a plain-HTTP request in
 * absolute form (`GET http://gw.center.example:8443/path`) and the agent
 * carries it to the center over mutual TLS with the facility's credential.
 *
 * It is not an open proxy: only the center's configured host and port are
 * carried. Any other destination, every CONNECT, and requests that are not in
 * absolute form are refused with a stable code, counted, and logged.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { SekishoError } from '../errors/index.js';
import type { AgentConfig, HostPort } from './config.js';
import { listenOn } from './listen.js';
import type { AgentLog } from './log.js';
import type { AgentStats } from './agent-stats.js';
import type { CenterLink } from './center-link.js';
import { linkError } from './center-link.js';
import { agentErrors, refusalMessage } from './messages.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: never passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

const STATUS: Record<string, number> = { forbidden: 403, badRequest: 400, unavailable: 502, methodNotAllowed: 405 };

/** Whether `url` names the center: its gateway host or server name, on the gateway's port (or no port at all). */
export function isCenterDestination(url: URL, center: AgentConfig['center']): boolean {
  if (url.protocol !== 'http:') return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const names = new Set([center.gateway.host.toLowerCase(), center.serverName.toLowerCase()]);
  if (!names.has(host)) return false;
  return url.port === '' || Number(url.port) === center.gateway.port;
}

function answer(res: ServerResponse, e: SekishoError): void {
  const body = `${e.code}: ${e.message}\n${e.ja ? `${e.ja}\n` : ''}`;
  // The center could not be reached or trusted: a gateway error (502), whatever the kind.
  const status = e.code.startsWith('AGENT_CENTER_') ? 502 : (STATUS[e.kind] ?? 502);
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-sekisho-agent-error': e.code, connection: 'close' });
  res.end(body);
}

export interface HttpProxyOptions {
  center: AgentConfig['center'];
  link: CenterLink;
  log: AgentLog;
  stats: AgentStats;
  /** The uid of a connection's local user, when listen.allowUsers restricts who is served; `allowed` judges it. */
  users?: { uid: (s: Socket) => number | undefined; allowed: (uid: number | undefined) => boolean };
}

export async function startHttpProxy(listen: HostPort, o: HttpProxyOptions): Promise<Server> {
  const refuse = (res: ServerResponse, e: SekishoError, fields: Record<string, unknown>) => {
    o.stats.refuse(e.code);
    o.log('warn', 'request refused', { code: e.code, message: e.message, ja: e.ja, ...fields });
    answer(res, e);
  };

  const refusedUser = new WeakMap<Socket, number | undefined>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    o.stats.requestsTotal++;
    if (refusedUser.has(req.socket)) return refuse(res, agentErrors.userRefused(refusedUser.get(req.socket)), { method: req.method });
    const target = req.url ?? '';
    let url: URL | undefined;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
      try {
        url = new URL(target);
      } catch {
        url = undefined;
      }
    }
    if (!url) return refuse(res, agentErrors.notAProxyRequest(), { method: req.method });
    if (!isCenterDestination(url, o.center)) return refuse(res, agentErrors.destinationRefused(`${url.protocol}//${url.host}`), { method: req.method, destination: url.host });
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    headers.host = `${o.center.serverName}:${o.center.gateway.port}`;
    const started = o.link.generation;
    const up = httpsRequest({ host: o.center.gateway.host, port: o.center.gateway.port, method: req.method, path: `${url.pathname}${url.search}`, headers, agent: o.link.httpsAgent }, (ures) => {
      const reason = ures.headers['x-sekisho-refusal'];
      if (typeof reason === 'string') {
        const m = refusalMessage(reason);
        o.stats.refuse(m.code);
        o.log('error', 'the center refused the facility certificate', { code: m.code, reason, message: m.en, ja: m.ja });
      }
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ures.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(ures.statusCode ?? 502, out);
      ures.pipe(res);
    });
    up.on('error', (e) => {
      const err = linkError(e);
      o.stats.refuse(err.code);
      o.log('error', 'the center could not be reached', { code: err.code, message: err.message, ja: err.ja, generation: started });
      if (!res.headersSent) answer(res, err);
      else res.destroy();
    });
    req.on('error', () => up.destroy());
    res.on('error', () => up.destroy());
    req.pipe(up);
  });

  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy());
    if (refusedUser.has(socket)) {
      o.stats.refuse('AGENT_USER_REFUSED');
      return socket.destroy();
    }
    const e = agentErrors.connectRefused();
    o.stats.refuse(e.code);
    o.log('warn', 'request refused', { code: e.code, message: e.message, destination: req.url });
    const body = `${e.code}: ${e.message}\n${e.ja}\n`;
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-sekisho-agent-error: ${e.code}\r\nconnection: close\r\n\r\n${body}`);
  });
  server.on('connection', (s: Socket) => {
    if (o.users) {
      const uid = o.users.uid(s);
      if (!o.users.allowed(uid)) refusedUser.set(s, uid);
    }
    o.stats.opened();
    s.once('close', () => o.stats.closed());
  });
  server.on('clientError', (_e, s: Socket) => s.destroy());
  await listenOn(server, listen);
  return server;
}
