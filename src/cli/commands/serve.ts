import { resolveHome, type CertificateAuthority } from '../../ca/index.js';
import { jsonLogger, type HostPort } from '../../gateway/index.js';
import { parseListenAddress, startServeStack, untilStopped, type ServeSummary } from '../../stack/index.js';
import type { Command, CommandContext } from '../command.js';
import { tokenPin } from '../authority.js';
import { caPassphrase } from '../secrets.js';
import { gatewayCommand, gatewayConfigFromFlags } from './gateway.js';

export const DEFAULT_GATEWAY_LISTEN = '127.0.0.1:8443';
export const DEFAULT_PORTAL_LISTEN = '127.0.0.1:8080';
export const DEFAULT_REVOCATION_LISTEN = '127.0.0.1:8081';
export const DEFAULT_CONSOLE_LISTEN = '127.0.0.1:8444';

/** --console-listen: HOST:PORT, or "off". */
export const CONSOLE_LISTEN_OPTION = {
  'console-listen': {
    type: 'string',
    description: `address of the operators' web console over HTTPS, operator certificates only (default ${DEFAULT_CONSOLE_LISTEN}; "off" for none; keep it on loopback or an office network)`,
    valueName: 'HOST:PORT',
  },
} as const;

export function consoleListen(v: CommandContext['values'], fallback: string = DEFAULT_CONSOLE_LISTEN): HostPort | undefined {
  const given = (v['console-listen'] as string | undefined) ?? fallback;
  return given === 'off' ? undefined : parseListenAddress(given, '--console-listen');
}

/** --revocation-listen: HOST:PORT, or "off". */
export const REVOCATION_LISTEN_OPTION = {
  'revocation-listen': {
    type: 'string',
    description: `address of the plain-HTTP revocation listener: CRLs, OCSP and the CA certificates only (default ${DEFAULT_REVOCATION_LISTEN}; "off" for none)`,
    valueName: 'HOST:PORT',
  },
} as const;

export function revocationListen(v: CommandContext['values'], fallback: string = DEFAULT_REVOCATION_LISTEN): HostPort | undefined {
  const given = (v['revocation-listen'] as string | undefined) ?? fallback;
  return given === 'off' ? undefined : parseListenAddress(given, '--revocation-listen');
}

/** The gateway's flags with serve's default listen address (unless a --config file describes the listeners). */
function withDefaults(v: CommandContext['values']): CommandContext['values'] {
  return v.config === undefined && v.listen === undefined ? { ...v, listen: DEFAULT_GATEWAY_LISTEN } : v;
}

/** Unlocks the CA as every other command does: a token PIN for a token-held key, else the passphrase. */
export function unlockFor(ctx: CommandContext): (ca: CertificateAuthority) => Promise<void> {
  return async (ca) => (ca.issuingKeyRef() ? ca.unlockWithToken(await tokenPin(ctx)) : ca.unlock(await caPassphrase(ctx.env, ctx.isTTY)));
}

export function summaryLines(s: ServeSummary): string[] {
  return [
    `  portal (enrollment, EST, CRL, OCSP)  ${s.portal.url}`,
    ...(s.revocation ? [`  revocation (CRL, OCSP over http)     ${s.revocation.url}`] : []),
    ...(s.console ? [`  console (operators, certificate)     ${s.console.url}`] : []),
    ...(s.revocation && s.revocation.published !== `${s.revocation.url.replace(/\/$/, '')}`
      ? [`    certificates point to              ${s.revocation.published ?? 'nowhere (set urls.revocation: sekisho init --revocation-url)'}`]
      : []),
    ...s.gateway.listeners.map((l) => `  ${`gateway (mutual TLS${s.gateway.listeners.length > 1 ? `, ${l.name}` : ''})`.padEnd(37)}${l.url}`),
    ...(s.selfCheck ? [`  self-check (any TLS version)         ${s.selfCheck.url}`] : []),
    ...(s.gateway.admin ? [`  gateway admin                        http://${s.gateway.admin.host}:${s.gateway.admin.port}/status`] : []),
  ];
}

export const serveCommand: Command = {
  path: ['serve'],
  summary: "run the gateway and the CA's HTTP endpoints (portal, EST, CRL, OCSP) in one process",
  usage: 'serve --upstream URL [--listen HOST:PORT] [--portal HOST:PORT] [gateway options] | sekisho serve --config FILE [--portal HOST:PORT]',
  options: {
    ...gatewayCommand.options,
    listen: { ...gatewayCommand.options.listen!, description: `address to accept gateway clients on (default ${DEFAULT_GATEWAY_LISTEN})` },
    portal: { type: 'string', description: `address of the enrollment portal, EST, CRL and OCSP over HTTPS (default ${DEFAULT_PORTAL_LISTEN}; port 0 picks one)`, valueName: 'HOST:PORT' },
    'portal-url': { type: 'string', description: 'public URL of the portal, when clients reach it by another name', valueName: 'URL' },
    ...REVOCATION_LISTEN_OPTION,
    ...CONSOLE_LISTEN_OPTION,
  },
  validators: (gatewayCommand.validators ?? []).map((check) => (v, positionals) => check(withDefaults(v), positionals)),
  async run(ctx) {
    const values = withDefaults(ctx.values);
    const cfg = gatewayConfigFromFlags(values, ctx.env);
    const home = cfg.home ?? resolveHome(values.home as string | undefined, ctx.env);
    const db = cfg.db ?? (values.db as string | undefined) ?? ctx.env.SEKISHO_DB;
    const portal = parseListenAddress((values.portal as string | undefined) ?? DEFAULT_PORTAL_LISTEN, '--portal');
    const revocation = revocationListen(values);
    const consoleAt = consoleListen(values);
    const stack = await startServeStack({
      ...(consoleAt ? { console: consoleAt } : {}),
      ...(revocation ? { revocation } : {}),
      gateway: cfg,
      home,
      ...(db ? { db } : {}),
      portal,
      ...(values['portal-url'] ? { portalUrl: values['portal-url'] as string } : {}),
      unlock: unlockFor(ctx),
      log: jsonLogger(cfg.logLevel, (l) => ctx.err(l.replace(/\n$/, ''))),
    });
    // Signals are handled before the summary is printed: whoever reads it may stop the server at once.
    const stopped = untilStopped(stack);
    const summary = stack.summary();
    if (values.json) ctx.json(summary);
    else ctx.out([`sekisho serve: CA home ${home} (profile ${summary.profile}); stop with Ctrl-C or SIGTERM, reload with SIGHUP`, ...summaryLines(summary)].join('\n'));
    await stopped;
    return 0;
  },
};
