import { fingerprint, parseKeyType } from '../../pki/index.js';
import { parseOperatorRole, writeFileAtomic } from '../../ca/index.js';
import { OPERATOR_ROLES, type OperatorRecord } from '../../store/index.js';
import { HOME_OPTIONS, JSON_OPTION, required, type Command } from '../command.js';
import { actor, withAuthority } from '../authority.js';
import { secretFromFile } from '../secrets.js';
import { checkOutputPath } from '../output-file.js';

const show = (o: OperatorRecord) => `${o.name.padEnd(16)}  ${o.role.padEnd(7)}  ${o.status.padEnd(7)}  ${o.certificateSerial}  ${o.createdAt.slice(0, 10)}`;

export const operatorAddCommand: Command = {
  path: ['operator', 'add'],
  summary: 'add an operator of the web console and write its client certificate as PKCS#12',
  options: {
    ...HOME_OPTIONS,
    name: { type: 'string', description: 'login name: a-z 0-9 . _ -, starting with a letter (at most 32)', valueName: 'NAME' },
    role: { type: 'string', description: `${OPERATOR_ROLES.join(', ')}: admin may do everything, clerk facilities and notices, auditor only reads`, valueName: 'ROLE' },
    p12: { type: 'string', description: 'where to write the PKCS#12 (key, certificate, chain; 0600)', valueName: 'FILE' },
    'password-file': { type: 'string', description: 'file holding the PKCS#12 password', valueName: 'FILE' },
    key: { type: 'string', description: 'key type: ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072', valueName: 'TYPE' },
    days: { type: 'string', description: 'validity in days (default and maximum 397)', valueName: 'N' },
    ...JSON_OPTION,
  },
  validators: [required('name', 'role', 'p12', 'password-file')],
  run: (ctx) =>
    withAuthority(ctx, true, async (ca) => {
      const v = ctx.values;
      const role = parseOperatorRole(v.role as string);
      const out = checkOutputPath(v.p12 as string, '--p12');
      const password = secretFromFile(v['password-file'] as string, 'PKCS#12 password');
      const keyType = parseKeyType((v.key as string | undefined) ?? 'ecdsa-p256');
      const days = v.days === undefined ? undefined : /^\d{1,4}$/.test(v.days as string) ? Number(v.days) : Number.NaN;
      const r = await ca.addOperator({ name: v.name as string, role, keyType, ...(days !== undefined ? { validityDays: days } : {}) }, password, actor(ctx.env));
      writeFileAtomic(out, r.pkcs12, 0o600);
      const summary = { ...r.operator, notAfter: r.certificate.view.notAfter.toISOString(), sha256: fingerprint(r.certificate.der), file: out };
      if (v.json) return ctx.json(summary);
      ctx.out(`added ${show(r.operator)} → ${out} (valid until ${summary.notAfter}); import it into the operator's browser to sign in to the console`);
    }),
};

export const operatorListCommand: Command = {
  path: ['operator', 'list'],
  summary: 'list operators of the web console (name, role, status, certificate serial, added)',
  options: { ...HOME_OPTIONS, ...JSON_OPTION },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const list = await ca.listOperators();
      if (ctx.values.json) return ctx.json(list);
      if (!list.length) ctx.out('no operators; add the first with "sekisho operator add --name NAME --role admin --p12 FILE --password-file FILE"');
      for (const o of list) ctx.out(show(o));
    }),
};

export const operatorRevokeCommand: Command = {
  path: ['operator', 'revoke'],
  summary: 'revoke an operator and its certificate (the console refuses it at once)',
  usage: 'operator revoke <name>',
  positionals: [{ name: 'name', required: true }],
  options: { ...HOME_OPTIONS, ...JSON_OPTION },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const o = await ca.revokeOperator(ctx.positionals[0]!, actor(ctx.env));
      if (ctx.values.json) return ctx.json(o);
      ctx.out(`revoked ${show(o)}`);
    }),
};
