import { describeCertificate, buildOcspResponse, certIdMatchesIssuer, ocspErrorResponse, parseOcspRequest, reasonFromCode, type OcspSingleResponse } from '../pki/index.js';
import { CERTIFICATE_PROFILES, type CertificateProfile, type CertificateProfileName } from '../policy/index.js';
import { repositories, type CertificateRecord } from '../store/index.js';
import type { CertificateAuthority } from './authority.js';

export interface RevocationPublisherOptions {
  /** How long an OCSP response may be cached by clients (nextUpdate − thisUpdate). Default 1 hour. */
  ocspValiditySeconds?: number;
}

/**
 * Whether the issuing CA signed a stored certificate, so its responder may
 * answer for it: the store holds the CA certificates too (the root's, the
 * issuing CA's own), which the root signed; a serial is unique only in the
 * store, not per issuer. An unknown profile is not vouched for either.
 */
export function signedByIssuingCa(rec: CertificateRecord): boolean {
  if (!Object.hasOwn(CERTIFICATE_PROFILES, rec.profile)) return false;
  const profile: CertificateProfile = CERTIFICATE_PROFILES[rec.profile as CertificateProfileName];
  return !profile.ca;
}

/** CertIDs answered in one OCSP request (more: malformedRequest). */
export const OCSP_MAX_CERT_IDS = 8;

/**
 * Publishes revocation status from the store: CRLs (signed again whenever a
 * revocation happened or half the CRL's validity passed) and OCSP responses
 * signed by the issuing CA (RFC 6960 §2.2), straight from the store, so a
 * revocation shows on the next OCSP request.
 */
export class RevocationPublisher {
  #crl: { der: Buffer; mark: string; nextUpdate: Date; signedAt: number } | undefined;
  #signing: Promise<Buffer> | undefined;
  readonly #ocspValidityMs: number;

  constructor(
    private readonly ca: CertificateAuthority,
    o: RevocationPublisherOptions = {},
  ) {
    this.#ocspValidityMs = (o.ocspValiditySeconds ?? 3600) * 1000;
  }

  async #mark(): Promise<string> {
    const counts = await repositories(this.ca.db).certificates.countByStatus();
    return `${counts.revoked}`;
  }

  /** The current CRL (DER). */
  async crl(): Promise<Buffer> {
    await this.ca.applyDueRevocations('web');
    const mark = await this.#mark();
    const now = this.ca.now().getTime();
    const c = this.#crl;
    if (c && c.mark === mark && now < c.signedAt + (c.nextUpdate.getTime() - c.signedAt) / 2) return c.der;
    this.#signing ??= (async () => {
      try {
        const signed = await this.ca.crl('web');
        this.#crl = { der: signed.der, mark, nextUpdate: signed.nextUpdate, signedAt: now };
        return signed.der;
      } finally {
        this.#signing = undefined;
      }
    })();
    return this.#signing;
  }

  /** Answers a DER OCSPRequest with a DER OCSPResponse; never throws for bad input. */
  async ocsp(body: Buffer): Promise<Buffer> {
    let request;
    try {
      request = parseOcspRequest(body);
    } catch {
      return ocspErrorResponse('malformedRequest');
    }
    let issuing;
    try {
      issuing = this.ca.issuingIdentity();
    } catch {
      return ocspErrorResponse('tryLater');
    }
    // Relying parties ask about one certificate (sometimes its chain): more CertIDs per request only multiply an anonymous client's cost.
    if (request.certIds.length > OCSP_MAX_CERT_IDS) return ocspErrorResponse('malformedRequest');
    const issuingView = describeCertificate(this.ca.issuingDer);
    const now = this.ca.now();
    const next = new Date(now.getTime() + this.#ocspValidityMs);
    const certs = repositories(this.ca.db).certificates;
    const responses: OcspSingleResponse[] = [];
    for (const id of request.certIds) {
      let certStatus: OcspSingleResponse['certStatus'] = { status: 'unknown' };
      if (certIdMatchesIssuer(id, issuingView.subjectDer, issuingView.spki)) {
        // Only what the issuing CA signed: never good for the root's or its own serial (those were signed by the root), nor a reserved serial.
        const found = await certs.get(id.serialHex);
        const rec = found && signedByIssuingCa(found) ? found : undefined;
        // A superseded certificate whose overlap ended is answered as revoked even before the periodic run records it
        // (read-only: an anonymous OCSP request never writes to the store).
        if (rec?.status === 'issued' && rec.revokeDueAt && Date.parse(rec.revokeDueAt) <= now.getTime()) {
          certStatus = { status: 'revoked', revokedAt: new Date(rec.revokeDueAt), reason: 'superseded' };
        } else if (rec?.status === 'issued') certStatus = { status: 'good' };
        else if (rec?.status === 'revoked' && rec.revokedAt) {
          const reason = rec.revocationReason === undefined ? undefined : reasonFromCode(rec.revocationReason);
          certStatus = { status: 'revoked', revokedAt: new Date(rec.revokedAt), ...(reason ? { reason } : {}) };
        }
      }
      responses.push({ certIdDer: id.der, certStatus, thisUpdate: now, nextUpdate: next });
    }
    return buildOcspResponse({
      signer: issuing.signer,
      responderSpki: issuingView.spki,
      producedAt: now,
      responses,
      ...(request.nonceExtension ? { nonceExtension: request.nonceExtension } : {}),
      certs: [this.ca.issuingDer],
    });
  }
}
