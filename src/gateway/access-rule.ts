import type { ClientIdentity } from './client-identity.js';

/**
 * Who may reach an upstream: plain values, deny when empty (an explicit
 * `anyone: true` opens a route to every authenticated client). A client
 * passes when its facility number is listed or its certificate profile is.
 */
export interface AccessRule {
  anyone?: boolean;
  facilities?: readonly string[];
  profiles?: readonly ClientIdentity['profile'][];
}

export const ANYONE: AccessRule = { anyone: true };

export function allows(rule: AccessRule, id: ClientIdentity): boolean {
  if (rule.anyone) return true;
  if (id.facilityNumber && rule.facilities?.includes(id.facilityNumber)) return true;
  return rule.profiles?.includes(id.profile) ?? false;
}
