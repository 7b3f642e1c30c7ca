import { certificateToPem, describeCertificate, fingerprint, formatName } from '../../pki/index.js';
import { HOME_OPTIONS, JSON_OPTION, type Command } from '../command.js';
import { withAuthority } from '../authority.js';

export const caChainCommand: Command = {
  path: ['ca', 'chain'],
  summary: 'print the CA certificates (issuing CA, then root) as PEM',
  options: { ...HOME_OPTIONS, ...JSON_OPTION },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const chain = ca.chain();
      if (ctx.values.json) {
        return ctx.json(
          chain.map((der, i) => {
            const v = describeCertificate(der);
            return { role: i === 0 ? 'issuing' : 'root', subject: formatName(v.subject), serial: v.serialHex, notAfter: v.notAfter.toISOString(), sha256: fingerprint(der), sha1: fingerprint(der, 'sha1'), pem: certificateToPem(der) };
          }),
        );
      }
      ctx.out(chain.map(certificateToPem).join('').trimEnd());
    }),
};
