import { join, resolve } from 'node:path';
import { findChromium, MAX_DOWNLOADS_LIMIT, printToPdf, renderNoticeLetter, writeFileAtomic, type CreatedNotice, type NoticeSummary } from '../../ca/index.js';
import { badRequest } from '../../errors/index.js';
import { parseFacilityNumber } from '../../policy/index.js';
import { HOME_OPTIONS, JSON_OPTION, required, type Command } from '../command.js';
import { actor, withAuthority } from '../authority.js';
import { checkOutputPath } from '../output-file.js';

export const DEFAULT_PORTAL_URL = 'https://127.0.0.1:8080/';

const row = (n: NoticeSummary) => `${n.id}  ${n.kind.padEnd(8)}  ${n.facilityNumber}  ${n.state.padEnd(7)}  ${String(n.failures).padStart(1)}  ${`${n.downloads}/${n.maxDownloads}`.padStart(5)}  ${n.expiresAt.slice(0, 10)}  ${n.serial ?? '-'}${n.deviceName ? `  device ${n.deviceName}` : ''}`;

function maxDownloads(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,2}$/.test(v as string)) throw badRequest('NOTICE_DOWNLOADS_INVALID', `--max-downloads must be a whole number (1–${MAX_DOWNLOADS_LIMIT}); 1 makes the notice single-use`);
  return Number(v);
}

function days(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,3}$/.test(v as string)) throw badRequest('NOTICE_DAYS_INVALID', '--days must be a whole number of days (1–366)');
  return Number(v);
}

export const noticeCreateCommand: Command = {
  path: ['notice', 'create'],
  summary: 'create an issuance notice: print its IDs once and write the letter (HTML + PDF)',
  options: {
    ...HOME_OPTIONS,
    facility: { type: 'string', description: 'facility number (医療機関番号)', valueName: 'NUMBER' },
    days: { type: 'string', description: 'days the notice stays valid (default 180)', valueName: 'N' },
    'max-downloads': { type: 'string', description: 'downloads the notice allows within its window, each revoking the one before (default: config notices.maxDownloads, 3; 1 = single-use)', valueName: 'N' },
    'out-dir': { type: 'string', description: 'where to write the letter (default: the current directory)', valueName: 'DIR' },
    portal: { type: 'string', description: 'portal URL printed on the letter (default: config urls.portal, else https://127.0.0.1:8080/)', valueName: 'URL' },
    'no-pdf': { type: 'boolean', description: 'write only the HTML letter (no Chromium needed)' },
    ...JSON_OPTION,
  },
  validators: [required('facility')],
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const v = ctx.values;
      const number = parseFacilityNumber(v.facility as string);
      const portalUrl = (v.portal as string | undefined) ?? ca.config.urls.portal ?? DEFAULT_PORTAL_URL;
      if (!/^https:\/\/[^\s]+$/.test(portalUrl)) throw badRequest('PORTAL_URL_INVALID', `the portal URL must be https://… (got "${portalUrl.slice(0, 80)}")`);
      const dir = resolve((v['out-dir'] as string | undefined) ?? '.');
      const chromium = v['no-pdf'] ? undefined : findChromium(ctx.env);
      if (!v['no-pdf'] && !chromium) throw badRequest('CHROMIUM_MISSING', 'printing the letter as PDF needs Chromium (apt-get install chromium, or set SEKISHO_CHROMIUM); or pass --no-pdf for the HTML letter only');
      await ca.registration.activeFacility(number);
      const max = maxDownloads(v['max-downloads']);
      // Check the files can be written before the notice exists: its IDs are shown only once.
      const probe = (name: string) => checkOutputPath(join(dir, name), '--out-dir');
      probe(`notice-${number}-probe.html`);
      const notice: CreatedNotice = await ca.notices.create({ facilityNumber: number, ...(days(v.days) !== undefined ? { validityDays: days(v.days)! } : {}), ...(max !== undefined ? { maxDownloads: max } : {}), actor: actor(ctx.env) });
      const base = join(dir, `notice-${number}-${notice.id}`);
      const html = renderNoticeLetter({ notice, organization: ca.config.organization, portalUrl, rootDer: ca.rootDer });
      let pdf: Buffer | undefined;
      try {
        if (chromium) pdf = await printToPdf(html, chromium);
        writeFileAtomic(`${base}.html`, html, 0o600);
        if (pdf) writeFileAtomic(`${base}.pdf`, pdf, 0o600);
      } catch (e) {
        // A letter that cannot be printed is useless: withdraw the notice so its IDs never work.
        await ca.notices.revoke(notice.id, actor(ctx.env)).catch(() => undefined);
        throw e;
      }
      const summary = {
        id: notice.id,
        facility: { number: notice.facility.number, name: notice.facility.name },
        requestId: notice.requestId,
        referenceId: notice.referenceId,
        expiresAt: notice.expiresAt,
        maxDownloads: notice.maxDownloads,
        portalUrl,
        html: `${base}.html`,
        pdf: pdf ? `${base}.pdf` : null,
      };
      if (v.json) return ctx.json(summary);
      ctx.out(
        [
          `notice ${notice.id} for ${notice.facility.number} ${notice.facility.name}`,
          `  request ID:   ${notice.requestId}`,
          `  reference ID: ${notice.referenceId}`,
          `  valid until:  ${notice.expiresAt.slice(0, 10)}`,
          `  downloads:    ${notice.maxDownloads}${notice.maxDownloads > 1 ? ' (each revokes the certificate of the one before)' : ' (single-use)'}`,
          `  letter:       ${summary.html}${summary.pdf ? `\n                ${summary.pdf}` : ''}`,
          'These IDs are shown only this once (the CA keeps only hashes). Print the letter and send it to the facility.',
        ].join('\n'),
      );
    }),
};

