import { readFileSync } from 'node:fs';
import { badRequest } from '../../errors/index.js';
import { parseExpiryWindow, writeFileAtomic, type ExpiringCertificate } from '../../ca/index.js';
import { certificateToPem, fingerprint, OPERATOR_REVOCATION_REASONS, parseCsr, parseKeyType, parseRevocationReason } from '../../pki/index.js';
import { isEndEntityProfile, parseFacilityNumber, END_ENTITY_PROFILES } from '../../policy/index.js';
import type { CertificateRecord } from '../../store/index.js';
import { exactlyOne, HOME_OPTIONS, JSON_OPTION, requires, type Command } from '../command.js';
import { actor, withAuthority } from '../authority.js';
import { secretFromFile } from '../secrets.js';
import { checkOutputPath } from '../output-file.js';


export const certIssueCommand: Command = {
  path: ['cert', 'issue'],
  summary: 'issue a certificate from a CSR, or with a CA-made key delivered as PKCS#12',
  options: {
    ...HOME_OPTIONS,
    facility: { type: 'string', description: 'facility number (facility and device profiles)', valueName: 'NUMBER' },
    profile: { type: 'string', description: `certificate profile: ${END_ENTITY_PROFILES.join(', ')} (default facility)`, valueName: 'NAME' },
    device: { type: 'string', description: 'device name (device profile)', valueName: 'NAME' },
    host: { type: 'string', multiple: true, description: 'DNS name or IP address (server profile; repeat for more)', valueName: 'NAME' },
    days: { type: 'string', description: 'validity in days (default and maximum from the profile: 730 for facilities)', valueName: 'N' },
    csr: { type: 'string', description: 'PKCS#10 request file (PEM or DER)', valueName: 'FILE' },
    out: { type: 'string', description: 'where to write the certificate (PEM) for --csr; stdout when absent', valueName: 'FILE' },
    p12: { type: 'string', description: 'make the key here and write a PKCS#12 file', valueName: 'FILE' },
    'password-file': { type: 'string', description: 'file holding the PKCS#12 password', valueName: 'FILE' },
    key: { type: 'string', description: 'key type for --p12: ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072, rsa-4096', valueName: 'TYPE' },
    legacy: { type: 'boolean', description: 'PKCS#12 for old Windows importers (3DES, SHA-1 MAC)' },
    ...JSON_OPTION,
  },
  validators: [
    exactlyOne('csr', 'p12'),
    requires('p12', 'password-file'),
    (v) => (v.out !== undefined && v.p12 !== undefined ? '--out goes with --csr; --p12 names its own file' : undefined),
    (v) => (v.host !== undefined && v.profile !== 'server' ? '--host goes with --profile server' : undefined),
    (v) => (v.device !== undefined && v.profile !== 'device' ? '--device goes with --profile device' : undefined),
    (v) => (v.facility !== undefined && v.profile === 'server' ? 'a server certificate belongs to no facility; drop --facility' : undefined),
    (v) => (v.legacy !== undefined && v.p12 === undefined ? '--legacy goes with --p12' : undefined),
  ],
  run: (ctx) =>
    withAuthority(ctx, true, async (ca) => {
      const v = ctx.values;
      const profile = (v.profile as string | undefined) ?? 'facility';
      if (!isEndEntityProfile(profile)) throw badRequest('PROFILE_UNKNOWN', `unknown profile "${profile}"; use ${END_ENTITY_PROFILES.join(', ')}`);
      if (v.days !== undefined && !/^\d{1,4}$/.test(v.days as string)) throw badRequest('VALIDITY_OUT_OF_RANGE', '--days must be a whole number of days');
      const days = v.days === undefined ? undefined : Number(v.days);
      const order = {
        profile,
        ...(v.facility ? { facilityNumber: v.facility as string } : {}),
        ...(v.device ? { deviceName: v.device as string } : {}),
        ...(v.host ? { hosts: v.host as string[] } : {}),
        ...(days !== undefined ? { validityDays: days } : {}),
        actor: actor(ctx.env),
      };
      let issued;
      let written: string | undefined;
      if (v.csr) {
        const out = v.out ? checkOutputPath(v.out as string, '--out') : undefined;
        let input: Buffer;
        try {
          input = readFileSync(v.csr as string);
        } catch {
          throw badRequest('CSR_FILE_UNREADABLE', `cannot read the CSR file ${v.csr as string}`);
        }
        // Parsed and its signature checked where the certificate is built (CSR_* errors).
        issued = await ca.issue({ ...order, csr: input, via: 'csr' });
        if (out) writeFileAtomic((written = out), certificateToPem(issued.der));
        else if (!v.json) ctx.out(certificateToPem(issued.der).trimEnd());
      } else {
        const out = checkOutputPath(v.p12 as string, '--p12');
        const password = secretFromFile(v['password-file'] as string, 'PKCS#12 password');
        const keyType = parseKeyType((v.key as string | undefined) ?? 'ecdsa-p256');
        const result = await ca.issuePkcs12({ ...order, keyType, via: 'ca-key' }, password, { legacy: Boolean(v.legacy) });
        issued = result;
        const p12 = result.pkcs12;
        writeFileAtomic((written = out), p12, 0o600);
      }
      const summary = { serial: issued.serial, subject: issued.view.subject, notAfter: issued.view.notAfter.toISOString(), sha256: fingerprint(issued.der), ...(written ? { file: written } : {}), ...(v.json && v.csr && !written ? { pem: certificateToPem(issued.der) } : {}) };
      if (v.json) return ctx.json(summary);
      if (written) ctx.err(`issued ${issued.serial} → ${written} (valid until ${summary.notAfter})`);
    }),
};

