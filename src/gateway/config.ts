import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { badRequest } from '../errors/index.js';
import { checkDatedExceptions, COMPLIANCE_PROFILES, scheduleInstant, type DatedException } from '../policy/index.js';
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
/** One phase of the configured schedule: a profile (name or JSON file) from an instant on. */
export interface ConfiguredPhase {
  /** Absent for the first phase. */
  from?: Date;
  profile: string;
  /** From this phase on, client certificates must name a facility number (LEGACY_SUBJECT otherwise). */
  facilitySubjectRequired?: boolean;
}

/** A configured exception: a RETIRING_CA one names its anchor by a PEM file (setup reads its key). */
export type ConfiguredException = Omit<DatedException, 'anchor'> & { anchorFile?: string };

export interface GatewayConfig {
  /** A profile name (high, recommended, …) or a profile JSON file: the first phase's profile. */
  profile: string;
  /** The phases in order: "until D enforce A, from D enforce B"; the first is `profile` (one phase when no schedule is given). */
  schedule: ConfiguredPhase[];
  /** Client certificates must name a facility number from the start (phases may switch it on later). */
  facilitySubjectRequired: boolean;
  /** CA home: trust anchors, revocations and facility status from its store, server certificate. */
  home?: string;
  /** The store: with home, the CA's (default its SQLite file); without, a gateway apart from the CA follows it here (PostgreSQL). */
  db?: string;
  /** A gateway apart from the CA with a database: where it keeps its own state (the audit spool). */
  stateDir?: string;
  /** Explicit server credential: a PEM key file, or a `pkcs11:` URI of a key in a token (with the module; PIN from SEKISHO_PIN). */
  tls?: { cert: string; key: string; module?: string; extra?: { cert: string; key: string }[] };
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
  exceptions: ConfiguredException[];
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
  /** The self-check listener (docs/self-check.md); absent: none. */
  selfCheck?: SelfCheckConfig;
}

/** The operator's help desk as the self-check page shows it (every field optional, at least one given). */
export interface SelfCheckContact {
  name?: string;
  phone?: string;
  email?: string;
  hours?: string;
  url?: string;
}

/**
 * The self-check listener: every TLS version, a client certificate asked for
 * but never required; it shows a clinic what its connection uses and whether
 * it would pass the policy in force and the coming one. It proxies nothing.
 */
