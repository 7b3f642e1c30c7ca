import { suiteByName } from './cipher-suites.js';
import type { ComplianceProfile } from './tls-compliance.js';

/**
 * Where a TLS ≤ 1.2 suite stands under a profile: in its list, outside it but
 * meeting its rule, or forbidden. The scanner judges servers with it and the
 * connection verdict judges clients with it; one rule for both.
 */
export function classifySuite(name: string, p: ComplianceProfile): 'listed' | 'secure-unlisted' | 'forbidden' {
  if (p.suitesListed.includes(name)) return 'listed';
  const s = suiteByName(name);
  if (!s) return 'forbidden';
  const broken = s.export || s.anonymous || s.cipher === 'NULL' || s.mac === 'MD5' || /RC4|DES40|DES_CBC|RC2|IDEA|3DES/.test(s.cipher);
  if (broken) return 'forbidden';
  if (p.suiteRule.aead && !s.aead) return 'forbidden';
  if (p.suiteRule.forwardSecret && !s.forwardSecret) return 'forbidden';
  return 'secure-unlisted';
}
