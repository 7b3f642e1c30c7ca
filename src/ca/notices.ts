import { createHmac, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { badRequest, conflict, forbidden, gone, locked, notFound, rateLimited, unauthorized, type SekishoError } from '../errors/index.js';
import { parseFacilityNumber } from '../policy/index.js';
import { repositories, type Database, type Facility, type NoticeKind, type NoticeRecord, type SqlExecutor } from '../store/index.js';
import type { AuditLog } from '../audit/index.js';
import { parseDeviceName, type Registration } from './registration.js';
import { generateNoticeId, NOTICE_ID_ALPHABET, parseNoticeId } from './notice-id.js';
import { MAX_DOWNLOADS_LIMIT } from './config.js';
import type { NoticeRedemption } from './notice-downloads.js';

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number }) => Promise<Buffer>;
const SCRYPT = { N: 16384, r: 8, p: 1 };
const DAY_MS = 86_400_000;


/**
 * Which refusals of one window go to the audit trail: the 1st, 2nd, 4th, 8th …
 * (an address's notice attempts past the limit, a certificate's refused
 * renewals). The rows grow with the logarithm of a flood, and still show its
 * size; every refusal is answered all the same.
 */
export const isAuditedRefusal = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** The window in which one certificate's refused renewals are numbered (`Enrollment.reenroll`). */
export const REENROLL_REFUSAL_WINDOW_MS = 10 * 60_000;

export const NOTICE_DEFAULTS = {
  /** Days a printed notice stays valid. */
  letterDays: 180,
  /** Days a one-time EST code stays valid. */
  estCodeDays: 7,
  /** Wrong reference IDs after which a notice locks until the operator unlocks it. */
  maxFailures: 5,
  /** Downloads a letter allows within its window (config notices.maxDownloads); an EST code's is 1. */
  maxDownloads: 3,
} as const;

/** The IDs of a new notice: shown once, never stored in the clear. */
export interface CreatedNotice {
  id: string;
  kind: NoticeKind;
  facility: Facility;
  requestId: string;
  referenceId: string;
  createdAt: string;
  expiresAt: string;
  /** Set when the code was made for a device: it yields that device's certificate. */
  deviceName?: string;
  /** Downloads it allows within its window; each revokes the certificate of the one before. */
  maxDownloads: number;
}

export type NoticeState = 'active' | 'locked' | 'expired' | 'claimed' | 'used' | 'revoked';

/** A notice as the operator sees it: the stored record without its hashes, with its state as of now. */
export type NoticeSummary = Pick<NoticeRecord, 'id' | 'kind' | 'facilityNumber' | 'failures' | 'downloads' | 'maxDownloads' | 'createdAt' | 'expiresAt' | 'usedAt' | 'serial' | 'revokedAt' | 'deviceName'> & { state: NoticeState };

/** Who presented the IDs, for the audit trail. */
export interface AttemptSource {
  /** Client IP address (or "cli"). */
  client: string;
  /** portal, api, est. */
  via: string;
}

/** A notice that passed every check and is held for one issuance. */
export interface NoticeClaim {
  readonly noticeId: string;
  readonly kind: NoticeKind;
  readonly facility: Facility;
  readonly source: AttemptSource;
  /** What the notice yields, fixed when it was made (the request cannot change it). */
  readonly profile: 'facility' | 'device';
  readonly deviceName?: string;
}

export interface IssuanceNoticesOptions {
  db: Database;
  audit: AuditLog;
  registration: Registration;
  now: () => Date;
  maxFailures?: number;
  /** Downloads a new letter allows unless told otherwise (config notices.maxDownloads). */
  maxDownloads?: number;
  /**
   * Revokes (reason superseded) the certificate an earlier download of a
   * notice produced, in the caller's transaction; false when there was
   * nothing to revoke (already revoked, or unknown). The authority's one
   * revocation path.
   */
  supersede: (tx: SqlExecutor, serial: string, details: { actor: string; supersededBy: string; notice: string }) => Promise<{ issuedAt?: string } | false>;
}

