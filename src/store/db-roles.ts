import { badRequest } from '../errors/index.js';
import type { Database } from './database.js';

/**
 * PostgreSQL roles for the parts of a fleet, each with only the rights its
 * part needs (Boulder's split of the storage authority, enforced by the
 * database as well as by the types each part is handed):
 *
 * - the CA role (the one that ran `sekisho init`, owner of the schema):
 *   everything; the CA host and the portal host (which issues) use it;
 * - a gateway role: reads the status feed (certificates' serial, status and
 *   due time, not their DER; facilities' number, name and status; the change
 *   counter; which CA the store belongs to), appends audit events to chains
 *   and reads chains and checkpoints; it cannot UPDATE or DELETE an audit
 *   event, touch a certificate, facility, notice or checkpoint, or change the schema;
 * - an auditor role: reads the audit trail and its checkpoints, nothing else.
 */
export type DbPart = 'gateway' | 'auditor';

const ROLE = /^[a-z_][a-z0-9_]{0,62}$/;

/** The statements that make `role` (if missing) and give it exactly the rights of `part`. Re-runnable. */
export function roleStatements(part: DbPart, role: string): string[] {
  if (!ROLE.test(role)) throw badRequest('DB_ROLE_INVALID', `"${role.slice(0, 70)}" is not a plain role name (lowercase letters, digits, _; at most 63)`);
  const create = `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} LOGIN; END IF; END $$`;
  const reset = [
    `REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}`,
    `REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ${role}`,
    `GRANT USAGE ON SCHEMA public TO ${role}`,
    `GRANT SELECT ON schema_migrations TO ${role}`,
  ];
  const audit = [`GRANT SELECT ON audit_events, audit_chains, audit_checkpoints TO ${role}`];
  if (part === 'auditor') return [create, ...reset, ...audit];
  return [
    create,
    ...reset,
    ...audit,
    // The status feed (store/status-feed.ts) and the store's owner (gateway-store.ts caIdentity).
    `GRANT SELECT ON change_counter, ca_identity TO ${role}`,
    `GRANT SELECT (serial, status, revoke_due_at, change_seq) ON certificates TO ${role}`,
    `GRANT SELECT (number, name, status, change_seq) ON facilities TO ${role}`,
    // Appending to an audit chain: a new event row, its writer's head row (made once, then moved; FOR UPDATE needs UPDATE).
    `GRANT INSERT ON audit_events TO ${role}`,
    `GRANT INSERT, UPDATE (seq, hash) ON audit_chains TO ${role}`,
    `GRANT USAGE ON SEQUENCE audit_events_seq TO ${role}`,
    // Connection observations: summed rows upserted (INSERT … ON CONFLICT DO UPDATE), days past retention pruned.
    `GRANT SELECT, INSERT, UPDATE, DELETE ON observations TO ${role}`,
  ];
}

/** Makes or narrows the role in one transaction (run as the CA role, on a migrated store). */
export async function applyRole(db: Database, part: DbPart, role: string): Promise<void> {
  if (db.dialect !== 'postgres') throw badRequest('DB_ROLES_POSTGRES_ONLY', 'database roles are PostgreSQL\'s; a SQLite store is one file on the CA host, guarded by its file permissions');
  const statements = roleStatements(part, role);
  await db.transaction(async (tx) => {
    for (const s of statements) await tx.run(s);
  });
}
