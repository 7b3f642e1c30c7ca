import { badRequest } from '../errors/index.js';

/**
 * `time:` in a configuration: where the host clock is checked and how far
 * off it may be. Strict (unknown keys, wrong types and out-of-range values
 * are errors naming the field).
 *
 *   time: { ntp: "ntp.example.jp:123" | none, database: true | false, maxOffsetMs: 1000, checkSeconds: 300 }
 */
export interface TimeSetting {
  ntp?: { host: string; port: number };
  /** Compare with the database's clock (PostgreSQL clock_timestamp()). */
  database: boolean;
  maxOffsetMs: number;
  checkSeconds: number;
}

export const TIME_DEFAULTS = { maxOffsetMs: 1000, checkSeconds: 300 } as const;

export function parseTimeSetting(raw: unknown, where: string, code: string): TimeSetting {
  const fail = (field: string, what: string) => badRequest(code, `${where}.${field}: ${what}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest(code, `${where}: must be a mapping (ntp, database, maxOffsetMs, checkSeconds)`);
  const o = raw as Record<string, unknown>;
  const keys = ['ntp', 'database', 'maxOffsetMs', 'checkSeconds'];
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw badRequest(code, `${where}: unknown key "${k}" (allowed: ${keys.join(', ')})`);
  const t: TimeSetting = { database: false, ...TIME_DEFAULTS };
  if (o.ntp !== undefined && o.ntp !== 'none') {
    const m = typeof o.ntp === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(o.ntp) : null;
    const port = m?.[3] === undefined ? 123 : Number(m[3]);
    if (!m || !(port >= 1 && port <= 65535)) throw fail('ntp', `"${String(o.ntp).slice(0, 80)}" is not HOST[:PORT] (e.g. ntp.nict.jp or 192.0.2.1:123) or none`);
    t.ntp = { host: m[1] ?? m[2]!, port };
  }
  if (o.database !== undefined) {
    if (typeof o.database !== 'boolean') throw fail('database', 'must be true or false');
    t.database = o.database;
  }
  if (o.maxOffsetMs !== undefined) {
    if (!Number.isInteger(o.maxOffsetMs) || !((o.maxOffsetMs as number) >= 1 && (o.maxOffsetMs as number) <= 3_600_000)) throw fail('maxOffsetMs', 'must be a whole number of milliseconds from 1 to 3600000');
    t.maxOffsetMs = o.maxOffsetMs as number;
  }
  if (o.checkSeconds !== undefined) {
    if (typeof o.checkSeconds !== 'number' || !(o.checkSeconds >= 1 && o.checkSeconds <= 86_400)) throw fail('checkSeconds', 'must be a number of seconds from 1 to 86400');
    t.checkSeconds = o.checkSeconds;
  }
  if (!t.ntp && !t.database) throw badRequest(code, `${where}: name a reference to check the clock against: ntp: HOST[:PORT], or database: true (PostgreSQL); or leave time out`);
  return t;
}
