import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { badRequest, conflict, unauthorized } from '../errors/index.js';
import { certificateToPem, encodeName, fingerprint, generateKey, keyIdentifier, SoftwareSigner, type KeyType, type NameAttribute } from '../pki/index.js';
import { CERTIFICATE_PROFILES, issuanceNotBefore } from '../policy/index.js';
import { openStore, repositories } from '../store/index.js';
import { AuditLog } from '../audit/index.js';
import { DEFAULT_CONFIG, parseConfig, type CaConfig } from './config.js';
import { ensureDirs, homePaths, isInitialized, type HomePaths } from './home.js';
import { writeKeyFile } from './key-file.js';
import { writeFileAtomic } from '../files/index.js';
import { CertificateIssuer } from './issuer.js';
import { signRootCrl } from './root-crl.js';
import { normalizeTokenKeyRef, openTokenOfRef, parsePkcs11Uri, TokenSigner, writeTokenKeyRef, type TokenKeyRef } from '../token/index.js';
import type { KeyObject } from 'node:crypto';
import { auditKeyId, type AuditCheckpoint } from '../audit/index.js';
import type { Signer } from '../pki/index.js';
import { auditKeyFromFile, auditKeyInToken, auditKeyPaths, recordLatestCheckpoint } from './audit-key.js';

/** Label of the issuing key in a software token (a PKCS#11 URI names its own with object=). */
export const ISSUING_KEY_LABEL = 'sekisho-issuing-ca';

/** Where init records a token-held issuing key (instead of issuing.key.json). */
export function issuingKeyRefPath(paths: HomePaths): string {
  return join(paths.caDir, 'issuing-key.token.json');
}

/**
 * The issuing key in a token: the key the reference names if the token holds
 * it already (made in a key ceremony, or by an interrupted init), else a new
 * one generated inside the token. Returns its signer and a way to close the token.
 */
async function issuingKeyInToken(ref: TokenKeyRef, pin: string, keyType: KeyType, paths: HomePaths): Promise<{ signer: TokenSigner; publicKey: KeyObject; auditSigner: Signer; close: () => Promise<void> }> {
  const { module, session } = await openTokenOfRef(ref);
  try {
    await session.login('user', pin);
    const u = ref.kind === 'pkcs11' ? parsePkcs11Uri(ref.uri) : undefined;
    const label = ref.kind === 'software' ? ref.label : u?.object;
    const template = { ...(label !== undefined ? { label } : {}), ...(u?.id ? { id: u.id } : {}) };
    if ((await session.findObjects({ class: 'private-key', ...template })).length === 0) {
      if (label === undefined) throw badRequest('TOKEN_KEY_REF_INVALID', 'to generate the issuing key in the token, name it with object=LABEL in the pkcs11: URI');
      await session.generateKeyPair(keyType, { label, ...(u?.id ? { id: u.id } : {}) });
    }
    const signer = await TokenSigner.find(session, template);
    if (signer.keyType !== keyType) throw badRequest('TOKEN_KEY_TYPE_MISMATCH', `the token's key is ${signer.keyType}, but the CA is set up for ${keyType}; give --key ${signer.keyType} or another key`);
    // The audit key lives beside the issuing key, in the same token.
    const audit = await auditKeyInToken(paths, session, keyType);
    return { signer, publicKey: signer.publicKey, auditSigner: audit.signer, close: () => module.close() };
  } catch (e) {
    await module.close();
    throw e;
  }
}

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
  /** Keep the issuing key in a token (software token file or PKCS#11 URI), logged in with the user PIN. The root key stays in its key file. */
  issuingToken?: { ref: TokenKeyRef; pin: string };
}

