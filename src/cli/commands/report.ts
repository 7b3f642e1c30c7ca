import { badRequest } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { accessCsvRows, accessReview, accessReviewHtml, ACCESS_CSV_HEADER, csvDocument, migrationCsvRows, migrationReadiness, migrationReadinessHtml, migrationText, MIGRATION_CSV_HEADER, parseAccessFilter, parseMigrationFilter, refusalSummary, refusalText } from '../../report/index.js';
import { HOME_OPTIONS, JSON_OPTION, type Command } from '../command.js';
import { withAuthority } from '../authority.js';
import { checkOutputPath } from '../output-file.js';

const FORMATS = ['csv', 'json', 'html'] as const;

export const reportAccessCommand: Command = {
  path: ['report', 'access'],
  summary: 'access review from the audit trail: per day and facility, connections (login time, duration, bytes, operations) and refusals, as CSV, JSON or printable HTML',
  options: {
    ...HOME_OPTIONS,
    from: { type: 'string', description: 'first day, YYYY-MM-DD in --zone (default today; with only --to, that day)', valueName: 'DATE' },
    to: { type: 'string', description: 'last day, inclusive (default --from, or today)', valueName: 'DATE' },
    zone: { type: 'string', description: 'the time zone days are counted in and local times shown (default Asia/Tokyo; UTC is always shown beside)', valueName: 'ZONE' },
    facility: { type: 'string', description: 'only this facility (10-digit 医療機関番号)', valueName: 'NUMBER' },
    outcome: { type: 'string', description: 'accepted (connections), refused (refusals) or all (default)', valueName: 'WHICH' },
    format: { type: 'string', description: 'csv (default; UTF-8 with BOM, for a spreadsheet), json or html (printable, A4)', valueName: 'FORMAT' },
    out: { type: 'string', description: 'write to this file (created 0600, never replacing one) instead of stdout', valueName: 'FILE' },
    ...JSON_OPTION,
  },
  validators: [(v) => (v.json && v.format !== undefined && v.format !== 'json' ? '--json is --format json; give one of them' : undefined)],
  async run(ctx) {
    const now = new Date();
    // Every filter is checked before the store is opened: a bad one is exit 2 and nothing read.
    const filter = parseAccessFilter(
      {
        ...(ctx.values.from !== undefined ? { from: ctx.values.from as string } : {}),
        ...(ctx.values.to !== undefined ? { to: ctx.values.to as string } : {}),
        ...(ctx.values.zone !== undefined ? { zone: ctx.values.zone as string } : {}),
        ...(ctx.values.facility !== undefined ? { facility: ctx.values.facility as string } : {}),
        ...(ctx.values.outcome !== undefined ? { outcome: ctx.values.outcome as string } : {}),
      },
      now,
    );
    const format = ctx.values.json ? 'json' : ((ctx.values.format as string | undefined) ?? 'csv');
    if (!(FORMATS as readonly string[]).includes(format)) throw badRequest('REPORT_FILTER_INVALID', `--format "${format.slice(0, 40)}" is not csv, json or html`);
    const out = ctx.values.out !== undefined ? checkOutputPath(ctx.values.out as string, '--out') : undefined;
    const review = await withAuthority(ctx, false, (ca) => accessReview(ca.db, filter, now));
    const text = format === 'json' ? `${JSON.stringify(review, null, 2)}\n` : format === 'html' ? accessReviewHtml(review) : csvDocument(ACCESS_CSV_HEADER, accessCsvRows(review));
    if (out) {
      writeFileAtomic(out, text);
      ctx.err(`access review written to ${out}: ${review.rows.length} rows`);
    } else ctx.out(text);
  },
};

const MIGRATION_FORMATS = ['text', 'csv', 'json', 'html'] as const;

export const reportMigrationCommand: Command = {
  path: ['report', 'migration'],
  summary: 'migration readiness for a stricter profile, from the gateway\'s connection observations: facilities ready, at risk (why, and the fix), not seen, never seen; clients without a certificate; legacy and unused certificates; per day',
  options: {
    ...HOME_OPTIONS,
    to: { type: 'string', description: 'the profile to be enforced: high, recommended, exception or mhlw (required)', valueName: 'PROFILE' },
    since: { type: 'string', description: 'first day of the window, YYYY-MM-DD Japan time (default 30 days ago); facilities last seen before it are "not seen since"', valueName: 'DATE' },
    'self-check-url': { type: 'string', description: 'the self-check page clinics refused for their protocol or suite are sent to (shown beside those problems)', valueName: 'URL' },
    format: { type: 'string', description: 'text (default), csv (UTF-8 with BOM), json or html (printable, A4)', valueName: 'FORMAT' },
    out: { type: 'string', description: 'write to this file (created 0600, never replacing one) instead of stdout', valueName: 'FILE' },
    ...JSON_OPTION,
  },
  validators: [(v) => (v.json && v.format !== undefined && v.format !== 'json' ? '--json is --format json; give one of them' : undefined)],
  async run(ctx) {
    const now = new Date();
    const filter = parseMigrationFilter(
      {
        ...(ctx.values.to !== undefined ? { to: ctx.values.to as string } : {}),
        ...(ctx.values.since !== undefined ? { since: ctx.values.since as string } : {}),
        ...(ctx.values['self-check-url'] !== undefined ? { selfCheckUrl: ctx.values['self-check-url'] as string } : {}),
      },
      now,
    );
    const format = ctx.values.json ? 'json' : ((ctx.values.format as string | undefined) ?? 'text');
    if (!(MIGRATION_FORMATS as readonly string[]).includes(format)) throw badRequest('REPORT_FILTER_INVALID', `--format "${format.slice(0, 40)}" is not text, csv, json or html`);
    const out = ctx.values.out !== undefined ? checkOutputPath(ctx.values.out as string, '--out') : undefined;
    const report = await withAuthority(ctx, false, (ca) => migrationReadiness(ca.db, filter, now));
    const text = format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : format === 'html' ? migrationReadinessHtml(report) : format === 'csv' ? csvDocument(MIGRATION_CSV_HEADER, migrationCsvRows(report)) : migrationText(report);
    if (out) {
      writeFileAtomic(out, text);
      ctx.err(`migration readiness written to ${out}: ${report.facilities.length} facilities`);
    } else ctx.out(text);
  },
};

export const reportRefusalsCommand: Command = {
  path: ['report', 'refusals'],
  summary: "the gateway's refusals in the last day (or --hours), from the audit trail, summed by reason and by facility",
  options: {
    ...HOME_OPTIONS,
    hours: { type: 'string', description: 'how far back (default 24, at most 744)', valueName: 'N' },
    ...JSON_OPTION,
  },
  async run(ctx) {
    const raw = (ctx.values.hours as string | undefined) ?? '24';
    if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > 744) throw badRequest('REPORT_FILTER_INVALID', `--hours "${raw.slice(0, 20)}" is not 1–744`);
    const r = await withAuthority(ctx, false, (ca) => refusalSummary(ca.db, new Date(), Number(raw)));
    if (ctx.values.json) return ctx.json(r);
    ctx.out(refusalText(r).trimEnd());
  },
};
