import { applyRole, roleStatements, type DbPart } from '../../store/index.js';
import { HOME_OPTIONS, JSON_OPTION, type Command } from '../command.js';
import { actor, withAuthority } from '../authority.js';

const PARTS: readonly DbPart[] = ['gateway', 'auditor'];

export const dbRolesCommand: Command = {
  path: ['db', 'roles'],
  summary: 'PostgreSQL: make (or narrow) a database role with only the rights of one part of a fleet: gateway (read revocations and facility status, append audit events) or auditor (read the audit trail)',
  usage: 'db roles --part gateway --role NAME [--home DIR --db URL | --print]',
  options: {
    ...HOME_OPTIONS,
    part: { type: 'string', description: 'gateway or auditor', valueName: 'PART' },
    role: { type: 'string', description: 'the role name (created with LOGIN if missing; give it a password or certificate authentication yourself)', valueName: 'NAME' },
    print: { type: 'boolean', description: 'print the SQL instead of running it (to review, or to run with psql as the schema owner)' },
    ...JSON_OPTION,
  },
  validators: [
    (v) => (v.part === undefined || !PARTS.includes(v.part as DbPart) ? `--part is ${PARTS.join(' or ')}` : undefined),
    (v) => (v.role === undefined ? 'give --role NAME' : undefined),
  ],
  async run(ctx) {
    const part = ctx.values.part as DbPart;
    const role = ctx.values.role as string;
    const statements = roleStatements(part, role);
    if (ctx.values.print) {
      for (const s of statements) ctx.out(`${s};`);
      return;
    }
    return withAuthority(ctx, false, async (ca) => {
      await applyRole(ca.db, part, role);
      await ca.audit.append({ actor: actor(ctx.env), action: 'db.role', outcome: 'success', subject: role, details: { part } });
      if (ctx.values.json) return ctx.json({ role, part, statements: statements.length });
      ctx.err(`role ${role} has the ${part} rights on ${ca.db.description} (a password or certificate for it is set apart: ALTER ROLE ${role} PASSWORD …, or pg_hba cert)`);
    });
  },
};
