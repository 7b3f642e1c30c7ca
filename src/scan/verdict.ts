import type { ComplianceProfile } from '../policy/index.js';
import type { Check, CheckContext, CheckResult } from './check.js';
import { CHECKS } from './checks/index.js';
import type { Findings } from './findings.js';

export interface Verdict {
  profile: string;
  compliant: boolean;
  failures: number;
  warnings: number;
  results: CheckResult[];
}

/** One check's result; a check that throws is reported as a failure of that check, never as a crash. */
function run(c: Check, findings: Findings, profile: ComplianceProfile, ctx: CheckContext): CheckResult {
  try {
    const r = c.run(findings, profile, ctx);
    return { check: c.id, title: c.title, ...r, cites: r.cites ?? c.cites };
  } catch (e) {
    return { check: c.id, title: c.title, cites: c.cites, status: 'fail', found: `the check could not run: ${(e as Error).message}`, required: '' };
  }
}

/** Runs every check. */
export function judge(findings: Findings, profile: ComplianceProfile, ctx: CheckContext): Verdict {
  const results: CheckResult[] = CHECKS.map((c) => run(c, findings, profile, ctx));
  // A server with more than one key sends another chain with other suites: the certificate checks judge each, and what one
  // of them fails is a failure of the server (the first chain alone let an RSA-1024 / SHA-1 chain through beside a good one).
  for (const other of findings.certificate?.others ?? []) {
    const alone: Findings = { ...findings, certificate: { chain: other.chain, ocspStapled: findings.certificate!.ocspStapled } };
    for (const c of CHECKS) {
      if (!c.id.startsWith('certificate-') || c.id === 'certificate-observed') continue;
      const r = run(c, alone, profile, ctx);
      if (r.status === 'fail' || r.status === 'warn') results.push({ ...r, check: `${c.id}:${other.suite}`, title: `${c.title} (the chain sent with ${other.suite})` });
    }
  }
  const failures = results.filter((r) => r.status === 'fail').length;
  return { profile: profile.name, compliant: failures === 0, failures, warnings: results.filter((r) => r.status === 'warn').length, results };
}
