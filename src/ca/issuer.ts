import { createHash, createPublicKey, KeyObject, verify } from 'node:crypto';
import { badRequest, forbidden, internal } from '../errors/index.js';
import {
  describeTbs,
  encodeName,
  encodeTbsCertificate,
  fingerprint,
  formatName,
  keyIdentifierOfSpki,
  signTbs,
  spkiDer,
  spkiSha256,
  SIGNATURE_HASH,
  type CertificateView,
  type ExtensionValues,
  type NameAttribute,
  type Signer,
} from '../pki/index.js';
import { revocationPointers, type RevocationUrls } from './revocation-pointers.js';
import { keyUsageFor, lintCertificate, type CertificateProfile } from '../policy/index.js';
import { GroupCommit, repositories, type CertificateRecord, type Database } from '../store/index.js';
import type { AuditLog } from '../audit/index.js';
import { newSerial, serialHex } from './serial.js';

/** A decided request: registration has checked it; the issuer only builds, lints, signs and records. */
export interface IssuanceRequest {
  profile: CertificateProfile;
  subject: NameAttribute[];
  publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo of publicKey when the caller already has it (from a CSR). */
  spki?: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectAltName?: { dns: string[]; ip: string[] };
  facilityNumber?: string;
  /** Renewal: the certificate this one replaces, recorded with the reserved serial. */
  renewedFrom?: string;
  /** How the request arrived: csr, ca-key, bulk, init. */
  via: string;
  actor: string;
}

/** Who signs: the signer and the facts about its certificate that go into children. */
export interface IssuingIdentity {
  signer: Signer;
  subjectDer: Buffer;
  keyId: Buffer;
  /** Absent for the self-signed root. */
  notAfter?: Date;
}


export interface IssuedCertificate {
  der: Buffer;
  serial: string;
  view: CertificateView;
}

declare const lintedBrand: unique symbol;
/**
 * A TBS certificate that passed every lint for its profile, bound to the
 * identity that will sign it. Only `lint()` makes one, and only `issue()`
 * signs it, once, after its serial is reserved: nothing unlinted or
 * unrecorded is ever signed.
 */
export type LintedCertificate = {
  readonly [lintedBrand]: true;
  readonly tbs: Buffer;
  readonly view: CertificateView;
  readonly serial: Buffer;
  readonly issuer: IssuingIdentity;
};

const unsigned = new WeakSet<object>();

export interface CertificateIssuerOptions {
  db: Database;
  audit: AuditLog;
  urls?: RevocationUrls;
  now?: () => Date;
  random?: (n: number) => Buffer;
}

/** The signing side of the CA (Boulder's CA, as opposed to its RA). */
export class CertificateIssuer {
  readonly #commits: GroupCommit;
  readonly #audit: AuditLog;
  readonly #urls: RevocationUrls;
  readonly #now: () => Date;
  readonly #random: ((n: number) => Buffer) | undefined;

  constructor(o: CertificateIssuerOptions) {
    this.#commits = new GroupCommit(o.db);
    this.#audit = o.audit;
    this.#urls = o.urls ?? {};
    this.#now = o.now ?? (() => new Date());
    this.#random = o.random;
  }

