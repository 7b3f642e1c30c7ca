import { badRequest } from '../../errors/index.js';
import { loadAgentConfig, type AgentToken, type PinSource } from '../../agent/index.js';
import { runDoctor, type DoctorReport, type DoctorTarget } from '../../agent/index.js';
import { parsePkcs11Uri } from '../../token/index.js';
import { JSON_OPTION, type Command, type CommandContext } from '../command.js';

const SYMBOL = { ok: '✔', warn: '!', fail: '✖', skipped: '-' } as const;

function hostPort(s: string, flag: string): { host: string; port: number } {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\s[\]/]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw badRequest('DOCTOR_ARGUMENT_INVALID', `${flag} "${s.slice(0, 80)}" is not HOST:PORT (e.g. gw.center.example:8443)`);
  return { host: m[1]!, port };
}

/** The flags, when no --config is given (or on top of it). Validated here; the PIN never comes from argv. */
function fromFlags(v: CommandContext['values']): DoctorTarget {
  if (!v.center || !v['root-thumbprint']) throw badRequest('DOCTOR_ARGUMENT_INVALID', 'give --config agent.yaml, or --center HOST:PORT and --root-thumbprint HEX');
  const center = hostPort(v.center as string, '--center');
  const thumb = (v['root-thumbprint'] as string).replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(thumb)) throw badRequest('DOCTOR_ARGUMENT_INVALID', '--root-thumbprint must be the SHA-256 thumbprint from the notice letter: 64 hex digits (colons allowed)');
  let token: AgentToken | undefined;
  if (v.token) {
    const s = v.token as string;
    if (s.startsWith('software:')) token = { kind: 'software', file: s.slice('software:'.length), key: (v.key as string | undefined) ?? 'facility' };
    else if (s.startsWith('pkcs11:')) {
      const u = parsePkcs11Uri(s);
      if (u.pinValue !== undefined) throw badRequest('DOCTOR_ARGUMENT_INVALID', '--token must not carry a PIN (pin-value); give --pin-env or --pin-file');
      if (!v.module && !u.modulePath) throw badRequest('DOCTOR_ARGUMENT_INVALID', 'a pkcs11: token needs --module PATH');
      if (u.object === undefined || (u.token === undefined && u.slotId === undefined)) throw badRequest('DOCTOR_ARGUMENT_INVALID', 'the pkcs11: URI must name the token (token=…) and the key (object=…)');
      token = { kind: 'pkcs11', uri: s, module: (v.module as string | undefined) ?? u.modulePath! };
    } else throw badRequest('DOCTOR_ARGUMENT_INVALID', '--token must be software:PATH or a pkcs11: URI');
  }
  return {
    center,
    serverName: (v['server-name'] as string | undefined) ?? center.host,
    rootThumbprint: thumb,
    ...(v.root ? { rootFile: v.root as string } : {}),
    profile: 'high',
    ...(token ? { token } : {}),
  };
}

function pinSource(v: CommandContext['values']): PinSource | undefined {
  if (v['pin-env']) return { env: v['pin-env'] as string };
  if (v['pin-file']) return { file: v['pin-file'] as string };
  return undefined;
}

function proxy(v: CommandContext['values']): URL | undefined {
  if (!v['http-proxy']) return undefined;
  let u: URL;
  try {
    u = new URL(v['http-proxy'] as string);
  } catch {
    throw badRequest('DOCTOR_ARGUMENT_INVALID', '--http-proxy must be a URL like http://proxy.clinic.example:3128');
  }
  if (u.protocol !== 'http:' || u.username || u.password) throw badRequest('DOCTOR_ARGUMENT_INVALID', '--http-proxy must be http://HOST:PORT, without credentials');
  return u;
}

export function textOf(r: DoctorReport): string {
  const lines = [`sekisho doctor — ${r.center} (${r.serverName})  ${r.checkedAt}`, ''];
  for (const s of r.results) {
    lines.push(`${SYMBOL[s.status]} ${s.step.padEnd(18)} ${s.status.padEnd(7)} ${s.code}`);
    lines.push(`    ${s.message.ja}`);
    lines.push(`    ${s.message.en}`);
    if (s.fix) {
      lines.push(`    → ${s.fix.ja}`);
      lines.push(`    → ${s.fix.en}`);
    }
  }
  lines.push('', r.outcome === 'ok' ? '結果: 問題は見つかりませんでした。 / Result: no problem found.' : '結果: 問題が見つかりました（✖ の項目）。 / Result: problems found (the ✖ steps).');
  return `${lines.join('\n')}\n`;
}

