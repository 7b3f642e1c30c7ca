import { createHash, KeyObject } from 'node:crypto';
import { forbidden, internal, unavailable } from '../errors/index.js';
import { describeCertificate, fingerprint, formatName, spkiSha256, type CertificateView, type NameAttribute, type Signer } from '../pki/index.js';
import type { RevocationUrls } from './revocation-pointers.js';
import type { CertificateProfile } from '../policy/index.js';
import { GroupCommit, repositories, type CertificateRecord, type Database } from '../store/index.js';
import type { AuditLog } from '../audit/index.js';
import { serialHex } from './serial.js';
import { draftCertificate, signCheckedTbs, subjectKeyOf, type SubjectKeySource } from './certificate-draft.js';
import type { IssuancePool } from './issuance-pool.js';

/** A decided request: registration has checked it; the issuer only builds, lints, signs and records. */
export interface IssuanceRequest {
  profile: CertificateProfile;
  subject: NameAttribute[];
  /** The subject key, checked by registration; or instead `csr`. */
  publicKey?: KeyObject;
  /** DER SubjectPublicKeyInfo of publicKey when the caller already has it (from a CSR). */
  spki?: Buffer;
  /** A CSR (PEM or DER) not yet parsed: its proof of possession and key are checked where the certificate is built. */
  csr?: Buffer;
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
   * `request` may be the registration decision still to be made: it then
   * counts as in flight from the start, so `close()` waits for it too.
   */
  async issue(request: IssuanceRequest | (() => Promise<IssuanceRequest>), issuer: IssuingIdentity): Promise<IssuedCertificate> {
    if (this.#closing) throw unavailable('CA_CLOSING', 'the CA is shutting down; try again when it is back');
    const work = (async () => this.#issue(typeof request === 'function' ? await request() : request, issuer))();
    this.#inFlight.add(work);
    const done = () => this.#inFlight.delete(work);
    work.then(done, done);
    return work;
  }

  async #issue(req: IssuanceRequest, issuer: IssuingIdentity): Promise<IssuedCertificate> {
    const draft = await this.#prepare(req, issuer);
    const serial = draft.serial;
    const facility = req.facilityNumber ? { facility: req.facilityNumber } : {};
    const record = {
      serial,
      profile: req.profile.name,
      subject: formatName(req.subject),
      spkiSha256: draft.spkiSha256,
      notBefore: req.notBefore.toISOString(),
      notAfter: req.notAfter.toISOString(),
      reservedAt: this.#now().toISOString(),
      ...(req.facilityNumber ? { facilityNumber: req.facilityNumber } : {}),
      ...(req.renewedFrom ? { renewedFrom: req.renewedFrom } : {}),
    } satisfies Omit<CertificateRecord, 'status'>;
    try {
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
          details: { profile: req.profile.name, subject: record.subject, via: req.via, tbsSha256: draft.tbsSha256, ...facility, ...(req.renewedFrom ? { renewedFrom: req.renewedFrom } : {}) },
        });
      });
    } catch (e) {
      draft.discard();
      throw e;
    }
    let signed: { der: Buffer; fingerprint: string };
    try {
      signed = await draft.sign();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      await this.#commits
        .run((tx) => this.#audit.appendIn(tx, { actor: req.actor, action: 'certificate.sign-failed', outcome: 'majorFailure', reasonCode: typeof code === 'string' ? code : 'SIGNER_FAILED', subject: serial, details: { profile: req.profile.name } }))
        .catch(() => undefined); // the failure itself is what the caller must see
      throw e;
    }
    const { der, fingerprint: fp } = signed;
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
    return issuedCertificate(der, serial, draft.view);
  }

  /**
   * Step 1–2: the key, the TBS and the lint, in a worker of the pool when the
   * pool serves this issuer, else here. Either way the result can be signed
   * once, by that issuer, and only after the serial is reserved.
   */
  async #prepare(req: IssuanceRequest, issuer: IssuingIdentity): Promise<Draft> {
    const pool = this.#pool;
    if (pool && pool.issuer === issuer) {
      const key: SubjectKeySource = req.csr ? { csr: req.csr } : { publicKey: requireKey(req), ...(req.spki ? { spki: req.spki } : {}) };
      const d = await pool.pool.prepare(req, key);
      return { serial: d.serial, tbsSha256: d.tbsSha256, spkiSha256: d.spkiSha256, sign: () => pool.pool.sign(d), discard: () => pool.pool.discard(d) };
    }
    const linted = this.lint(req, issuer);
    return {
      serial: serialHex(linted.serial),
      tbsSha256: createHash('sha256').update(linted.tbs).digest('hex'),
      spkiSha256: spkiSha256(linted.view.spki),
      view: linted.view,
      sign: async () => {
        const der = await this.#sign(linted);
        return { der, fingerprint: fingerprint(der) };
      },
      discard: () => void unsigned.delete(linted),
    };
  }

  /**
   * From now on, issuances for `issuer` run their CPU work (CSR, build, lint,
   * sign) in `pool`, which holds that issuer's key; other issuers (init's
   * root) stay on this thread.
   */
  usePool(pool: IssuancePool, issuer: IssuingIdentity): void {
    this.#pool = { pool, issuer };
  }

  #pool: { pool: IssuancePool; issuer: IssuingIdentity } | undefined;
  #closing = false;
  readonly #inFlight = new Set<Promise<IssuedCertificate>>();

  /** Refuses new issuances, waits for those in flight (each ends stored, or failed and audited), then stops the pool. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.allSettled([...this.#inFlight]);
    await this.#pool?.pool.close();
  }

  /** Builds the TBS and runs every lint; throws with all problems, or returns the single-use token. */
  lint(req: IssuanceRequest, issuer: IssuingIdentity): LintedCertificate {
    const key = subjectKeyOf(req.csr ? { csr: req.csr } : { publicKey: requireKey(req), ...(req.spki ? { spki: req.spki } : {}) });
    const { tbs, view, serial } = draftCertificate(req, key, { algorithm: issuer.signer.algorithm, subjectDer: issuer.subjectDer, keyId: issuer.keyId, ...(issuer.notAfter ? { notAfter: issuer.notAfter } : {}) }, { urls: this.#urls, random: this.#random });
    const token = { tbs, view, serial, issuer } as LintedCertificate;
    unsigned.add(token);
    return token;
  }

  /** Signs a linted TBS exactly once, with the identity it was linted for, and checks the signature. */
  async #sign(linted: LintedCertificate): Promise<Buffer> {
    if (!unsigned.delete(linted)) throw internal('LINT_TOKEN_REUSED', 'a certificate may only be signed once, from a fresh lint by the same issuer');
    return signCheckedTbs(linted.tbs, linted.issuer.signer);
  }
}

/** A prepared certificate: the facts recorded before signing, and its single-use way to be signed. */
interface Draft {
  serial: string;
  tbsSha256: string;
  spkiSha256: string;
  /** Known when prepared here; from a worker it is read from the certificate when asked for. */
  view?: CertificateView;
  sign(): Promise<{ der: Buffer; fingerprint: string }>;
  discard(): void;
}

function requireKey(req: IssuanceRequest): KeyObject {
  if (!req.publicKey) throw internal('ISSUANCE_ORDER_INCOMPLETE', 'an issuance request reached the issuer without a public key or a CSR');
  return req.publicKey;
}

/** The issued certificate; its parsed view is made on first use when the worker built it (most callers need only the DER). */
function issuedCertificate(der: Buffer, serial: string, view: CertificateView | undefined): IssuedCertificate {
  if (view) return { der, serial, view };
  let parsed: CertificateView | undefined;
  return {
    der,
    serial,
    get view() {
      return (parsed ??= describeCertificate(der));
    },
  };
}
