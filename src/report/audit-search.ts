import { badRequest } from '../errors/index.js';
import { isFacilityNumber } from '../policy/index.js';
import type { AuditSearch } from '../store/index.js';
import { nextDay, ReportZone } from './zone.js';

/** The raw terms of an audit trail search, as typed in a form or on the command line. */
export interface AuditSearchInput {
  action?: string;
  actor?: string;
  facility?: string;
  /** YYYY-MM-DD (the day's start in `zone`) or an ISO 8601 instant with its offset. */
  from?: string;
  /** YYYY-MM-DD (inclusive: up to the next day's start in `zone`) or an ISO 8601 instant (exclusive). */
  to?: string;
  before?: string;
  limit?: string;
  zone?: string;
}

const bad = (message: string) => badRequest('AUDIT_SEARCH_INVALID', message);
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

function time(v: string, name: string, zone: ReportZone, end: boolean): string {
  if (DAY.test(v)) {
    const t = Date.parse(`${v}T00:00:00Z`);
    const ok = Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === v;
    if (ok) return new Date(zone.startOf(end ? nextDay(v) : v)).toISOString();
  } else if (INSTANT.test(v) && Number.isFinite(Date.parse(v))) return new Date(Date.parse(v)).toISOString();
  throw bad(`${name} "${v.slice(0, 40)}" is not a date (YYYY-MM-DD) or a time with its offset (2026-04-01T09:00+09:00)`);
}

/**
 * Checks every term of a search (each failure AUDIT_SEARCH_INVALID naming
 * the term) and returns it in the store's terms. Empty strings are no term
 * (an empty form field).
 */
export function parseAuditSearch(input: AuditSearchInput): AuditSearch {
  const v = Object.fromEntries(Object.entries(input).filter(([, x]) => typeof x === 'string' && x.trim() !== '').map(([k, x]) => [k, (x as string).trim()])) as AuditSearchInput;
  const zone = new ReportZone(v.zone ?? 'Asia/Tokyo');
  const q: AuditSearch = {};
  if (v.action !== undefined) {
    if (!/^[a-z0-9][a-z0-9._-]{0,63}\*?$/i.test(v.action)) throw bad(`action "${v.action.slice(0, 40)}" is not an event type (e.g. notice.created, or gateway.* for all the gateway's)`);
    q.action = v.action;
  }
  if (v.actor !== undefined) {
    if (v.actor.length > 200 || /[\u0000-\u001f]/.test(v.actor)) throw bad('actor: at most 200 printable characters, exactly as the trail records it');
    q.actor = v.actor;
  }
  if (v.facility !== undefined) {
    if (!isFacilityNumber(v.facility)) throw bad(`facility "${v.facility.slice(0, 20)}" is not a facility number (10 digits with a valid check digit)`);
    q.facility = v.facility;
  }
  if (v.from !== undefined) q.from = time(v.from, 'from', zone, false);
  if (v.to !== undefined) q.to = time(v.to, 'to', zone, true);
  if (q.from && q.to && q.to <= q.from) throw bad('"to" is not after "from"');
  for (const k of ['before', 'limit'] as const) {
    const x = v[k];
    if (x === undefined) continue;
    if (!/^\d{1,12}$/.test(x) || Number(x) < 1) throw bad(`${k} must be a whole number`);
    if (k === 'before') q.beforeSeq = Number(x);
    else q.limit = Math.min(Number(x), 10_000);
  }
  return q;
}
