import type { SqlExecutor } from './database.js';

/**
 * One signed checkpoint of the audit trail: the chain's head at `seq`, when
 * it was signed, the hash of the checkpoint before it (so checkpoints chain
 * too), the signing key's id and the signature. What is signed and how is
 * audit/'s business (audit/checkpoint.ts); this only stores.
 */
export interface AuditCheckpointRow {
  /** 1, 2, 3, …: a missing number is a removed checkpoint. */
  id: number;
  seq: number;
  head_hash: string;
  at: string;
  prev_hash: string;
  key_id: string;
  algorithm: string;
  /** base64 of the X.509-style signature value (DER ECDSA-Sig-Value or RSA PKCS#1 v1.5). */
  signature: string;
  /** SHA-256 (hex) of the signed encoding: the next checkpoint's prev_hash. */
  hash: string;
  /** JSON [[writer, seq, hash], …]: the other writers' chain heads it signs (NULL: the CA's chain only). */
  chains: string | null;
}

export class AuditCheckpointRepository {
  constructor(private readonly x: SqlExecutor) {}

  async last(): Promise<AuditCheckpointRow | undefined> {
    const r = await this.x.get<AuditCheckpointRow>('SELECT * FROM audit_checkpoints ORDER BY id DESC LIMIT 1');
    return r ? normalize(r) : undefined;
  }

  async add(row: AuditCheckpointRow): Promise<void> {
    await this.x.run('INSERT INTO audit_checkpoints (id, seq, head_hash, at, prev_hash, key_id, algorithm, signature, hash, chains) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      row.id,
      row.seq,
      row.head_hash,
      row.at,
      row.prev_hash,
      row.key_id,
      row.algorithm,
      row.signature,
      row.hash,
      row.chains,
    ]);
  }

  /** Every checkpoint in id order. */
  async list(): Promise<AuditCheckpointRow[]> {
    return (await this.x.all<AuditCheckpointRow>('SELECT * FROM audit_checkpoints ORDER BY id')).map(normalize);
  }

  /** Checkpoints numbered after `id`, in id order (what a follower has not sent on yet). */
  async afterId(id: number): Promise<AuditCheckpointRow[]> {
    return (await this.x.all<AuditCheckpointRow>('SELECT * FROM audit_checkpoints WHERE id > ? ORDER BY id', [id])).map(normalize);
  }

  /** Checkpoints that sign the trail beyond event `seq`, in id order. */
  async afterSeq(seq: number): Promise<AuditCheckpointRow[]> {
    return (await this.x.all<AuditCheckpointRow>('SELECT * FROM audit_checkpoints WHERE seq > ? ORDER BY id', [seq])).map(normalize);
  }
}

const normalize = (r: AuditCheckpointRow): AuditCheckpointRow => ({ ...r, id: Number(r.id), seq: Number(r.seq), chains: r.chains ?? null });