  /**
   * 1. build the TBS with a fresh serial, 2. lint it against its profile,
   * 3. reserve the serial and audit "signing" in one transaction,
   * 4. sign, and check the signature, 5. store the certificate and audit
   * "issued" in one transaction. Concurrent issuances share transactions
   * (group commit); each step still waits for its own commit. A crash after 3 leaves a reserved serial
   * that never repeats; no signed certificate exists that the store lacks.
   */
  async issue(req: IssuanceRequest, issuer: IssuingIdentity): Promise<IssuedCertificate> {
    const linted = this.lint(req, issuer);
    const serial = serialHex(linted.serial);
    const facility = req.facilityNumber ? { facility: req.facilityNumber } : {};
    const record = {
      serial,
      profile: req.profile.name,
      subject: formatName(req.subject),
      spkiSha256: spkiSha256(linted.view.spki),
      notBefore: req.notBefore.toISOString(),
      notAfter: req.notAfter.toISOString(),
      reservedAt: this.#now().toISOString(),
      ...(req.facilityNumber ? { facilityNumber: req.facilityNumber } : {}),
      ...(req.renewedFrom ? { renewedFrom: req.renewedFrom } : {}),
    } satisfies Omit<CertificateRecord, 'status'>;
    await this.#commits.run(async (tx) => {
      const reserved = await repositories(tx).certificates.reserve(record);
      if (reserved === 'serial-exists') throw internal('SERIAL_COLLISION', `serial ${serial} already exists; retry the issuance`);
      if (reserved === 'facility-not-active') {
        throw forbidden('FACILITY_SUSPENDED', `facility ${req.facilityNumber} was suspended while its certificate was being prepared; nothing was issued`, {
          ja: `医療機関 ${req.facilityNumber} は利用停止中です。運営主体にお問い合わせください。`,
        });
      }
      await this.#audit.appendIn(tx, {
        actor: req.actor,
        action: 'certificate.signing',
        outcome: 'success',
        subject: serial,
        details: { profile: req.profile.name, subject: record.subject, via: req.via, tbsSha256: createHash('sha256').update(linted.tbs).digest('hex'), ...facility, ...(req.renewedFrom ? { renewedFrom: req.renewedFrom } : {}) },
      });
    });
    let der: Buffer;
    try {
      der = await this.#sign(linted);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      await this.#commits
        .run((tx) => this.#audit.appendIn(tx, { actor: req.actor, action: 'certificate.sign-failed', outcome: 'majorFailure', reasonCode: typeof code === 'string' ? code : 'SIGNER_FAILED', subject: serial, details: { profile: req.profile.name } }))
        .catch(() => undefined); // the failure itself is what the caller must see
      throw e;
    }
    const fp = fingerprint(der);
    await this.#commits.run(async (tx) => {
      if (!(await repositories(tx).certificates.markIssued(serial, der, fp, this.#now().toISOString()))) {
        throw internal('SERIAL_STATE', `serial ${serial} was not in the reserved state when its certificate was stored`);
      }
      await this.#audit.appendIn(tx, {
        actor: req.actor,
        action: 'certificate.issued',
        outcome: 'success',
        subject: serial,
        details: { profile: req.profile.name, subject: record.subject, fingerprintSha256: fp, notAfter: record.notAfter, ...facility },
      });
    });
    return { der, serial, view: linted.view };
  }

  /** Builds the TBS and runs every lint; throws with all problems, or returns the single-use token. */
  lint(req: IssuanceRequest, issuer: IssuingIdentity): LintedCertificate {
    const p = req.profile;
    const spki = req.spki ?? spkiDer(req.publicKey);
    const subjectKeyId = keyIdentifierOfSpki(spki);
    const selfSigned = issuer.notAfter === undefined;
    const pointers = revocationPointers(this.#urls, p);
    const extensions: ExtensionValues = {
      basicConstraints: p.ca ? { ca: true, ...(p.pathLength !== undefined ? { pathLength: p.pathLength } : {}) } : { ca: false },
      keyUsage: keyUsageFor(p, spki),
      ...(p.extendedKeyUsage.length ? { extendedKeyUsage: p.extendedKeyUsage } : {}),
      ...(req.subjectAltName ? { subjectAltName: req.subjectAltName } : {}),
      subjectKeyIdentifier: subjectKeyId,
      authorityKeyIdentifier: selfSigned ? subjectKeyId : issuer.keyId,
      ...(pointers.crl ? { crlDistributionPoints: [pointers.crl] } : {}),
      ...(pointers.ocsp ? { ocspUrls: [pointers.ocsp] } : {}),
      ...(pointers.caIssuers ? { caIssuersUrls: [pointers.caIssuers] } : {}),
    };
    const serial = newSerial(this.#random);
    const subjectDer = encodeName(req.subject);
    const tbs = encodeTbsCertificate({
      serial,
      signatureAlgorithm: issuer.signer.algorithm,
      issuer: selfSigned ? subjectDer : issuer.subjectDer,
      subject: subjectDer,
      notBefore: req.notBefore,
      notAfter: req.notAfter,
      publicKey: spki,
      extensions,
    });
    const view = describeTbs(tbs, 0, { spki, key: req.publicKey.type === 'public' ? req.publicKey : createPublicKey(req.publicKey) });
    const problems = lintCertificate(view, p, {
      ...(issuer.notAfter ? { issuerNotAfter: issuer.notAfter } : {}),
      issuerKeyIdentifier: selfSigned ? subjectKeyId : issuer.keyId,
      revocationUrlsConfigured: Boolean(pointers.crl),
    });
    if (problems.length) {
      throw badRequest('CERTIFICATE_LINT_FAILED', `the ${p.name} certificate would break its profile: ${problems.map((x) => `${x.lint}: ${x.problem}`).join('; ')}`);
    }
    const token = { tbs, view, serial, issuer } as LintedCertificate;
    unsigned.add(token);
    return token;
  }

  /** Signs a linted TBS exactly once, with the identity it was linted for, and checks the signature. */
  async #sign(linted: LintedCertificate): Promise<Buffer> {
    if (!unsigned.delete(linted)) throw internal('LINT_TOKEN_REUSED', 'a certificate may only be signed once, from a fresh lint');
    const signer = linted.issuer.signer;
    const { der, signature } = await signTbs(linted.tbs, signer);
    if (!verify(SIGNATURE_HASH[signer.algorithm], linted.tbs, signer.publicKey, signature)) {
      throw internal('SIGNATURE_CHECK_FAILED', 'the signer produced a signature that does not verify; check the CA key or token');
    }
    return der;
  }
}
