import type { Facility } from '../../store/index.js';
import { HOME_OPTIONS, JSON_OPTION, required, type Command, type CommandContext } from '../command.js';
import { actor, withAuthority } from '../authority.js';

const show = (f: Facility) => `${f.number}  ${f.status.padEnd(9)}  ${f.name}`;

export const facilityAddCommand: Command = {
  path: ['facility', 'add'],
  summary: 'register a facility by its 10-digit 医療機関番号',
  options: {
    ...HOME_OPTIONS,
    code: { type: 'string', description: '10-digit medical institution number (医療機関番号)', valueName: 'NUMBER' },
    name: { type: 'string', description: 'facility name (Japanese allowed)', valueName: 'NAME' },
    address: { type: 'string', description: 'postal address (optional)', valueName: 'TEXT' },
    contact: { type: 'string', description: 'contact person or phone (optional)', valueName: 'TEXT' },
    ...JSON_OPTION,
  },
  validators: [required('code', 'name')],
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const v = ctx.values;
      const f = await ca.addFacility(
        { number: v.code as string, name: v.name as string, ...(v.address ? { address: v.address as string } : {}), ...(v.contact ? { contact: v.contact as string } : {}) },
        actor(ctx.env),
      );
      if (v.json) return ctx.json(f);
      ctx.out(`registered ${show(f)}`);
    }),
};

function statusCommand(word: 'suspend' | 'resume'): Command {
  return {
    path: ['facility', word],
    summary: word === 'suspend' ? 'suspend a facility (no issuance; the gateway refuses it)' : 'resume a suspended facility',
    usage: `facility ${word} <number>`,
    options: { ...HOME_OPTIONS, ...JSON_OPTION },
    positionals: [{ name: 'number', required: true }],
    run: (ctx: CommandContext) =>
      withAuthority(ctx, false, async (ca) => {
        const f = await ca.setFacilityStatus(ctx.positionals[0]!, word === 'suspend' ? 'suspended' : 'active', actor(ctx.env));
        if (ctx.values.json) return ctx.json(f);
        ctx.out(show(f));
      }),
  };
}
export const facilitySuspendCommand = statusCommand('suspend');
export const facilityResumeCommand = statusCommand('resume');

export const facilityListCommand: Command = {
  path: ['facility', 'list'],
  summary: 'list registered facilities',
  options: { ...HOME_OPTIONS, ...JSON_OPTION },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const list = await ca.listFacilities();
      if (ctx.values.json) return ctx.json(list);
      if (!list.length) ctx.out('no facilities registered');
      for (const f of list) ctx.out(show(f));
    }),
};