export const noticeListCommand: Command = {
  path: ['notice', 'list'],
  summary: 'list notices and EST codes (handle, kind, facility, state, wrong attempts, downloads/allowed, expiry, latest serial)',
  options: {
    ...HOME_OPTIONS,
    facility: { type: 'string', description: 'only this facility', valueName: 'NUMBER' },
    ...JSON_OPTION,
  },
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const list = await ca.notices.list(ctx.values.facility ? { facilityNumber: ctx.values.facility as string } : {});
      if (ctx.values.json) return ctx.json(list);
      for (const n of list) ctx.out(row(n));
    }),
};

function handleCommand(word: 'revoke' | 'unlock'): Command {
  return {
    path: ['notice', word],
    summary: word === 'revoke' ? 'revoke an unused notice or EST code (it can never be used)' : 'unlock a notice locked by wrong reference IDs',
    usage: `notice ${word} <handle>`,
    positionals: [{ name: 'handle', required: true }],
    options: { ...HOME_OPTIONS, ...JSON_OPTION },
    run: (ctx) =>
      withAuthority(ctx, false, async (ca) => {
        const n = word === 'revoke' ? await ca.notices.revoke(ctx.positionals[0]!, actor(ctx.env)) : await ca.notices.unlock(ctx.positionals[0]!, actor(ctx.env));
        if (ctx.values.json) return ctx.json(n);
        ctx.out(`${word === 'revoke' ? 'revoked' : 'unlocked'} ${row(n)}`);
      }),
  };
}

export const noticeRevokeCommand = handleCommand('revoke');
export const noticeUnlockCommand = handleCommand('unlock');

export const estCodeCreateCommand: Command = {
  path: ['est-code', 'create'],
  summary: 'create a one-time EST code (HTTP basic user and password for simpleenroll): with --device for that device\'s certificate, else the facility\'s own',
  options: {
    ...HOME_OPTIONS,
    facility: { type: 'string', description: 'facility number (医療機関番号)', valueName: 'NUMBER' },
    device: { type: 'string', description: 'the device the code is for: it yields a device certificate with CN=NAME (never the facility\'s own identity)', valueName: 'NAME' },
    days: { type: 'string', description: 'days the code stays valid (default 7)', valueName: 'N' },
    ...JSON_OPTION,
  },
  validators: [required('facility')],
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const d = days(ctx.values.days);
      const device = ctx.values.device as string | undefined;
      const n = await ca.notices.create({ facilityNumber: ctx.values.facility as string, kind: 'est-code', ...(d !== undefined ? { validityDays: d } : {}), ...(device !== undefined ? { deviceName: device } : {}), actor: actor(ctx.env) });
      const summary = { id: n.id, facility: n.facility.number, profile: n.deviceName !== undefined ? 'device' : 'facility', ...(n.deviceName !== undefined ? { device: n.deviceName } : {}), user: n.requestId, password: n.referenceId, expiresAt: n.expiresAt };
      if (ctx.values.json) return ctx.json(summary);
      const yields = n.deviceName !== undefined ? `device certificate CN=${n.deviceName}` : "the facility's own certificate";
      ctx.out([`EST code ${n.id} for ${n.facility.number}: ${yields} (valid until ${n.expiresAt.slice(0, 10)}, one use)`, `  user:     ${n.requestId}`, `  password: ${n.referenceId}`, `  e.g. curl -u '${n.requestId}:${n.referenceId}' …/.well-known/est/simpleenroll`].join('\n'));
    }),
};