const renewalText = (c: ExpiringCertificate) =>
  c.renewal === 'newer-certificate' ? `renewed: newer certificate ${c.newerSerial ?? ''}` : c.renewal === 'renewing' ? 'renewal under way (EST)' : c.renewal === 'open-notice' ? `notice ${c.openNotice ?? ''} open` : 'no renewal yet';

const row = (c: CertificateRecord) => `${c.serial}  ${c.status.padEnd(8)}  ${c.profile.padEnd(10)}  ${(c.facilityNumber ?? '-').padEnd(10)}  ${c.notAfter.slice(0, 10)}  ${c.subject}`;

export const certListCommand: Command = {
  path: ['cert', 'list'],
  summary: 'list certificates (serial, status, profile, facility, expiry, subject)',
  options: {
    ...HOME_OPTIONS,
    facility: { type: 'string', description: 'only this facility', valueName: 'NUMBER' },
    status: { type: 'string', description: 'only reserved, issued or revoked', valueName: 'STATUS' },
    expiring: { type: 'string', description: 'only the live certificates of active facilities ending within this window (e.g. 30d, 60d, 90d), soonest first, with the renewal already under way', valueName: 'Nd' },
    ...JSON_OPTION,
  },
  validators: [(v) => (v.expiring !== undefined && v.status !== undefined ? '--expiring lists live (issued) certificates; drop --status' : undefined)],
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      if (ctx.values.expiring !== undefined) {
        const days = parseExpiryWindow(ctx.values.expiring as string);
        await ca.applyDueRevocations();
        const list = await ca.campaigns.expiring({ days, ...(ctx.values.facility ? { facilities: [parseFacilityNumber(ctx.values.facility as string)] } : {}) });
        if (ctx.values.json) return ctx.json(list);
        ctx.out(`${list.length} certificate(s) of active facilities end within ${days} days`);
        for (const c of list) ctx.out(`${c.notAfter.slice(0, 10)}  ${String(c.daysLeft).padStart(3)}d  ${c.serial}  ${c.facilityNumber}  ${c.facilityName}  ${renewalText(c)}`);
        return;
      }
      const status = ctx.values.status as string | undefined;
      if (status && !['reserved', 'issued', 'revoked'].includes(status)) throw badRequest('STATUS_UNKNOWN', `--status must be reserved, issued or revoked`);
      // Renewed certificates whose overlap ended are revoked (superseded) first, so the list shows them as they are.
      await ca.applyDueRevocations();
      const filter = {
        ...(ctx.values.facility ? { facilityNumber: parseFacilityNumber(ctx.values.facility as string) } : {}),
        ...(status ? { status: status as CertificateRecord['status'] } : {}),
      };
      if (ctx.values.json) return ctx.json((await ca.listCertificates(filter)).map(({ der, ...rest }) => ({ ...rest, ...(der ? { pem: certificateToPem(der) } : {}) })));
      // The text list is written page by page: a national-size store is never in memory at once.
      for await (const page of ca.listCertificatePages(filter)) ctx.out(page.map(row).join('\n'));
    }),
};

export const certRevokeCommand: Command = {
  path: ['cert', 'revoke'],
  summary: 'revoke a certificate with an RFC 5280 reason',
  usage: 'cert revoke <serial> [--reason NAME]',
  positionals: [{ name: 'serial', required: true }],
  options: {
    ...HOME_OPTIONS,
    reason: { type: 'string', description: `RFC 5280 reason: ${OPERATOR_REVOCATION_REASONS.join(', ')} (default unspecified)`, valueName: 'NAME' },
    ...JSON_OPTION,
  },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const reason = parseRevocationReason((ctx.values.reason as string | undefined) ?? 'unspecified');
      const rec = await ca.revoke(ctx.positionals[0]!, reason, actor(ctx.env));
      const { der: _der, ...shown } = rec;
      if (ctx.values.json) return ctx.json(shown);
      ctx.out(`revoked ${rec.serial} (${reason}) at ${rec.revokedAt}; publish a new CRL with: sekisho crl --out FILE`);
    }),
};
