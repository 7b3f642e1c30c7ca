import { badRequest } from '../../errors/index.js';
import { migrationReadiness, parseAuditSearch, parseMigrationFilter, refusalSummary } from '../../report/index.js';
import type { ConsoleRoutes } from '../app.js';
import type { CampaignFiles } from '../campaign-files.js';
import { expiryDays, runCampaign } from '../views/expiring.js';
import { auditSearchOf, refusalHours, trailStatus } from '../views/reports.js';

/**
 * The JSON of the expiring, campaign, refusal, audit and migration views:
 * the same calls and the same permissions (roles.ts, through the registrar).
 *
 * | Method | Path | Permission |
 * |---|---|---|
 * | GET | /expiring?days=60 | certificates.read |
 * | POST | /campaigns `{days, facilities?: [number…]}` → notices, skipped, links to the held letters and CSV | campaigns.write |
 * | GET | /refusals?hours=24 | reports.read |
 * | GET | /audit?action=&actor=&facility=&from=&to=&before=&limit= (newest first) | audit.read |
 * | GET | /audit/verify | audit.read |
 * | GET | /migration?to=high&since= | reports.read |
 */
export function registerCampaignApi(r: ConsoleRoutes, files: CampaignFiles): void {
  r.api('GET', '/expiring', 'certificates.read', async (c) => {
    const days = expiryDays(c.req.query('days'));
    await r.deps.ca.applyDueRevocations();
    return c.json(await r.deps.ca.campaigns.expiring({ days }));
  });
  r.api('POST', '/campaigns', 'campaigns.write', async (c, b) => {
    if (b.days !== undefined && typeof b.days !== 'number' && typeof b.days !== 'string') throw badRequest('FIELD_INVALID', '"days" must be a number of days or "60d"');
    const days = expiryDays(b.days === undefined ? undefined : String(b.days));
    let facilities: string[] | undefined;
    if (b.facilities !== undefined) {
      if (!Array.isArray(b.facilities) || b.facilities.length > 10_000 || !b.facilities.every((f): f is string => typeof f === 'string')) throw badRequest('FIELD_INVALID', '"facilities" must be a list of facility numbers');
      facilities = b.facilities;
    }
    const held = await runCampaign(r, files, c, days, facilities);
    const res = held.result;
    return c.json(
      {
        campaign: res.id,
        windowDays: res.windowDays,
        notices: res.notices.map((n) => ({ id: n.id, facility: { number: n.facility.number, name: n.facility.name }, serial: n.serial, notAfter: n.notAfter, expiresAt: n.expiresAt })),
        skipped: res.skipped,
        letters: held.letters ? `/campaigns/${res.id}/letters` : null,
        csv: held.csv ? `/campaigns/${res.id}/mail-merge.csv` : null,
        heldUntil: new Date(held.heldUntil).toISOString(),
      },
      201,
    );
  });
  r.api('GET', '/refusals', 'reports.read', async (c) => c.json(await refusalSummary(r.deps.ca.db, r.deps.now(), refusalHours(c.req.query('hours')))));
  r.api('GET', '/audit', 'audit.read', async (c) => c.json(await r.deps.ca.audit.search(parseAuditSearch(auditSearchOf(c)))));
  r.api('GET', '/audit/verify', 'audit.read', async (c) => c.json(await trailStatus(r)));
  r.api('GET', '/migration', 'reports.read', async (c) => {
    const filter = parseMigrationFilter({ to: c.req.query('to') || 'high', ...(c.req.query('since') ? { since: c.req.query('since')! } : {}) }, r.deps.now());
    return c.json(await migrationReadiness(r.deps.ca.db, filter, r.deps.now()));
  });
}
