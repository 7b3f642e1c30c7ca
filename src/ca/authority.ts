import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { badRequest, conflict, internal, isSekishoError, notFound, unauthorized, unavailable } from '../errors/index.js';
import {
  certificatesFromPem,
  describeCertificate,
  keyIdentifier,
  SoftwareSigner,
  subjectNameDer,
  generateKey,
  spkiDer,
  spkiSha256,
  fingerprint,
  buildCrl,
  buildPkcs12,
  reasonCode,
  reasonFromCode,
  type RevokedEntry,
  type RevocationReason,
  type KeyType,
  type Signer,
} from '../pki/index.js';
import { checkPkcs12Password, parseFacilityNumber, type EndEntityProfileName } from '../policy/index.js';
import { openStore, repositories, type CertificateRecord, type Database, type Facility, type FacilityStatus, type OperatorRecord, type OperatorRole, type SqlExecutor } from '../store/index.js';
import { CERTIFICATE_PROFILES, issuanceNotBefore, OPERATOR_SUBJECT_OU } from '../policy/index.js';
import { parseOperatorName } from './operators.js';
import { AuditLog, auditKeyId, type AuditCheckpoint, type TrailReport } from '../audit/index.js';
import { auditKeyFromFile, auditKeyInToken, readAuditPublicKey, readLatestCheckpoint, recordLatestCheckpoint } from './audit-key.js';
import { loadConfig, type CaConfig } from './config.js';
import { homePaths, isInitialized, type HomePaths } from './home.js';
import { readKeyFile } from './key-file.js';
import { CertificateIssuer, type IssuedCertificate, type IssuingIdentity } from './issuer.js';
import { IssuancePool } from './issuance-pool.js';
import { availableParallelism } from 'node:os';
import { Registration } from './registration.js';
import { openTokenSigner, readTokenKeyRef, type TokenKeyRef } from '../token/index.js';
import { issuingKeyRefPath } from './init.js';
import { existsSync } from 'node:fs';
import { parseSerialHex } from './serial.js';
import { NAME_CONTROL_CHARACTERS } from './file-name.js';
import { signedByIssuingCa } from './revocation-publisher.js';
import { IssuanceNotices } from './notices.js';
import { RenewalLineage } from './renewal.js';
import { RenewalCampaigns } from './renewal-campaign.js';

import { readRootCrl, rootCrlDue, signRootCrl } from './root-crl.js';

/** What a facility name may not hold: control and direction characters (file-name.ts), and U+FFFD (text decoded from the wrong encoding). */
const NAME_REFUSED = new RegExp(`[${NAME_CONTROL_CHARACTERS}\\ufffd]`);

export interface OpenOptions {
  home: string;
  /** Overrides the configured database (postgres://…). */
  db?: string;
  now?: () => Date;
  /**
   * Worker threads that parse CSRs, lint and sign issuances once the CA is
   * unlocked with its key file ('cores': one per core Node may use; 'auto':
   * see issuanceWorkerCount). Default 0: everything on the calling thread,
   * which suits one-shot commands; `sekisho serve` asks for 'auto'. A CA
   * whose key is in a token always signs on this thread.
   */
  issuanceWorkers?: number | 'cores' | 'auto';
}

/**
 * Issuance worker threads for a setting. 'auto' (what `sekisho serve` uses):
 * none on a machine of two cores or fewer, where the pool's two hand-offs per
 * issuance cost more than they spread (bench/issuance.ts: 1,690–1,774/s on
 * the main thread alone against 1,040/s with one worker and 1,488/s with two,
 * 0.57 against 0.89 ms of CPU per issuance); one per core above that.
 */
export function issuanceWorkerCount(setting: number | 'cores' | 'auto', cores = availableParallelism()): number {
  if (setting === 'cores') return cores;
  if (setting === 'auto') return cores > 2 ? cores : 0;
  return setting;
}

export interface FacilityInput {
  number: string;
  name: string;
  address?: string;
  contact?: string;
}

