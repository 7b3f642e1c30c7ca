import { readFileSync } from 'node:fs';
import { badRequest } from '../errors/index.js';

/**
 * How long a client may take and how many connections it may hold, for one
 * kind of listener. Every listener of the process (gateway listeners, the
 * portal/EST/CRL/OCSP listener, the gateway admin listener) gets one of
 * these, and the caps of all of them fit inside the process's file-descriptor
 * limit with a reserve left over: a flood on the portal fills the portal's
 * share and nothing else.
 */
export interface ListenerLimits {
  /** A TLS handshake not finished within this is closed (TLS listeners). */
  handshakeTimeoutMs: number;
  /** All request headers within this (HTTP listeners). */
  headersTimeoutMs: number;
  /** A whole request within this (HTTP listeners). */
  requestTimeoutMs: number;
  /** A connection with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** Open connections on this listener (each gateway listener, when several share the gateway's budget). */
  maxConnections: number;
  /** Open connections from one client address. */
  maxConnectionsPerAddress: number;
}

export type ListenerKind = 'gateway' | 'portal' | 'revocation' | 'admin' | 'selfCheck';
export const LISTENER_KINDS: readonly ListenerKind[] = ['gateway', 'portal', 'revocation', 'admin', 'selfCheck'];

/** What an operator may set, per kind (seconds in configuration, like the rest of it). */
export interface ListenerLimitsSetting {
  handshakeTimeoutSeconds?: number;
  headersTimeoutSeconds?: number;
  requestTimeoutSeconds?: number;
  idleTimeoutSeconds?: number;
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
}

export interface LimitsSetting {
  /** The file-descriptor budget to split (default: the process's RLIMIT_NOFILE soft limit). */
  fileDescriptors?: number;
  gateway?: ListenerLimitsSetting;
  portal?: ListenerLimitsSetting;
  /** The plain-HTTP CRL/OCSP listener of `serve` and `up`. */
  revocation?: ListenerLimitsSetting;
  admin?: ListenerLimitsSetting;
  /** The self-check listener (every TLS version, no client certificate required: a page and its JSON, nothing proxied). */
  selfCheck?: ListenerLimitsSetting;
}

/** Used when the limit cannot be read (not Linux). */
export const DEFAULT_FILE_DESCRIPTORS = 1024;

/** Timeouts by kind, in ms. The gateway's idle timeout is long: HL7 and DICOM links sit quiet between messages. */
const TIMEOUTS: Record<ListenerKind, Omit<ListenerLimits, 'maxConnections' | 'maxConnectionsPerAddress'>> = {
  gateway: { handshakeTimeoutMs: 10_000, headersTimeoutMs: 30_000, requestTimeoutMs: 300_000, idleTimeoutMs: 600_000 },
  portal: { handshakeTimeoutMs: 10_000, headersTimeoutMs: 20_000, requestTimeoutMs: 60_000, idleTimeoutMs: 30_000 },
  // Plain HTTP (no handshake): relying parties fetch a CRL or ask OCSP and go.
  revocation: { handshakeTimeoutMs: 10_000, headersTimeoutMs: 10_000, requestTimeoutMs: 20_000, idleTimeoutMs: 5_000 },
  admin: { handshakeTimeoutMs: 10_000, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, idleTimeoutMs: 30_000 },
  // A browser or a vendor's client loads one page (or its JSON) and goes: short, like the revocation listener.
  selfCheck: { handshakeTimeoutMs: 10_000, headersTimeoutMs: 10_000, requestTimeoutMs: 20_000, idleTimeoutMs: 5_000 },
};

/** File descriptors one connection holds: a gateway connection also holds its upstream connection. */
export const FDS_PER_CONNECTION: Record<ListenerKind, number> = { gateway: 2, portal: 1, revocation: 1, admin: 1, selfCheck: 1 };

/**
 * The soft RLIMIT_NOFILE of this process (Node has no getrlimit: read from
 * /proc/self/limits on Linux), or undefined when it cannot be known or is
 * unlimited.
 */
