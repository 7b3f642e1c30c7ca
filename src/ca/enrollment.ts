import { X509Certificate } from 'node:crypto';
import { badRequest, forbidden, isSekishoError } from '../errors/index.js';
import { describeCertificate, formatName, nameValue, type KeyType, type VerifiedCsr } from '../pki/index.js';
import { checkPkcs12Password, checkSubjectKey } from '../policy/index.js';
import type { CertificateAuthority } from './authority.js';
import type { IssuedCertificate } from './issuer.js';
import { isAuditedRefusal, REENROLL_REFUSAL_WINDOW_MS, type AttemptSource, type NoticeClaim } from './notices.js';
import type { NoticeRedemption } from './notice-downloads.js';
import type { CertificateRecord, Facility, NoticeKind } from '../store/index.js';

export interface NoticeCredentials {
  requestId: string;
  referenceId: string;
}

export interface EnrollmentResult extends IssuedCertificate {
  facility: Facility;
  /** With a notice: which download this was, how many are left, and the certificate it superseded. */
  redemption?: NoticeRedemption;
}

/** Key types the portal offers for a CA-made key (RSA-2048 for old Windows and middleware). */
export const PORTAL_KEY_TYPES: readonly KeyType[] = ['rsa-2048', 'ecdsa-p256'];

/**
 * Enrollment: a notice (or one-time code) or a current certificate becomes a
 * facility certificate. The subject always comes from the notice's facility
 * (or the current certificate's registry entry): nothing in the request
 * changes it. A notice is claimed before issuing and released if issuing
 * fails, so it is spent only by a certificate that exists.
 */
export class Enrollment {
  constructor(private readonly ca: CertificateAuthority) {}

