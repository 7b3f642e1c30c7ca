import { resolveHome } from '../../ca/index.js';
import { badRequest } from '../../errors/index.js';
import { limitsFromFlags, parseLimitsSetting } from '../../listener/index.js';
import { isClusterWorker, leaveCluster, workerOwnsSockets, loadGatewayConfig, notifyListening, openGateway, parseGatewayConfig, parseSelfCheckSetting, checkSelfCheckAddress, runPrimary, workerMetrics, type GatewayConfig } from '../../gateway/index.js';
import { HOME_OPTIONS, JSON_OPTION, type Command, type CommandContext } from '../command.js';
import { caPassphrase } from '../secrets.js';
import { untilStopped } from '../../stack/index.js';

const LISTENER_FLAGS = ['listen', 'upstream', 'mode', 'proxy-protocol', 'allow-facility'];

/** The configuration the flags describe (one listener), or the --config file's. */
export function gatewayConfigFromFlags(v: CommandContext['values'], env: NodeJS.ProcessEnv): GatewayConfig {
  const list = (name: string) => (v[name] as string[] | undefined) ?? [];
  const limits = limitsFromFlags(list('limit'), 'GATEWAY_FLAGS_INVALID');
  if (v.config !== undefined) {
    const cfg = loadGatewayConfig(v.config as string);
    if (v['log-level']) cfg.logLevel = v['log-level'] as GatewayConfig['logLevel'];
    // --limit overrides the file's limits, key by key, under the same rules.
    if (Object.keys(limits).length) cfg.limits = parseLimitsSetting(mergeLimits(cfg.limits as Record<string, unknown>, limits), '--limit', 'GATEWAY_FLAGS_INVALID');
    // --self-check-listen / --self-check-url set or override the file's selfCheck (its contact stays).
    if (v['self-check-listen'] !== undefined || v['self-check-url'] !== undefined) {
      const file = cfg.selfCheck;
      const listen = (v['self-check-listen'] as string | undefined) ?? (file ? `${file.listen.host.includes(':') ? `[${file.listen.host}]` : file.listen.host}:${file.listen.port}` : undefined);
      if (listen === undefined) throw badRequest('GATEWAY_FLAGS_INVALID', '--self-check-url needs --self-check-listen (or selfCheck.listen in the file)');
      cfg.selfCheck = parseSelfCheckSetting({ listen, ...((v['self-check-url'] ?? file?.url) !== undefined ? { url: v['self-check-url'] ?? file?.url } : {}), ...(file?.contact ? { contact: file.contact } : {}) });
      checkSelfCheckAddress(cfg);
    }
    return cfg;
  }
  const mode = (v.mode as string | undefined) ?? 'http';
  const facilities = list('allow-facility');
  const allow = facilities.length ? { facilities } : { anyone: true };
  const listener =
    mode === 'tcp'
      ? { name: 'tcp', mode: 'tcp', listen: v.listen, upstream: v.upstream, proxyProtocol: v['proxy-protocol'] === true, allow }
      : { name: 'http', mode, listen: v.listen, routes: [{ path: '/', upstream: v.upstream, allow }] };
  if (mode !== 'tcp' && v['proxy-protocol']) throw badRequest('GATEWAY_FLAGS_INVALID', '--proxy-protocol applies to --mode tcp only');
  const explicit = v.cert !== undefined;
  const raw: Record<string, unknown> = {
    profile: v.profile ?? 'high',
    ...(explicit ? { tls: { cert: v.cert, key: v.key, ...(v.module !== undefined ? { module: v.module } : {}) } } : {}),
    ...(!explicit || v.home !== undefined ? { home: resolveHome(v.home as string | undefined, env) } : {}),
    ...(v.db !== undefined ? { db: v.db } : {}),
    ...(v['state-dir'] !== undefined ? { stateDir: v['state-dir'] } : {}),
    clientCa: list('client-ca'),
    crl: list('crl'),
    pins: list('pin'),
    serverNames: list('server-name'),
    revocation: { onStale: v['on-stale'] ?? 'fail-closed', ...(v['stale-after'] !== undefined ? { staleAfterSeconds: Number(v['stale-after']) } : {}), ...(v.refresh !== undefined ? { refreshSeconds: Number(v.refresh) } : {}), ...(v.resync !== undefined ? { resyncSeconds: Number(v.resync) } : {}) },
    ...(v.admin !== undefined ? { admin: v.admin } : {}),
    ...(v.contact !== undefined ? { contact: v.contact } : {}),
    ...(v['self-check-listen'] !== undefined ? { selfCheck: { listen: v['self-check-listen'], ...(v['self-check-url'] !== undefined ? { url: v['self-check-url'] } : {}) } } : {}),
    ...(v['log-level'] !== undefined ? { log: v['log-level'] } : {}),
    listeners: [listener],
    ...(Object.keys(limits).length ? { limits } : {}),
  };
  return parseGatewayConfig(raw);
}

