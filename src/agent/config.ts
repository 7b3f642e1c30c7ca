/**
 * The facility agent's configuration: one YAML file, strict. An unknown key
 * or a bad value is refused with the path of the key (`center.gateway`,
 * `listen.tcp[1].listen`), code AGENT_CONFIG_INVALID, before anything listens.
 *
 *   center:
 *     gateway: gw.center.example:8443      # mutual-TLS HTTP gateway
 *     tcp: gw.center.example:2575          # mutual-TLS TCP gateway (optional)
 *     serverName: gw.center.example        # name checked in the certificate (default: the gateway host)
 *     rootThumbprint: 3f…                  # SHA-256 of the root certificate, from the notice letter
 *     root: /etc/sekisho-agent/root.pem    # the root certificate (default: root.pem beside this file)
 *     est: https://ca.center.example:8444  # EST base URL for renewal (optional)
 *     profile: high                        # TLS profile: high | recommended
 *   credential:
 *     token: software:/var/lib/sekisho-agent/token.json   # or pkcs11:token=…;object=…
 *     module: /usr/lib/softhsm/libsofthsm2.so            # PKCS#11 only
 *     key: facility                                      # key label (software token; pkcs11 takes object=)
 *     pin: { env: SEKISHO_PIN } | { file: /etc/sekisho-agent/pin } | prompt
 *   listen:
 *     httpProxy: 127.0.0.1:3128
 *     tcp: [{ listen: 127.0.0.1:2575, to: gw.center.example:2575 }]
 *     allowUsers: [reception, emr]         # local accounts served (default: all)
 *   renewal: { before: 30d, checkEvery: 1h }
 *   status: 127.0.0.1:9180
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { badRequest, notFound } from '../errors/index.js';
import { parsePkcs11Uri } from '../token/index.js';

export interface HostPort {
  host: string;
  port: number;
}

export type PinSource = { env: string } | { file: string } | 'prompt';

export type AgentToken = { kind: 'software'; file: string; key: string } | { kind: 'pkcs11'; uri: string; module: string };

export interface AgentConfig {
  center: {
    gateway: HostPort;
    tcp?: HostPort;
    serverName: string;
    /** Lower-case hex, no colons. */
    rootThumbprint: string;
    /** The root certificate file (PEM); checked against rootThumbprint at start. */
    root: string;
    est?: URL;
    profile: 'high' | 'recommended';
  };
  credential: { token: AgentToken; pin: PinSource };
  /** allowUsers: local accounts (names or uids) whose connections are served; absent: every local account. */
  listen: { httpProxy?: HostPort; tcp: { listen: HostPort; to: HostPort }[]; allowUsers?: (string | number)[] };
  renewal: { beforeMs: number; checkEveryMs: number };
  status?: HostPort;
}

const CODE = 'AGENT_CONFIG_INVALID';
const fail = (where: string, what: string) => badRequest(CODE, `${where}: ${what}`, { ja: `設定ファイルの ${where} が正しくありません: ${what}` });

type Obj = Record<string, unknown>;

function object(v: unknown, where: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(where, 'must be a mapping');
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw fail(`${where === 'configuration' ? '' : `${where}.`}${k}`, `unknown key (allowed in ${where}: ${keys.join(', ')})`);
  return v as Obj;
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || !v) throw fail(where, 'must be a non-empty string');
  return v;
}

/** HOST:PORT (port 1–65535; 0 only where `anyPort`), e.g. 127.0.0.1:3128 or [::1]:3128. */
export function parseHostPort(v: unknown, where: string, anyPort = false): HostPort {
  const s = str(v, where);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]/]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535 || (port === 0 && !anyPort)) throw fail(where, `"${s.slice(0, 80)}" is not HOST:PORT (e.g. 127.0.0.1:3128 or [::1]:3128)`);
  return { host: m[1] ?? m[2]!, port };
}