export interface CsrOrder {
  profile: EndEntityProfileName;
  /** The subject key; or instead `csr`. */
  publicKey?: KeyObject;
  /** DER SubjectPublicKeyInfo of publicKey (from the CSR), saving a re-encoding. */
  spki?: Buffer;
  /** The CSR as received (PEM or DER): parsed and its signature checked where the certificate is built (a pool worker when there is one). */
  csr?: Buffer;
  facilityNumber?: string;
  deviceName?: string;
  hosts?: string[];
  validityDays?: number;
  /** Renewal: the certificate this one replaces. */
  renewedFrom?: string;
  via: string;
  actor: string;
}

/**
 * The certificate authority of one home directory: the registry, issuance,
 * revocation and CRLs. Opening needs no secret; signing needs `unlock()`.
 */
export class CertificateAuthority {
  readonly audit: AuditLog;
  readonly registration: Registration;
  /** Issuance notices and one-time EST codes. */
  readonly notices: IssuanceNotices;
  /** Renewal windows, once-only renewal and the per-facility daily cap. */
  readonly renewals: RenewalLineage;
  /** Expiring certificates and renewal campaigns (one notice per facility, one transaction). */
  readonly campaigns: RenewalCampaigns;
  #issuingIdentity: IssuingIdentity | undefined;

  private constructor(
    readonly paths: HomePaths,
    readonly config: CaConfig,
    readonly db: Database,
    readonly rootDer: Buffer,
    readonly issuingDer: Buffer,
    readonly now: () => Date,
    readonly issuanceWorkers: number,
  ) {
    this.audit = new AuditLog(db, { now });
    this.registration = new Registration(repositories(db).facilities, config, now);
    this.notices = new IssuanceNotices({
      db,
      audit: this.audit,
      registration: this.registration,
      now,
      maxDownloads: config.notices.maxDownloads,
      supersede: (tx, serial, d) => this.#supersedeIn(tx, serial, d),
    });
    this.renewals = new RenewalLineage({ db, audit: this.audit, config: config.renewal, now });
    this.campaigns = new RenewalCampaigns({ db, audit: this.audit, notices: this.notices, now });
  }