  /**
   * Claim → issue → complete (count the download and supersede the one
   * before, one transaction). If issuing fails the claim is released; if
   * completing fails the claim is released too and the certificate that was
   * never handed over is revoked, so a failure spends no download and leaves
   * no live certificate nobody received.
   */
  async #withClaim<T extends IssuedCertificate>(creds: NoticeCredentials, source: AttemptSource, kinds: readonly NoticeKind[], issue: (claim: NoticeClaim) => Promise<T>): Promise<T & { facility: Facility; redemption: NoticeRedemption }> {
    const claim = await this.ca.notices.claim({ ...creds, kinds }, source);
    const release = (e: unknown) => this.ca.notices.release(claim, isSekishoError(e) ? e.code : 'INTERNAL').catch(() => undefined);
    let issued: T;
    try {
      issued = await issue(claim);
    } catch (e) {
      await release(e);
      throw e;
    }
    let redemption: NoticeRedemption;
    try {
      redemption = await this.ca.notices.complete(claim, issued.serial);
    } catch (e) {
      await release(e);
      return this.ca.revokeUnreceived(issued.serial, 'ca', e);
    }
    return { ...issued, facility: claim.facility, redemption };
  }

  /** Makes the key here and hands it back as PKCS#12 under the clinic's password. */
  /** What a claimed notice yields: the device's certificate for a code made for a device, else the facility's own. */
  static orderFor(claim: NoticeClaim): { profile: 'facility' } | { profile: 'device'; deviceName: string } {
    return claim.profile === 'device' ? { profile: 'device', deviceName: claim.deviceName ?? '' } : { profile: 'facility' };
  }

  async withPkcs12(creds: NoticeCredentials, source: AttemptSource, o: { password: string; legacy?: boolean; keyType?: KeyType }): Promise<EnrollmentResult & { pkcs12: Buffer; redemption: NoticeRedemption }> {
    checkPkcs12Password(o.password, this.ca.config.pkcs12.minPasswordLength);
    const keyType = o.keyType ?? 'rsa-2048';
    if (!PORTAL_KEY_TYPES.includes(keyType)) throw badRequest('KEY_TYPE_UNSUPPORTED', `the portal makes ${PORTAL_KEY_TYPES.join(' or ')} keys`);
    return this.#withClaim(creds, source, ['letter', 'est-code'], (claim) =>
      this.ca.issuePkcs12({ ...Enrollment.orderFor(claim), facilityNumber: claim.facility.number, keyType, via: source.via, actor: `client:${source.client}` }, o.password, { legacy: Boolean(o.legacy) }),
    );
  }

  /** Issues for the key in a CSR (made in the browser or on the device); only its key is used. */
  async withCsr(creds: NoticeCredentials, source: AttemptSource, csr: VerifiedCsr): Promise<EnrollmentResult & { redemption: NoticeRedemption }> {
    checkSubjectKey(csr.spki);
    return this.#withClaim(creds, source, ['letter', 'est-code'], (claim) =>
      this.ca.issue({ ...Enrollment.orderFor(claim), facilityNumber: claim.facility.number, publicKey: csr.publicKey, spki: csr.spki, via: source.via, actor: `client:${source.client}` }),
    );
  }

  /**
   * Renewal with the current certificate as proof (EST simplereenroll, RFC
   * 7030 §4.2.2): it must be one this CA issued, within validity, not
   * revoked, of an active facility, and the CSR's subject must equal its
   * subject. The new certificate has the same profile and facility.
   * RenewalLineage bounds it: only inside the renewal window, only once per
   * certificate, at most N per facility a day; the renewed certificate is
   * superseded (revoked, reason superseded, after the configured overlap).
   */
  async reenroll(currentDer: Buffer, csr: VerifiedCsr, source: AttemptSource): Promise<EnrollmentResult> {
    const current = await this.checkCurrent(currentDer);
    const actor = `client:${source.client}`;
    try {
      if (formatName(csr.subject) !== formatName(current.view.subject)) {
        throw badRequest('REENROLL_SUBJECT_MISMATCH', `the CSR's subject (${formatName(csr.subject) || 'empty'}) must equal the current certificate's subject (${formatName(current.view.subject)}) (RFC 7030 §4.2.2)`);
      }
      checkSubjectKey(csr.spki);
      const facility = await this.ca.registration.activeFacility(current.facilityNumber);
      const order =
        current.profile === 'device'
          ? { profile: 'device' as const, deviceName: nameValue(current.view.subject, 'CN') ?? '' }
          : { profile: 'facility' as const };
      const claim = await this.ca.renewals.claim(current.record, actor);
      let issued: IssuedCertificate;
      try {
        issued = await this.ca.issue({ ...order, facilityNumber: facility.number, publicKey: csr.publicKey, spki: csr.spki, renewedFrom: current.serial, via: source.via, actor });
      } catch (e) {
        await this.ca.renewals.release(claim).catch(() => undefined);
        throw e;
      }
      await this.ca.renewals.complete(claim, issued.serial);
      // With no overlap the superseded certificate is revoked now; otherwise when its due time comes.
      // The successor exists either way: if this fails, the periodic run and the next CRL/OCSP apply it.
      await this.ca.applyDueRevocations().catch(() => undefined);
      return { ...issued, facility };
    } catch (e) {
      if (isSekishoError(e)) {
        // A certificate holder could repeat a refused renewal without end: its 1st, 2nd, 4th … refusal of a window
        // is audited, numbered (isAuditedRefusal, the rule the portal applies to an address's attempts).
        const w = await this.ca.notices.countAttempt(`reenroll|${current.serial}`, this.ca.now().getTime(), REENROLL_REFUSAL_WINDOW_MS);
        if (isAuditedRefusal(w.count)) {
          await this.ca.audit.append({ actor, action: 'certificate.reenroll', outcome: 'minorFailure', reasonCode: e.code, subject: current.serial, details: { via: source.via, refusedInWindow: w.count } });
        }
      }
      throw e;
    }
  }

  /** The presented certificate, checked as renewal proof. */
  async checkCurrent(der: Buffer): Promise<{ serial: string; profile: string; facilityNumber: string; view: ReturnType<typeof describeCertificate>; record: CertificateRecord }> {
    const refuse = (code: string, en: string, ja: string) => forbidden(code, en, { ja });
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      throw refuse('CLIENT_CERT_INVALID', 'the client certificate cannot be read', 'クライアント証明書を読み取れません。');
    }
    const issuing = new X509Certificate(this.ca.issuingDer);
    if (!cert.checkIssued(issuing) || !cert.verify(issuing.publicKey)) {
      throw refuse('CLIENT_CERT_UNTRUSTED', 'the client certificate was not issued by this CA', 'このクライアント証明書は本認証局が発行したものではありません。');
    }
    const view = describeCertificate(der);
    const now = this.ca.now();
    if (view.notBefore > now || view.notAfter <= now) {
      throw refuse('CLIENT_CERT_EXPIRED', `the client certificate is outside its validity (${view.notBefore.toISOString()} – ${view.notAfter.toISOString()}); enroll with a new notice`, 'クライアント証明書の有効期限が切れています。新しい発行通知書で申請してください。');
    }
    const rec = await this.ca.certificate(view.serialHex);
    if (!rec || rec.der === undefined || !rec.der.equals(der)) throw refuse('CLIENT_CERT_UNKNOWN', 'the client certificate is not in this CA\'s records', 'このクライアント証明書は登録されていません。');
    if (rec.status === 'revoked') throw refuse('CLIENT_CERT_REVOKED', 'the client certificate is revoked; enroll with a new notice', 'このクライアント証明書は失効しています。新しい発行通知書で申請してください。');
    if (!rec.facilityNumber || (rec.profile !== 'facility' && rec.profile !== 'device')) {
      throw badRequest('REENROLL_PROFILE', `a ${rec.profile} certificate is not renewed over EST; issue it with "sekisho cert issue"`);
    }
    return { serial: rec.serial, profile: rec.profile, facilityNumber: rec.facilityNumber, view, record: rec };
  }
}
