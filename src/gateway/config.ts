import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { badRequest } from '../errors/index.js';
import { checkDatedExceptions, type DatedException } from '../policy/index.js';
import type { AccessRule } from './access-rule.js';
import type { HostPort, ListenerConfig } from './gateway.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { checkRoutePath } from './request-target.js';
import { parseLimitsSetting, type LimitsSetting } from '../listener/index.js';
import { DEFAULT_AUDIT_SETTING, parseAuditSetting, type AuditSetting } from '../audit/index.js';
import { parseTimeSetting, type TimeSetting } from '../time/index.js';

/**
 * The gateway's configuration: from a YAML file (several listeners and
 * routes) or from command-line flags (one listener). Strict: an unknown key
 * is an error naming where it is, and every rule sits beside its field.
 */
export interface GatewayConfig {
  /** A profile name (high, recommended, …) or a profile JSON file. */
  profile: string;
  /** CA home: trust anchors, revocations and facility status from its store, server certificate. */
  home?: string;
  /** The store: with home, the CA's (default its SQLite file); without, a gateway apart from the CA follows it here (PostgreSQL). */
  db?: string;
  /** A gateway apart from the CA with a database: where it keeps its own state (the audit spool). */
  stateDir?: string;
  /** Explicit server credential: a PEM key file, or a `pkcs11:` URI of a key in a token (with the module; PIN from SEKISHO_PIN). */
  tls?: { cert: string; key: string; module?: string };
  clientCa: string[];
  pins: string[];
  crl: string[];
  revocation: {
    refreshSeconds: number;
    /** CA home: a full re-read of the store's revocations and facility status this often (the follow in between reads changes only). */
    resyncSeconds: number;
    onStale: 'fail-closed' | 'fail-open';
    /** Reads of the store failing this long raise the alarm (log, /status, metric) and, fail-closed, refuse everyone (REVOCATION_UNAVAILABLE). */
    staleAfterSeconds: number;
  };
  exceptions: DatedException[];
  admin?: HostPort;
  contact?: string;
  logLevel: LogLevel;
  /** Host names and addresses the home-issued server certificate covers. */
  serverNames: string[];
  listeners: ListenerConfig[];
  /** Timeouts and connection caps per kind of listener (gateway, portal, admin) and the file-descriptor budget. */
  limits: LimitsSetting;
  /** How refusals of clients without an identity are summed in the audit trail. */
  refusals: { intervalSeconds: number; maxAddresses: number };
  /** CA home: syslog collectors the trail is sent to, and the local spool's bounds (see docs/audit.md). */
  audit: AuditSetting;
  /** Where the host clock is checked (NTP server, the database), how far off it may be, how often; absent: not checked. */
  time?: TimeSetting;
}

const fail = (where: string, what: string) => badRequest('GATEWAY_CONFIG_INVALID', `${where}: ${what}`);

type Obj = Record<string, unknown>;

function object(v: unknown, where: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(where, 'must be a mapping');
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw fail(where, `unknown key "${k}" (allowed: ${keys.join(', ')})`);
  return v as Obj;
}
function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || !v) throw fail(where, 'must be a non-empty string');
  return v;
}
function strings(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw fail(where, 'must be a list');
  return v.map((x, i) => str(x, `${where}[${i}]`));
}

/** HOST:PORT (port 0: any free port), e.g. 127.0.0.1:8443 or [::1]:8443. */
export function parseHostPort(v: string, where: string, code = 'GATEWAY_CONFIG_INVALID'): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw badRequest(code, `${where} "${v.slice(0, 80)}" is not HOST:PORT (e.g. 127.0.0.1:8443 or [::1]:8443)`);
  return { host: m[1] ?? m[2]!, port };
}

function upstreamUrl(v: string, where: string, scheme: 'http' | 'tcp'): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw fail(where, `"${v}" is not a URL (e.g. ${scheme}://127.0.0.1:9000)`);
  }
  if (u.protocol !== `${scheme}:`) throw fail(where, `"${v}" must be a ${scheme}:// URL${scheme === 'http' ? ' (the upstream is reached in plain HTTP on a trusted network)' : ''}`);
  if (!u.port && scheme === 'tcp') throw fail(where, `"${v}" needs a port`);
  return u;
}