export interface SelfCheckConfig {
  listen: HostPort;
  /** The page's public address (https://…), shown on refusal pages and in logs; default https://HOST:PORT/ of a concrete listen address. */
  url?: string;
  contact?: SelfCheckContact;
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

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** A YAML date: a YYYY-MM-DD string, or the Date YAML 1.1 makes of it (midnight UTC: the day is what was written). */
function dayOf(v: unknown, where: string): string {
  if (v instanceof Date && !Number.isNaN(v.getTime())) return v.toISOString().slice(0, 10);
  if (typeof v !== 'string' || !DAY.test(v)) throw fail(where, 'must be a date YYYY-MM-DD (Japan time)');
  return v;
}

function profileName(v: unknown, where: string, path: (p: string) => string): string {
  const name = str(v, where);
  if (/\.json$/.test(name)) return path(name);
  if (!(COMPLIANCE_PROFILES as readonly string[]).includes(name)) throw fail(where, `unknown profile "${name}"; use ${COMPLIANCE_PROFILES.join(', ')} or a profile JSON file`);
  return name;
}

function facilitySubject(v: unknown, where: string): boolean {
  if (v !== 'required' && v !== 'any') throw fail(where, 'must be "required" (the subject names a 10-digit facility number) or "any"');
  return v === 'required';
}

/**
 * schedule: a list of phases in order; the first has no `from` and is in
 * force from the start, each later one starts at its `from` (YYYY-MM-DD:
 * midnight Japan time; or an ISO 8601 time with its offset). A `from` in the
 * past is fine (the phase is in force already); phases out of order or at
 * the same instant are not.
 */
function schedulePhases(v: unknown, path: (p: string) => string): ConfiguredPhase[] {
  if (!Array.isArray(v) || !v.length) throw fail('schedule', 'must be a list of phases ({ profile } first, then { from, profile } in order)');
  const phases = v.map((x, i): ConfiguredPhase => {
    const where = `schedule[${i}]`;
    const o = object(x, where, ['from', 'profile', 'facilitySubject']);
    const phase: ConfiguredPhase = { profile: profileName(o.profile, `${where}.profile`, path) };
    if (o.from !== undefined) {
      const text = o.from instanceof Date ? dayOf(o.from, `${where}.from`) : str(o.from, `${where}.from`);
      const at = scheduleInstant(text);
      if (!at) throw fail(`${where}.from`, `"${text}" is not a date YYYY-MM-DD (midnight, Japan time) or an ISO 8601 time with an offset (2027-04-01T06:00:00+09:00)`);
      phase.from = at;
    }
    if (o.facilitySubject !== undefined) phase.facilitySubjectRequired = facilitySubject(o.facilitySubject, `${where}.facilitySubject`);
    return phase;
  });
  if (phases[0]!.from) throw fail('schedule[0].from', 'the first phase has no "from": it is what is enforced until the second phase starts');
  for (let i = 1; i < phases.length; i++) {
    const at = phases[i]!.from;
    if (!at) throw fail(`schedule[${i}]`, 'every phase after the first needs "from"');
    const before = phases[i - 1]!.from;
    if (before && at.getTime() <= before.getTime()) throw fail(`schedule[${i}].from`, `${at.toISOString()} is not after schedule[${i - 1}].from (${before.toISOString()}): phases go in order, without overlap`);
  }
  return phases;
}

const TOP_KEYS = ['profile', 'schedule', 'facilitySubject', 'home', 'db', 'stateDir', 'tls', 'clientCa', 'pins', 'crl', 'revocation', 'exceptions', 'admin', 'contact', 'log', 'serverNames', 'listeners', 'limits', 'refusals', 'audit', 'time', 'selfCheck'] as const;

/** Text for a page: short, one line, no control characters. */
function line(v: unknown, where: string, max = 200): string {
  const s = str(v, where);
  if (s.length > max || /[\u0000-\u001f\u007f]/.test(s)) throw fail(where, `must be one line of at most ${max} characters`);
  return s;
}

function httpsUrl(v: unknown, where: string): string {
  const s = line(v, where, 512);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw fail(where, `"${s.slice(0, 80)}" is not a URL (e.g. https://check.example.jp/)`);
  }
  if (u.protocol !== 'https:') throw fail(where, `"${s.slice(0, 80)}" must be an https:// URL`);
  if (u.username || u.password) throw fail(where, 'must not carry a user name or password');
  return u.href;
}

/** The `selfCheck` mapping (also what --self-check-listen / --self-check-url build). */
export function parseSelfCheckSetting(v: unknown): SelfCheckConfig {
  const o = object(v, 'selfCheck', ['listen', 'url', 'contact']);
  const out: SelfCheckConfig = { listen: parseHostPort(str(o.listen, 'selfCheck.listen'), 'selfCheck.listen') };
  if (o.url !== undefined) out.url = httpsUrl(o.url, 'selfCheck.url');
  if (o.contact !== undefined) {
    const keys = ['name', 'phone', 'email', 'hours', 'url'] as const;
    const c = object(o.contact, 'selfCheck.contact', keys);
    if (!Object.keys(c).length) throw fail('selfCheck.contact', `give at least one of ${keys.join(', ')}`);
    const contact: SelfCheckContact = {};
    for (const k of keys) {
      if (c[k] === undefined) continue;
      contact[k] = k === 'url' ? httpsUrl(c[k], `selfCheck.contact.${k}`) : line(c[k], `selfCheck.contact.${k}`);
    }
    if (contact.email !== undefined && !/^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/.test(contact.email)) throw fail('selfCheck.contact.email', `"${contact.email.slice(0, 80)}" is not an e-mail address`);
    if (contact.phone !== undefined && !/^[0-9+()\- ]{4,30}$/.test(contact.phone)) throw fail('selfCheck.contact.phone', 'must be a telephone number (digits, spaces, + - ( ))');
    out.contact = contact;
  }
  return out;
}

/** The self-check listener needs an address of its own (not a gateway listener's, not the admin's). */
export function checkSelfCheckAddress(cfg: Pick<GatewayConfig, 'selfCheck' | 'listeners' | 'admin'>): void {
  if (!cfg.selfCheck) return;
  const at = cfg.selfCheck.listen;
  const same = (h: HostPort) => h.port !== 0 && h.port === at.port && h.host === at.host;
  const taken = cfg.listeners.find((l) => same(l.listen));
  if (taken) throw fail('selfCheck.listen', `${at.host}:${at.port} is the address of listener "${taken.name}"; the self-check needs its own`);
  if (cfg.admin && same(cfg.admin)) throw fail('selfCheck.listen', `${at.host}:${at.port} is the admin address; the self-check needs its own`);
}

