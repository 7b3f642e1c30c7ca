import { randomBytes } from 'node:crypto';
import { badRequest } from '../errors/index.js';
import { parseFacilityNumber } from '../policy/index.js';
import { repositories, type Database, type ExpiringRow, type Facility, type SqlExecutor } from '../store/index.js';
import type { AuditLog } from '../audit/index.js';
import { NOTICE_ID_ALPHABET } from './notice-id.js';
import type { CreatedNotice, IssuanceNotices } from './notices.js';

const DAY_MS = 86_400_000;
/** The longest window a listing or campaign may look ahead. */
export const MAX_EXPIRY_WINDOW_DAYS = 731;

/** "60d" (or "60"): the days ahead a listing or campaign looks; EXPIRY_WINDOW_INVALID otherwise. */
export function parseExpiryWindow(v: string): number {
  const m = /^(\d{1,3})d?$/.exec(v.trim());
  const days = m ? Number(m[1]) : NaN;
  if (!(days >= 1 && days <= MAX_EXPIRY_WINDOW_DAYS)) throw badRequest('EXPIRY_WINDOW_INVALID', `"${v.slice(0, 20)}" is not a window of days; write e.g. 30d, 60d or 90d (1–${MAX_EXPIRY_WINDOW_DAYS} days)`);
  return days;
}

/** What is already under way to replace an expiring certificate. */
export type RenewalUnderWay = 'none' | 'newer-certificate' | 'renewing' | 'open-notice';

export interface ExpiringCertificate extends ExpiringRow {
  /** Whole days left (rounded down) at the time of the listing. */
  daysLeft: number;
  renewal: RenewalUnderWay;
}

/** Why a facility got no notice in a campaign. */
export type CampaignSkipReason = 'facility-suspended' | 'facility-unknown' | 'newer-certificate' | 'renewing' | 'open-notice' | 'not-expiring';

export const CAMPAIGN_SKIP_TEXT: Record<CampaignSkipReason, { ja: string; en: string }> = {
  'facility-suspended': { ja: '利用停止中の医療機関', en: 'the facility is suspended' },
  'facility-unknown': { ja: '登録のない医療機関', en: 'no such facility' },
  'newer-certificate': { ja: '新しい証明書が発行済み', en: 'a newer certificate is already issued' },
  renewing: { ja: '更新手続き中（EST 再登録）', en: 'a renewal (EST re-enrolment) is under way' },
  'open-notice': { ja: '未使用の通知書あり', en: 'an open notice already exists' },
  'not-expiring': { ja: '期間内に期限切れとなる証明書なし', en: 'no certificate of it ends within the window' },
};

export interface CampaignSkip {
  facilityNumber: string;
  facilityName?: string;
  reason: CampaignSkipReason;
  /** The newer certificate's serial or the open notice's handle, when the reason names one. */
  detail?: string;
}

/** One notice of a campaign: the IDs (shown once), the facility and the certificate it replaces. */
export interface CampaignNotice extends CreatedNotice {
  serial: string;
  notAfter: string;
}

export interface CampaignResult {
  /** C-XXXXXXXX: names the campaign in its audit event and every notice.created event of it. */
  id: string;
  windowDays: number;
  createdAt: string;
  actor: string;
  notices: CampaignNotice[];
  skipped: CampaignSkip[];
}

const renewalOf = (r: ExpiringRow): RenewalUnderWay => (r.newerSerial ? 'newer-certificate' : r.supersededBy ? 'renewing' : r.openNotice ? 'open-notice' : 'none');

export interface RenewalCampaignsOptions {
  db: Database;
  audit: AuditLog;
  notices: IssuanceNotices;
  now: () => Date;
}

/**
 * Expiring certificates and renewal campaigns: which facility certificates
 * end within N days (and whether a renewal is already under way), and one
 * action that makes a letter notice for each facility that needs one, in one
 * transaction with the campaign's audit event (`notice.campaign`).
 */
export class RenewalCampaigns {
  constructor(private readonly o: RenewalCampaignsOptions) {}

  /**
   * The live facility certificates ending within `days`, soonest first;
   * suspended facilities only with `includeSuspended` (a campaign reports them).
   */
  async expiring(input: { days: number; includeSuspended?: boolean; facilities?: readonly string[] }, x: SqlExecutor = this.o.db): Promise<ExpiringCertificate[]> {
    const now = this.o.now();
    const until = new Date(now.getTime() + input.days * DAY_MS).toISOString();
    const rows = await repositories(x).expiry.expiring(now.toISOString(), until, input.facilities);
    return rows
      .filter((r) => input.includeSuspended || r.facilityStatus === 'active')
      .map((r) => ({ ...r, daysLeft: Math.floor((Date.parse(r.notAfter) - now.getTime()) / DAY_MS), renewal: renewalOf(r) }));
  }