function accessRule(v: unknown, where: string): AccessRule {
  if (v === undefined) throw fail(where, 'allow is required; write "allow: { anyone: true }" to let every authenticated client in, or list facilities / profiles');
  const o = object(v, where, ['anyone', 'facilities', 'profiles']);
  const rule: AccessRule = {};
  if (o.anyone !== undefined) {
    if (typeof o.anyone !== 'boolean') throw fail(`${where}.anyone`, 'must be true or false');
    rule.anyone = o.anyone;
  }
  const facilities = strings(o.facilities, `${where}.facilities`);
  for (const f of facilities) if (!/^\d{10}$/.test(f)) throw fail(`${where}.facilities`, `"${f}" is not a 10-digit facility number`);
  const profiles = strings(o.profiles, `${where}.profiles`);
  for (const p of profiles) if (!['facility', 'device', 'other'].includes(p)) throw fail(`${where}.profiles`, `"${p}" is not facility, device or other`);
  if (facilities.length) rule.facilities = facilities;
  if (profiles.length) rule.profiles = profiles as AccessRule['profiles'];
  return rule;
}

function listener(v: unknown, i: number): ListenerConfig {
  const where = `listeners[${i}]`;
  const o = object(v, where, ['name', 'mode', 'listen', 'routes', 'upstream', 'proxyProtocol', 'allow']);
  const name = o.name === undefined ? `listener-${i + 1}` : str(o.name, `${where}.name`);
  const listen = parseHostPort(str(o.listen, `${where}.listen`), `${where}.listen`);
  const mode = o.mode ?? 'http';
  if (mode === 'http') {
    if (o.upstream !== undefined || o.proxyProtocol !== undefined || o.allow !== undefined) throw fail(where, 'an http listener takes routes (path, upstream, allow), not upstream/proxyProtocol/allow');
    if (!Array.isArray(o.routes) || !o.routes.length) throw fail(`${where}.routes`, 'an http listener needs at least one route');
    const routes = o.routes.map((r, j) => {
      const rw = `${where}.routes[${j}]`;
      const ro = object(r, rw, ['path', 'upstream', 'allow']);
      const path = ro.path === undefined ? '/' : str(ro.path, `${rw}.path`);
      const bad = checkRoutePath(path);
      if (bad) throw fail(`${rw}.path`, `"${path}" ${bad}`);
      return { path, upstream: upstreamUrl(str(ro.upstream, `${rw}.upstream`), `${rw}.upstream`, 'http'), allow: accessRule(ro.allow, `${rw}.allow`) };
    });
    return { name, mode: 'http', listen, routes };
  }
  if (mode === 'tcp') {
    if (o.routes !== undefined) throw fail(where, 'a tcp listener takes upstream and allow, not routes');
    const u = upstreamUrl(str(o.upstream, `${where}.upstream`), `${where}.upstream`, 'tcp');
    if (o.proxyProtocol !== undefined && typeof o.proxyProtocol !== 'boolean') throw fail(`${where}.proxyProtocol`, 'must be true or false');
    return { name, mode: 'tcp', listen, upstream: { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) }, proxyProtocol: o.proxyProtocol === true, allow: accessRule(o.allow, `${where}.allow`) };
  }
  throw fail(`${where}.mode`, `"${String(mode)}" is not http or tcp`);
}

const TOP_KEYS = ['profile', 'home', 'db', 'stateDir', 'tls', 'clientCa', 'pins', 'crl', 'revocation', 'exceptions', 'admin', 'contact', 'log', 'serverNames', 'listeners', 'limits', 'refusals', 'audit', 'time'] as const;

