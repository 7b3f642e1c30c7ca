import type { ComplianceProfile } from '../policy/index.js';
import type { CheckContext, CheckResult } from './check.js';
import { CHECKS } from './checks/index.js';
import type { Findings } from './findings.js';

export interface Verdict {
  profile: string;
  compliant: boolean;
  failures: number;
  warnings: number;
  results: CheckResult[];
}

/** Runs every check; a check that throws is reported as a failure of that check, never as a crash. */
export function judge(findings: Findings, profile: ComplianceProfile, ctx: CheckContext): Verdict {
  const results: CheckResult[] = CHECKS.map((c) => {
    try {
      const r = c.run(findings, profile, ctx);
      return { check: c.id, title: c.title, ...r, cites: r.cites ?? c.cites };
    } catch (e) {
      return { check: c.id, title: c.title, cites: c.cites, status: 'fail' as const, found: `the check could not run: ${(e as Error).message}`, required: '' };
    }
  });
  const failures = results.filter((r) => r.status === 'fail').length;
  return { profile: profile.name, compliant: failures === 0, failures, warnings: results.filter((r) => r.status === 'warn').length, results };
}
