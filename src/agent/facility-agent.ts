/**
 * The facility agent: everything fails at start-up, not at the first request
 * (root thumbprint, PIN source, token login, certificate, loopback listeners),
 * then it lends the facility's token-held credential to local applications
 * and renews it before expiry.
 */
import type { Server } from 'node:http';
import type { Server as NetServer, AddressInfo } from 'node:net';
import { listenFailure } from '../errors/index.js';
import { AgentStats } from './agent-stats.js';
import { CenterLink } from './center-link.js';
import { centerTlsOptions, trustedRoot } from './center-tls.js';
import type { AgentConfig, HostPort } from './config.js';
import { FacilityCredential } from './facility-credential.js';
import { startHttpProxy } from './http-proxy.js';
import { jsonLog, type AgentLog } from './log.js';
import { readPin, type PinContext } from './pin.js';
import { Renewal } from './renewal.js';
import { startStatusServer, statusDocument } from './status-server.js';
import { startTcpForward } from './tcp-forward.js';

export interface FacilityAgentOptions extends Partial<PinContext> {
  log?: AgentLog;
  now?: () => Date;
  /** Check for renewal every renewal.checkEvery, starting now (default true; tests call renewal.check()). */
  autoRenew?: boolean;
}

const where = (a: HostPort) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

export class FacilityAgent {
  readonly stats = new AgentStats();
  readonly #servers: { name: string; server: Server | NetServer }[] = [];
  renewal: Renewal | undefined;

  private constructor(
    readonly config: AgentConfig,
    readonly credential: FacilityCredential,
    readonly link: CenterLink,
    readonly log: AgentLog,
  ) {}

  static async start(config: AgentConfig, o: FacilityAgentOptions = {}): Promise<FacilityAgent> {
    const log = o.log ?? jsonLog();
    const root = trustedRoot(config.center.root, config.center.rootThumbprint);
    const tls = centerTlsOptions(config.center, root);
    const { servername, checkServerIdentity, rejectUnauthorized: _r, ...base } = tls;
    const pin = await readPin(config.credential.pin, { env: o.env ?? process.env, isTTY: o.isTTY ?? false, ...(o.prompt ? { prompt: o.prompt } : {}) });
    const credential = await FacilityCredential.open(config.credential.token, pin, o.now?.());
    let agent: FacilityAgent | undefined;
    try {
      const link = new CenterLink(await credential.secureContext(base), { ...(servername ? { servername } : {}), ...(checkServerIdentity ? { checkServerIdentity } : {}) });
      agent = new FacilityAgent(config, credential, link, log);
      const a = agent;
      const listen = async (name: string, address: HostPort, open: () => Promise<Server | NetServer>) => {
        try {
          a.#servers.push({ name, server: await open() });
        } catch (e) {
          throw listenFailure(e, where(address), name);
        }
      };
      if (config.listen.httpProxy) await listen('listen.httpProxy', config.listen.httpProxy, () => startHttpProxy(config.listen.httpProxy!, { center: config.center, link, log, stats: a.stats }));
      for (const [i, f] of config.listen.tcp.entries()) await listen(`listen.tcp[${i}]`, f.listen, () => startTcpForward(f.listen, f.to, { link, log, stats: a.stats }));
      if (config.center.est) {
        a.renewal = new Renewal({ credential, link, base, est: config.center.est, probe: config.center.gateway, beforeMs: config.renewal.beforeMs, checkEveryMs: config.renewal.checkEveryMs, log, stats: a.stats, ...(o.now ? { now: o.now } : {}) });
      }
      if (config.status) {
        await listen('status', config.status, () =>
          startStatusServer(config.status!, { stats: a.stats, certificate: () => credential.view(), renewalDueAt: () => a.renewal?.dueAt().toISOString(), listeners: () => a.addresses() }),
        );
      }
      const cert = credential.view();
      log('info', 'agent started', { certificate: cert, token: config.credential.token.kind, listeners: a.addresses(), renewalDueAt: a.renewal?.dueAt().toISOString() ?? null });
      if (o.autoRenew !== false) a.renewal?.start();
      return a;
    } catch (e) {
      if (agent) await agent.stop();
      else await credential.close();
      throw e;
    }
  }

  /** Where each listener is bound (name → host:port), ports resolved. */
  addresses(): Record<string, string> {
    return Object.fromEntries(this.#servers.map(({ name, server }) => [name, where({ host: (server.address() as AddressInfo).address, port: (server.address() as AddressInfo).port })]));
  }

  port(name: string): number {
    const s = this.#servers.find((x) => x.name === name);
    return (s!.server.address() as AddressInfo).port;
  }

  status(): Record<string, unknown> {
    return statusDocument({ stats: this.stats, certificate: () => this.credential.view(), renewalDueAt: () => this.renewal?.dueAt().toISOString(), listeners: () => this.addresses() });
  }

  async stop(): Promise<void> {
    this.renewal?.stop();
    await this.renewal?.settled();
    for (const { server } of this.#servers) {
      await new Promise<void>((r) => server.close(() => r()));
      (server as Server).closeAllConnections?.();
    }
    this.link.close();
    await this.credential.close();
    this.log('info', 'agent stopped');
  }
}