  /**
   * Who a campaign would write to: one entry per facility (its soonest
   * certificate) with nothing under way; every other facility in the window,
   * or named in `facilities` (a clerk's selection) and not in it, skipped with why.
   */
  async plan(input: { days: number; facilities?: readonly string[] }): Promise<{ selected: ExpiringCertificate[]; skipped: CampaignSkip[] }> {
    const only = input.facilities ? [...new Set(input.facilities.map((f) => parseFacilityNumber(f)))] : undefined;
    const rows = await this.expiring({ days: input.days, includeSuspended: true, ...(only ? { facilities: only } : {}) });
    const byFacility = new Map<string, ExpiringCertificate[]>();
    for (const r of rows) byFacility.set(r.facilityNumber, [...(byFacility.get(r.facilityNumber) ?? []), r]);
    const selected: ExpiringCertificate[] = [];
    const skipped: CampaignSkip[] = [];
    for (const [number, certs] of byFacility) {
      const first = certs[0]!;
      const base = { facilityNumber: number, facilityName: first.facilityName };
      if (first.facilityStatus !== 'active') skipped.push({ ...base, reason: 'facility-suspended' });
      else if (first.openNotice) skipped.push({ ...base, reason: 'open-notice', detail: first.openNotice });
      // The facility is covered when any of its expiring certificates already has a successor.
      else if (certs.some((c) => c.newerSerial)) skipped.push({ ...base, reason: 'newer-certificate', detail: certs.find((c) => c.newerSerial)!.newerSerial! });
      else if (certs.some((c) => c.supersededBy)) skipped.push({ ...base, reason: 'renewing' });
      else selected.push(first);
    }
    for (const n of only ?? []) if (!byFacility.has(n)) skipped.push({ facilityNumber: n, reason: 'not-expiring' });
    return { selected, skipped };
  }

  /**
   * Runs a campaign: plans, then creates every notice in one transaction
   * (each facility checked again inside it, so a notice another clerk made
   * meanwhile is skipped, never doubled) together with the `notice.campaign`
   * event naming the actor, the window and the counts. The letters are made
   * by the caller from the result (`renderCampaignLetters`, `campaignCsv`);
   * if it cannot make them it calls `withdraw`, so no notice is left
   * without a letter.
   */
  async run(input: { days: number; facilities?: readonly string[]; validityDays?: number; actor: string }): Promise<CampaignResult> {
    const { selected, skipped } = await this.plan(input);
    const id = `C-${Array.from(randomBytes(8), (b) => NOTICE_ID_ALPHABET[b % NOTICE_ID_ALPHABET.length]).join('')}`;
    const certOf = new Map(selected.map((c) => [c.facilityNumber, c]));
    const facilities: Facility[] = selected.map((c) => ({ number: c.facilityNumber, name: c.facilityName, status: 'active', createdAt: '', updatedAt: '', ...(c.address ? { address: c.address } : {}), ...(c.contact ? { contact: c.contact } : {}) }));
    const raced: CampaignSkip[] = [];
    const { created } = await this.o.notices.createLetters({
      facilities,
      actor: input.actor,
      ...(input.validityDays !== undefined ? { validityDays: input.validityDays } : {}),
      details: { campaign: id },
      guard: async (tx, f) => {
        if (tx.dialect === 'postgres') await tx.get('SELECT number FROM facilities WHERE number = ? FOR UPDATE', [f.number]);
        const again = (await this.expiring({ days: input.days, facilities: [f.number] }, tx))[0];
        if (!again) return 'not-expiring';
        const why = again.renewal === 'none' ? undefined : again.renewal;
        return why;
      },
      after: async (tx, made, late) => {
        for (const s of late) raced.push({ facilityNumber: s.facility.number, facilityName: s.facility.name, reason: s.reason as CampaignSkipReason });
        const all = [...skipped, ...raced];
        const counts: Record<string, number> = {};
        for (const s of all) counts[s.reason] = (counts[s.reason] ?? 0) + 1;
        await this.o.audit.appendIn(tx, {
          actor: input.actor,
          action: 'notice.campaign',
          outcome: 'success',
          subject: id,
          details: { windowDays: input.days, selected: selected.length, created: made.length, skipped: all.length, skippedBy: counts, ...(input.facilities ? { chosen: input.facilities.length } : {}) },
        });
      },
    });
    return {
      id,
      windowDays: input.days,
      createdAt: this.o.now().toISOString(),
      actor: input.actor,
      notices: created.map((n) => ({ ...n, serial: certOf.get(n.facility.number)!.serial, notAfter: certOf.get(n.facility.number)!.notAfter })),
      skipped: [...skipped, ...raced],
    };
  }

  /** The letters of a campaign could not be made: its notices are revoked in one transaction, so none is left without a letter. */
  async withdraw(result: CampaignResult, actor: string, reasonCode: string): Promise<void> {
    await this.o.notices.revokeAll(
      result.notices.map((n) => n.id),
      actor,
      reasonCode,
    );
    await this.o.audit.append({ actor, action: 'notice.campaign-withdrawn', outcome: 'minorFailure', reasonCode, subject: result.id, details: { notices: result.notices.length } });
  }
}