/** A loopback address: 127.0.0.0/8 or ::1 (`localhost` is refused: it may resolve elsewhere). */
export function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/** A local listener: loopback only, so no other machine can use the facility's credential through it. */
function localListen(v: unknown, where: string): HostPort {
  const hp = parseHostPort(v, where, true);
  if (!isLoopback(hp.host)) {
    throw badRequest('AGENT_LISTEN_NOT_LOOPBACK', `${where}: ${hp.host} is not a loopback address; the agent listens on 127.0.0.1 or [::1] only, so no other machine can use the facility's credential`, {
      ja: `${where}: ${hp.host} はループバックアドレスではありません。施設の証明書を他の端末から使われないよう、127.0.0.1 か [::1] だけで待ち受けます。`,
    });
  }
  return hp;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration like 30d, 12h, 90m, 45s. */
export function parseDuration(v: unknown, where: string): number {
  const s = str(v, where);
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(s);
  if (!m || Number(m[1]) === 0) throw fail(where, `"${s.slice(0, 40)}" is not a duration (a whole number and s, m, h or d, e.g. 30d)`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

function pinSource(v: unknown, where: string, base: string): PinSource {
  if (v === 'prompt') return 'prompt';
  if (typeof v === 'string') throw fail(where, 'give { env: NAME }, { file: PATH } or prompt (a PIN is never written in the configuration)');
  const o = object(v, where, ['env', 'file']);
  if ((o.env === undefined) === (o.file === undefined)) throw fail(where, 'give exactly one of env or file');
  if (o.env !== undefined) {
    const name = str(o.env, `${where}.env`);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw fail(`${where}.env`, `"${name.slice(0, 40)}" is not an environment variable name`);
    return { env: name };
  }
  return { file: resolve(base, str(o.file, `${where}.file`)) };
}

function token(o: Obj, base: string): AgentToken {
  const t = str(o.token, 'credential.token');
  if (t.startsWith('software:')) {
    const file = t.slice('software:'.length);
    if (!file) throw fail('credential.token', 'software: needs the token file, e.g. software:/var/lib/sekisho-agent/token.json');
    if (o.module !== undefined) throw fail('credential.module', 'a PKCS#11 module goes with a pkcs11: token, not a software token');
    const key = o.key === undefined ? 'facility' : str(o.key, 'credential.key');
    return { kind: 'software', file: resolve(base, file), key };
  }
  if (t.startsWith('pkcs11:')) {
    let u;
    try {
      u = parsePkcs11Uri(t);
    } catch (e) {
      throw fail('credential.token', (e as Error).message);
    }
    if (u.pinValue !== undefined || u.pinSource !== undefined) throw fail('credential.token', 'the URI must not carry a PIN (pin-value / pin-source); use credential.pin');
    if (u.token === undefined && u.slotId === undefined && u.serial === undefined) throw fail('credential.token', 'the URI must name the token (token=LABEL, serial=… or slot-id=N)');
    if (o.key !== undefined) throw fail('credential.key', 'a pkcs11: token names its key in the URI (object=LABEL)');
    if (u.object === undefined) throw fail('credential.token', 'the URI must name the key (object=LABEL)');
    const module = o.module === undefined ? u.modulePath : str(o.module, 'credential.module');
    if (!module) throw fail('credential.module', 'a pkcs11: token needs the module (e.g. /usr/lib/softhsm/libsofthsm2.so)');
    return { kind: 'pkcs11', uri: t, module: resolve(base, module) };
  }
  throw fail('credential.token', 'must start with software: (a sekisho software token file) or pkcs11: (an RFC 7512 URI)');
}

const TOP_KEYS = ['center', 'credential', 'listen', 'renewal', 'status'] as const;

/** Validates a configuration object. Relative paths are resolved against `base` (the file's directory). */
export function parseAgentConfig(raw: unknown, base = process.cwd()): AgentConfig {
  const o = object(raw, 'configuration', TOP_KEYS);
  if (o.center === undefined) throw fail('center', 'is required (the service center: gateway, rootThumbprint)');
  if (o.credential === undefined) throw fail('credential', 'is required (the token holding the facility key, and where its PIN comes from)');
  const c = object(o.center, 'center', ['gateway', 'tcp', 'serverName', 'rootThumbprint', 'root', 'est', 'profile']);
  const gateway = parseHostPort(c.gateway, 'center.gateway');
  const thumb = str(c.rootThumbprint, 'center.rootThumbprint').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(thumb)) throw fail('center.rootThumbprint', 'must be the SHA-256 thumbprint of the root certificate (64 hex digits, colons allowed), as printed on the notice letter');
  const profile = c.profile === undefined ? 'high' : c.profile;
  if (profile !== 'high' && profile !== 'recommended') throw fail('center.profile', 'must be high or recommended');
  let est: URL | undefined;
  if (c.est !== undefined) {
    const s = str(c.est, 'center.est');
    try {
      est = new URL(s);
    } catch {
      throw fail('center.est', `"${s.slice(0, 80)}" is not a URL (e.g. https://ca.center.example:8444)`);
    }
    if (est.protocol !== 'https:') throw fail('center.est', 'must be an https:// URL');
  }
  const serverName = c.serverName === undefined ? gateway.host : str(c.serverName, 'center.serverName');
  const cr = object(o.credential, 'credential', ['token', 'module', 'key', 'pin']);
  if (cr.pin === undefined) throw fail('credential.pin', 'is required: { env: NAME }, { file: PATH } or prompt');
  const cfg: AgentConfig = {
    center: {
      gateway,
      ...(c.tcp !== undefined ? { tcp: parseHostPort(c.tcp, 'center.tcp') } : {}),
      serverName,
      rootThumbprint: thumb,
      root: resolve(base, c.root === undefined ? 'root.pem' : str(c.root, 'center.root')),
      ...(est ? { est } : {}),
      profile,
    },
    credential: { token: token(cr, base), pin: pinSource(cr.pin, 'credential.pin', base) },
    listen: { tcp: [] },
    renewal: { beforeMs: 30 * UNITS.d!, checkEveryMs: UNITS.h! },
  };
  if (o.listen !== undefined) {
    const l = object(o.listen, 'listen', ['httpProxy', 'tcp', 'allowUsers']);
    if (l.allowUsers !== undefined) {
      if (!Array.isArray(l.allowUsers) || !l.allowUsers.length) throw fail('listen.allowUsers', 'must be a non-empty list of user names or uids');
      cfg.listen.allowUsers = l.allowUsers.map((u, i) => {
        if (typeof u === 'number' && Number.isInteger(u) && u >= 0) return u;
        if (typeof u === 'string' && /^[a-z_][a-z0-9_.-]{0,31}\$?$/i.test(u)) return u;
        throw fail(`listen.allowUsers[${i}]`, 'must be a user name or a uid');
      });
    }
    if (l.httpProxy !== undefined) cfg.listen.httpProxy = localListen(l.httpProxy, 'listen.httpProxy');
    if (l.tcp !== undefined) {
      if (!Array.isArray(l.tcp)) throw fail('listen.tcp', 'must be a list of { listen, to }');
      cfg.listen.tcp = l.tcp.map((x, i) => {
        const w = `listen.tcp[${i}]`;
        const t = object(x, w, ['listen', 'to']);
        const to = t.to === undefined ? cfg.center.tcp : parseHostPort(t.to, `${w}.to`);
        if (!to) throw fail(`${w}.to`, 'is required when center.tcp is not set');
        return { listen: localListen(t.listen, `${w}.listen`), to };
      });
    }
  }
  if (!cfg.listen.httpProxy && !cfg.listen.tcp.length) throw fail('listen', 'give listen.httpProxy or at least one listen.tcp forward; otherwise the agent has nothing to do');
  if (o.renewal !== undefined) {
    const r = object(o.renewal, 'renewal', ['before', 'checkEvery']);
    if (r.before !== undefined) cfg.renewal.beforeMs = parseDuration(r.before, 'renewal.before');
    if (r.checkEvery !== undefined) cfg.renewal.checkEveryMs = parseDuration(r.checkEvery, 'renewal.checkEvery');
  }
  if (o.status !== undefined) cfg.status = localListen(o.status, 'status');
  return cfg;
}

/** Reads and validates the agent's YAML configuration file. */
export function loadAgentConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('AGENT_CONFIG_MISSING', `${path} does not exist; write the agent configuration there (see docs/agent.md)`, { ja: `${path} がありません。エージェントの設定ファイルを作成してください(docs/agent.md)。` });
    throw badRequest(CODE, `${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { uniqueKeys: true });
  } catch (e) {
    throw badRequest(CODE, `${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseAgentConfig(raw, dirname(resolve(path)));
}