  static async open(o: OpenOptions): Promise<CertificateAuthority> {
    const paths = homePaths(o.home);
    if (!isInitialized(o.home)) {
      throw notFound('HOME_NOT_INITIALIZED', `no CA in ${o.home}; run "sekisho init" first (or pass --home / set SEKISHO_HOME)`);
    }
    const config = loadConfig(paths.config);
    const readPem = (file: string) => {
      try {
        return certificatesFromPem(readFileSync(file, 'utf8'))[0];
      } catch {
        return undefined;
      }
    };
    const root = readPem(paths.rootCert);
    const issuing = readPem(paths.issuingCert);
    if (!root || !issuing) throw notFound('CA_CERTIFICATE_MISSING', `the CA certificates (root.pem, issuing.pem) in ${paths.caDir} are missing or damaged; restore them from backup`);
    const dbUrl = o.db ?? config.database;
    const db = await openStore({ home: o.home, create: false, ...(dbUrl ? { url: dbUrl } : {}) });
    const identity = await repositories(db).identity.get().catch(async (e: unknown) => {
      await db.close();
      throw e;
    });
    if (!identity || identity.issuingSha256 !== fingerprint(issuing)) {
      await db.close();
      throw conflict('STORE_MISMATCH', `${db.description} is not the store of the CA in ${o.home}${identity ? ' (it belongs to another CA)' : ' (it holds no CA)'}; check --db / SEKISHO_DB`);
    }
    const workers = issuanceWorkerCount(o.issuanceWorkers ?? 0);
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) {
      await db.close();
      throw badRequest('ISSUANCE_WORKERS_INVALID', `issuance workers must be 0–64, "cores" or "auto" (got ${String(o.issuanceWorkers)})`);
    }
    return new CertificateAuthority(paths, config, db, root, issuing, o.now ?? (() => new Date()), workers);
  }

  /** Decrypts the issuing key. A wrong passphrase is PASSPHRASE_WRONG. */
  async unlock(passphrase: string): Promise<void> {
    if (!passphrase) throw unauthorized('PASSPHRASE_EMPTY', 'the CA passphrase is empty; set SEKISHO_PASSPHRASE');
    const key = await readKeyFile(this.paths.issuingKey, passphrase);
    this.useIssuingSigner(new SoftwareSigner(key));
    if (this.issuanceWorkers > 0) await this.#startPool(key);
    const audit = await auditKeyFromFile(this.paths, this.config.keyType, passphrase);
    await this.#useAuditSigner(audit.signer, audit.created, 'key file');
    await this.refreshRootCrl(passphrase);
  }

  #auditSigner: Signer | undefined;

  /**
   * Opens only the audit key (commands that sign nothing else, e.g. a
   * revocation, still sign a checkpoint of their events): with the CA
   * passphrase, or the token PIN when the CA's keys are in a token.
   */
  async unlockAuditKey(secret: string): Promise<void> {
    if (this.#auditSigner) return;
    if (this.issuingKeyRef()) return this.unlockWithToken(secret);
    if (!secret) throw unauthorized('PASSPHRASE_EMPTY', 'the CA passphrase is empty; set SEKISHO_PASSPHRASE');
    const audit = await auditKeyFromFile(this.paths, this.config.keyType, secret);
    await this.#useAuditSigner(audit.signer, audit.created, 'key file');
  }

  /** Installs the audit key; a key made just now (a home from before audit keys) is recorded in the trail. */
  async #useAuditSigner(signer: Signer, created: boolean, where: string): Promise<void> {
    this.#auditSigner = signer;
    if (created) await this.audit.append({ actor: 'ca', action: 'audit.key.created', outcome: 'success', details: { keyId: auditKeyId(signer.publicKey), keyType: signer.keyType, in: where } });
  }

  /**
   * Signs a checkpoint of the audit trail with the audit key when events were
   * appended since the last one (or always, with `force`), and records it in
   * the home. Undefined when there was nothing new.
   */
  async checkpoint(options: { force?: boolean } = {}): Promise<AuditCheckpoint | undefined> {
    if (!this.#auditSigner) throw unavailable('CA_LOCKED', 'the audit key is locked; this command needs SEKISHO_PASSPHRASE (or SEKISHO_PIN for a CA whose keys are in a token)');
    const c = await this.audit.checkpoint(this.#auditSigner, options);
    if (c) recordLatestCheckpoint(this.paths, c);
    return c;
  }

  /**
   * Verifies the audit trail against its signed checkpoints, with the audit
   * key's public half and the newest checkpoint recorded in the home. Needs
   * no secret. AUDIT_KEY_MISSING when the home has no audit key yet.
   */
  async verifyAuditTrail(): Promise<TrailReport> {
    const publicKey = readAuditPublicKey(this.paths);
    if (!publicKey) throw notFound('AUDIT_KEY_MISSING', `${this.paths.caDir} has no audit key (audit-key.pem); unlock the CA once (any command that signs, or "sekisho audit checkpoint") to make one`);
    const known = readLatestCheckpoint(this.paths);
    return this.audit.verifyTrail({ publicKey, ...(known ? { knownLatest: { id: known.id, hash: known.hash } } : {}) });
  }

  /** Signs a new root CRL with the root key (same passphrase) when it is missing or half its validity has passed. */
  async refreshRootCrl(passphrase: string): Promise<void> {
    if (!rootCrlDue(this.paths, this.now())) return;
    const rootKey = await readKeyFile(this.paths.rootKey, passphrase);
    await signRootCrl({ paths: this.paths, rootDer: this.rootDer, signer: new SoftwareSigner(rootKey), audit: this.audit, actor: 'ca', now: this.now() });
  }

  /** The root's CRL (DER) as last signed, or undefined. */
  rootCrl(): Buffer | undefined {
    return readRootCrl(this.paths);
  }

  /** Where the issuing key lives when `sekisho init --token/--pkcs11-uri` put it in a token; undefined for a key file. */
  issuingKeyRef(): TokenKeyRef | undefined {
    const path = issuingKeyRefPath(this.paths);
    return existsSync(path) ? readTokenKeyRef(path) : undefined;
  }

  #closeToken: (() => Promise<void>) | undefined;

  /** Logs in to the token holding the issuing key (user PIN) and signs with it from now on. */
  async unlockWithToken(pin: string): Promise<void> {
    const ref = this.issuingKeyRef();
    if (!ref) throw badRequest('CA_KEY_NOT_IN_TOKEN', 'this CA keeps its issuing key in a key file; unlock it with SEKISHO_PASSPHRASE');
    const opened = await openTokenSigner(ref, pin);
    try {
      this.useIssuingSigner(opened.signer);
      const audit = await auditKeyInToken(this.paths, opened.signer.session, this.config.keyType);
      await this.#useAuditSigner(audit.signer, audit.created, 'token');
    } catch (e) {
      await opened.close();
      throw e;
    }
    await this.#closeToken?.();
    this.#closeToken = opened.close;
  }

  /** Installs the issuing signer (a software key, or a token-held key). */
  useIssuingSigner(signer: Signer): void {
    const view = describeCertificate(this.issuingDer);
    if (!spkiDer(signer.publicKey).equals(spkiDer(view.publicKey))) {
      throw badRequest('SIGNER_MISMATCH', "the signer's key does not belong to the issuing CA certificate");
    }
    // Children's authorityKeyIdentifier is the issuing certificate's own subjectKeyIdentifier (RFC 5280 §4.2.1.1).
    this.#issuingIdentity = { signer, subjectDer: subjectNameDer(this.issuingDer), keyId: view.extensions.subjectKeyIdentifier ?? keyIdentifier(view.publicKey), notAfter: view.notAfter };
  }

  #pool: IssuancePool | undefined;

  /** The worker pool issuing for the unlocked key file, when the CA was opened with issuanceWorkers. */
  get issuancePool(): IssuancePool | undefined {
    return this.#pool;
  }

  /**
   * Hands the issuing key to a pool of worker threads (same process: Node
   * shares the native key, the bytes are never exported) and binds the pool
   * to the identity just installed. A later signer (another unlock, a token)
   * gets a new identity, so the old pool serves nothing after that.
   */
  async #startPool(key: KeyObject): Promise<void> {
    const issuing = this.#issuing();
    const pool = await IssuancePool.start({
      key,
      issuer: { algorithm: issuing.signer.algorithm, subjectDer: issuing.subjectDer, keyId: issuing.keyId, ...(issuing.notAfter ? { notAfter: issuing.notAfter } : {}) },
      urls: this.config.urls,
      workers: this.issuanceWorkers,
    });
    const old = this.#pool;
    this.#pool = pool;
    this.#issuer().usePool(pool, issuing);
    await old?.close();
  }

  #issuing(): IssuingIdentity {
    const id = this.#issuingIdentity;
    if (!id) throw unavailable('CA_LOCKED', 'the CA key is locked; this command needs SEKISHO_PASSPHRASE');
    return id;
  }

  #issuerInstance: CertificateIssuer | undefined;

  #issuer(): CertificateIssuer {
    return (this.#issuerInstance ??= new CertificateIssuer({ db: this.db, audit: this.audit, urls: this.config.urls, now: this.now }));
  }

  /** PEM chain order: issuing CA, then root. */
  chain(): Buffer[] {
    return [this.issuingDer, this.rootDer];
  }

  // ---- facilities ----

  async addFacility(input: FacilityInput, actor: string): Promise<Facility> {
    const number = parseFacilityNumber(input.number);
    const name = input.name.normalize('NFC').trim();
    if (!name || [...name].length > 64 || NAME_REFUSED.test(name)) {
      throw badRequest('FACILITY_NAME_INVALID', 'the facility name must be 1–64 characters (it becomes the certificate\'s O=, RFC 5280 ub-organization-name) without control characters, direction overrides or U+FFFD (text read in the wrong encoding)', {
        ja: '医療機関名は64文字以内で入力してください。',
      });
    }
    const at = this.now().toISOString();
    const f: Facility = { number, name, status: 'active', createdAt: at, updatedAt: at, ...(input.address ? { address: input.address } : {}), ...(input.contact ? { contact: input.contact } : {}) };
    await this.db.transaction(async (tx) => {
      if (!(await repositories(tx).facilities.add(f))) throw conflict('FACILITY_EXISTS', `facility ${number} is already registered`);
      await this.audit.appendIn(tx, { actor, action: 'facility.add', outcome: 'success', subject: number, details: { name } });
    });
    return f;
  }

  async setFacilityStatus(numberInput: string, status: FacilityStatus, actor: string): Promise<Facility> {
    const number = parseFacilityNumber(numberInput);
    return this.db.transaction(async (tx) => {
      const repo = repositories(tx).facilities;
      const f = await repo.get(number);
      if (!f) throw notFound('FACILITY_UNKNOWN', `facility ${number} is not registered`);
      if (f.status === status) return f;
      await repo.setStatus(number, status, this.now().toISOString());
      await this.audit.appendIn(tx, { actor, action: status === 'suspended' ? 'facility.suspend' : 'facility.resume', outcome: 'success', subject: number });
      return { ...f, status };
    });
  }

  facility(number: string): Promise<Facility | undefined> {
    return repositories(this.db).facilities.get(number);
  }

  listFacilities(): Promise<Facility[]> {
    return repositories(this.db).facilities.list();
  }

  // ---- issuance ----

  async issue(order: CsrOrder): Promise<IssuedCertificate> {
    const issuing = this.#issuing();
    return this.#issuer().issue(() => this.registration.decide(order), issuing);
  }

  /** Makes the key pair here (for PKCS#12 delivery) and issues for it. */
  async issueWithNewKey(order: Omit<CsrOrder, 'publicKey'> & { keyType: KeyType }): Promise<IssuedCertificate & { privateKey: KeyObject }> {
    this.#issuing();
    if (order.facilityNumber) await this.registration.activeFacility(order.facilityNumber);
    const { privateKey, publicKey } = await generateKey(order.keyType);
    return { ...(await this.issue({ ...order, publicKey })), privateKey };
  }

  /**
   * Makes the key here, issues for it, and packs key, certificate and chain as
   * PKCS#12 under the facility's password (checked against the operator's
   * policy first). friendlyName is the facility name.
   */
  async issuePkcs12(
    order: Omit<CsrOrder, 'publicKey'> & { keyType: KeyType },
    password: string,
    options: { legacy?: boolean } = {},
  ): Promise<IssuedCertificate & { pkcs12: Buffer }> {
    checkPkcs12Password(password, this.config.pkcs12.minPasswordLength);
    const issued = await this.issueWithNewKey(order);
    try {
      return { ...issued, pkcs12: await this.pkcs12For(issued.privateKey, issued.der, password, issued.view.subject, options) };
    } catch (e) {
      // Nobody will ever hold this key: the certificate must not stay valid (as a download that could not be completed).
      return this.revokeUnreceived(issued.serial, order.actor, e);
    }
  }

  /** PKCS#12 of a key and its certificate with this CA's chain; friendlyName = O (the facility name) or CN. */
  pkcs12For(privateKey: KeyObject, certificate: Buffer, password: string, subject: { type: string; value: string }[], options: { legacy?: boolean } = {}): Promise<Buffer> {
    const friendlyName = subject.find((a) => a.type === 'O' && a.value !== this.config.organization)?.value ?? subject.find((a) => a.type === 'CN')?.value ?? 'sekisho';
    return buildPkcs12({ privateKey, certificate, chain: this.chain(), password, friendlyName, legacy: Boolean(options.legacy), iterations: this.config.pkcs12.iterations });
  }

  /** The newest issued or revoked facility certificate for exactly this key (bulk resume uses it). */
  async findCertificateForKey(publicKey: KeyObject, facilityNumber: string): Promise<CertificateRecord | undefined> {
    return repositories(this.db).certificates.findBySpki(spkiSha256(spkiDer(publicKey)), facilityNumber);
  }

  /** One certificate by serial (hex, as "cert list" shows it). */
  certificate(serialHex: string): Promise<CertificateRecord | undefined> {
    const serial = parseSerialHex(serialHex);
    return serial ? repositories(this.db).certificates.get(serial) : Promise.resolve(undefined);
  }

  /** The signer and facts of the issuing CA, for OCSP responses (which it signs itself). */
  issuingIdentity(): IssuingIdentity {
    return this.#issuing();
  }

  listCertificates(filter: { facilityNumber?: string; status?: CertificateRecord['status'] } = {}): Promise<CertificateRecord[]> {
    return repositories(this.db).certificates.list(filter);
  }

  /** The same list in pages, without the DER (listings of a national-size store). */
  listCertificatePages(filter: { facilityNumber?: string; status?: CertificateRecord['status'] } = {}): AsyncGenerator<CertificateRecord[]> {
    return repositories(this.db).certificates.listPages(filter);
  }

  // ---- operators of the console ----

  /**
   * Registers an operator of the console and issues its certificate (profile
   * `operator`, key made here) as PKCS#12 under `password`. The name is
   * checked free first; should another process take it between issuance and
   * insertion, the certificate is revoked again and nothing stays half-made.
   */
  async addOperator(input: { name: string; role: OperatorRole; keyType?: KeyType; validityDays?: number }, password: string, actor: string): Promise<{ operator: OperatorRecord; certificate: IssuedCertificate; pkcs12: Buffer }> {
    const name = parseOperatorName(input.name);
    checkPkcs12Password(password, this.config.pkcs12.minPasswordLength);
    const issuing = this.#issuing();
    if (await repositories(this.db).operators.get(name)) throw conflict('OPERATOR_EXISTS', `operator "${name}" already exists; pick another name (a revoked operator's name stays taken)`);
    const profile = CERTIFICATE_PROFILES.operator;
    const days = input.validityDays ?? profile.defaultValidityDays;
    if (!Number.isInteger(days) || days < 1 || days > profile.maxValidityDays) throw badRequest('VALIDITY_OUT_OF_RANGE', `validity must be 1–${profile.maxValidityDays} days for an operator certificate (got ${days})`);
    const { privateKey, publicKey } = await generateKey(input.keyType ?? 'ecdsa-p256');
    const notBefore = issuanceNotBefore(this.now());
    const issued = await this.#issuer().issue(
      {
        profile,
        subject: [{ type: 'C', value: 'JP' }, { type: 'O', value: this.config.organization }, { type: 'OU', value: OPERATOR_SUBJECT_OU }, { type: 'CN', value: name }],
        publicKey,
        notBefore,
        notAfter: new Date(notBefore.getTime() + days * 86_400_000),
        via: 'operator',
        actor,
      },
      issuing,
    );
    const at = this.now().toISOString();
    const operator: OperatorRecord = { name, role: input.role, status: 'active', certificateSerial: issued.serial, createdAt: at, updatedAt: at };
    try {
      await this.db.transaction(async (tx) => {
        if (!(await repositories(tx).operators.add(operator))) throw conflict('OPERATOR_EXISTS', `operator "${name}" was added by someone else just now`);
        await this.audit.appendIn(tx, { actor, action: 'operator.add', outcome: 'success', subject: name, details: { role: input.role, serial: issued.serial } });
      });
    } catch (e) {
      return this.revokeUnreceived(issued.serial, actor, e);
    }
    const pkcs12 = await this.pkcs12For(privateKey, issued.der, password, issued.view.subject);
    return { operator, certificate: issued, pkcs12 };
  }

  listOperators(): Promise<OperatorRecord[]> {
    return repositories(this.db).operators.list();
  }

  /** The operator holding the certificate with this serial (hex), if any. */
  operatorBySerial(serial: string): Promise<OperatorRecord | undefined> {
    return repositories(this.db).operators.bySerial(serial);
  }

  /** Revokes an operator and its certificate (one transaction, one path with every other revocation). */
  async revokeOperator(nameInput: string, actor: string, reason: RevocationReason = 'cessationOfOperation'): Promise<OperatorRecord> {
    const name = parseOperatorName(nameInput);
    await this.applyDueRevocations();
    return this.db.transaction(async (tx) => {
      const repo = repositories(tx).operators;
      const o = await repo.get(name);
      if (!o) throw notFound('OPERATOR_UNKNOWN', `no operator "${name}"; see "sekisho operator list"`);
      if (o.status === 'revoked' || !(await repo.revoke(name, this.now().toISOString()))) throw conflict('OPERATOR_ALREADY_REVOKED', `operator "${name}" is already revoked`);
      await this.audit.appendIn(tx, { actor, action: 'operator.revoke', outcome: 'success', subject: name, details: { serial: o.certificateSerial, reason } });
      const cert = await repositories(tx).certificates.get(o.certificateSerial);
      if (cert?.status === 'issued') await this.#revokeIn(tx, o.certificateSerial, reason, actor, { operator: name });
      return { ...o, status: 'revoked' };
    });
  }

  // ---- revocation ----

  /**
   * A certificate was signed but its holder will never receive it (`cause` stopped the hand-over): it is revoked
   * (cessationOfOperation) and `cause` rethrown. If the revocation fails too, a valid certificate nobody holds
   * would stay unseen: the error then names it and the command that revokes it.
   */
  async revokeUnreceived(serial: string, actor: string, cause: unknown): Promise<never> {
    try {
      await this.revoke(serial, 'cessationOfOperation', actor);
    } catch (e) {
      throw internal(
        'CERTIFICATE_NOT_REVOKED',
        `certificate ${serial} was issued but not handed over (${(cause as Error)?.message ?? String(cause)}), and revoking it failed (${(e as Error)?.message ?? String(e)}); revoke it: sekisho cert revoke ${serial} --reason cessationOfOperation`,
        { cause: e },
      );
    }
    throw cause;
  }

  async revoke(serialInput: string, reason: RevocationReason, actor: string): Promise<CertificateRecord> {
    const serial = parseSerialHex(serialInput);
    if (!serial) throw badRequest('SERIAL_INVALID', `"${serialInput}" is not a certificate serial (hex, as "cert list" shows it)`);
    await this.applyDueRevocations();
    return this.db.transaction((tx) => this.#revokeIn(tx, serial, reason, actor));
  }

  /**
   * The one revocation path: state checks, the compare-and-set, and the audit event in the caller's transaction.
   * `revokedAt` (default now) is the revocation time the CRL and OCSP show: a superseded certificate's due time.
   */
  async #revokeIn(tx: SqlExecutor, serial: string, reason: RevocationReason, actor: string, details: Record<string, unknown> = {}, revokedAt?: string): Promise<CertificateRecord> {
    const at = revokedAt ?? this.now().toISOString();
    const certs = repositories(tx).certificates;
    const rec = await certs.get(serial);
    if (!rec) throw notFound('CERTIFICATE_UNKNOWN', `no certificate with serial ${serial}; see "sekisho cert list"`);
    if (rec.status === 'revoked') throw conflict('CERTIFICATE_ALREADY_REVOKED', `certificate ${serial} was already revoked at ${rec.revokedAt}`);
    if (rec.status !== 'issued') throw conflict('CERTIFICATE_NOT_ISSUED', `serial ${serial} was reserved but never issued; there is nothing to revoke`);
    if (!signedByIssuingCa(rec)) throw badRequest('CA_CERTIFICATE_REVOKE', 'CA certificates are not revoked through the CRL they sign; to retire a compromised CA, replace the CA (a new home) and re-issue its facilities');
    if (!(await certs.revoke(serial, at, reasonCode(reason)))) {
      throw conflict('CERTIFICATE_ALREADY_REVOKED', `certificate ${serial} was revoked by someone else just now; see "sekisho cert list"`);
    }
    await this.audit.appendIn(tx, { actor, action: 'certificate.revoked', outcome: 'success', subject: serial, details: { reason, ...(rec.facilityNumber ? { facility: rec.facilityNumber } : {}), ...details } });
    return { ...rec, status: 'revoked', revokedAt: at, revocationReason: reasonCode(reason) };
  }

  /**
   * A notice downloaded again: the certificate of its previous download is
   * revoked (reason superseded) at once, in the notice's transaction, through
   * the one revocation path, so CRL, OCSP and gateways following the store see
   * it like any other. Nothing to do when it is already revoked.
   */
  async #supersedeIn(tx: SqlExecutor, serial: string, d: { actor: string; supersededBy: string; notice: string }): Promise<{ issuedAt?: string } | false> {
    const rec = await repositories(tx).certificates.get(serial);
    if (!rec || rec.status !== 'issued') return false;
    try {
      await this.#revokeIn(tx, serial, 'superseded', d.actor, { supersededBy: d.supersededBy, notice: d.notice });
    } catch (e) {
      // Revoked by an operator between the read and the compare-and-set: nothing left to do.
      if (isSekishoError(e) && e.kind === 'conflict') return false;
      throw e;
    }
    return rec.issuedAt ? { issuedAt: rec.issuedAt } : {};
  }

  /**
   * Revokes (reason superseded) every renewed certificate whose overlap has
   * ended, through the same path as an operator's revocation, so CRL, OCSP
   * and gateways following the store see it like any other. The due time is
   * in the store, so this survives restarts: the CA's web server runs it
   * periodically, and every CRL and revocation runs it first; an OCSP answer
   * only reads the due time (an anonymous request never writes). The
   * revocation time recorded is the due time, not the time of the run.
   * Returns the serials it revoked.
   */
  async applyDueRevocations(actor = 'ca'): Promise<string[]> {
    const at = this.now().toISOString();
    const due = await repositories(this.db).certificates.dueRevocations(at);
    if (due.length === 0) return [];
    return this.db.transaction(async (tx) => {
      const done: string[] = [];
      // Read again inside the transaction: another CA process may have applied some already.
      for (const d of await repositories(tx).certificates.dueRevocations(at)) {
        try {
          // Revoked as of its due time, whenever this runs: what OCSP answered from the row before, and what gateways applied.
          await this.#revokeIn(tx, d.serial, 'superseded', actor, { supersededBy: d.supersededBy, dueAt: d.revokeDueAt }, d.revokeDueAt);
          done.push(d.serial);
        } catch (e) {
          // Revoked concurrently (by an operator, or another CA process): nothing left to do for it.
          if (!isSekishoError(e) || e.kind !== 'conflict') throw e;
        }
      }
      return done;
    });
  }

  /**
   * Signs a CRL v2 of every revoked, unexpired certificate. The CRL number,
   * the list and the audit event share one transaction (which holds the CRL
   * counter's lock), so a higher CRL number never lists less, and a CRL that
   * failed to sign consumes no number.
   */
  async crl(actor = 'ca'): Promise<{ der: Buffer; number: bigint; entries: number; nextUpdate: Date }> {
    const issuing = this.#issuing();
    await this.applyDueRevocations();
    const thisUpdate = new Date(Math.floor(this.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.config.crlValidityHours * 3_600_000);
    return this.db.transaction(async (tx) => {
      const repos = repositories(tx);
      const number = await repos.crl.next(thisUpdate.toISOString(), nextUpdate.toISOString());
      const revoked = await repos.certificates.revokedSerials(thisUpdate.toISOString());
      const entries: RevokedEntry[] = revoked.map((r) => ({
        serial: Buffer.from(r.serial, 'hex'),
        revokedAt: new Date(r.revokedAt),
        ...(r.reason ? { reason: reasonFromCode(r.reason) ?? 'unspecified' } : {}),
      }));
      const der = await buildCrl({ issuer: issuing.subjectDer, signer: issuing.signer, authorityKeyIdentifier: issuing.keyId, crlNumber: number, thisUpdate, nextUpdate, entries });
      await this.audit.appendIn(tx, { actor, action: 'crl.signed', outcome: 'success', details: { number: number.toString(), entries: entries.length, nextUpdate: nextUpdate.toISOString() } });
      return { der, number, entries: entries.length, nextUpdate };
    });
  }

  /** Waits for issuances in flight (and stops the issuance workers), then closes the token and the store. */
  async close(): Promise<void> {
    await this.#issuerInstance?.close();
    await this.#pool?.close();
    this.#pool = undefined;
    await this.#closeToken?.();
    this.#closeToken = undefined;
    await this.db.close();
  }
}
