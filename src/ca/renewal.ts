import { badRequest, conflict, forbidden, rateLimited } from '../errors/index.js';
import { repositories, RENEWAL_PENDING, type CertificateRecord, type Database } from '../store/index.js';
import type { AuditLog } from '../audit/index.js';
import type { RenewalConfig } from './config.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** A renewal claim older than this with no completion is taken as abandoned. */
export const STALE_CLAIM_MS = 10 * 60_000;

/** When renewal opens for a certificate: when at most `windowPercent` of its validity is left. */
export function renewalOpensAt(notBefore: Date, notAfter: Date, windowPercent: number): Date {
  const span = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - Math.floor((span * windowPercent) / 100));
}

/** A certificate held for exactly one renewal. */
export interface RenewalClaim {
  readonly serial: string;
  readonly facilityNumber: string;
  readonly actor: string;
}

export interface RenewalLineageOptions {
  db: Database;
  audit: AuditLog;
  config: RenewalConfig;
  now: () => Date;
}

/** The reasons a renewal is refused, in English and Japanese (the facility's device or agent shows them). */
export const RENEWAL_ERRORS = {
  tooEarly: (opens: Date) =>
    conflict('RENEWAL_TOO_EARLY', `renewal of this certificate opens on ${opens.toISOString()}; renew then (or later, before it expires)`, {
      ja: `この証明書の更新は ${opens.toISOString().slice(0, 10)} から受け付けます。その日以降、有効期限までに更新してください。`,
    }),
  superseded: (rec: CertificateRecord) =>
    forbidden(
      'CLIENT_CERT_SUPERSEDED',
      rec.supersededBy === RENEWAL_PENDING
        ? 'this certificate is being renewed right now; a certificate is renewed only once'
        : `this certificate was already renewed (successor ${rec.supersededBy}, ${rec.supersededAt?.slice(0, 10) ?? ''}); renew with the successor when its renewal opens. If that renewal was not yours, tell the network operator at once`,
      { ja: 'この証明書は既に更新済みです（更新は1回限りです）。心当たりがない場合は、すぐに運営主体にご連絡ください。' },
    ),
  rateLimited: (seconds: number, max: number) =>
    rateLimited('RENEWAL_RATE_LIMITED', `this facility's certificates were renewed ${max} times in the last 24 hours (the limit); try again in ${seconds} seconds, or ask the network operator`, seconds, {
      ja: `この医療機関の証明書更新が24時間の上限（${max}回）に達しました。${Math.ceil(seconds / 3600)}時間ほど後に再度お試しください。`,
    }),
};

/**
 * The lineage of renewals (EST simplereenroll): a certificate renews only
 * inside its renewal window, only once (its successor starts a window of
 * its own), and a facility's certificates renew at most
 * `maxPerFacilityPerDay` times in any 24 hours. The renewed certificate is
 * superseded: it is revoked (reason superseded) once the overlap ends, by
 * the authority's one revocation path (CertificateAuthority.applyDueRevocations).
 */
export class RenewalLineage {
  constructor(private readonly o: RenewalLineageOptions) {}

  /**
   * A claim left pending longer than STALE_CLAIM_MS (the process died, or
   * its store write failed, between claim and completion): with a signed
   * successor the lineage is completed (the certificate is superseded as if
   * the renewal had finished); without one the claim is released, so the
   * facility can renew instead of being locked out until an operator acts.
   */
  async #recoverStale(rec: CertificateRecord, facilityNumber: string): Promise<CertificateRecord> {
    const claimedAt = rec.supersededAt ? Date.parse(rec.supersededAt) : NaN;
    if (!(this.o.now().getTime() - claimedAt > STALE_CLAIM_MS)) return rec;
    const certs = repositories(this.o.db).certificates;
    const successor = await certs.successorOf(rec.serial);
    if (successor) {
      await this.complete({ serial: rec.serial, facilityNumber, actor: 'ca' }, successor.serial);
    } else {
      await certs.releaseRenewal(rec.serial);
      await this.o.audit.append({ actor: 'ca', action: 'certificate.renewal-released', outcome: 'success', subject: rec.serial, details: { claimedAt: rec.supersededAt, reason: 'the renewal that claimed this certificate never finished' } });
    }
    return (await certs.get(rec.serial)) ?? rec;
  }

  /** When renewal opens for this certificate. */
  opensAt(rec: Pick<CertificateRecord, 'notBefore' | 'notAfter'>): Date {
    return renewalOpensAt(new Date(rec.notBefore), new Date(rec.notAfter), this.o.config.windowPercent);
  }

  /**
   * Checks the window and the facility's daily cap, and holds the
   * certificate for one renewal (compare-and-set: of concurrent renewals
   * with one certificate exactly one gets here). Throws the reason otherwise.
   */
  async claim(rec: CertificateRecord, actor: string): Promise<RenewalClaim> {
    const facilityNumber = rec.facilityNumber;
    if (!facilityNumber) throw badRequest('REENROLL_PROFILE', `a ${rec.profile} certificate is not renewed over EST`);
    if (rec.supersededBy === RENEWAL_PENDING) rec = await this.#recoverStale(rec, facilityNumber);
    if (rec.supersededBy) throw RENEWAL_ERRORS.superseded(rec);
    const now = this.o.now();
    const opens = this.opensAt(rec);
    if (now < opens) throw RENEWAL_ERRORS.tooEarly(opens);
    const at = now.toISOString();
    const max = this.o.config.maxPerFacilityPerDay;
    return this.o.db.transaction(async (tx) => {
      const certs = repositories(tx).certificates;
      const recent = await certs.renewalsSince(facilityNumber, new Date(now.getTime() - DAY_MS).toISOString());
      if (recent.count >= max) {
        const frees = recent.oldest ? new Date(recent.oldest).getTime() + DAY_MS : now.getTime() + DAY_MS;
        throw RENEWAL_ERRORS.rateLimited(Math.max(1, Math.ceil((frees - now.getTime()) / 1000)), max);
      }
      if (!(await certs.claimRenewal(rec.serial, at))) {
        const fresh = await certs.get(rec.serial);
        if (fresh?.status === 'revoked') {
          throw forbidden('CLIENT_CERT_REVOKED', 'the client certificate is revoked; enroll with a new notice', { ja: 'このクライアント証明書は失効しています。新しい発行通知書で申請してください。' });
        }
        throw RENEWAL_ERRORS.superseded(fresh ?? { ...rec, supersededBy: RENEWAL_PENDING });
      }
      return { serial: rec.serial, facilityNumber, actor };
    });
  }

  /** The successor was issued: the claimed certificate is superseded by it and revoked when the overlap ends. */
  async complete(claim: RenewalClaim, successor: string): Promise<{ revokeDueAt: string }> {
    const revokeDueAt = new Date(this.o.now().getTime() + this.o.config.overlapHours * HOUR_MS).toISOString();
    await this.o.db.transaction(async (tx) => {
      await repositories(tx).certificates.completeRenewal(claim.serial, successor, revokeDueAt);
      await this.o.audit.appendIn(tx, {
        actor: claim.actor,
        action: 'certificate.renewed',
        outcome: 'success',
        subject: claim.serial,
        details: { successor, revokeDueAt, facility: claim.facilityNumber },
      });
    });
    return { revokeDueAt };
  }

  /** Issuing the successor failed: the certificate may renew again. */
  async release(claim: RenewalClaim): Promise<void> {
    await repositories(this.o.db).certificates.releaseRenewal(claim.serial);
  }
}
