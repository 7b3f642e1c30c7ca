import type { ComplianceProfile } from '../policy/index.js';
import type { Findings } from './findings.js';

/**
 * pass: meets the profile. fail: breaks a must / must-not. warn: a should, or
 * an extra that is secure but outside the profile's list. info: reported, not
 * judged. skip: the evidence was not available (says why).
 */
export type CheckStatus = 'pass' | 'fail' | 'warn' | 'info' | 'skip';

export interface CheckResult {
  check: string;
  title: string;
  cites: string;
  status: CheckStatus;
  /** What the scan found, in words a person can check. */
  found: string;
  /** What the profile requires. */
  required: string;
}

export interface CheckContext {
  /** The host name the client meant to reach (for SAN matching). */
  hostname: string;
  /** Trust anchors for the chain check (DER), when given. */
  trustAnchors: Buffer[];
  now: Date;
}

/** One check: its name, the guideline item it cites, its effective date, and a judgement that never throws. */
export interface Check {
  id: string;
  title: string;
  cites: string;
  /** The date the cited requirement took effect (ISO date). */
  effective: string;
  run(findings: Findings, profile: ComplianceProfile, ctx: CheckContext): Omit<CheckResult, 'check' | 'title' | 'cites'> & { cites?: string };
}

export const result = (status: CheckStatus, found: string, required: string) => ({ status, found, required });
