/**
 * Fills a CA home's store with a national-size data set (src/testing/national-data.ts):
 *
 *   SEKISHO_PASSPHRASE=… node dist/bench/national-data.js --home DIR [--db postgres://…]
 *       [--facilities 230000] [--certificates 1000000] [--pool 32] [--seed 1]
 *
 * Makes the CA first (`sekisho init` with the same passphrase) when DIR holds
 * none; --db must then name an empty PostgreSQL database. Prints one JSON
 * document (what was written, how long it took); progress on stderr. For
 * load tests and benchmarks only: it writes rows straight into the store,
 * without audit events.
 */
import { CertificateAuthority, initAuthority, isInitialized } from '../src/ca/index.js';
import { certificatePool, generateNationalData, type NationalDataSummary } from '../src/testing/national-data.js';
import { invokedDirectly, log, round } from './support.js';

export interface NationalDataArgs {
  home: string;
  db?: string;
  facilities: number;
  certificates: number;
  pool: number;
  seed: number;
}

export function parseNationalDataArgs(argv: string[]): NationalDataArgs {
  const v = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (!m || !['home', 'db', 'facilities', 'certificates', 'pool', 'seed'].includes(m[1]!)) throw new Error(`unknown argument "${a}"`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    v.set(m[1]!, value);
  }
  const num = (k: string, d: number, min: number) => {
    const s = v.get(k);
    if (s === undefined) return d;
    const n = Number(s.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be a whole number ≥ ${min}, not "${s}"`);
    return n;
  };
  const home = v.get('home');
  if (!home) throw new Error('--home DIR is required');
  return { home, ...(v.get('db') ? { db: v.get('db')! } : {}), facilities: num('facilities', 230_000, 1), certificates: num('certificates', 1_000_000, 0), pool: num('pool', 32, 1), seed: num('seed', 1, 0) };
}

/** Makes the CA if needed, issues the pool, writes the data set; returns the summary with the pool's issuance time. */
export async function fillStore(a: NationalDataArgs, passphrase: string): Promise<NationalDataSummary & { pool: { certificates: number; seconds: number } }> {
  if (!isInitialized(a.home)) await initAuthority({ home: a.home, passphrase, ...(a.db ? { db: a.db } : {}) });
  const ca = await CertificateAuthority.open({ home: a.home, ...(a.db ? { db: a.db } : {}) });
  try {
    await ca.unlock(passphrase);
    const t = performance.now();
    const pool = await certificatePool(ca, a.pool);
    const poolSeconds = (performance.now() - t) / 1000;
    let shown = 0;
    const summary = await generateNationalData(ca.db, {
      facilities: a.facilities,
      certificates: a.certificates,
      pool,
      seed: a.seed,
      progress: (what, done, total) => {
        if (done === total || done - shown >= 100_000) {
          shown = done === total ? 0 : done;
          log(`national-data: ${what} ${done}/${total}`);
        }
      },
    });
    return { ...summary, pool: { certificates: pool.length, seconds: round(poolSeconds) } };
  } finally {
    await ca.close();
  }
}

if (invokedDirectly(import.meta.url)) {
  let args: NationalDataArgs;
  try {
    args = parseNationalDataArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  const passphrase = process.env.SEKISHO_PASSPHRASE;
  if (!passphrase) {
    process.stderr.write('set SEKISHO_PASSPHRASE (the CA passphrase; a new CA is made with it)\n');
    process.exit(2);
  }
  fillStore(args, passphrase).then(
    (s) => process.stdout.write(`${JSON.stringify(s, null, 2)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
