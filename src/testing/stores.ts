/**
 * Store targets for tests that must pass on both SQLite and PostgreSQL. Each
 * PostgreSQL use gets a fresh database; SEKISHO_TEST_POSTGRES_URL points at the
 * server (.ci/run starts one with scripts/start-postgres.sh).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface StoreTarget {
  name: 'sqlite' | 'postgres';
  /** Whether the target can run here (PostgreSQL needs the server). */
  available: boolean;
  /** A fresh, empty database: undefined = SQLite in the home directory; else a postgres:// URL. */
  fresh(): Promise<string | undefined>;
}

export const postgresUrl = process.env.SEKISHO_TEST_POSTGRES_URL;

export const STORE_TARGETS: StoreTarget[] = [
  { name: 'sqlite', available: true, fresh: async () => undefined },
  {
    name: 'postgres',
    available: Boolean(postgresUrl),
    async fresh() {
      const admin = new pg.Client({ connectionString: postgresUrl });
      await admin.connect();
      const name = `sekisho_test_${randomBytes(6).toString('hex')}`;
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const u = new URL(postgresUrl!);
      u.pathname = `/${name}`;
      return u.toString();
    },
  },
];

export function tempDir(prefix = 'sekisho-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A fresh PostgreSQL role for one test (roles are the server's, not one
 * database's: the name is random), and its URL on `dbUrl`. `drop` removes
 * what it was granted in that database and the role.
 */
export async function testRole(dbUrl: string): Promise<{ role: string; url: string; drop: () => Promise<void> }> {
  const role = `sekisho_gw_${randomBytes(5).toString('hex')}`;
  const u = new URL(dbUrl);
  u.username = role;
  return {
    role,
    url: u.toString(),
    async drop() {
      const admin = new pg.Client({ connectionString: dbUrl });
      await admin.connect();
      try {
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
        await admin.query(`DROP OWNED BY ${role}`);
        await admin.query(`DROP ROLE IF EXISTS ${role}`);
      } finally {
        await admin.end();
      }
    },
  };
}
