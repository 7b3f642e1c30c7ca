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

/** The clientPolicy as of `at`: exceptions already ended are dropped. */
function exceptionsAt(schedule: PolicySchedule, at: Date): ClientCertificatePolicy {
  return { ...schedule.clientPolicy, exceptions: schedule.clientPolicy.exceptions.filter((e) => endOfJapanDay(e.until).getTime() > at.getTime()) };
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
  ].filter((x): x is number => x !== undefined && x > t);
  return candidates.length ? new Date(Math.min(...candidates)) : undefined;
}

export function policyAt(schedule: PolicySchedule, at: Date): PolicyState {
  const phase = phaseAt(schedule, at);
  return { profile: phase.profile, clientPolicy: exceptionsAt(schedule, at), ...(phase.from ? { since: phase.from } : {}) };
}

export function policyOutlook(schedule: PolicySchedule, now: Date): PolicyOutlook {
  const inForce = policyAt(schedule, now);
  const next = nextPolicyChange(schedule, now);
  return next ? { inForce, coming: { ...policyAt(schedule, next), since: next } } : { inForce };
}