export function openFileLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(readFileSync(limitsFile, 'utf8'));
    const n = m && m[1] !== 'unlimited' ? Number(m[1]) : NaN;
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The part of the budget no listener may take: store, logs, CRL fetches, the HTTP upstream pool. */
export function reserveOf(fileDescriptors: number): number {
  return Math.max(32, Math.floor(fileDescriptors * 0.1));
}

/** Shares of what is left after the reserve. */
const SHARE: Record<ListenerKind, number> = { gateway: 0.6, portal: 0.25, revocation: 0.05, admin: 0.05, selfCheck: 0.05 };

export interface ResolvedLimits {
  fileDescriptors: number;
  /** Where the budget came from. */
  source: 'rlimit' | 'configured' | 'default';
  reserve: number;
  /** Per gateway listener (the gateway's share split among them). */
  gateway: ListenerLimits;
  portal: ListenerLimits;
  revocation: ListenerLimits;
  admin: ListenerLimits;
  selfCheck: ListenerLimits;
}

const fail = (code: string, where: string, what: string) => badRequest(code, `${where}: ${what}`);

/**
 * The limits in force: defaults sized from the file-descriptor budget
 * (the gateway's share is split among its `gatewayListeners`), then the
 * operator's settings. Throws when the settings add up to more descriptors
 * than the budget minus its reserve, so no listener can take the gateway's.
 */
export function resolveLimits(setting: LimitsSetting, gatewayListeners: number, o: { rlimit?: number | undefined; code?: string } = {}): ResolvedLimits {
  const code = o.code ?? 'LIMITS_INVALID';
  const rlimit = 'rlimit' in o ? o.rlimit : openFileLimit();
  const fileDescriptors = setting.fileDescriptors ?? rlimit ?? DEFAULT_FILE_DESCRIPTORS;
  const source = setting.fileDescriptors !== undefined ? 'configured' : rlimit !== undefined ? 'rlimit' : 'default';
  const reserve = reserveOf(fileDescriptors);
  const usable = fileDescriptors - reserve;
  if (usable < 16) throw fail(code, 'limits.fileDescriptors', `${fileDescriptors} file descriptors leave no room for connections; raise the limit (ulimit -n) to 64 or more`);
  const count = { gateway: Math.max(1, gatewayListeners), portal: 1, revocation: 1, admin: 1, selfCheck: 1 };
  const one = (kind: ListenerKind): ListenerLimits => {
    const s = setting[kind] ?? {};
    const total = s.maxConnections ?? Math.max(1, Math.floor((usable * SHARE[kind]) / FDS_PER_CONNECTION[kind] / count[kind]));
    const perAddressDefault = kind === 'gateway' ? Math.max(16, Math.floor(total / 4)) : kind === 'portal' ? 16 : 8;
    const l: ListenerLimits = {
      handshakeTimeoutMs: seconds(s.handshakeTimeoutSeconds) ?? TIMEOUTS[kind].handshakeTimeoutMs,
      headersTimeoutMs: seconds(s.headersTimeoutSeconds) ?? TIMEOUTS[kind].headersTimeoutMs,
      requestTimeoutMs: seconds(s.requestTimeoutSeconds) ?? TIMEOUTS[kind].requestTimeoutMs,
      idleTimeoutMs: seconds(s.idleTimeoutSeconds) ?? TIMEOUTS[kind].idleTimeoutMs,
      maxConnections: total,
      maxConnectionsPerAddress: Math.min(total, s.maxConnectionsPerAddress ?? perAddressDefault),
    };
    if (l.headersTimeoutMs > l.requestTimeoutMs) throw fail(code, `limits.${kind}`, 'headersTimeoutSeconds must not exceed requestTimeoutSeconds');
    return l;
  };
  const r: ResolvedLimits = { fileDescriptors, source, reserve, gateway: one('gateway'), portal: one('portal'), revocation: one('revocation'), admin: one('admin'), selfCheck: one('selfCheck') };
  const used = LISTENER_KINDS.reduce((sum, k) => sum + r[k].maxConnections * FDS_PER_CONNECTION[k] * count[k], 0);
  if (used > usable) {
    throw fail(
      code,
      'limits',
      `the connection caps need ${used} file descriptors (gateway ${r.gateway.maxConnections}×${count.gateway} listener(s)×2, portal ${r.portal.maxConnections}, revocation ${r.revocation.maxConnections}, admin ${r.admin.maxConnections}, self-check ${r.selfCheck.maxConnections}) but ${fileDescriptors} minus a reserve of ${reserve} leaves ${usable}; lower maxConnections or raise the limit (ulimit -n, limits.fileDescriptors)`,
    );
  }
  return r;
}