function mergeLimits(file: Record<string, unknown>, flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...file };
  for (const [k, v] of Object.entries(flags)) out[k] = typeof v === 'object' && v !== null ? { ...((file[k] as object | undefined) ?? {}), ...v } : v;
  return out;
}

export const gatewayCommand: Command = {
  path: ['gateway'],
  summary: 'run the mutual-TLS gateway in front of HTTP or TCP upstreams',
  usage: 'gateway --listen HOST:PORT --upstream URL [--mode http|tcp]  (or: sekisho gateway --config FILE)',
  options: {
    config: { type: 'string', description: 'YAML configuration (several listeners and routes); see docs/gateway.md', valueName: 'FILE' },
    listen: { type: 'string', description: 'address to accept clients on', valueName: 'HOST:PORT' },
    upstream: { type: 'string', description: 'http://HOST:PORT (http mode) or tcp://HOST:PORT (tcp mode)', valueName: 'URL' },
    mode: { type: 'string', description: 'http (identity headers) or tcp (byte pipe); default http', valueName: 'MODE' },
    'proxy-protocol': { type: 'boolean', description: 'tcp mode: send a PROXY protocol v2 header with the identity first' },
    'allow-facility': { type: 'string', multiple: true, description: 'only these facilities may pass (default: every authenticated client)', valueName: 'NUMBER' },
    profile: { type: 'string', description: 'TLS profile: high (default), recommended, exception (TLS 1.0–1.3, for a dated transition), mhlw, or a profile JSON file; a schedule of profiles goes in --config', valueName: 'NAME' },
    ...HOME_OPTIONS,
    cert: { type: 'string', description: 'server certificate chain PEM (a gateway apart from the CA)', valueName: 'FILE' },
    key: { type: 'string', description: 'server private key PEM, or a pkcs11: URI of a key in a token (PIN from SEKISHO_PIN)', valueName: 'FILE|URI' },
    module: { type: 'string', description: 'PKCS#11 module for a pkcs11: --key (e.g. /usr/lib/softhsm/libsofthsm2.so)', valueName: 'PATH' },
    'client-ca': { type: 'string', multiple: true, description: 'trust anchors for client certificates (PEM)', valueName: 'FILE' },
    crl: { type: 'string', multiple: true, description: 'CRL file or http(s) URL, re-read while running', valueName: 'FILE|URL' },
    pin: { type: 'string', multiple: true, description: 'SHA-256 fingerprint of an individually trusted client certificate', valueName: 'HEX' },
    'server-name': { type: 'string', multiple: true, description: 'host name or address for the home-issued server certificate', valueName: 'NAME' },
    refresh: { type: 'string', description: 'seconds between revocation refreshes (default 1)', valueName: 'SECONDS' },
    resync: { type: 'string', description: 'CA home: seconds between full re-reads of revocations and facility status (default 600)', valueName: 'SECONDS' },
    'stale-after': { type: 'string', description: 'seconds without a good read of revocations before the alarm (and, fail-closed, refusing everyone); default 30', valueName: 'SECONDS' },
    'state-dir': { type: 'string', description: 'a gateway apart from the CA with --db: where it keeps its audit spool', valueName: 'DIR' },
    'on-stale': { type: 'string', description: 'when revocation information is stale: fail-closed (default) or fail-open', valueName: 'MODE' },
    admin: { type: 'string', description: 'admin listener for /metrics, /healthz, /status', valueName: 'HOST:PORT' },
    contact: { type: 'string', description: 'help-desk contact shown on refusal pages', valueName: 'TEXT' },
    'self-check-listen': { type: 'string', description: 'address of the self-check page (every TLS version, certificate asked for, never required; docs/self-check.md)', valueName: 'HOST:PORT' },
    'self-check-url': { type: 'string', description: 'public https:// URL of the self-check page, shown on refusal pages (default https://HOST:PORT/)', valueName: 'URL' },
    'log-level': { type: 'string', description: 'debug, info (default), warn or error', valueName: 'LEVEL' },
    limit: {
      type: 'string',
      multiple: true,
      description: 'a listener limit, KIND.KEY=NUMBER: KIND gateway, portal (serve), revocation (serve), admin or selfCheck; KEY handshakeTimeoutSeconds, headersTimeoutSeconds, requestTimeoutSeconds, idleTimeoutSeconds, maxConnections, maxConnectionsPerAddress; or fileDescriptors=N (see docs/gateway.md)',
      valueName: 'KIND.KEY=N',
    },
    workers: { type: 'string', description: 'worker processes sharing the listen addresses (default 1; e.g. the number of cores)', valueName: 'N' },
    ...JSON_OPTION,
  },
  validators: [
    (v) => (v.config !== undefined && LISTENER_FLAGS.some((f) => v[f] !== undefined) ? `--config describes the listeners; drop ${LISTENER_FLAGS.filter((f) => v[f] !== undefined).map((f) => `--${f}`).join(', ')}` : undefined),
    (v) => (v.config === undefined && (v.listen === undefined || v.upstream === undefined) ? 'give --listen and --upstream (or --config FILE)' : undefined),
    (v) => (v.mode !== undefined && v.mode !== 'http' && v.mode !== 'tcp' ? '--mode is http or tcp' : undefined),
    (v) => ((v.cert === undefined) !== (v.key === undefined) ? '--cert and --key go together' : undefined),
    (v) => (v.config === undefined && v['self-check-url'] !== undefined && v['self-check-listen'] === undefined ? '--self-check-url needs --self-check-listen' : undefined),
    (v) => (v.workers !== undefined && !/^([1-9]|[1-5][0-9]|6[0-4])$/.test(v.workers as string) ? '--workers is a number of processes from 1 to 64' : undefined),
    (v) => (v.cert !== undefined && v.home === undefined && !(v['client-ca'] as string[] | undefined)?.length && !(v.pin as string[] | undefined)?.length ? 'a gateway apart from the CA (--cert/--key) needs --client-ca or --pin (or --home)' : undefined),
  ],
  async run(ctx) {
    const cfg = gatewayConfigFromFlags(ctx.values, ctx.env);
    const workers = Number(ctx.values.workers ?? 1);
    const print = (summary: { listeners: { name: string; mode: string; host: string; port: number }[] }) => {
      if (ctx.values.json) ctx.json(summary);
      else for (const l of summary.listeners) ctx.err(`sekisho gateway: ${l.name} (${l.mode}) on ${l.host}:${l.port}${workers > 1 ? ` (${workers} workers)` : ''}`);
    };
    if (workers > 1 && !isClusterWorker()) {
      // The primary: the workers run this same command line and serve.
      return runPrimary({
        workers,
        onListening: (summary, workerPids) => print({ ...(summary as Parameters<typeof print>[0]), pid: process.pid, workers: workerPids } as Parameters<typeof print>[0]),
        say: (line) => ctx.err(line),
      });
    }
    // One spool per process: a cluster worker keeps its slot's spool across restarts.
    const slot = ctx.env.SEKISHO_WORKER_SLOT;
    // A worker's /metrics counts every worker: the primary gathers them (bound to the gateway once it exists).
    let renderLocal = () => '';
    const groupMetrics = isClusterWorker() ? workerMetrics(() => renderLocal()) : undefined;
    const setup = await openGateway(cfg, { passphrase: () => caPassphrase(ctx.env, ctx.isTTY), pin: () => ctx.env.SEKISHO_PIN ?? '', ...(slot ? { spoolName: `gateway-${slot}` } : {}), ...(groupMetrics ? { groupMetrics } : {}), ...(workerOwnsSockets() ? { reusePort: true } : {}) });
    renderLocal = () => setup.gateway.renderLocalMetrics();
    // Signal handlers first: a supervisor may stop the gateway as soon as it reads the summary.
    const stopped = untilStopped({ reload: () => setup.gateway.reload(), close: (graceMs) => setup.close(graceMs) });
    const summary = { listeners: setup.gateway.addresses(), admin: setup.gateway.adminAddress(), profile: cfg.profile, home: cfg.home, pid: process.pid };
    if (isClusterWorker()) notifyListening(summary);
    else print(summary);
    await stopped;
    leaveCluster();
    return 0;
  },
};
