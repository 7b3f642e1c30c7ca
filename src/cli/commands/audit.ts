import { badRequest } from '../../errors/index.js';
import { HOME_OPTIONS, JSON_OPTION, type Command } from '../command.js';
import { withAuthority } from '../authority.js';

export const auditVerifyCommand: Command = {
  path: ['audit', 'verify'],
  summary: 'check the hash chain of the audit trail; names every altered or deleted event',
  options: { ...HOME_OPTIONS, ...JSON_OPTION },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const r = await ca.audit.verify();
      if (ctx.values.json) ctx.json({ intact: r.problems.length === 0, ...r });
      else if (r.problems.length === 0) ctx.out(`audit trail intact: ${r.events} events`);
      else for (const p of r.problems) ctx.out(`TAMPERED ${p.kind}: ${p.message}`);
      if (r.problems.length) {
        if (!ctx.values.json) ctx.err(`sekisho: AUDIT_CHAIN_BROKEN: ${r.problems.length} problem(s) in the audit trail; preserve the database and investigate`);
        return 1;
      }
    }),
};

export const auditListCommand: Command = {
  path: ['audit', 'list'],
  summary: 'list audit events in order',
  options: {
    ...HOME_OPTIONS,
    after: { type: 'string', description: 'only events after this sequence number', valueName: 'SEQ' },
    limit: { type: 'string', description: 'at most this many events (default 1000)', valueName: 'N' },
    ...JSON_OPTION,
  },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const num = (name: string, dflt: number) => {
        const raw = ctx.values[name] as string | undefined;
        if (raw === undefined) return dflt;
        if (!/^\d+$/.test(raw)) throw badRequest('NUMBER_INVALID', `--${name} must be a whole number`);
        return Number(raw);
      };
      const events = await ca.audit.list({ afterSeq: num('after', 0), limit: num('limit', 1000) });
      if (ctx.values.json) return ctx.json(events);
      for (const e of events) ctx.out(`${String(e.seq).padStart(6)}  ${e.at}  ${e.outcome.padEnd(7)}  ${e.action.padEnd(22)}  ${e.subject ?? '-'}  ${e.actor}${e.reasonCode ? `  ${e.reasonCode}` : ''}`);
    }),
};
