import { badRequest } from '../errors/index.js';
import { isFacilityNumber } from '../policy/index.js';
import { AccessEventReader, detailsOf, type AuditRow, type SqlExecutor } from '../store/index.js';
import { nextDay, ReportZone } from './zone.js';

/**
 * The access review (MHLW guideline 6.0, 17: login time, access duration,
 * what was operated, refusals): per day and facility, every connection
 * through the gateway and every refusal, read from the audit trail's
 * `gateway.*` events. A connection's row comes from its `gateway.session`
 * event (written at close); a connection authenticated but with no session
 * event is still open (or its gateway stopped without writing it) and says so.
 */
export type ReviewOutcome = 'accepted' | 'refused' | 'all';

export interface AccessReviewFilter {
  /** First and last day, inclusive, YYYY-MM-DD in `zone`. */
  from: string;
  to: string;
  zone: string;
  facility?: string;
  outcome: ReviewOutcome;
}

export interface AccessRow {
  /** The day (in the report's zone) the connection began or the refusal happened. */
  date: string;
  /** The facility number, or null (a client that proved no identity, or a certificate of no facility). */
  facility: string | null;
  /** Who the audit trail names: the facility number, a certificate subject, or "unknown". */
  actor: string;
  kind: 'connection' | 'refusal';
  /** accepted (closed normally), cut (closed by a revocation or suspension), open (no end recorded), refused. */
  outcome: 'accepted' | 'cut' | 'open' | 'refused';
  /** Login time (a refusal: when it happened; summed refusals: the first of them). UTC, milliseconds. */
  startUtc: string;
  startLocal: string;
  endUtc: string | null;
  endLocal: string | null;
  durationSeconds: number | null;
  bytesIn: number | null;
  bytesOut: number | null;
  listener: string | null;
  client: string | null;
  /** The client certificate's serial. */
  serial: string | null;
  /** The refusal or cut reason code. */
  reason: string | null;
  /** How many events the row stands for (summed refusals of clients without an identity: more than 1). */
  count: number;
  /** HTTP: "METHOD /normalized/path STATUS" in order; TCP: "→ host:port". */
  operations: string[];
  /** Operations made beyond those listed (the gateway keeps a bounded list per connection). */
  operationsMore: number;
  detail: string | null;
  /** The audit event's sequence number (cross-reference for `sekisho audit verify` / `audit list`). */
  seq: number;
}

export interface AccessReview {
  schema: 'sekisho.access-review/1';
  generatedAt: string;
  filter: Required<Omit<AccessReviewFilter, 'facility'>> & { facility: string | null };
  range: { fromUtc: string; toUtc: string };
  rows: AccessRow[];
  summary: { date: string; facility: string | null; connections: number; refusals: number; bytesIn: number; bytesOut: number; seconds: number }[];
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const MAX_DAYS = 400;

const bad = (message: string) => badRequest('REPORT_FILTER_INVALID', message);

function checkDate(v: string, flag: string): string {
  const m = DATE.exec(v);
  const ok = m && new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))).toISOString().slice(0, 10) === v;
  if (!ok) throw bad(`${flag} "${v.slice(0, 40)}" is not a date; write YYYY-MM-DD (e.g. 2026-04-01)`);
  return v;
}

/** Validates the filter flags (each failure a REPORT_FILTER_INVALID naming the flag); `today` fills a missing date. */
export function parseAccessFilter(o: { from?: string; to?: string; zone?: string; facility?: string; outcome?: string }, now: Date): AccessReviewFilter {
  const zone = new ReportZone(o.zone ?? 'Asia/Tokyo');
  const today = zone.day(now.getTime());
  const from = o.from !== undefined ? checkDate(o.from, '--from') : (o.to !== undefined ? checkDate(o.to, '--to') : today);
  const to = o.to !== undefined ? checkDate(o.to, '--to') : (o.from !== undefined ? from : today);
  if (to < from) throw bad(`--to ${to} is before --from ${from}`);
  const days = (Date.parse(to) - Date.parse(from)) / 86_400_000 + 1;
  if (days > MAX_DAYS) throw bad(`the range ${from} – ${to} is ${days} days; ask for at most ${MAX_DAYS} days at a time`);
  if (o.facility !== undefined && !isFacilityNumber(o.facility)) throw bad(`--facility "${o.facility.slice(0, 40)}" is not a facility number (10 digits with a valid check digit)`);
  const outcome = o.outcome ?? 'all';
  if (outcome !== 'accepted' && outcome !== 'refused' && outcome !== 'all') throw bad(`--outcome "${outcome.slice(0, 40)}" is not accepted, refused or all`);
  return { from, to, zone: zone.name, outcome, ...(o.facility !== undefined ? { facility: o.facility } : {}) };
}

type Details = Record<string, unknown>;
const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const facilityOf = (actor: string) => (/^\d{10}$/.test(actor) ? actor : null);

/** Reads the events of the filter's range and builds the review. */
export async function accessReview(x: SqlExecutor, f: AccessReviewFilter, now: Date): Promise<AccessReview> {
  const zone = new ReportZone(f.zone);
  const fromUtc = new Date(zone.startOf(f.from)).toISOString();
  const toUtc = new Date(zone.startOf(nextDay(f.to))).toISOString();
  const events = await new AccessEventReader(x).list({ from: fromUtc, to: toUtc, ...(f.facility ? { actor: f.facility } : {}) });
  return buildReview(events, f, zone, { fromUtc, toUtc }, now);
}

