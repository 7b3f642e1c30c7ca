/**
 * The audit key: it signs checkpoints of the audit trail (audit/checkpoint.ts)
 * and is kept like the CA's keys, so whoever can write the database cannot
 * sign: in a key file encrypted with the CA passphrase (ca/audit.key.json), or,
 * when the issuing key is in a token, in that same token (label
 * "sekisho-audit"). Its public half is ca/audit-key.pem, which `audit verify`
 * reads without any secret; its SHA-256 (of the SubjectPublicKeyInfo) is the
 * key id that `init` prints and every checkpoint names.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, linkSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { badRequest, malformed, notFound } from '../errors/index.js';
import { writeFileAtomic } from '../files/index.js';
import { generateKey, SoftwareSigner, spkiDer, type KeyType, type Signer } from '../pki/index.js';
import { TokenSigner, type TokenSession } from '../token/index.js';
import type { AuditCheckpoint } from '../audit/index.js';
import type { HomePaths } from './home.js';
import { readKeyFile, writeKeyFile } from './key-file.js';

/** Label of the audit key in the token that holds the issuing key. */
export const AUDIT_KEY_LABEL = 'sekisho-audit';

export interface AuditKeyPaths {
  /** The private key, encrypted with the CA passphrase (when the issuing key is a key file too). */
  keyFile: string;
  /** The public key (SPKI PEM): what `audit verify` checks signatures with. */
  publicKey: string;
  /** The newest checkpoint this home's processes made: it must still be in the store. */
  latest: string;
}

export function auditKeyPaths(paths: HomePaths): AuditKeyPaths {
  return { keyFile: join(paths.caDir, 'audit.key.json'), publicKey: join(paths.caDir, 'audit-key.pem'), latest: join(paths.caDir, 'audit-checkpoint.json') };
}

/** The audit key's public half from the home, or undefined when the home has none yet. */
export function readAuditPublicKey(paths: HomePaths): KeyObject | undefined {
  const file = auditKeyPaths(paths).publicKey;
  if (!existsSync(file)) return undefined;
  try {
    return createPublicKey(readFileSync(file, 'utf8'));
  } catch {
    throw malformed('AUDIT_KEY_MALFORMED', `${file} is not a public key; restore it from backup (its SHA-256 was printed by "sekisho init")`);
  }
}

function writePublicKey(paths: HomePaths, publicKey: KeyObject): void {
  writeFileAtomic(auditKeyPaths(paths).publicKey, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o600);
}

/** Refuses a private key whose public half is not the home's audit-key.pem. */
function checkMatches(paths: HomePaths, signer: Signer): void {
  const published = readAuditPublicKey(paths);
  if (!published) writePublicKey(paths, signer.publicKey);
  else if (!spkiDer(published).equals(spkiDer(signer.publicKey))) {
    throw badRequest('AUDIT_KEY_MISMATCH', `the audit key does not match ${auditKeyPaths(paths).publicKey}; restore both from the same backup`);
  }
}

/**
 * The audit key in its key file, made when the home has none (at init, or
 * on the first unlock of a home made before audit keys): `created` says so.
 * Two processes unlocking at once make one key: the key file is claimed with
 * an exclusive link, and the loser reads the winner's.
 */
export async function auditKeyFromFile(paths: HomePaths, keyType: KeyType, passphrase: string): Promise<{ signer: SoftwareSigner; created: boolean }> {
  const a = auditKeyPaths(paths);
  let created = false;
  if (!existsSync(a.keyFile)) {
    if (existsSync(a.publicKey)) throw notFound('AUDIT_KEY_MISSING', `${a.keyFile} is missing but ${a.publicKey} exists; restore the audit key from backup`);
    const { privateKey } = await generateKey(keyType);
    const tmp = `${a.keyFile}.${process.pid}.new`;
    await writeKeyFile(tmp, privateKey, passphrase);
    try {
      linkSync(tmp, a.keyFile);
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  const signer = new SoftwareSigner(await readKeyFile(a.keyFile, passphrase));
  checkMatches(paths, signer);
  return { signer, created };
}

/** The audit key in the (logged-in) token that holds the issuing key; generated there when the home has none. */
export async function auditKeyInToken(paths: HomePaths, session: TokenSession, keyType: KeyType): Promise<{ signer: TokenSigner; created: boolean }> {
  let created = false;
  if ((await session.findObjects({ class: 'private-key', label: AUDIT_KEY_LABEL })).length === 0) {
    if (readAuditPublicKey(paths)) throw notFound('AUDIT_KEY_MISSING', `the token holds no key "${AUDIT_KEY_LABEL}", but ${auditKeyPaths(paths).publicKey} exists; restore the token from backup`);
    await session.generateKeyPair(keyType, { label: AUDIT_KEY_LABEL });
    created = true;
  }
  const signer = await TokenSigner.find(session, { label: AUDIT_KEY_LABEL });
  checkMatches(paths, signer);
  return { signer, created };
}

/** Records the newest checkpoint made from this home (never moves backwards). */
export function recordLatestCheckpoint(paths: HomePaths, c: Pick<AuditCheckpoint, 'id' | 'seq' | 'hash'>): void {
  const known = readLatestCheckpoint(paths);
  if (known && known.id >= c.id) return;
  writeFileAtomic(auditKeyPaths(paths).latest, JSON.stringify({ format: 'sekisho-audit-checkpoint-ref', version: 1, id: c.id, seq: c.seq, hash: c.hash }, null, 2) + '\n', 0o600);
}

export function readLatestCheckpoint(paths: HomePaths): { id: number; seq: number; hash: string } | undefined {
  const file = auditKeyPaths(paths).latest;
  if (!existsSync(file)) return undefined;
  try {
    const d = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    if (d.format === 'sekisho-audit-checkpoint-ref' && Number.isInteger(d.id) && Number.isInteger(d.seq) && typeof d.hash === 'string') return { id: d.id as number, seq: d.seq as number, hash: d.hash };
  } catch {
    // reported below
  }
  throw malformed('AUDIT_CHECKPOINT_REF_MALFORMED', `${file} is damaged; restore it from backup or remove it`);
}
