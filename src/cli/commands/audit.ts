import { badRequest, isSekishoError } from '../../errors/index.js';
import type { TrailReport } from '../../audit/index.js';
import { HOME_OPTIONS, JSON_OPTION, type Command } from '../command.js';
import { withAuthority } from '../authority.js';
import { terminalText } from '../../errors/index.js';
import { parseAuditSearch, type AuditSearchInput } from '../../report/index.js';

export const auditVerifyCommand: Command = {
  path: ['audit', 'verify'],
  summary: 'check the audit trail against its hash chain and its signed checkpoints; names every altered or removed event (exit 0 intact, 1 tampered, 2 cannot verify)',
  options: { ...HOME_OPTIONS, ...JSON_OPTION },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      let r: TrailReport;
      try {
        r = await ca.verifyAuditTrail();
      } catch (e) {
        if (!isSekishoError(e) || !/^AUDIT_KEY_/.test(e.code)) throw e;
        if (ctx.values.json) ctx.json({ status: 'unverifiable', intact: false, reason: e.message, code: e.code });
        ctx.err(`sekisho: ${e.code}: ${e.message}`);
        return 2;
      }
      if (ctx.values.json) ctx.json({ ...r, intact: r.status === 'intact' });
      else {
        ctx.out(`audit key ${r.auditKeyId}`);
        for (const p of r.problems) ctx.out(`TAMPERED ${p.kind}: ${terminalText(p.message)}`);
        if (r.status === 'intact') {
          const s = r.signedThrough;
          const writers = (r.chains?.length ?? 1) - 1;
          ctx.out(`audit trail intact: ${r.events} events${writers > 0 ? ` in ${writers + 1} chains (the CA's and ${writers} gateway writer${writers > 1 ? 's' : ''})` : ''}${s ? `, signed through event ${s.seq} (checkpoint ${s.checkpoint} at ${s.at})` : ''}`);
        }
        if (r.uncovered) ctx.out(`not yet signed: events ${r.uncovered.fromSeq}–${r.uncovered.toSeq} were appended after the last signed checkpoint (not tampering; "sekisho audit checkpoint" signs them)`);
        for (const c of r.chains?.slice(1) ?? []) if (c.uncovered) ctx.out(`not yet signed: events ${c.uncovered.fromSeq}–${c.uncovered.toSeq} of writer ${terminalText(c.writer)} (not tampering; the next checkpoint signs them)`);
      }
      if (r.status === 'tampered') {
        ctx.err(`sekisho: AUDIT_CHAIN_BROKEN: ${r.problems.length} problem(s) in the audit trail; preserve the database and investigate`);
        return 1;
      }
      if (r.status === 'unverifiable') {
        ctx.err(`sekisho: AUDIT_UNVERIFIABLE: ${r.reason ?? 'the audit trail cannot be verified'}`);
        return 2;
      }
    }),
};

export const auditCheckpointCommand: Command = {
  path: ['audit', 'checkpoint'],
  summary: 'sign a checkpoint of the audit trail now with the audit key (needs SEKISHO_PASSPHRASE, or SEKISHO_PIN for a CA whose keys are in a token)',
  options: { ...HOME_OPTIONS, ...JSON_OPTION },
  run: (ctx) =>
    withAuthority(ctx, true, async (ca) => {
      // Signs even when nothing is new, so an auditor can ask for a fresh one; withAuthority then finds nothing more to sign.
      const c = (await ca.checkpoint({ force: true }))!;
      if (ctx.values.json) return ctx.json(c);
      ctx.out(`checkpoint ${c.id}: the audit trail through event ${c.seq} (head ${c.headHash}) signed at ${c.at} by audit key ${c.keyId}`);
    }),
};

export const auditListCommand: Command = {
  path: ['audit', 'list'],
  summary: 'list audit events in order, or search them (--action, --actor, --facility, --from, --to: newest first)',
  options: {
    ...HOME_OPTIONS,
    after: { type: 'string', description: 'only events after this sequence number', valueName: 'SEQ' },
    limit: { type: 'string', description: 'at most this many events (default 1000; a search 200)', valueName: 'N' },
    action: { type: 'string', description: 'search: this event type (notice.created), or a prefix ending in "." or "*" (gateway.*)', valueName: 'TYPE' },
    actor: { type: 'string', description: 'search: this actor exactly as recorded (operator:sato, a facility number, client:ADDRESS)', valueName: 'WHO' },
    facility: { type: 'string', description: 'search: events of this facility (its actor or subject, or naming it)', valueName: 'NUMBER' },
    from: { type: 'string', description: 'search: from this day (YYYY-MM-DD, Japan time) or instant (ISO 8601 with offset)', valueName: 'WHEN' },
    to: { type: 'string', description: 'search: up to this day, inclusive, or instant, exclusive', valueName: 'WHEN' },
    ...JSON_OPTION,
  },
  validators: [(v) => (v.after !== undefined && ['action', 'actor', 'facility', 'from', 'to'].some((k) => v[k] !== undefined) ? '--after pages the plain listing; a search is newest first (page it with --to)' : undefined)],
  run: async (ctx) => {
    const v = ctx.values;
    const searching = ['action', 'actor', 'facility', 'from', 'to'].some((k) => v[k] !== undefined);
    // A search's terms are checked before the store is opened.
    const search = searching ? parseAuditSearch({ ...(v as Record<string, string | undefined>), limit: (v.limit as string | undefined) ?? '200' } as AuditSearchInput) : undefined;
    return withAuthority(ctx, false, async (ca) => {
      const num = (name: string, dflt: number) => {
        const raw = ctx.values[name] as string | undefined;
        if (raw === undefined) return dflt;
        if (!/^\d+$/.test(raw)) throw badRequest('NUMBER_INVALID', `--${name} must be a whole number`);
        return Number(raw);
      };
      const events = search ? await ca.audit.search(search) : await ca.audit.list({ afterSeq: num('after', 0), limit: num('limit', 1000) });
      if (ctx.values.json) return ctx.json(events);
      for (const e of events) ctx.out(`${String(e.seq).padStart(6)}  ${terminalText(e.at)}  ${terminalText(e.outcome).padEnd(7)}  ${terminalText(e.action).padEnd(22)}  ${terminalText(e.subject ?? '-')}  ${terminalText(e.actor)}${e.reasonCode ? `  ${terminalText(e.reasonCode)}` : ''}`);
    });
  },
};
