/** /status (JSON) and /metrics (Prometheus text) on a loopback port. */
import { createServer, type Server } from 'node:http';
import type { AgentStats } from './agent-stats.js';
import type { HostPort } from './config.js';
import { listenOn } from './listen.js';
import type { CredentialView } from './facility-credential.js';

export interface StatusSource {
  stats: AgentStats;
  certificate(): CredentialView;
  renewalDueAt(): string | undefined;
  listeners(): Record<string, string>;
}

export function statusDocument(s: StatusSource): Record<string, unknown> {
  const st = s.stats;
  return {
    certificate: s.certificate(),
    renewal: { dueAt: s.renewalDueAt(), last: st.lastRenewal ?? null, lastError: st.lastRenewalError ?? null, renewed: st.renewalsTotal, failed: st.renewalFailuresTotal },
    connections: { open: st.connectionsOpen, total: st.connectionsTotal, requests: st.requestsTotal },
    refusals: Object.fromEntries(st.refusals),
    listeners: s.listeners(),
  };
}

export function metricsText(s: StatusSource): string {
  const st = s.stats;
  const cert = s.certificate();
  const lines = [
    '# HELP sekisho_agent_certificate_not_after_seconds Expiry of the certificate in use (Unix time).',
    '# TYPE sekisho_agent_certificate_not_after_seconds gauge',
    `sekisho_agent_certificate_not_after_seconds ${Math.floor(Date.parse(cert.notAfter) / 1000)}`,
    '# HELP sekisho_agent_connections_open Local connections open now.',
    '# TYPE sekisho_agent_connections_open gauge',
    `sekisho_agent_connections_open ${st.connectionsOpen}`,
    '# HELP sekisho_agent_connections_total Local connections accepted.',
    '# TYPE sekisho_agent_connections_total counter',
    `sekisho_agent_connections_total ${st.connectionsTotal}`,
    '# HELP sekisho_agent_renewals_total Certificates renewed.',
    '# TYPE sekisho_agent_renewals_total counter',
    `sekisho_agent_renewals_total ${st.renewalsTotal}`,
    '# HELP sekisho_agent_renewal_failures_total Renewals that failed.',
    '# TYPE sekisho_agent_renewal_failures_total counter',
    `sekisho_agent_renewal_failures_total ${st.renewalFailuresTotal}`,
    '# HELP sekisho_agent_refusals_total Requests refused, by the agent or the center, by reason.',
    '# TYPE sekisho_agent_refusals_total counter',
    ...[...st.refusals].map(([reason, n]) => `sekisho_agent_refusals_total{reason="${reason}"} ${n}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** A Host header naming this machine (a loopback literal or localhost, any port); absent (HTTP/1.0) is allowed. */
export function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

export async function startStatusServer(listen: HostPort, s: StatusSource): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (!loopbackHost(req.headers.host)) {
      // DNS rebinding: a web page whose name now resolves to 127.0.0.1 would read the facility's certificate and counts.
      res.writeHead(421, { 'content-type': 'text/plain' }).end('AGENT_STATUS_HOST_REFUSED: ask for this address by 127.0.0.1, [::1] or localhost\n');
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/status') {
      const body = JSON.stringify(statusDocument(s));
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
    } else if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metricsText(s));
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end('/status or /metrics\n');
  });
  await listenOn(server, listen);
  return server;
}
