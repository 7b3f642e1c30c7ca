import { accessSync, constants, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CAMPAIGN_SKIP_TEXT,
  LETTER_CSV_HEADER,
  letterPortalUrl,
  MAX_DOWNLOADS_LIMIT,
  noticeLettersCsvRows,
  parseExpiryWindow,
  printNoticeLetters,
  renderNoticeLetter,
  renderNoticeLetters,
  requireChromium,
  writeFileAtomic,
  type CampaignSkip,
  type CertificateAuthority,
  type CreatedNotice,
  type NoticeSummary,
} from '../../ca/index.js';
import { badRequest, internal, isSekishoError } from '../../errors/index.js';
import { parseFacilityNumber } from '../../policy/index.js';
import { csvDocument } from '../../report/index.js';
import { exactlyOne, HOME_OPTIONS, JSON_OPTION, required, type Command, type CommandContext } from '../command.js';
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
  summary: 'create an issuance notice (--facility: print its IDs once, write the letter as HTML + PDF), or a renewal campaign (--expiring 60d: a notice for every facility whose certificate ends within the window, one PDF of letters and one mail-merge CSV)',
  options: {
    ...HOME_OPTIONS,
    facility: { type: 'string', description: 'facility number (医療機関番号)', valueName: 'NUMBER' },
    expiring: { type: 'string', description: 'renewal campaign: every active facility whose certificate ends within this window (e.g. 30d, 60d, 90d) and has no newer certificate, renewal or open notice', valueName: 'Nd' },
    'dry-run': { type: 'boolean', description: 'with --expiring: show who would get a notice and who is skipped; create nothing' },
    days: { type: 'string', description: 'days the notice stays valid (default 180)', valueName: 'N' },
    'max-downloads': { type: 'string', description: 'downloads the notice allows within its window, each revoking the one before (default: config notices.maxDownloads, 3; 1 = single-use)', valueName: 'N' },
    'out-dir': { type: 'string', description: 'where to write the letter(s) (default: the current directory)', valueName: 'DIR' },
    portal: { type: 'string', description: `portal URL printed on the letter (default: config urls.portal, else ${DEFAULT_PORTAL_URL})`, valueName: 'URL' },
    'no-pdf': { type: 'boolean', description: 'write the letters as HTML only (no Chromium needed)' },
    ...JSON_OPTION,
  },
  validators: [exactlyOne('facility', 'expiring'), (v) => (v['dry-run'] !== undefined && v.expiring === undefined ? '--dry-run goes with --expiring' : undefined)],
  run: (ctx) =>
    withAuthority(ctx, false, async (ca) => {
      const v = ctx.values;
      const portalUrl = letterPortalUrl(v.portal as string | undefined, ca.config.urls.portal, DEFAULT_PORTAL_URL);
      const dir = resolve((v['out-dir'] as string | undefined) ?? '.');
      const validityDays = days(v.days);
      if (v.expiring !== undefined) return renewalCampaign(ctx, ca, { window: parseExpiryWindow(v.expiring as string), portalUrl, dir, ...(validityDays !== undefined ? { validityDays } : {}) });
      const number = parseFacilityNumber(v.facility as string);
      const chromium = v['no-pdf'] ? undefined : requireChromium(ctx.env, '; or pass --no-pdf for the HTML letter only');
      await ca.registration.activeFacility(number);
      const max = maxDownloads(v['max-downloads']);
      // Check the files can be written before the notice exists: its IDs are shown only once.
      const probe = (name: string) => checkOutputPath(join(dir, name), '--out-dir');
      probe(`notice-${number}-probe.html`);
      const notice: CreatedNotice = await ca.notices.create({ facilityNumber: number, ...(validityDays !== undefined ? { validityDays } : {}), ...(max !== undefined ? { maxDownloads: max } : {}), actor: actor(ctx.env) });
      const base = join(dir, `notice-${number}-${notice.id}`);
      const context = { organization: ca.config.organization, portalUrl, rootDer: ca.rootDer };
      let pdf: Buffer | undefined;
      try {
        const printed = chromium ? await printNoticeLetters([notice], context, chromium) : { html: renderNoticeLetter({ ...context, notice }) };
        pdf = 'pdf' in printed ? printed.pdf : undefined;
        writeFileAtomic(`${base}.html`, printed.html, 0o600);
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

const skipText = (s: CampaignSkip) => `${s.facilityNumber}  ${s.facilityName ?? '-'}  ${s.reason}: ${CAMPAIGN_SKIP_TEXT[s.reason].en}${s.detail ? ` (${s.detail})` : ''}`;

/**
 * `notice create --expiring`: the campaign's notices are created in one
 * transaction; then its letters (one PDF, one page each) and the mail-merge
 * CSV are written. If they cannot be, every notice of the campaign is revoked
 * again (one transaction), so none is left without a letter.
 */
async function renewalCampaign(ctx: CommandContext, ca: CertificateAuthority, o: { window: number; portalUrl: string; dir: string; validityDays?: number }): Promise<number | void> {
  const v = ctx.values;
  if (v['dry-run']) {
    const plan = await ca.campaigns.plan({ days: o.window });
    if (v.json) return ctx.json({ windowDays: o.window, selected: plan.selected.map((c) => ({ facility: c.facilityNumber, name: c.facilityName, serial: c.serial, notAfter: c.notAfter })), skipped: plan.skipped });
    ctx.out(`renewal campaign (dry run), certificates ending within ${o.window} days: ${plan.selected.length} notice(s) would be created`);
    for (const c of plan.selected) ctx.out(`  ${c.facilityNumber}  ${c.facilityName}  ${c.serial}  ends ${c.notAfter.slice(0, 10)}`);
    for (const s of plan.skipped) ctx.out(`  skipped ${skipText(s)}`);
    return;
  }
  // Everything that could stop the letters is checked before a notice exists.
  const chromium = v['no-pdf'] ? undefined : requireChromium(ctx.env, '; or pass --no-pdf for HTML letters');
  checkOutputPath(join(o.dir, 'renewal-probe.csv'), '--out-dir');
  try {
    accessSync(o.dir, constants.W_OK);
  } catch {
    throw badRequest('OUTPUT_DIR_NOT_WRITABLE', `--out-dir ${o.dir} is not writable; choose another directory`);
  }
  const who = actor(ctx.env);
  const result = await ca.campaigns.run({ days: o.window, actor: who, ...(o.validityDays !== undefined ? { validityDays: o.validityDays } : {}) });
  const base = join(o.dir, `renewal-${result.id}`);
  const files: { letters?: string; csv?: string } = {};
  if (result.notices.length > 0) {
    const context = { organization: ca.config.organization, portalUrl: o.portalUrl, rootDer: ca.rootDer };
    try {
      const letters = chromium ? (await printNoticeLetters(result.notices, context, chromium)).pdf : renderNoticeLetters(result.notices, context);
      // Never over an existing file (checkOutputPath refuses one).
      const lettersPath = checkOutputPath(`${base}-letters.${chromium ? 'pdf' : 'html'}`, '--out-dir');
      const csvPath = checkOutputPath(`${base}-mail-merge.csv`, '--out-dir');
      files.letters = lettersPath;
      files.csv = csvPath;
      writeFileAtomic(files.letters, letters, 0o600);
      writeFileAtomic(files.csv, csvDocument(LETTER_CSV_HEADER, noticeLettersCsvRows(result.notices, context)), 0o600);
    } catch (e) {
      for (const f of [files.letters, files.csv]) if (f) rmSync(f, { force: true });
      const code = isSekishoError(e) ? e.code : 'LETTER_WRITE_FAILED';
      try {
        await ca.campaigns.withdraw(result, who, code);
      } catch {
        throw internal('CAMPAIGN_LETTERS_FAILED', `the letters of campaign ${result.id} could not be made (${code}) and its ${result.notices.length} notices could not be withdrawn; revoke them: ${result.notices.map((n) => n.id).join(' ')}`);
      }
      throw internal('CAMPAIGN_LETTERS_FAILED', `the letters of campaign ${result.id} could not be made (${code}: ${e instanceof Error ? e.message.slice(0, 200) : ''}); its ${result.notices.length} notices were revoked again. Fix the cause and run the campaign again`);
    }
  }
  const summary = {
    campaign: result.id,
    windowDays: result.windowDays,
    notices: result.notices.map((n) => ({ id: n.id, facility: { number: n.facility.number, name: n.facility.name }, serial: n.serial, notAfter: n.notAfter, expiresAt: n.expiresAt })),
    skipped: result.skipped,
    letters: files.letters ?? null,
    csv: files.csv ?? null,
    portalUrl: o.portalUrl,
  };
  if (v.json) return ctx.json(summary);
  ctx.out(`renewal campaign ${result.id}: certificates ending within ${result.windowDays} days; ${result.notices.length} notice(s) created, ${result.skipped.length} facility(ies) skipped`);
  for (const n of result.notices) ctx.out(`  ${n.id}  ${n.facility.number}  ${n.facility.name}  replaces ${n.serial} (ends ${n.notAfter.slice(0, 10)})`);
  for (const s of result.skipped) ctx.out(`  skipped ${skipText(s)}`);
  if (files.letters) {
    ctx.out(`  letters:    ${files.letters} (one page per notice)`);
    ctx.out(`  mail merge: ${files.csv}`);
    ctx.out('Both files hold the request and reference IDs (shown nowhere else; the CA keeps only hashes): they are written 0600. Print and send the letters, then delete the CSV after the mail merge.');
  }
}

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