/**
 * The self-check page's public address, for refusal pages, logs and the
 * migration report: the configured url, else https://HOST:PORT/ of a
 * concrete listen address; undefined when there is no self-check listener
 * or its address cannot be told (a wildcard host or port 0 without url).
 */
export function selfCheckUrl(cfg: Pick<GatewayConfig, 'selfCheck'>): string | undefined {
  const sc = cfg.selfCheck;
  if (!sc) return undefined;
  if (sc.url) return sc.url;
  const { host, port } = sc.listen;
  if (port === 0 || host === '0.0.0.0' || host === '::') return undefined;
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}/`;
}

/** Validates a configuration object (from YAML or built from flags). Relative paths are resolved against `base`. */
export function parseGatewayConfig(raw: unknown, base = process.cwd()): GatewayConfig {
  const o = object(raw, 'configuration', TOP_KEYS);
  const path = (p: string) => (/^https?:\/\//.test(p) ? p : resolve(base, p));
  if (o.profile !== undefined && o.schedule !== undefined) throw fail('profile', 'give either profile (one profile) or schedule (phases), not both');
  const schedule = o.schedule !== undefined ? schedulePhases(o.schedule, path) : [{ profile: o.profile === undefined ? 'high' : profileName(o.profile, 'profile', path) }];
  const cfg: GatewayConfig = {
    profile: schedule[0]!.profile,
    schedule,
    facilitySubjectRequired: o.facilitySubject === undefined ? false : facilitySubject(o.facilitySubject, 'facilitySubject'),
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
    const t = object(o.tls, 'tls', ['cert', 'key', 'module', 'extra']);
    const key = str(t.key, 'tls.key');
    cfg.tls = { cert: path(str(t.cert, 'tls.cert')), key: key.startsWith('pkcs11:') ? key : path(key), ...(t.module !== undefined ? { module: path(str(t.module, 'tls.module')) } : {}) };
    if (t.module !== undefined && !key.startsWith('pkcs11:')) throw fail('tls.module', 'a PKCS#11 module goes with a pkcs11: URI as tls.key');
    if (t.extra !== undefined) {
      // More certificate/key pairs presented at once (an RSA one beside an ECDSA one): OpenSSL serves each peer the one it can use.
      if (!Array.isArray(t.extra)) throw fail('tls.extra', 'must be a list of { cert, key } (PEM files)');
      if (key.startsWith('pkcs11:')) throw fail('tls.extra', 'extra certificates go with a key file, not a token key');
      cfg.tls.extra = t.extra.map((x, i) => {
        const e = object(x, `tls.extra[${i}]`, ['cert', 'key']);
        const k = str(e.key, `tls.extra[${i}].key`);
        if (k.startsWith('pkcs11:')) throw fail(`tls.extra[${i}].key`, 'must be a PEM key file');
        return { cert: path(str(e.cert, `tls.extra[${i}].cert`)), key: path(k) };
      });
    }
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
    cfg.exceptions = o.exceptions.map((e, i): ConfiguredException => {
      const where = `exceptions[${i}]`;
      const x = object(e, where, ['facility', 'allow', 'from', 'until', 'anchor', 'note']);
      if (x.until === undefined) throw fail(`${where}.until`, 'every exception ends: give its last day, YYYY-MM-DD (Japan time)');
      return {
        ...(x.facility !== undefined ? { facility: String(x.facility) } : {}),
        allow: String(x.allow ?? '') as DatedException['allow'],
        ...(x.from !== undefined ? { from: dayOf(x.from, `${where}.from`) } : {}),
        until: dayOf(x.until, `${where}.until`),
        ...(x.anchor !== undefined ? { anchorFile: path(str(x.anchor, `${where}.anchor`)) } : {}),
        ...(x.note !== undefined ? { note: str(x.note, `${where}.note`) } : {}),
      };
    });
    // The anchor's key hash is read at setup; a placeholder lets the shared check see that one is named.
    const bad = checkDatedExceptions(cfg.exceptions.map(({ anchorFile, ...e }) => ({ ...e, ...(anchorFile ? { anchor: anchorFile } : {}) })));
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
  if (o.selfCheck !== undefined) {
    cfg.selfCheck = parseSelfCheckSetting(o.selfCheck);
    checkSelfCheckAddress(cfg);
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