export interface InitResult {
  home: string;
  rootPem: string;
  issuingPem: string;
  config: CaConfig;
  /** SHA-256 of the audit key's SubjectPublicKeyInfo (ca/audit-key.pem): write it down, an auditor checks the key by it. */
  auditKeyId: string;
  /** The first signed checkpoint (covering the init events). */
  checkpoint: AuditCheckpoint;
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
  if (existsSync(paths.rootKey) || existsSync(paths.issuingKey) || existsSync(issuingKeyRefPath(paths)) || existsSync(auditKeyPaths(paths).keyFile)) {
    throw conflict('HOME_PARTIAL', `${o.home} holds CA keys but no config.json (an interrupted init, or a damaged home); restore config.json from backup, or move ${paths.caDir} away before a new init`);
  }
  rmSync(paths.caDir, { recursive: true, force: true }); // certificates of an init interrupted before its keys were written
  ensureDirs(paths);
  const tokenRef = o.issuingToken ? normalizeTokenKeyRef(o.issuingToken.ref) : undefined;
  const inToken = tokenRef ? await issuingKeyInToken(tokenRef, o.issuingToken!.pin, config.keyType, paths) : undefined;
  let db;
  try {
    db = await openStore({ home: o.home, ...(o.db ? { url: o.db } : {}) });
  } catch (e) {
    await inToken?.close();
    throw e;
  }
  try {
    if (await repositories(db).identity.get()) throw conflict('STORE_IN_USE', 'the database already belongs to another CA; give init an empty database');
    const audit = new AuditLog(db, { now });
    const issuer = new CertificateIssuer({ db, audit, now, urls: config.urls });
    const actor = o.actor ?? 'operator';
    const [rootKey, issuingKey] = await Promise.all([generateKey(config.keyType), inToken ? undefined : generateKey(config.keyType)]);
    const rootSigner = new SoftwareSigner(rootKey.privateKey);
    const issuingPublicKey = inToken ? inToken.publicKey : issuingKey!.publicKey;
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
      { profile: issuingProfile, subject: issuingSubject, publicKey: issuingPublicKey, notBefore, notAfter: issuingNotAfter, via: 'init', actor },
      { signer: rootSigner, subjectDer: root.view.subjectDer, keyId: keyIdentifier(rootKey.publicKey), notAfter: rootNotAfter },
    );

    await signRootCrl({ paths, rootDer: root.der, signer: rootSigner, audit, actor, now: now() });
    await writeKeyFile(paths.rootKey, rootKey.privateKey, o.passphrase);
    const auditSigner = inToken ? inToken.auditSigner : (await auditKeyFromFile(paths, config.keyType, o.passphrase)).signer;
    if (tokenRef) writeTokenKeyRef(issuingKeyRefPath(paths), tokenRef);
    else await writeKeyFile(paths.issuingKey, issuingKey!.privateKey, o.passphrase);
    const rootPem = certificateToPem(root.der);
    const issuingPem = certificateToPem(issuing.der);
    writeFileAtomic(paths.rootCert, rootPem);
    writeFileAtomic(paths.issuingCert, issuingPem);
    await db.transaction(async (tx) => {
      if (!(await repositories(tx).identity.claim({ issuingSha256: fingerprint(issuing.der), rootSha256: fingerprint(root.der) }, now().toISOString()))) {
        throw conflict('STORE_IN_USE', 'the database already belongs to another CA; give init an empty database');
      }
      await audit.appendIn(tx, {
        actor,
        action: 'ca.init',
        outcome: 'success',
        details: { keyType: config.keyType, organization: org, root: root.serial, issuing: issuing.serial, auditKeyId: auditKeyId(auditSigner.publicKey), ...(tokenRef ? { issuingKey: tokenRef.kind === 'software' ? 'software token' : tokenRef.uri } : {}) },
      });
    });
    const checkpoint = (await audit.checkpoint(auditSigner))!;
    recordLatestCheckpoint(paths, checkpoint);
    writeFileAtomic(paths.config, JSON.stringify(config, null, 2) + '\n', 0o600);
    return { home: o.home, rootPem, issuingPem, config, auditKeyId: auditKeyId(auditSigner.publicKey), checkpoint };
  } finally {
    await inToken?.close();
    await db.close();
  }
}