const NOTICE_HANDLE = /^N-[ACDEFGHJKLMNPQRTUVWXY34679]{8}$/;

/**
 * Issuance notices (証明書発行通知書) and one-time EST codes: a request ID
 * (found by its keyed hash) and a reference ID (checked against a salted
 * scrypt hash, in constant time). A notice downloads at most its
 * maxDownloads times (a letter 3 by default, an EST code once), each
 * download revoking the certificate of the one before (superseded); it
 * expires, locks after too many wrong reference IDs (a download resets
 * nothing), and every attempt is audited in the same transaction as its effect.
 */
export class IssuanceNotices {
  readonly maxFailures: number;
  readonly maxDownloads: number;
  #lookupKey: Buffer | undefined;

  constructor(private readonly o: IssuanceNoticesOptions) {
    this.maxFailures = o.maxFailures ?? NOTICE_DEFAULTS.maxFailures;
    this.maxDownloads = o.maxDownloads ?? NOTICE_DEFAULTS.maxDownloads;
  }

  async #lookup(compactRequestId: string): Promise<string> {
    this.#lookupKey ??= await repositories(this.o.db).notices.lookupKey();
    return createHmac('sha256', this.#lookupKey).update(`request:${compactRequestId}`).digest('hex');
  }

  /** A new notice's validity from now: 1–366 days, or NOTICE_DAYS_INVALID. */
  #window(days: number): { createdAt: string; expiresAt: string } {
    if (!Number.isInteger(days) || days < 1 || days > 366) throw badRequest('NOTICE_DAYS_INVALID', `a notice is valid for 1–366 days (got ${days}); the default is ${NOTICE_DEFAULTS.letterDays} for letters`);
    const now = this.o.now();
    return { createdAt: now.toISOString(), expiresAt: new Date(now.getTime() + days * DAY_MS).toISOString() };
  }

  /** A new notice's two IDs and the record that keeps only their hashes (the slow scrypt is made here, outside any transaction). */
  async #draft(d: { facilityNumber: string; kind: NoticeKind; maxDownloads: number; createdAt: string; expiresAt: string; actor: string; deviceName?: string }): Promise<{ record: NoticeRecord; requestId: string; referenceId: string }> {
    const requestId = generateNoticeId('request');
    const referenceId = generateNoticeId('reference');
    const salt = randomBytes(16);
    const record: NoticeRecord = {
      id: `N-${Array.from(randomBytes(8), (b) => NOTICE_ID_ALPHABET[b % NOTICE_ID_ALPHABET.length]).join('')}`,
      kind: d.kind,
      facilityNumber: d.facilityNumber,
      requestLookup: await this.#lookup(requestId.replace(/-/g, '')),
      referenceSalt: salt.toString('hex'),
      referenceHash: (await scrypt(referenceId.replace(/-/g, ''), salt, 32, SCRYPT)).toString('hex'),
      status: 'active',
      failures: 0,
      downloads: 0,
      maxDownloads: d.maxDownloads,
      createdAt: d.createdAt,
      expiresAt: d.expiresAt,
      createdBy: d.actor,
      ...(d.deviceName !== undefined ? { profile: 'device' as const, deviceName: d.deviceName } : {}),
    };
    return { record, requestId, referenceId };
  }

  /**
   * A notice (or EST code) for the facility's own certificate, or, with
   * `deviceName`, for that device's certificate: the profile and name are
   * stored with it and are all it can ever yield.
   */
  async create(input: { facilityNumber: string; kind?: NoticeKind; validityDays?: number; deviceName?: string; maxDownloads?: number; actor: string }): Promise<CreatedNotice> {
    const kind = input.kind ?? 'letter';
    const maxDownloads = input.maxDownloads ?? (kind === 'letter' ? this.maxDownloads : 1);
    if (!Number.isInteger(maxDownloads) || maxDownloads < 1 || maxDownloads > MAX_DOWNLOADS_LIMIT) {
      throw badRequest('NOTICE_DOWNLOADS_INVALID', `a notice allows 1–${MAX_DOWNLOADS_LIMIT} downloads (got ${maxDownloads}); 1 makes it single-use`);
    }
    const deviceName = input.deviceName === undefined ? undefined : parseDeviceName(input.deviceName);
    const days = input.validityDays ?? (kind === 'letter' ? NOTICE_DEFAULTS.letterDays : NOTICE_DEFAULTS.estCodeDays);
    const { createdAt, expiresAt } = this.#window(days);
    const facility = await this.o.registration.activeFacility(parseFacilityNumber(input.facilityNumber));
    for (let attempt = 0; attempt < 3; attempt++) {
      const { record, requestId, referenceId } = await this.#draft({ facilityNumber: facility.number, kind, maxDownloads, createdAt, expiresAt, actor: input.actor, ...(deviceName !== undefined ? { deviceName } : {}) });
      const added = await this.o.db.transaction(async (tx) => {
        if (!(await repositories(tx).notices.add(record))) return false;
        await this.o.audit.appendIn(tx, { actor: input.actor, action: 'notice.created', outcome: 'success', subject: record.id, details: { facility: facility.number, kind, expiresAt, maxDownloads, ...(deviceName !== undefined ? { profile: 'device', device: deviceName } : {}) } });
        return true;
      });
      if (added) return { id: record.id, kind, facility, requestId, referenceId, createdAt, expiresAt, maxDownloads, ...(deviceName !== undefined ? { deviceName } : {}) };
    }
    throw conflict('NOTICE_ID_COLLISION', 'could not make unique notice IDs; try again');
  }

  /**
   * Letters for several facilities in ONE transaction: the slow hashes are
   * made first, then every notice and its `notice.created` event are stored
   * together, with `guard` asked again inside the transaction for each
   * facility (a reason to skip it, e.g. a notice another clerk just made), and
   * `after` run last in the same transaction (the campaign's own event). So
   * either every notice exists or none does.
   */
  async createLetters(input: {
    facilities: readonly Facility[];
    validityDays?: number;
    actor: string;
    details?: Record<string, unknown>;
    guard?: (tx: SqlExecutor, facility: Facility) => Promise<string | undefined>;
    after?: (tx: SqlExecutor, created: readonly CreatedNotice[], skipped: readonly { facility: Facility; reason: string }[]) => Promise<void>;
  }): Promise<{ created: CreatedNotice[]; skipped: { facility: Facility; reason: string }[] }> {
    const days = input.validityDays ?? NOTICE_DEFAULTS.letterDays;
    const { createdAt, expiresAt } = this.#window(days);
    const prepared: { record: NoticeRecord; notice: CreatedNotice }[] = [];
    for (const facility of input.facilities) {
      const { record, requestId, referenceId } = await this.#draft({ facilityNumber: facility.number, kind: 'letter', maxDownloads: this.maxDownloads, createdAt, expiresAt, actor: input.actor });
      prepared.push({ record, notice: { id: record.id, kind: 'letter', facility, requestId, referenceId, createdAt, expiresAt, maxDownloads: this.maxDownloads } });
    }
    return this.o.db.transaction(async (tx) => {
      const repos = repositories(tx);
      const created: CreatedNotice[] = [];
      const skipped: { facility: Facility; reason: string }[] = [];
      for (const { record, notice } of prepared) {
        const current = await repos.facilities.get(notice.facility.number);
        const reason = !current ? 'facility-unknown' : current.status !== 'active' ? 'facility-suspended' : await input.guard?.(tx, current);
        if (reason) {
          skipped.push({ facility: current ?? notice.facility, reason });
          continue;
        }
        // A collision of random IDs rolls back the whole batch: nothing half-made; the caller tries again.
        if (!(await repos.notices.add(record))) throw conflict('NOTICE_ID_COLLISION', 'could not make unique notice IDs; nothing was created; try again');
        await this.o.audit.appendIn(tx, { actor: input.actor, action: 'notice.created', outcome: 'success', subject: record.id, details: { facility: record.facilityNumber, kind: 'letter', expiresAt, maxDownloads: record.maxDownloads, ...input.details } });
        created.push({ ...notice, facility: current! });
      }
      await input.after?.(tx, created, skipped);
      return { created, skipped };
    });
  }

  /** Revokes several unused notices in one transaction (a campaign whose letters could not be made). */
  async revokeAll(ids: readonly string[], actor: string, reasonCode: string): Promise<void> {
    const at = this.o.now().toISOString();
    await this.o.db.transaction(async (tx) => {
      const repo = repositories(tx).notices;
      for (const id of ids) {
        const n = await repo.get(id);
        if (!n || !(await repo.revoke(id, at))) continue;
        await this.o.audit.appendIn(tx, { actor, action: 'notice.revoked', outcome: 'success', reasonCode, subject: id, details: { facility: n.facilityNumber } });
      }
    });
  }

  #state(n: NoticeRecord, at: string): NoticeState {
    if (n.status !== 'active') return n.status;
    if (n.expiresAt <= at) return 'expired';
    if (n.failures >= this.maxFailures) return 'locked';
    return 'active';
  }

  #summary(n: NoticeRecord, at: string): NoticeSummary {
    return {
      id: n.id,
      kind: n.kind,
      facilityNumber: n.facilityNumber,
      state: this.#state(n, at),
      failures: n.failures,
      downloads: n.downloads,
      maxDownloads: n.maxDownloads,
      createdAt: n.createdAt,
      expiresAt: n.expiresAt,
      ...(n.usedAt ? { usedAt: n.usedAt } : {}),
      ...(n.serial ? { serial: n.serial } : {}),
      ...(n.revokedAt ? { revokedAt: n.revokedAt } : {}),
      ...(n.deviceName ? { deviceName: n.deviceName } : {}),
    };
  }

  async list(filter: { facilityNumber?: string; kind?: NoticeKind } = {}): Promise<NoticeSummary[]> {
    const at = this.o.now().toISOString();
    const f = filter.facilityNumber ? { ...filter, facilityNumber: parseFacilityNumber(filter.facilityNumber) } : filter;
    return (await repositories(this.o.db).notices.list(f)).map((n) => this.#summary(n, at));
  }

  #handle(id: string): string {
    const h = id.trim().toUpperCase().replace(/^N(?!-)/, 'N-');
    if (!NOTICE_HANDLE.test(h)) throw badRequest('NOTICE_HANDLE_INVALID', `"${id.slice(0, 40)}" is not a notice handle (N-XXXXXXXX, as "notice list" shows it)`);
    return h;
  }

  async #existing(repo: ReturnType<typeof repositories>['notices'], id: string): Promise<NoticeRecord> {
    const n = await repo.get(id);
    if (!n) throw notFound('NOTICE_UNKNOWN_HANDLE', `no notice ${id}; see "sekisho notice list"`);
    return n;
  }

  /** Revokes an unused notice (the clinic lost the letter, or asked for a new one). */
  async revoke(idInput: string, actor: string): Promise<NoticeSummary> {
    const id = this.#handle(idInput);
    const at = this.o.now().toISOString();
    return this.o.db.transaction(async (tx) => {
      const repo = repositories(tx).notices;
      const n = await this.#existing(repo, id);
      if (n.status !== 'active' && n.status !== 'claimed') throw conflict('NOTICE_NOT_ACTIVE', `notice ${id} is already ${n.status}; there is nothing to revoke`);
      if (!(await repo.revoke(id, at))) throw conflict('NOTICE_NOT_ACTIVE', `notice ${id} changed state just now; see "sekisho notice list"`);
      await this.o.audit.appendIn(tx, { actor, action: 'notice.revoked', outcome: 'success', subject: id, details: { facility: n.facilityNumber } });
      return this.#summary({ ...n, status: 'revoked', revokedAt: at }, at);
    });
  }

  /** Clears the wrong-attempt count of a locked notice. */
  async unlock(idInput: string, actor: string): Promise<NoticeSummary> {
    const id = this.#handle(idInput);
    const at = this.o.now().toISOString();
    return this.o.db.transaction(async (tx) => {
      const repo = repositories(tx).notices;
      const n = await this.#existing(repo, id);
      if (n.status !== 'active' || n.failures < this.maxFailures) throw conflict('NOTICE_NOT_LOCKED', `notice ${id} is not locked (${this.#state(n, at)}, ${n.failures} wrong attempts)`);
      await repo.resetFailures(id);
      await this.o.audit.appendIn(tx, { actor, action: 'notice.unlocked', outcome: 'success', subject: id, details: { facility: n.facilityNumber, failures: n.failures } });
      return this.#summary({ ...n, failures: 0 }, at);
    });
  }

  /** Audits an attempt refused before any notice was looked at (mistyped ID, rate limit). */
  async refuse(source: AttemptSource, error: SekishoError, details: Record<string, unknown> = {}): Promise<void> {
    await this.o.audit.append({ actor: `client:${source.client}`, action: 'notice.attempt', outcome: 'minorFailure', reasonCode: error.code, details: { via: source.via, ...details } });
  }

  /**
   * Checks both IDs and holds the notice for one issuance. Mistyped IDs are
   * refused before any lookup (no attempt counted); a wrong reference ID
   * counts towards the lock. Throws the reason the clinic should read.
   */
  async claim(input: { requestId: string; referenceId: string; kinds?: readonly NoticeKind[] }, source: AttemptSource): Promise<NoticeClaim> {
    let request: string;
    let reference: string;
    try {
      request = parseNoticeId('request', input.requestId);
      reference = parseNoticeId('reference', input.referenceId);
    } catch (e) {
      await this.refuse(source, e as SekishoError);
      throw e;
    }
    const lookup = await this.#lookup(request);
    const before = await repositories(this.o.db).notices.findByLookup(lookup, { lock: false });
    // The hash is computed outside the transaction (it is slow on purpose); the salt never changes.
    const salt = Buffer.from(before?.referenceSalt ?? randomBytes(16).toString('hex'), 'hex');
    const presented = await scrypt(reference, salt, 32, SCRYPT);
    const actor = `client:${source.client}`;
    const result = await this.o.db.transaction(async (tx): Promise<{ error: SekishoError } | { claim: NoticeClaim }> => {
      const repos = repositories(tx);
      const n = await repos.notices.findByLookup(lookup);
      const fail = async (error: SekishoError, details: Record<string, unknown> = {}) => {
        await this.o.audit.appendIn(tx, { actor, action: 'notice.attempt', outcome: 'minorFailure', reasonCode: error.code, ...(n ? { subject: n.id } : {}), details: { via: source.via, ...details } });
        return { error };
      };
      if (!n) return fail(NOTICE_ERRORS.unknown());
      if (input.kinds && !input.kinds.includes(n.kind)) return fail(NOTICE_ERRORS.unknown());
      const at = this.o.now().toISOString();
      const state = this.#state(n, at);
      if (state === 'revoked') return fail(NOTICE_ERRORS.revoked());
      if (state === 'used') return fail(NOTICE_ERRORS.used(n.usedAt, n.maxDownloads));
      if (state === 'claimed') return fail(NOTICE_ERRORS.inProgress());
      if (state === 'expired') return fail(NOTICE_ERRORS.expired(n.expiresAt));
      if (state === 'locked') return fail(NOTICE_ERRORS.locked());
      const expected = Buffer.from(n.referenceHash, 'hex');
      if (expected.length !== presented.length || !timingSafeEqual(expected, presented)) {
        const failures = (await repos.notices.countFailure(n.id)) ?? n.failures + 1;
        const left = this.maxFailures - failures;
        return fail(left > 0 ? NOTICE_ERRORS.wrongReference(left) : NOTICE_ERRORS.locked(), { failures, ...(left <= 0 ? { locked: true } : {}) });
      }
      const facility = await repos.facilities.get(n.facilityNumber);
      if (!facility || facility.status !== 'active') return fail(NOTICE_ERRORS.facilitySuspended(n.facilityNumber));
      if (!(await repos.notices.claim(n.id, at, this.maxFailures))) return fail(NOTICE_ERRORS.inProgress());
      await this.o.audit.appendIn(tx, { actor, action: 'notice.claimed', outcome: 'success', subject: n.id, details: { via: source.via, facility: n.facilityNumber, download: n.downloads + 1, maxDownloads: n.maxDownloads, ...(n.deviceName ? { device: n.deviceName } : {}) } });
      const yields = n.profile === 'device' ? { profile: 'device' as const, deviceName: n.deviceName ?? '' } : { profile: 'facility' as const };
      return { claim: { noticeId: n.id, kind: n.kind, facility, source, ...yields } };
    });
    if ('error' in result) throw result.error;
    return result.claim;
  }

  /**
   * The issuance for a claim succeeded: one download is counted, and the
   * certificate of the download before (if any, and not yet revoked) is
   * revoked as superseded, in one transaction with the audit event: all of it
   * happens or none (then the caller releases the claim and nothing is spent).
   */
  async complete(claim: NoticeClaim, serial: string): Promise<NoticeRedemption> {
    const at = this.o.now().toISOString();
    const actor = `client:${claim.source.client}`;
    return this.o.db.transaction(async (tx) => {
      const repo = repositories(tx).notices;
      const before = await repo.get(claim.noticeId);
      if (!before || before.status !== 'claimed' || !(await repo.redeem(claim.noticeId, serial, at))) {
        throw conflict('NOTICE_CLAIM_LOST', `notice ${claim.noticeId} is no longer held for this download (revoked meanwhile?)`);
      }
      const download = before.downloads + 1;
      let superseded: NoticeRedemption['superseded'];
      if (before.serial && before.serial !== serial) {
        const done = await this.o.supersede(tx, before.serial, { actor, supersededBy: serial, notice: claim.noticeId });
        if (done) superseded = { serial: before.serial, ...(done.issuedAt ? { issuedAt: done.issuedAt } : {}) };
      }
      await this.o.audit.appendIn(tx, {
        actor,
        action: 'notice.redeemed',
        outcome: 'success',
        subject: claim.noticeId,
        details: { via: claim.source.via, facility: claim.facility.number, serial, download, maxDownloads: before.maxDownloads, ...(superseded ? { superseded: superseded.serial } : {}) },
      });
      return { download, maxDownloads: before.maxDownloads, left: Math.max(0, before.maxDownloads - download), ...(superseded ? { superseded } : {}) };
    });
  }

  /**
   * Counts one notice attempt from a client address in the store (fixed
   * windows of `windowMs`), atomically: the rate limit survives a restart and
   * holds across CA nodes sharing a PostgreSQL store.
   */
  countAttempt(address: string, nowMs: number, windowMs: number): Promise<{ windowStart: number; count: number }> {
    return repositories(this.o.db).noticeAttempts.count(address, nowMs, windowMs);
  }

  /** Drops attempt windows that have ended (a renewal's refusals are counted here too, in windows of their own). */
  expireAttempts(nowMs: number, windowMs: number): Promise<number> {
    return repositories(this.o.db).noticeAttempts.expire(nowMs, Math.max(windowMs, REENROLL_REFUSAL_WINDOW_MS));
  }

  /** The issuance for a claim failed: the notice is not spent. */
  async release(claim: NoticeClaim, reasonCode: string): Promise<void> {
    await this.o.db.transaction(async (tx) => {
      await repositories(tx).notices.release(claim.noticeId);
      await this.o.audit.appendIn(tx, { actor: `client:${claim.source.client}`, action: 'notice.released', outcome: 'minorFailure', reasonCode, subject: claim.noticeId, details: { via: claim.source.via } });
    });
  }
}

