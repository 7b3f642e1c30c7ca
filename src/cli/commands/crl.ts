import { writeFileAtomic } from '../../ca/index.js';
import { crlToPem } from '../../pki/index.js';
import { badRequest } from '../../errors/index.js';
import { HOME_OPTIONS, JSON_OPTION, type Command } from '../command.js';
import { actor, withAuthority } from '../authority.js';
import { checkOutputPath } from '../output-file.js';

export const crlCommand: Command = {
  path: ['crl'],
  summary: 'sign a CRL v2 of all revoked, unexpired certificates',
  options: {
    ...HOME_OPTIONS,
    out: { type: 'string', description: 'file to write (DER, or PEM with --pem)', valueName: 'FILE' },
    pem: { type: 'boolean', description: 'PEM ("X509 CRL") instead of DER; printed on stdout when --out is absent' },
    ...JSON_OPTION,
  },
  validators: [(v) => (v.out === undefined && !v.pem ? 'give --out FILE (or --pem to print PEM on stdout)' : undefined)],
  run: (ctx) =>
    withAuthority(ctx, true, async (ca) => {
      const v = ctx.values;
      if (v.out && !/\S/.test(v.out as string)) throw badRequest('OUTPUT_INVALID', '--out needs a file name');
      // Before signing: a CRL that cannot be written must not consume a CRL number or add a crl.signed event.
      if (v.out) checkOutputPath(v.out as string, '--out', true);
      const crl = await ca.crl(actor(ctx.env));
      const body = v.pem ? crlToPem(crl.der) : crl.der;
      if (v.out) writeFileAtomic(v.out as string, body);
      const summary = { number: crl.number.toString(), entries: crl.entries, nextUpdate: crl.nextUpdate.toISOString(), bytes: crl.der.length, ...(v.out ? { file: v.out } : {}) };
      if (v.json) return ctx.json(summary);
      if (!v.out) ctx.out((body as string).trimEnd());
      else ctx.err(`CRL #${summary.number} with ${summary.entries} entries → ${v.out as string} (next update ${summary.nextUpdate})`);
    }),
};
