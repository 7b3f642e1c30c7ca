import type { OperatorRole } from '../store/index.js';

/**
 * What each role of the console may do: the one table both the HTML views and
 * the JSON API consult (through the registrar in app.ts, which refuses a
 * route before its handler runs). A permission not listed for a role is denied.
 *
 * - admin: everything, including revocation and operators;
 * - clerk: facilities, notices, letters, campaigns; reads certificates, no revocation;
 * - auditor: read-only: the audit trail and reports.
 */
export const PERMISSIONS = [
  'facilities.read',
  'facilities.write',
  'notices.read',
  'notices.write',
  'certificates.read',
  'certificates.revoke',
  'campaigns.write',
  'operators.manage',
  'audit.read',
  'reports.read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<OperatorRole, readonly Permission[]>> = {
  admin: PERMISSIONS,
  clerk: ['facilities.read', 'facilities.write', 'notices.read', 'notices.write', 'certificates.read', 'campaigns.write', 'reports.read'],
  auditor: ['audit.read', 'reports.read'],
};

/** Whether an operator of this role may do this. */
export function may(role: OperatorRole, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission);
}

/** The roles' names as the console shows them (Japanese first). */
export const ROLE_LABELS: Readonly<Record<OperatorRole, { ja: string; en: string }>> = {
  admin: { ja: '管理者', en: 'Administrator' },
  clerk: { ja: '事務担当', en: 'Clerk' },
  auditor: { ja: '監査担当', en: 'Auditor' },
};
