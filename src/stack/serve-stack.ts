import { readFileSync } from 'node:fs';
import { CertificateAuthority, issueServerCredential, RevocationPublisher, REVOCATION_PATHS, serverCredentialPaths, serverCredentialUsable } from '../ca/index.js';
import { openGateway, jsonLogger, parseHostPort, type GatewayConfig, type GatewaySetup, type HostPort, type Logger } from '../gateway/index.js';
import { startRevocationServer, startWebServer, type RevocationServer, type WebServer } from '../web/index.js';
import { internal, listenFailure } from '../errors/index.js';
import { ListenerLedger, resolveLimits, type ResolvedLimits } from '../listener/index.js';
import { startConsoleServer, type ConsoleServer } from '../console/index.js';
import { findChromium } from '../ca/index.js';

/**
 * `sekisho serve` in one process: the gateway (mutual TLS in front of the
 * upstreams) and the CA's HTTP endpoints (enrollment portal, EST, CRL, OCSP,
 * root) over HTTPS with the home's server certificate, which both present.
 *
 * ```ts
 * const stack = await startServeStack({ gateway: cfg, home, portal: { host: '127.0.0.1', port: 8080 }, unlock: (ca) => ca.unlock(pass) });
 * stack.summary(); // URLs, with the ports actually bound
 * await stack.reload(); // SIGHUP
 * await stack.close(); // SIGTERM
 * ```
 */
export interface ServeStackOptions {
  /** The gateway's configuration (from flags or a YAML file). */
  gateway: GatewayConfig;
  /** The CA home the portal serves (the gateway's own home when it has one). */
  home: string;
  db?: string;
  /** Where the portal listens; port 0 picks a free port. */
  portal: HostPort;
  /** The portal's public URL (default https://localhost:PORT/ on loopback, else the bound address). */
  portalUrl?: string;
  /**
   * Where the plain-HTTP revocation listener (CRL, OCSP, CA certificates)
   * listens; absent: none. Certificates point to `urls.revocation` of the
   * home's config.json, which should be this listener's public address.
   */
  revocation?: HostPort;
  /** Where the operators' web console listens (HTTPS, operator certificates only); absent: none. */
  console?: HostPort;
  /** Unlocks the opened CA (passphrase or token PIN): the portal issues, signs CRLs and OCSP answers. */
  unlock: (ca: CertificateAuthority) => Promise<void>;
  log?: Logger;
}

export interface ServeSummary {
  home: string;
  profile: string;
  pid: number;
  gateway: { listeners: { name: string; mode: string; host: string; port: number; url: string }[]; admin: HostPort | null };
  portal: { url: string; est: string; crl: string; ocsp: string; root: string; host: string; port: number };
  /** The file-descriptor budget and the caps each listener got from it. */
  limits: { fileDescriptors: number; source: string; reserve: number; gateway: { maxConnections: number; maxConnectionsPerAddress: number; handshakeTimeoutMs: number }; portal: { maxConnections: number; maxConnectionsPerAddress: number; handshakeTimeoutMs: number }; revocation: { maxConnections: number; maxConnectionsPerAddress: number }; admin: { maxConnections: number; maxConnectionsPerAddress: number }; selfCheck: { maxConnections: number; maxConnectionsPerAddress: number } };
  /** The self-check listener (every TLS version; a page and /self-check.json), when configured. */
  selfCheck: { url: string; json: string; host: string; port: number } | null;
  /** The operators' web console (null: not started). */
  console: { url: string; host: string; port: number } | null;
  /** The plain-HTTP revocation listener; `published` is the base URL certificates carry (null: the home's certificates point nowhere). */
  revocation: { url: string; crl: string; rootCrl: string; ocsp: string; host: string; port: number; published: string | null } | null;
}

