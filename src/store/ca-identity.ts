import type { SqlExecutor } from './database.js';

/** SHA-256 fingerprints (as pki's fingerprint() writes them) of the CA's certificates. */
export interface CaIdentity {
  issuingSha256: string;
  rootSha256: string;
}

/** Which CA a store belongs to, so a mistyped --db never becomes another CA's store. */
export class CaIdentityRepository {
  constructor(private readonly x: SqlExecutor) {}

  async get(): Promise<CaIdentity | undefined> {
    const r = await this.x.get<{ issuing_sha256: string; root_sha256: string }>('SELECT issuing_sha256, root_sha256 FROM ca_identity WHERE id = 1');
    return r && { issuingSha256: r.issuing_sha256, rootSha256: r.root_sha256 };
  }

  /** Records the identity once; returns false when the store already belongs to a CA. */
  async claim(id: CaIdentity, at: string): Promise<boolean> {
    const r = await this.x.run('INSERT INTO ca_identity (id, issuing_sha256, root_sha256, created_at) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING', [id.issuingSha256, id.rootSha256, at]);
    return r.changes === 1;
  }
}
