import { existsSync, rmSync } from 'node:fs';
import { badRequest, conflict, unauthorized } from '../errors/index.js';
import { certificateToPem, encodeName, fingerprint, generateKey, keyIdentifier, SoftwareSigner, type KeyType, type NameAttribute } from '../pki/index.js';
import { CERTIFICATE_PROFILES, issuanceNotBefore } from '../policy/index.js';
import { openStore, repositories } from '../store/index.js';
import { AuditLog } from '../audit/index.js';
import { DEFAULT_CONFIG, parseConfig, type CaConfig } from './config.js';
import { ensureDirs, homePaths, isInitialized } from './home.js';
import { writeKeyFile } from './key-file.js';
import { writeFileAtomic } from './atomic-file.js';
import { CertificateIssuer } from './issuer.js';

export interface InitOptions {
  home: string;
  passphrase: string;
  keyType?: KeyType;
  organization?: string;
  /** postgres://user@host/db; SQLite in the home directory when absent. */
  db?: string;
  urls?: CaConfig['urls'];
  actor?: string;
  now?: () => Date;
}

export interface InitResult {
  home: string;
  rootPem: string;
  issuingPem: string;
  config: CaConfig;
}

const DAY = 86_400_000;

/**
 * Creates a root CA and an issuing CA in a new home directory. Both
 * certificates go through the same lint → reserve → sign → store path as
 * every other certificate. config.json is written last: it marks the home as
 * initialized, so an interrupted init can simply be run again.
 */
export async function initAuthority(o: InitOptions): Promise<InitResult> {
  if (!o.passphrase) throw unauthorized('PASSPHRASE_EMPTY', 'refusing to create CA keys without a passphrase; set SEKISHO_PASSPHRASE');
  if (isInitialized(o.home)) throw conflict('HOME_INITIALIZED', `${o.home} already holds a CA; use another --home or remove it`);
  if (o.db && !/^postgres(ql)?:\/\//.test(o.db)) {
    throw badRequest('STORE_URL_UNSUPPORTED', `--db takes a postgres://user@host/db URL; without --db the CA uses SQLite in ${o.home}`);
  }
  if (o.db && /\/\/[^/@]*:[^/@]*@|[?&]password=/.test(o.db)) {
    throw badRequest('STORE_URL_SECRET', 'put no password in the database URL (it would show in the process list and config); set PGPASSWORD or use ~/.pgpass');
  }
  const now = o.now ?? (() => new Date());
  const config = parseConfig({
    ...DEFAULT_CONFIG,
    keyType: o.keyType ?? DEFAULT_CONFIG.keyType,
    organization: o.organization ?? DEFAULT_CONFIG.organization,
    urls: o.urls ?? {},
    ...(o.db ? { database: o.db } : {}),
  });
  const paths = homePaths(o.home);
  if (existsSync(paths.rootKey) || existsSync(paths.issuingKey)) {
    throw conflict('HOME_PARTIAL', `${o.home} holds CA keys but no config.json (an interrupted init, or a damaged home); restore config.json from backup, or move ${paths.caDir} away before a new init`);
  }
  rmSync(paths.caDir, { recursive: true, force: true }); // certificates of an init interrupted before its keys were written
  ensureDirs(paths);
  const db = await openStore({ home: o.home, ...(o.db ? { url: o.db } : {}) });
  try {
    if (await repositories(db).identity.get()) throw conflict('STORE_IN_USE', 'the database already belongs to another CA; give init an empty database');
    const audit = new AuditLog(db, { now });
    const issuer = new CertificateIssuer({ db, audit, now });
    const actor = o.actor ?? 'operator';
    const [rootKey, issuingKey] = await Promise.all([generateKey(config.keyType), generateKey(config.keyType)]);
    const rootSigner = new SoftwareSigner(rootKey.privateKey);
    const issuingSigner = new SoftwareSigner(issuingKey.privateKey);
    const notBefore = issuanceNotBefore(now());
    const org = config.organization;

    const rootSubject: NameAttribute[] = [{ type: 'C', value: 'JP' }, { type: 'O', value: org }, { type: 'CN', value: `${org} Root CA` }];
    const rootProfile = CERTIFICATE_PROFILES['root-ca'];
    const rootNotAfter = new Date(notBefore.getTime() + rootProfile.defaultValidityDays * DAY);
    const root = await issuer.issue(
      { profile: rootProfile, subject: rootSubject, publicKey: rootKey.publicKey, notBefore, notAfter: rootNotAfter, via: 'init', actor },
      { signer: rootSigner, subjectDer: encodeName(rootSubject), keyId: keyIdentifier(rootKey.publicKey) },
    );

    const issuingProfile = CERTIFICATE_PROFILES['issuing-ca'];
    const issuingSubject: NameAttribute[] = [{ type: 'C', value: 'JP' }, { type: 'O', value: org }, { type: 'CN', value: `${org} Issuing CA 1` }];
    const issuingNotAfter = new Date(Math.min(notBefore.getTime() + issuingProfile.defaultValidityDays * DAY, rootNotAfter.getTime()));
    const issuing = await issuer.issue(
      { profile: issuingProfile, subject: issuingSubject, publicKey: issuingKey.publicKey, notBefore, notAfter: issuingNotAfter, via: 'init', actor },
      { signer: rootSigner, subjectDer: root.view.subjectDer, keyId: keyIdentifier(rootKey.publicKey), notAfter: rootNotAfter },
    );

    await writeKeyFile(paths.rootKey, rootKey.privateKey, o.passphrase);
    await writeKeyFile(paths.issuingKey, issuingKey.privateKey, o.passphrase);
    const rootPem = certificateToPem(root.der);
    const issuingPem = certificateToPem(issuing.der);
    writeFileAtomic(paths.rootCert, rootPem);
    writeFileAtomic(paths.issuingCert, issuingPem);
    await db.transaction(async (tx) => {
      if (!(await repositories(tx).identity.claim({ issuingSha256: fingerprint(issuing.der), rootSha256: fingerprint(root.der) }, now().toISOString()))) {
        throw conflict('STORE_IN_USE', 'the database already belongs to another CA; give init an empty database');
      }
      await audit.appendIn(tx, { actor, action: 'ca.init', outcome: 'success', details: { keyType: config.keyType, organization: org, root: root.serial, issuing: issuing.serial } });
    });
    writeFileAtomic(paths.config, JSON.stringify(config, null, 2) + '\n', 0o600);
    return { home: o.home, rootPem, issuingPem, config };
  } finally {
    await db.close();
  }
}
