import { AccessEventReader, FacilityRepository, type AuditRow, type SqlExecutor } from '../store/index.js';
import { terminalText } from '../errors/index.js';

/**
 * The gateway's refusals in a recent window (the last day by default), from
 * the audit trail's `gateway.refused` (handshake), `gateway.request-refused`
 * (an HTTP request of an authenticated client) and
 * `gateway.refused.unidentified` (clients that proved no identity, audited
 * in sums: each row's `count`) events, summed by reason and by facility. What
 * the office looks at when a clinic calls because it is refused.
 */
export interface RefusalSummary {
  schema: 'sekisho.refusals/1';
  generatedAt: string;
  /** Inclusive start and exclusive end, ISO 8601 UTC. */
  from: string;
  to: string;
  total: number;
  byReason: { reason: string; count: number; facilities: number; unidentified: number }[];
  /** Facilities first (most refused first), then the actors that are no facility (a certificate subject, "unknown"). */
  byFacility: {
    /** The facility number, or null when the refused client proved no facility. */
    facility: string | null;
    /** The facility's registered name, if it is one. */
    name: string | null;
    /** Who the audit trail names (the facility number, a certificate subject, or "unknown"). */
    actor: string;
    count: number;
    reasons: Record<string, number>;
    lastAt: string;
    /** The last refused certificate's serial, when one was presented. */
    lastSerial: string | null;
    lastDetail: string | null;
  }[];
}

const REFUSALS = new Set(['gateway.refused', 'gateway.request-refused', 'gateway.refused.unidentified']);

export async function refusalSummary(x: SqlExecutor, now: Date, hours = 24): Promise<RefusalSummary> {
  const from = new Date(now.getTime() - hours * 3_600_000).toISOString();
  const to = new Date(now.getTime() + 1).toISOString();
  const events = (await new AccessEventReader(x).list({ from, to })).filter((e) => REFUSALS.has(e.action));
  const facilities = new FacilityRepository(x);
  const names = new Map<string, string | null>();
  for (const e of events) if (/^\d{10}$/.test(e.actor) && !names.has(e.actor)) names.set(e.actor, (await facilities.get(e.actor))?.name ?? null);
  return buildRefusalSummary(events, names, { from, to }, now);
}

export function buildRefusalSummary(events: readonly AuditRow[], names: ReadonlyMap<string, string | null>, range: { from: string; to: string }, now: Date): RefusalSummary {
  const byReason = new Map<string, RefusalSummary['byReason'][number] & { seen: Set<string> }>();
  const byActor = new Map<string, RefusalSummary['byFacility'][number]>();
  let total = 0;
  for (const e of events) {
    if (!REFUSALS.has(e.action)) continue;
    const d = details(e.details);
    const count = typeof d.count === 'number' && d.count > 0 ? d.count : 1;
    const reason = e.reason_code ?? 'UNKNOWN';
    const facility = /^\d{10}$/.test(e.actor) ? e.actor : null;
    total += count;
    let r = byReason.get(reason);
    if (!r) byReason.set(reason, (r = { reason, count: 0, facilities: 0, unidentified: 0, seen: new Set() }));
    r.count += count;
    if (facility) r.seen.add(facility);
    else if (e.action === 'gateway.refused.unidentified') r.unidentified += count;
    let a = byActor.get(e.actor);
    if (!a) byActor.set(e.actor, (a = { facility, name: facility ? (names.get(facility) ?? null) : null, actor: e.actor, count: 0, reasons: {}, lastAt: e.at, lastSerial: null, lastDetail: null }));
    a.count += count;
    a.reasons[reason] = (a.reasons[reason] ?? 0) + count;
    const at = typeof d.lastAt === 'string' ? d.lastAt : e.at;
    if (at >= a.lastAt) {
      a.lastAt = at;
      a.lastSerial = e.subject;
      a.lastDetail = typeof d.detail === 'string' ? d.detail : null;
    }
  }
  return {
    schema: 'sekisho.refusals/1',
    generatedAt: now.toISOString(),
    from: range.from,
    to: range.to,
    total,
    byReason: [...byReason.values()].map(({ seen, ...r }) => ({ ...r, facilities: seen.size })).sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1)),
    byFacility: [...byActor.values()].sort((a, b) => (a.facility === null) !== (b.facility === null) ? (a.facility === null ? 1 : -1) : b.count - a.count || (a.actor < b.actor ? -1 : 1)),
  };
}

function details(s: string): Record<string, unknown> {
  try {
    const v = JSON.parse(s) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Plain text for the terminal. */
export function refusalText(r: RefusalSummary): string {
  const lines = [`gateway refusals ${r.from} – ${r.to}: ${r.total}`, '', 'by reason:'];
  for (const x of r.byReason) lines.push(`  ${String(x.count).padStart(6)}  ${terminalText(x.reason)}  (${x.facilities} facilit${x.facilities === 1 ? 'y' : 'ies'}${x.unidentified ? `, ${x.unidentified} without an identity` : ''})`);
  lines.push('', 'by facility:');
  for (const x of r.byFacility) lines.push(`  ${String(x.count).padStart(6)}  ${terminalText(x.facility ?? x.actor)}${x.name ? `  ${terminalText(x.name)}` : ''}  ${Object.entries(x.reasons).map(([k, n]) => `${terminalText(k)}×${n}`).join(' ')}  last ${terminalText(x.lastAt)}`);
  return `${lines.join('\n')}\n`;
}