/** Validates a configuration object (from YAML or built from flags). Relative paths are resolved against `base`. */
export function parseGatewayConfig(raw: unknown, base = process.cwd()): GatewayConfig {
  const o = object(raw, 'configuration', TOP_KEYS);
  const path = (p: string) => (/^https?:\/\//.test(p) ? p : resolve(base, p));
  const profile = o.profile === undefined ? 'high' : str(o.profile, 'profile');
  const cfg: GatewayConfig = {
    profile: /\.json$/.test(profile) ? path(profile) : profile,
    clientCa: strings(o.clientCa, 'clientCa').map(path),
    pins: strings(o.pins, 'pins'),
    crl: strings(o.crl, 'crl').map(path),
    revocation: { refreshSeconds: 1, resyncSeconds: 600, onStale: 'fail-closed', staleAfterSeconds: 30 },
    exceptions: [],
    logLevel: 'info',
    serverNames: strings(o.serverNames, 'serverNames'),
    listeners: [],
    limits: o.limits === undefined ? {} : parseLimitsSetting(o.limits, 'limits', 'GATEWAY_CONFIG_INVALID'),
    refusals: { intervalSeconds: 10, maxAddresses: 1000 },
    audit: o.audit === undefined ? DEFAULT_AUDIT_SETTING : parseAuditSetting(o.audit, 'audit', 'GATEWAY_CONFIG_INVALID', base),
  };
  if (o.refusals !== undefined) {
    const r = object(o.refusals, 'refusals', ['intervalSeconds', 'maxAddresses']);
    if (r.intervalSeconds !== undefined) {
      if (typeof r.intervalSeconds !== 'number' || !(r.intervalSeconds >= 1 && r.intervalSeconds <= 3600)) throw fail('refusals.intervalSeconds', 'must be a number of seconds from 1 to 3600');
      cfg.refusals.intervalSeconds = r.intervalSeconds;
    }
    if (r.maxAddresses !== undefined) {
      if (!Number.isInteger(r.maxAddresses) || !((r.maxAddresses as number) >= 1 && (r.maxAddresses as number) <= 100_000)) throw fail('refusals.maxAddresses', 'must be a whole number from 1 to 100000');
      cfg.refusals.maxAddresses = r.maxAddresses as number;
    }
  }
  for (const p of cfg.pins) if (!/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/.test(p)) throw fail('pins', `"${p}" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
  if (o.home !== undefined) cfg.home = path(str(o.home, 'home'));
  if (o.db !== undefined) cfg.db = str(o.db, 'db');
  if (o.stateDir !== undefined) cfg.stateDir = path(str(o.stateDir, 'stateDir'));
  if (o.tls !== undefined) {
    const t = object(o.tls, 'tls', ['cert', 'key', 'module']);
    const key = str(t.key, 'tls.key');
    cfg.tls = { cert: path(str(t.cert, 'tls.cert')), key: key.startsWith('pkcs11:') ? key : path(key), ...(t.module !== undefined ? { module: path(str(t.module, 'tls.module')) } : {}) };
    if (t.module !== undefined && !key.startsWith('pkcs11:')) throw fail('tls.module', 'a PKCS#11 module goes with a pkcs11: URI as tls.key');
  }
  if (o.revocation !== undefined) {
    const r = object(o.revocation, 'revocation', ['refreshSeconds', 'resyncSeconds', 'onStale', 'staleAfterSeconds']);
    if (r.staleAfterSeconds !== undefined) {
      if (typeof r.staleAfterSeconds !== 'number' || !(r.staleAfterSeconds >= 1 && r.staleAfterSeconds <= 86_400)) throw fail('revocation.staleAfterSeconds', 'must be a number of seconds between 1 and 86400');
      cfg.revocation.staleAfterSeconds = r.staleAfterSeconds;
    }
    if (r.refreshSeconds !== undefined) {
      if (typeof r.refreshSeconds !== 'number' || !(r.refreshSeconds >= 0.1 && r.refreshSeconds <= 3600)) throw fail('revocation.refreshSeconds', 'must be a number of seconds between 0.1 and 3600');
      cfg.revocation.refreshSeconds = r.refreshSeconds;
    }
    if (r.resyncSeconds !== undefined) {
      if (typeof r.resyncSeconds !== 'number' || !(r.resyncSeconds >= 1 && r.resyncSeconds <= 86_400)) throw fail('revocation.resyncSeconds', 'must be a number of seconds between 1 and 86400');
      cfg.revocation.resyncSeconds = r.resyncSeconds;
    }
    if (r.onStale !== undefined) {
      if (r.onStale !== 'fail-closed' && r.onStale !== 'fail-open') throw fail('revocation.onStale', 'must be fail-closed or fail-open');
      cfg.revocation.onStale = r.onStale;
    }
  }
  if (o.exceptions !== undefined) {
    if (!Array.isArray(o.exceptions)) throw fail('exceptions', 'must be a list');
    cfg.exceptions = o.exceptions.map((e, i) => {
      const x = object(e, `exceptions[${i}]`, ['facility', 'allow', 'until', 'note']);
      const until = x.until instanceof Date ? x.until.toISOString().slice(0, 10) : str(x.until, `exceptions[${i}].until`);
      return { facility: String(x.facility ?? ''), allow: String(x.allow ?? '') as DatedException['allow'], until, ...(x.note !== undefined ? { note: str(x.note, `exceptions[${i}].note`) } : {}) };
    });
    const bad = checkDatedExceptions(cfg.exceptions);
    if (bad) throw fail('exceptions', bad);
  }
  if (o.admin !== undefined) cfg.admin = parseHostPort(str(o.admin, 'admin'), 'admin');
  if (o.contact !== undefined) cfg.contact = str(o.contact, 'contact');
  if (o.log !== undefined) {
    if (!LOG_LEVELS.includes(o.log as LogLevel)) throw fail('log', `must be one of ${LOG_LEVELS.join(', ')}`);
    cfg.logLevel = o.log as LogLevel;
  }
  if (!Array.isArray(o.listeners) || !o.listeners.length) throw fail('listeners', 'at least one listener is needed');
  cfg.listeners = o.listeners.map(listener);
  const names = new Set<string>();
  for (const l of cfg.listeners) {
    if (names.has(l.name)) throw fail('listeners', `two listeners are named "${l.name}"`);
    if (l.name === 'portal' || l.name === 'admin') throw fail('listeners', `"${l.name}" names the ${l.name} listener in metrics and limits; give this listener another name`);
    names.add(l.name);
  }
  if (o.time !== undefined) {
    cfg.time = parseTimeSetting(o.time, 'time', 'GATEWAY_CONFIG_INVALID');
    if (cfg.time.database && !cfg.home && !cfg.db) throw fail('time.database', 'the database clock is the CA store\'s; a gateway apart from the CA without db has none (use ntp)');
  }
  if (!cfg.home && !cfg.tls) throw fail('configuration', 'give either home (a CA home) or tls: { cert, key } with clientCa');
  if (!cfg.home && cfg.db && !cfg.stateDir) throw fail('stateDir', 'a gateway apart from the CA that follows the database keeps its audit spool in a directory of its own: give stateDir');
  if (cfg.stateDir && (cfg.home || !cfg.db)) throw fail('stateDir', 'goes with db and without home (a gateway apart from the CA that follows the database)');
  if (!cfg.home && !cfg.db && o.audit !== undefined) throw fail('audit', 'the audit trail (spool, collectors) is kept in the store: give home, or db with stateDir');
  if (!cfg.home && !cfg.clientCa.length && !cfg.pins.length) throw fail('clientCa', 'a gateway apart from the CA needs clientCa (trust anchors) or pins');
  return cfg;
}

export function loadGatewayConfig(file: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw badRequest('GATEWAY_CONFIG_UNREADABLE', `cannot read the gateway configuration ${file}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    throw badRequest('GATEWAY_CONFIG_INVALID', `${file} is not valid YAML: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  return parseGatewayConfig(raw, dirname(resolve(file)));
}
