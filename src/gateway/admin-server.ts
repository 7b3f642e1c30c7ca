import { createServer, type Server } from 'node:http';

/**
 * The admin listener, apart from client traffic: Prometheus /metrics,
 * /healthz (200 while serving with usable revocation information, 503
 * otherwise) and /status (JSON: listeners, revocation, dated exceptions in
 * use). Bind it to loopback or a management network.
 */
export function adminServer(o: { metrics: () => string | Promise<string>; health: () => { ok: boolean; state: string }; status: () => unknown }): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      Promise.resolve()
        .then(() => o.metrics())
        .then(
          (body) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body),
          () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
        );
    } else if (path === '/healthz') {
      const h = o.health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: h.state }) + '\n');
    } else if (path === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(o.status(), null, 1) + '\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /metrics, /healthz, /status\n');
    }
  });
}
