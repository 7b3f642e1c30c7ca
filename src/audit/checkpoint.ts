import { createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { describePublicKey, SIGNATURE_HASH, signatureAlgorithmFor, spkiDer, spkiSha256, type SignatureAlgorithm, type Signer } from '../pki/index.js';
import type { AuditCheckpointRow } from '../store/index.js';
import { GENESIS_HASH } from './chain.js';

/** What a checkpoint says, before it is signed. */
export interface CheckpointClaim {
  id: number;
  seq: number;
  headHash: string;
  at: string;
  prevHash: string;
  keyId: string;
  algorithm: SignatureAlgorithm;
  /**
   * The heads of every other writer's chain (gateways), [writer, seq, hash],
   * in writer order; `seq`/`headHash` above are the CA chain's. Absent or
   * empty: a trail with the CA's chain only (a version 1 checkpoint).
   */
  chains?: ChainHeadClaim[];
}

/** One writer's chain head as a checkpoint signs it. */
export type ChainHeadClaim = [writer: string, seq: number, hash: string];

/** A checkpoint as exported (the spool sends these beside the events). */
export interface AuditCheckpoint extends CheckpointClaim {
  /** base64 signature over `checkpointBody(claim)`. */
  signature: string;
  /** SHA-256 (hex) of the body: the next checkpoint's prevHash. */
  hash: string;
}

export const CHECKPOINT_GENESIS_HASH = GENESIS_HASH;

/** The audit key's id: SHA-256 (hex) of its DER SubjectPublicKeyInfo (what `init` prints). */
export function auditKeyId(publicKey: KeyObject): string {
  return spkiSha256(spkiDer(publicKey));
}

/**
 * The canonical encoding that is signed and hashed: UTF-8 of the JSON array
 * ["sekisho-audit-checkpoint", 1, id, seq, headHash, at, prevHash, keyId, algorithm]
 * for a trail of the CA's chain alone, and with version 2 and the other
 * chains' heads appended, [..., algorithm, [[writer, seq, hash], ...]] in
 * writer order, when gateways write chains of their own. Every member is an
 * integer or a plain string, so JSON.stringify gives one byte string for one claim.
 */
export function checkpointBody(c: CheckpointClaim): Buffer {
  const base = [c.id, c.seq, c.headHash, c.at, c.prevHash, c.keyId, c.algorithm];
  const body = c.chains?.length ? ['sekisho-audit-checkpoint', 2, ...base, c.chains] : ['sekisho-audit-checkpoint', 1, ...base];
  return Buffer.from(JSON.stringify(body), 'utf8');
}

export function checkpointHash(c: CheckpointClaim): string {
  return createHash('sha256').update(checkpointBody(c)).digest('hex');
}

/** Signs a claim through the project's Signer (a key file or a token key). */
export async function signCheckpoint(signer: Signer, claim: Omit<CheckpointClaim, 'keyId' | 'algorithm'>): Promise<AuditCheckpoint> {
  const full: CheckpointClaim = { ...claim, keyId: auditKeyId(signer.publicKey), algorithm: signer.algorithm };
  const signature = Buffer.from(await signer.sign(checkpointBody(full))).toString('base64');
  return { ...full, signature, hash: checkpointHash(full) };
}

/** True when the checkpoint's signature verifies under `publicKey` with the algorithm that key is used with. */
export function checkpointSignatureValid(c: AuditCheckpoint, publicKey: KeyObject): boolean {
  const d = describePublicKey(publicKey);
  if (!d.keyType || c.algorithm !== signatureAlgorithmFor(d.keyType) || c.keyId !== auditKeyId(publicKey)) return false;
  try {
    return cryptoVerify(SIGNATURE_HASH[c.algorithm], checkpointBody(c), publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

export function checkpointToRow(c: AuditCheckpoint): AuditCheckpointRow {
  return { id: c.id, seq: c.seq, head_hash: c.headHash, at: c.at, prev_hash: c.prevHash, key_id: c.keyId, algorithm: c.algorithm, signature: c.signature, hash: c.hash, chains: c.chains?.length ? JSON.stringify(c.chains) : null };
}

function parseChains(text: string | null): ChainHeadClaim[] | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((e) => Array.isArray(e) && e.length === 3 && typeof e[0] === 'string' && typeof e[1] === 'number' && typeof e[2] === 'string')) return v as ChainHeadClaim[];
  } catch {
    /* fall through: an unreadable list is kept as a claim no signature matches */
  }
  return [['(unreadable)', -1, text.slice(0, 64)]];
}

export function checkpointFromRow(r: AuditCheckpointRow): AuditCheckpoint {
  return {
    id: r.id,
    seq: r.seq,
    headHash: r.head_hash,
    at: r.at,
    prevHash: r.prev_hash,
    keyId: r.key_id,
    algorithm: r.algorithm as SignatureAlgorithm,
    signature: r.signature,
    hash: r.hash,
    ...(r.chains ? { chains: parseChains(r.chains)! } : {}),
  };
}