const seconds = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 1000));

type Obj = Record<string, unknown>;
const SETTING_KEYS = ['handshakeTimeoutSeconds', 'headersTimeoutSeconds', 'requestTimeoutSeconds', 'idleTimeoutSeconds', 'maxConnections', 'maxConnectionsPerAddress'] as const;
/** Bounds per key: [min, max]. */
const BOUNDS: Record<(typeof SETTING_KEYS)[number], [number, number, 'seconds' | 'count']> = {
  handshakeTimeoutSeconds: [0.1, 300, 'seconds'],
  headersTimeoutSeconds: [0.1, 600, 'seconds'],
  requestTimeoutSeconds: [0.1, 86_400, 'seconds'],
  idleTimeoutSeconds: [1, 86_400, 'seconds'],
  maxConnections: [1, 1_000_000, 'count'],
  maxConnectionsPerAddress: [1, 1_000_000, 'count'],
};

/**
 * Validates the `limits` mapping of a configuration (unknown keys are
 * errors). Errors carry `code` (the caller's configuration error code).
 */
export function parseLimitsSetting(raw: unknown, where = 'limits', code = 'LIMITS_INVALID'): LimitsSetting {
  const o = mapping(raw, where, ['fileDescriptors', ...LISTENER_KINDS], code);
  const out: LimitsSetting = {};
  if (o.fileDescriptors !== undefined) {
    if (!Number.isInteger(o.fileDescriptors) || (o.fileDescriptors as number) < 64 || (o.fileDescriptors as number) > 10_000_000) throw fail(code, `${where}.fileDescriptors`, 'must be a whole number from 64 to 10000000');
    out.fileDescriptors = o.fileDescriptors as number;
  }
  for (const kind of LISTENER_KINDS) {
    if (o[kind] === undefined) continue;
    const k = mapping(o[kind], `${where}.${kind}`, kind === 'admin' || kind === 'revocation' ? SETTING_KEYS.filter((x) => x !== 'handshakeTimeoutSeconds') : SETTING_KEYS, code);
    const s: ListenerLimitsSetting = {};
    for (const key of SETTING_KEYS) {
      const v = k[key];
      if (v === undefined) continue;
      const [min, max, unit] = BOUNDS[key];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (unit === 'count' && !Number.isInteger(v))) {
        throw fail(code, `${where}.${kind}.${key}`, unit === 'count' ? `must be a whole number from ${min} to ${max}` : `must be a number of seconds from ${min} to ${max}`);
      }
      s[key] = v;
    }
    out[kind] = s;
  }
  return out;
}

function mapping(v: unknown, where: string, keys: readonly string[], code: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(code, where, 'must be a mapping');
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw fail(code, where, `unknown key "${k}" (allowed: ${keys.join(', ')})`);
  return v as Obj;
}

/**
 * `--limit KIND.KEY=VALUE` flags (e.g. `portal.maxConnections=200`,
 * `fileDescriptors=4096`) as the `limits` mapping a configuration file holds,
 * so both are checked by the same rules.
 */
export function limitsFromFlags(flags: readonly string[], code = 'LIMITS_INVALID'): Record<string, unknown> {
  const out: Record<string, Record<string, number> | number> = {};
  for (const f of flags) {
    const m = /^(?:(gateway|portal|revocation|admin|selfCheck)\.([A-Za-z]+)|(fileDescriptors))=([0-9]+(?:\.[0-9]+)?)$/.exec(f);
    if (!m) throw badRequest(code, `--limit "${f.slice(0, 80)}" is not KIND.KEY=NUMBER (e.g. portal.maxConnections=200, gateway.handshakeTimeoutSeconds=5, fileDescriptors=4096)`);
    const [, kind, key, top, value] = m;
    if (kind) {
      const section = (out[kind] ??= {}) as Record<string, number>;
      section[key!] = Number(value);
    } else out[top!] = Number(value);
  }
  return out;
}