/** The reasons a notice is refused, in English and Japanese (the clinic reads them). */
export const NOTICE_ERRORS = {
  unknown: () =>
    unauthorized('NOTICE_NOT_RECOGNIZED', 'these IDs do not match any issuance notice; check both IDs against the notice, or ask the network operator', {
      ja: '入力されたIDに該当する発行通知書がありません。通知書の申請IDと参照IDをご確認のうえ、解決しない場合は運営主体にお問い合わせください。',
    }),
  wrongReference: (left: number) =>
    unauthorized('NOTICE_REFERENCE_WRONG', `the reference ID is wrong; ${left} more wrong attempt${left === 1 ? '' : 's'} will lock this notice`, {
      ja: `参照IDが正しくありません。あと${left}回間違えると、この通知書はロックされます。`,
    }),
  locked: () =>
    locked('NOTICE_LOCKED', 'this notice is locked after too many wrong reference IDs; ask the network operator to unlock it', {
      ja: '参照IDの誤入力が続いたため、この通知書はロックされました。運営主体にロック解除をご依頼ください。',
    }),
  expired: (at: string) =>
    gone('NOTICE_EXPIRED', `this notice expired on ${at.slice(0, 10)}; ask the network operator for a new notice`, {
      ja: `この通知書の有効期限（${at.slice(0, 10)}）が過ぎています。運営主体に通知書の再発行をご依頼ください。`,
    }),
  used: (at?: string, maxDownloads = 1) =>
    maxDownloads > 1
      ? gone('NOTICE_USED', `this notice has been used for all ${maxDownloads} of its downloads (the last${at ? ` on ${at.slice(0, 10)}` : ''}) and cannot download again; ask the network operator for a new notice. If a download was not yours, tell them at once`, {
          ja: `この通知書は使用済みです（ダウンロードの上限 ${maxDownloads} 回に達しています${at ? `。最後のダウンロード：${at.slice(0, 10)}` : ''}）。再度のダウンロードには、運営主体に新しい通知書をご依頼ください。心当たりのないダウンロードがあれば、すぐにご連絡ください。`,
        })
      : gone('NOTICE_USED', `this notice was already used${at ? ` on ${at.slice(0, 10)}` : ''} and cannot download again; ask the network operator for a new notice. If that was not you, tell them at once`, {
          ja: `この通知書は${at ? `${at.slice(0, 10)}に` : ''}使用済みです。再度のダウンロードはできません。必要な場合は運営主体に新しい通知書をご依頼ください。心当たりがない場合は、すぐに運営主体にご連絡ください。`,
        }),
  inProgress: () =>
    conflict('NOTICE_IN_PROGRESS', 'a download with this notice is under way right now; wait a minute and try again. If it was not yours, or this persists, tell the network operator', {
      ja: 'この通知書でのダウンロードが処理中です。1分ほど待ってから再度お試しください。心当たりがない場合や、この表示が続く場合は運営主体にご連絡ください。',
    }),
  revoked: () =>
    gone('NOTICE_REVOKED', 'this notice was revoked by the network operator; use the newer notice, or ask for one', {
      ja: 'この通知書は運営主体により無効化されています。新しい通知書をご利用ください。',
    }),
  facilitySuspended: (n: string) =>
    forbidden('FACILITY_SUSPENDED', `facility ${n} is suspended; the notice was not used. Ask the network operator`, {
      ja: `医療機関 ${n} は利用停止中です（通知書は使用されていません）。運営主体にお問い合わせください。`,
    }),
  rateLimited: (seconds: number) =>
    rateLimited('RATE_LIMITED', `too many attempts from this address; wait ${seconds} seconds and try again`, seconds, {
      ja: `試行回数が多すぎます。${seconds}秒ほど待ってから再度お試しください。`,
    }),
};