export const doctorCommand: Command = {
  path: ['doctor'],
  summary: 'diagnose this facility\'s connection to the center, step by step, in Japanese and English (exit 0 ok, 1 problems, 2 could not run)',
  usage: 'doctor --config agent.yaml | --center HOST:PORT --root-thumbprint HEX [--server-name N] [--root FILE] [--token software:PATH|pkcs11:URI --module PATH] [--pin-env NAME|--pin-file PATH] [--http-proxy URL]',
  options: {
    config: { type: 'string', description: 'the agent\'s configuration (center, root thumbprint, token, PIN source)', valueName: 'FILE' },
    center: { type: 'string', description: 'the center\'s gateway', valueName: 'HOST:PORT' },
    'root-thumbprint': { type: 'string', description: 'SHA-256 thumbprint of the root certificate, from the notice letter', valueName: 'HEX' },
    'server-name': { type: 'string', description: 'name in the center\'s certificate (default: the host)', valueName: 'NAME' },
    root: { type: 'string', description: 'the root certificate (PEM or DER), when the center does not send it', valueName: 'FILE' },
    token: { type: 'string', description: 'software:PATH (sekisho software token) or a pkcs11: URI naming token and key', valueName: 'TOKEN' },
    key: { type: 'string', description: 'key label in a software token (default facility)', valueName: 'LABEL' },
    module: { type: 'string', description: 'PKCS#11 module for a pkcs11: token', valueName: 'PATH' },
    'pin-env': { type: 'string', description: 'environment variable holding the token PIN (default SEKISHO_PIN)', valueName: 'NAME' },
    'pin-file': { type: 'string', description: 'file holding the token PIN (mode 600)', valueName: 'PATH' },
    'http-proxy': { type: 'string', description: 'the clinic\'s HTTP proxy, reached with CONNECT', valueName: 'URL' },
    timeout: { type: 'string', description: 'per network operation in milliseconds (default 5000)', valueName: 'MS' },
    ...JSON_OPTION,
  },
  validators: [
    (v) => (v['pin-env'] !== undefined && v['pin-file'] !== undefined ? 'give at most one of --pin-env, --pin-file' : undefined),
    (v) => (v.config === undefined && (v.center === undefined || v['root-thumbprint'] === undefined) ? 'give --config FILE, or --center and --root-thumbprint' : undefined),
    (v) => (v.config !== undefined && (v.center !== undefined || v['root-thumbprint'] !== undefined || v.token !== undefined) ? '--config already names the center, the root and the token; do not repeat them as flags' : undefined),
  ],
  failureExitCode: 2,
  async run(ctx) {
    const v = ctx.values;
    let target: DoctorTarget;
    if (v.config) {
      const c = loadAgentConfig(v.config as string);
      target = {
        center: c.center.gateway,
        serverName: (v['server-name'] as string | undefined) ?? c.center.serverName,
        rootThumbprint: c.center.rootThumbprint,
        rootFile: (v.root as string | undefined) ?? c.center.root,
        profile: c.center.profile,
        token: c.credential.token,
        pin: c.credential.pin === 'prompt' ? { env: 'SEKISHO_PIN' } : c.credential.pin,
      };
    } else target = fromFlags(v);
    const pin = pinSource(v);
    if (pin) target.pin = pin;
    const p = proxy(v);
    if (p) target.httpProxy = p;
    const timeoutMs = v.timeout === undefined ? 5000 : Number(v.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 60_000) throw badRequest('DOCTOR_ARGUMENT_INVALID', '--timeout must be 100–60000 ms');
    const report = await runDoctor(target, { env: ctx.env, timeoutMs });
    if (v.json) ctx.json(report);
    else ctx.out(textOf(report));
    return report.outcome === 'ok' ? 0 : 1;
  },
};