export interface ServeStack {
  ca: CertificateAuthority;
  gateway: GatewaySetup;
  web: WebServer;
  revocation: RevocationServer | undefined;
  console: ConsoleServer | undefined;
  summary(): ServeSummary;
  /** Reloads the gateway's credentials and trust (SIGHUP); false when the reload failed and the old state stays. */
  reload(): Promise<boolean>;
  /** Stops both gracefully: no new connections, open ones get `graceMs` to finish. */
  close(graceMs?: number): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const WILDCARD = new Set(['0.0.0.0', '::']);
/** Hosts the default names already cover (as the gateway's own start-up decides). */
const COVERED = new Set(['0.0.0.0', '::', '127.0.0.1', 'localhost']);

/** A URL for an address: loopback as "localhost" (the server certificate names it), IPv6 in brackets. */
export function urlHost(host: string): string {
  if (LOOPBACK.has(host) || WILDCARD.has(host)) return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/** The names the home's server certificate must cover: loopback, each concrete listen address, or the configured names. */
export function serverNames(cfg: GatewayConfig, portal: HostPort, consoleAt?: HostPort): string[] {
  const names = new Set(cfg.serverNames.length ? cfg.serverNames : ['localhost', '127.0.0.1']);
  const hosts = [...cfg.listeners.map((l) => l.listen.host), portal.host, ...(consoleAt ? [consoleAt.host] : []), ...(cfg.selfCheck ? [cfg.selfCheck.listen.host] : [])];
  for (const h of hosts) if (!COVERED.has(h)) names.add(h);
  return [...names];
}

async function closeWeb(web: Pick<WebServer, 'server' | 'front' | 'close'>, graceMs: number): Promise<void> {
  const timer = setTimeout(() => {
    web.server.closeAllConnections();
    web.front.destroyAll();
  }, graceMs);
  try {
    await web.close();
  } finally {
    clearTimeout(timer);
  }
}

async function closeRevocation(r: RevocationServer, graceMs: number): Promise<void> {
  const timer = setTimeout(() => r.server.closeAllConnections(), graceMs);
  try {
    await r.close();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens the CA, makes sure the home's server certificate covers every
 * address (issuing it on first start), then starts the portal and the
 * gateway. If any part fails to start, what started is stopped again.
 */
export async function startServeStack(o: ServeStackOptions): Promise<ServeStack> {
  const log = o.log ?? jsonLogger(o.gateway.logLevel, (l) => process.stderr.write(l));
  // One budget for the whole process: the portal's share can never take the gateway's.
  const limits: ResolvedLimits = resolveLimits(o.gateway.limits, o.gateway.listeners.length, { code: 'GATEWAY_CONFIG_INVALID' });
  const ledger = new ListenerLedger();
  // Issuance (portal, EST) parses, lints and signs on worker threads, one per core, once the key file is unlocked.
  const ca = await CertificateAuthority.open({ home: o.home, ...(o.db ? { db: o.db } : {}), issuanceWorkers: 'auto' });
  let web: WebServer | undefined;
  let revocation: RevocationServer | undefined;
  let consoleServer: ConsoleServer | undefined;
  try {
    await o.unlock(ca);
    const paths = serverCredentialPaths(o.home);
    const names = serverNames(o.gateway, o.portal, o.console);
    if (!serverCredentialUsable(paths, names, new Date())) {
      await issueServerCredential(ca, names, 'serve');
      log.log('info', 'server certificate issued', { file: paths.cert, names });
    }
    const publisher = new RevocationPublisher(ca);
    if (o.revocation) {
      const at = o.revocation;
      revocation = await startRevocationServer({ authority: ca, listen: at, publisher, limits: limits.revocation, ledger, log }).catch((e: unknown) => {
        throw listenFailure(e, `${at.host}:${at.port}`, '--revocation-listen');
      });
    }
    web = await startWebServer({
      authority: ca,
      revocation: publisher,
      listen: o.portal,
      tls: { cert: readFileSync(paths.cert, 'utf8'), key: readFileSync(paths.key, 'utf8') },
      ...(o.portalUrl ? { publicUrl: o.portalUrl } : {}),
      limits: limits.portal,
      ledger,
      log,
    }).catch((e: unknown) => {
      throw listenFailure(e, `${o.portal.host}:${o.portal.port}`, '--portal');
    });
    const portalUrl = o.portalUrl ?? `https://${urlHost(web.address.host)}:${web.address.port}/`;
    if (o.console) {
      const at = o.console;
      const chromium = findChromium();
      consoleServer = await startConsoleServer({
        authority: ca,
        listen: at,
        tls: { cert: readFileSync(paths.cert, 'utf8'), key: readFileSync(paths.key, 'utf8') },
        portalUrl: ca.config.urls.portal ?? portalUrl,
        ...(chromium ? { chromium } : {}),
        limits: limits.admin,
        ledger,
        log,
      }).catch((e: unknown) => {
        throw listenFailure(e, `${at.host}:${at.port}`, '--console-listen');
      });
    }
    // The credential is already usable, so the gateway never asks for the passphrase.
    const gateway = await openGateway(o.gateway, {
      passphrase: () => Promise.reject(internal('SERVE_GATEWAY_HOME', 'the gateway needs a server certificate from another CA home than the portal; give both the same --home')),
      pin: () => process.env.SEKISHO_PIN ?? '',
      log,
      limits,
      ledger,
    }).catch((e: unknown) => {
      throw listenFailure(e, o.gateway.listeners.map((l) => `${l.listen.host}:${l.listen.port}`).join(', '), o.gateway.listeners.length > 1 ? 'listen address in the configuration:' : '--listen');
    });
    const started = web;
    const rev = revocation;
    const cons = consoleServer;
    // Signed checkpoints of the audit trail: now, every audit.checkpointSeconds when events were appended, and at shutdown.
    const checkpoint = () =>
      ca.checkpoint().then(
        (c) => {
          if (c) log.log('info', 'audit checkpoint signed', { checkpoint: c.id, seq: c.seq });
        },
        (e: unknown) => log.log('error', 'audit checkpoint failed', { error: (e as Error).message }),
      );
    await checkpoint();
    let checkpointing = Promise.resolve();
    const checkpointTimer = setInterval(() => {
      checkpointing = checkpointing.then(checkpoint);
    }, ca.config.audit.checkpointSeconds * 1000).unref();
    return {
      ca,
      gateway,
      web: started,
      revocation: rev,
      console: cons,
      summary: () => {
        const base = portalUrl.replace(/\/$/, '');
        return {
          home: o.home,
          profile: o.gateway.profile,
          pid: process.pid,
          gateway: {
            listeners: gateway.gateway.addresses().map((l) => ({ ...l, url: `${l.mode === 'tcp' ? 'tls' : 'https'}://${urlHost(l.host)}:${l.port}/` })),
            admin: gateway.gateway.adminAddress() ?? null,
          },
          portal: { url: portalUrl, est: `${base}/.well-known/est/`, crl: `${base}/crl`, ocsp: `${base}/ocsp`, root: `${base}/root.cer`, host: started.address.host, port: started.address.port },
          limits: {
            fileDescriptors: limits.fileDescriptors,
            source: limits.source,
            reserve: limits.reserve,
            gateway: { maxConnections: limits.gateway.maxConnections, maxConnectionsPerAddress: limits.gateway.maxConnectionsPerAddress, handshakeTimeoutMs: limits.gateway.handshakeTimeoutMs },
            portal: { maxConnections: limits.portal.maxConnections, maxConnectionsPerAddress: limits.portal.maxConnectionsPerAddress, handshakeTimeoutMs: limits.portal.handshakeTimeoutMs },
            revocation: { maxConnections: limits.revocation.maxConnections, maxConnectionsPerAddress: limits.revocation.maxConnectionsPerAddress },
            admin: { maxConnections: limits.admin.maxConnections, maxConnectionsPerAddress: limits.admin.maxConnectionsPerAddress },
            selfCheck: { maxConnections: limits.selfCheck.maxConnections, maxConnectionsPerAddress: limits.selfCheck.maxConnectionsPerAddress },
          },
          revocation: rev
            ? {
                url: `${rev.url}/`,
                crl: `${rev.url}${REVOCATION_PATHS.crl}`,
                rootCrl: `${rev.url}${REVOCATION_PATHS.rootCrl}`,
                ocsp: `${rev.url}${REVOCATION_PATHS.ocsp}`,
                host: rev.address.host,
                port: rev.address.port,
                published: ca.config.urls.revocation ?? null,
              }
            : null,
          console: cons ? { url: `https://${urlHost(cons.address.host)}:${cons.address.port}/`, host: cons.address.host, port: cons.address.port } : null,
          selfCheck: gateway.selfCheck
            ? { url: gateway.selfCheck.url, json: `${gateway.selfCheck.url.replace(/\/$/, '')}/self-check.json`, host: gateway.selfCheck.address.host, port: gateway.selfCheck.address.port }
            : null,
        };
      },
      reload: () => gateway.gateway.reload(),
      async close(graceMs = 10_000) {
        clearInterval(checkpointTimer);
        await Promise.allSettled([gateway.close(graceMs), closeWeb(started, graceMs), ...(rev ? [closeRevocation(rev, graceMs)] : []), ...(cons ? [closeWeb(cons, graceMs)] : [])]);
        await checkpointing;
        await checkpoint();
        await ca.close();
      },
    };
  } catch (e) {
    if (web) await closeWeb(web, 0).catch(() => undefined);
    if (revocation) await closeRevocation(revocation, 0).catch(() => undefined);
    if (consoleServer) await closeWeb(consoleServer, 0).catch(() => undefined);
    await ca.close().catch(() => undefined);
    throw e;
  }
}

/** A HOST:PORT for the portal (port 0: a free port). */
export function parseListenAddress(v: string, flag: string): HostPort {
  return parseHostPort(v, flag, 'LISTEN_ADDRESS_INVALID');
}

/**
 * Serves until SIGTERM or SIGINT (then stops gracefully); SIGHUP reloads the
 * gateway's credentials and trust.
 */
export function untilStopped(stack: Pick<ServeStack, 'reload' | 'close'>, graceMs = 10_000): Promise<void> {
  return new Promise<void>((resolve) => {
    const reload = () => void stack.reload();
    const stop = () => {
      process.off('SIGHUP', reload);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      stack.close(graceMs).then(resolve, resolve);
    };
    process.on('SIGHUP', reload);
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