export function buildReview(events: readonly AuditRow[], f: AccessReviewFilter, zone: ReportZone, range: { fromUtc: string; toUtc: string }, now: Date): AccessReview {
  const parsed = events.map((e) => ({ e, d: detailsOf(e.details) ?? {} }));
  const closed = new Set<string>();
  const cutOf = new Map<string, string>();
  for (const { e, d } of parsed) {
    const c = text(d.connection);
    if (!c) continue;
    if (e.action === 'gateway.session') closed.add(c);
    if (e.action === 'gateway.connection-cut' && e.reason_code) cutOf.set(c, e.reason_code);
  }
  const rows: AccessRow[] = [];
  const at = (iso: string) => {
    const t = Date.parse(iso);
    return { utc: new Date(t).toISOString(), local: zone.local(t), date: zone.day(t) };
  };
  // A row's day is the day of its event's time, by which the range was read (a summed refusal's `at` is its last
  // attempt): a sum that began before midnight is listed, with its start, on the day it was recorded, never lost.
  const base = (e: AuditRow, d: Details, startIso: string) => {
    const s = at(startIso);
    return {
      date: zone.day(Date.parse(e.at)),
      facility: facilityOf(e.actor),
      actor: e.actor,
      startUtc: s.utc,
      startLocal: s.local,
      listener: text(d.listener),
      client: text(d.client) ?? text(d.address),
      serial: e.subject,
      seq: e.seq,
    };
  };
  for (const { e, d } of parsed) {
    if (e.action === 'gateway.session' && f.outcome !== 'refused') {
      const end = text(d.endedAt);
      const ops = Array.isArray(d.operations) ? (d.operations as Details[]).map((o) => `${String(o.method)} ${String(o.path)} ${String(o.status)}`) : [];
      if (text(d.upstream)) ops.push(`→ ${String(d.upstream)}`);
      rows.push({
        ...base(e, d, text(d.startedAt) ?? e.at),
        kind: 'connection',
        outcome: d.end === 'cut' ? 'cut' : 'accepted',
        endUtc: end ? at(end).utc : null,
        endLocal: end ? at(end).local : null,
        durationSeconds: num(d.durationMs) === null ? null : num(d.durationMs)! / 1000,
        bytesIn: num(d.bytesIn),
        bytesOut: num(d.bytesOut),
        reason: e.reason_code,
        count: 1,
        operations: ops,
        operationsMore: num(d.more) ?? 0,
        detail: null,
      });
    } else if (e.action === 'gateway.authenticated' && f.outcome !== 'refused') {
      const c = text(d.connection);
      if (c && closed.has(c)) continue;
      const cut = c ? cutOf.get(c) : undefined;
      rows.push({
        ...base(e, d, e.at),
        kind: 'connection',
        outcome: cut ? 'cut' : 'open',
        endUtc: null,
        endLocal: null,
        durationSeconds: null,
        bytesIn: null,
        bytesOut: null,
        reason: cut ?? null,
        count: 1,
        operations: [],
        operationsMore: 0,
        detail: c ? 'no end recorded: still open, or its gateway stopped before writing it' : 'recorded before connection ends were audited',
      });
    } else if ((e.action === 'gateway.refused' || e.action === 'gateway.request-refused' || e.action === 'gateway.refused.unidentified') && f.outcome !== 'accepted') {
      rows.push({
        ...base(e, d, text(d.firstAt) ?? e.at),
        kind: 'refusal',
        outcome: 'refused',
        endUtc: null,
        endLocal: null,
        durationSeconds: null,
        bytesIn: null,
        bytesOut: null,
        reason: e.reason_code,
        count: num(d.count) ?? 1,
        operations: [],
        operationsMore: 0,
        detail: text(d.detail),
      });
    }
  }
  // Unidentified refusals are no facility's: a facility's review leaves them out (the query already does).
  rows.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : (a.facility ?? '~') < (b.facility ?? '~') ? -1 : (a.facility ?? '~') > (b.facility ?? '~') ? 1 : a.startUtc < b.startUtc ? -1 : a.startUtc > b.startUtc ? 1 : a.seq - b.seq));
  const sums = new Map<string, AccessReview['summary'][number]>();
  for (const r of rows) {
    const k = `${r.date}|${r.facility ?? ''}`;
    let s = sums.get(k);
    if (!s) sums.set(k, (s = { date: r.date, facility: r.facility, connections: 0, refusals: 0, bytesIn: 0, bytesOut: 0, seconds: 0 }));
    if (r.kind === 'connection') s.connections++;
    else s.refusals += r.count;
    s.bytesIn += r.bytesIn ?? 0;
    s.bytesOut += r.bytesOut ?? 0;
    s.seconds = Math.round((s.seconds + (r.durationSeconds ?? 0)) * 1000) / 1000;
  }
  return {
    schema: 'sekisho.access-review/1',
    generatedAt: now.toISOString(),
    filter: { from: f.from, to: f.to, zone: f.zone, outcome: f.outcome, facility: f.facility ?? null },
    range,
    rows,
    summary: [...sums.values()],
  };
}

/** The CSV columns, in order (the JSON rows carry the same names). */
export const ACCESS_CSV_HEADER = ['date', 'facility', 'actor', 'kind', 'outcome', 'startUtc', 'startLocal', 'endUtc', 'endLocal', 'durationSeconds', 'bytesIn', 'bytesOut', 'listener', 'client', 'serial', 'reason', 'count', 'operations', 'operationsMore', 'detail', 'seq'] as const;

export function accessCsvRows(r: AccessReview): (string | number | null)[][] {
  return r.rows.map((x) => ACCESS_CSV_HEADER.map((k) => (k === 'operations' ? x.operations.join('\n') : x[k])));
}
