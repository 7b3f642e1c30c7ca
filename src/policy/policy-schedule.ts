import type { ClientCertificatePolicy } from './client-certificate-policy.js';
import type { ComplianceProfile } from './tls-compliance.js';

/**
 * A policy over time: "until D enforce profile A, from D enforce profile B",
 * and certificate exceptions that end on their own dates. Pure: the gateway
 * asks which state is in force now and which comes next, and switches at the
 * boundary without a restart; observation judges every connection against
 * the coming state too.
 */
export interface PolicyPhase {
  /** When the phase starts; absent for the first phase (in force from the beginning). */
  from?: Date;
  profile: ComplianceProfile;
  /** From this phase on, a chain-verified client certificate must name a facility number (LEGACY_SUBJECT otherwise, unless excepted); absent: the schedule's clientPolicy says. */
  facilitySubjectRequired?: boolean;
}

export interface PolicySchedule {
  /** In order of `from`; the first has no `from`. */
  phases: readonly PolicyPhase[];
  /** Dated certificate exceptions (each ends on its own `until`). */
  clientPolicy: ClientCertificatePolicy;
}

/** What is enforced at one instant. */
export interface PolicyState {
  profile: ComplianceProfile;
  clientPolicy: ClientCertificatePolicy;
  /** When this state began (absent: from the beginning). */
  since?: Date;
}

export interface PolicyOutlook {
  inForce: PolicyState;
  /** The next state and when it starts; absent when nothing is scheduled. */
  coming?: PolicyState & { since: Date };
}

/** A schedule with one phase: a fixed policy. */
export function fixedSchedule(profile: ComplianceProfile, clientPolicy: ClientCertificatePolicy = { exceptions: [] }): PolicySchedule {
  return { phases: [{ profile }], clientPolicy };
}

/** The instant after a YYYY-MM-DD day ends in Japan time (exceptions' `until` is inclusive, JST). */
function endOfJapanDay(day: string): Date {
  return new Date(Date.parse(`${day}T00:00:00+09:00`) + 86_400_000);
}

/** The instant a YYYY-MM-DD day begins in Japan time (an exception's `from` is inclusive, JST). */
function startOfJapanDay(day: string): Date {
  return new Date(Date.parse(`${day}T00:00:00+09:00`));
}

/** The clientPolicy as of `at`: exceptions already ended or not yet begun are dropped; the phase may require facility subjects. */
function exceptionsAt(schedule: PolicySchedule, at: Date, phase: PolicyPhase): ClientCertificatePolicy {
  const t = at.getTime();
  return {
    ...schedule.clientPolicy,
    ...(phase.facilitySubjectRequired !== undefined ? { facilitySubjectRequired: phase.facilitySubjectRequired } : {}),
    exceptions: schedule.clientPolicy.exceptions.filter((e) => endOfJapanDay(e.until).getTime() > t && (!e.from || startOfJapanDay(e.from).getTime() <= t)),
  };
}

function phaseAt(schedule: PolicySchedule, at: Date): PolicyPhase {
  let current = schedule.phases[0]!;
  for (const p of schedule.phases) if (!p.from || p.from.getTime() <= at.getTime()) current = p;
  return current;
}

/** The next instant after `now` at which something in the schedule changes. */
export function nextPolicyChange(schedule: PolicySchedule, now: Date): Date | undefined {
  const t = now.getTime();
  const candidates = [
    ...schedule.phases.map((p) => p.from?.getTime()),
    ...schedule.clientPolicy.exceptions.map((e) => endOfJapanDay(e.until).getTime()),
    ...schedule.clientPolicy.exceptions.map((e) => (e.from ? startOfJapanDay(e.from).getTime() : undefined)),
  ].filter((x): x is number => x !== undefined && x > t);
  return candidates.length ? new Date(Math.min(...candidates)) : undefined;
}

export function policyAt(schedule: PolicySchedule, at: Date): PolicyState {
  const phase = phaseAt(schedule, at);
  return { profile: phase.profile, clientPolicy: exceptionsAt(schedule, at, phase), ...(phase.from ? { since: phase.from } : {}) };
}

export function policyOutlook(schedule: PolicySchedule, now: Date): PolicyOutlook {
  const inForce = policyAt(schedule, now);
  const next = nextPolicyChange(schedule, now);
  return next ? { inForce, coming: { ...policyAt(schedule, next), since: next } } : { inForce };
}

/**
 * Checks a schedule's shape (fail at start-up): at least one phase, the
 * first without `from`, every later one with a `from` strictly after the one
 * before (phases neither overlap nor come out of order). A `from` in the past
 * is fine: that phase is simply in force already. Returns the problem or
 * undefined.
 */
export function checkPolicySchedule(schedule: PolicySchedule): string | undefined {
  const [first, ...rest] = schedule.phases;
  if (!first) return 'a schedule needs at least one phase';
  if (first.from) return 'the first phase has no "from" (it is in force from the beginning)';
  let last: Date | undefined;
  for (const [i, p] of rest.entries()) {
    if (!p.from || Number.isNaN(p.from.getTime())) return `phase ${i + 2} needs a "from" date`;
    if (last && p.from.getTime() <= last.getTime()) return `phase ${i + 2} starts (${p.from.toISOString()}) no later than phase ${i + 1} (${last.toISOString()}): phases must be in order of "from", without overlap`;
    last = p.from;
  }
  return undefined;
}

/** The instant a schedule date means: YYYY-MM-DD is the start of that day in Japan time; a full ISO 8601 time with its offset is itself. */
export function scheduleInstant(text: string): Date | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    const d = startOfJapanDay(text);
    return Number.isNaN(d.getTime()) || !new Date(`${text}T00:00:00Z`).toISOString().startsWith(text) ? undefined : d;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
