import { resolveHome, type CertificateAuthority } from '../../ca/index.js';
import { jsonLogger } from '../../gateway/index.js';
import { parseListenAddress, startServeStack, untilStopped, type ServeSummary } from '../../stack/index.js';
import type { Command, CommandContext } from '../command.js';
import { tokenPin } from '../authority.js';
import { caPassphrase } from '../secrets.js';
import { gatewayCommand, gatewayConfigFromFlags } from './gateway.js';

export const DEFAULT_GATEWAY_LISTEN = '127.0.0.1:8443';
export const DEFAULT_PORTAL_LISTEN = '127.0.0.1:8080';

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
    ...s.gateway.listeners.map((l) => `  ${`gateway (mutual TLS${s.gateway.listeners.length > 1 ? `, ${l.name}` : ''})`.padEnd(37)}${l.url}`),
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
  },
  validators: (gatewayCommand.validators ?? []).map((check) => (v, positionals) => check(withDefaults(v), positionals)),
  async run(ctx) {
    const values = withDefaults(ctx.values);
    const cfg = gatewayConfigFromFlags(values, ctx.env);
    const home = cfg.home ?? resolveHome(values.home as string | undefined, ctx.env);
    const db = cfg.db ?? (values.db as string | undefined) ?? ctx.env.SEKISHO_DB;
    const portal = parseListenAddress((values.portal as string | undefined) ?? DEFAULT_PORTAL_LISTEN, '--portal');
    const stack = await startServeStack({
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
