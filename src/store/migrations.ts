import { randomBytes } from 'node:crypto';
import type { Database, Dialect, SqlExecutor } from './database.js';

/**
 * Schema migrations, applied in order inside one transaction each and
 * recorded in schema_migrations. Never edit a released migration: add one.
 */
interface Migration {
  version: number;
  name: string;
  statements(d: Dialect): string[];
}

const blob = (d: Dialect) => (d === 'sqlite' ? 'BLOB' : 'BYTEA');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'facilities, certificates, audit, crl state',
    statements: (d) => [
      `CREATE TABLE facilities (
        number TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        address TEXT,
        contact TEXT,
        status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`,
      // A serial is reserved (status 'reserved') before anything is signed, and
      // becomes 'issued' with its DER once signed; it never repeats.
      `CREATE TABLE certificates (
        serial TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('reserved', 'issued', 'revoked')),
        profile TEXT NOT NULL,
        facility_number TEXT REFERENCES facilities(number),
        subject TEXT NOT NULL,
        spki_sha256 TEXT NOT NULL,
        not_before TEXT NOT NULL,
        not_after TEXT NOT NULL,
        reserved_at TEXT NOT NULL,
        issued_at TEXT,
        fingerprint_sha256 TEXT,
        der ${blob(d)},
        revoked_at TEXT,
        revocation_reason INTEGER
      )`,
      'CREATE INDEX certificates_facility ON certificates (facility_number)',
      'CREATE INDEX certificates_spki ON certificates (spki_sha256)',
      'CREATE INDEX certificates_status ON certificates (status)',
      `CREATE TABLE audit_events (
        seq ${d === 'sqlite' ? 'INTEGER PRIMARY KEY' : 'BIGINT PRIMARY KEY'},
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason_code TEXT,
        subject TEXT,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      )`,
      // One row: the chain's head, updated in the same transaction as each append,
      // so a deleted last event shows too; FOR UPDATE on it serializes appenders.
      `CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)`,
      `INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}')`, // the genesis hash (audit/chain.ts GENESIS_HASH)
      `CREATE TABLE crl_state (id INTEGER PRIMARY KEY CHECK (id = 1), number BIGINT NOT NULL, this_update TEXT, next_update TEXT)`,
      'INSERT INTO crl_state (id, number) VALUES (1, 0)',
    ],
  },
  {
    version: 2,
    name: 'the CA a store belongs to',
    // Written once by init; every later open compares it with the home's issuing certificate.
    statements: () => [`CREATE TABLE ca_identity (id INTEGER PRIMARY KEY CHECK (id = 1), issuing_sha256 TEXT NOT NULL, root_sha256 TEXT NOT NULL, created_at TEXT NOT NULL)`],
  },
  {
    version: 3,
    name: 'issuance notices and one-time EST codes',
    statements: () => [
      // The key of the request-ID lookup hash (HMAC-SHA256), made once per store:
      // a request ID is found by its keyed hash, never stored in the clear.
      `CREATE TABLE notice_key (id INTEGER PRIMARY KEY CHECK (id = 1), key_hex TEXT NOT NULL)`,
      `INSERT INTO notice_key (id, key_hex) VALUES (1, '${randomBytes(32).toString('hex')}')`,
      // kind 'letter' is a printed issuance notice, 'est-code' an operator-issued one-time EST code.
      // The reference ID is kept only as scrypt(salt, id); failures count wrong reference IDs.
      `CREATE TABLE notices (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('letter', 'est-code')),
        facility_number TEXT NOT NULL REFERENCES facilities(number),
        request_lookup TEXT NOT NULL UNIQUE,
        reference_salt TEXT NOT NULL,
        reference_hash TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'claimed', 'used', 'revoked')),
        failures INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        serial TEXT,
        revoked_at TEXT,
        created_by TEXT NOT NULL
      )`,
      'CREATE INDEX notices_facility ON notices (facility_number)',
    ],
  },
  {
    version: 4,
    name: 'indexes for gateways following revocations and facility status',
    // Gateways poll "revoked since" and "changed since" every second.
    statements: () => ['CREATE INDEX certificates_revoked_at ON certificates (revoked_at)', 'CREATE INDEX facilities_updated_at ON facilities (updated_at)'],
  },
  {
    version: 5,
    name: 'a store-assigned change sequence for gateways following revocations and facility status',
    // Gateways follow "changes after seq N" (store/change-seq.ts), never a wall clock:
    // a revocation written by a host whose clock is behind is still new. Rows from
    // before this migration keep 0; a gateway's first load reads everything anyway.
    statements: () => [
      'CREATE TABLE change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL)',
      'INSERT INTO change_counter (id, seq) VALUES (1, 0)',
      'ALTER TABLE certificates ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0',
      'ALTER TABLE facilities ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0',
      'CREATE INDEX certificates_change_seq ON certificates (change_seq)',
      'CREATE INDEX facilities_change_seq ON facilities (change_seq)',
      // The time-stamped polls these served are gone.
      'DROP INDEX certificates_revoked_at',
      'DROP INDEX facilities_updated_at',
    ],
  },
  {
    version: 6,
    name: 'notice attempts per client address (the portal and EST rate limit)',
    // Fixed windows: window_start in epoch milliseconds; expired rows are deleted by the limiter.
    statements: () => [
      'CREATE TABLE notice_attempts (address TEXT PRIMARY KEY, window_start BIGINT NOT NULL, attempts INTEGER NOT NULL)',
      'CREATE INDEX notice_attempts_window ON notice_attempts (window_start)',
    ],
  },
  {
    version: 7,
    name: 'renewal lineage, superseded revocation due times, EST codes bound to a profile',
    statements: () => [
      // renewed_from: the certificate this one renewed (set when its serial is reserved).
      // superseded_by: the renewal that replaced this one ('pending' while it is being issued); set once, never cleared after success.
      // superseded_at: when that renewal was claimed (the per-facility daily cap counts these).
      // revoke_due_at: when this superseded certificate is revoked (reason superseded) if it is still issued.
      'ALTER TABLE certificates ADD COLUMN renewed_from TEXT',
      'ALTER TABLE certificates ADD COLUMN superseded_by TEXT',
      'ALTER TABLE certificates ADD COLUMN superseded_at TEXT',
      'ALTER TABLE certificates ADD COLUMN revoke_due_at TEXT',
      'CREATE INDEX certificates_revoke_due_at ON certificates (revoke_due_at)',
      'CREATE INDEX certificates_superseded_at ON certificates (superseded_at)',
      // What an EST code (or letter) yields: NULL profile = the facility's own certificate (as before).
      "ALTER TABLE notices ADD COLUMN profile TEXT CHECK (profile IS NULL OR profile IN ('facility', 'device'))",
      'ALTER TABLE notices ADD COLUMN device_name TEXT',
    ],
  },
  {
    version: 8,
    name: 'signed checkpoints of the audit trail',
    // One row per checkpoint (audit/checkpoint.ts): the chain's head at seq, signed by the
    // audit key, which the database writer does not hold. id counts 1, 2, 3, … so a removed
    // checkpoint shows; prev_hash chains each to the one before it.
    statements: () => [
      `CREATE TABLE audit_checkpoints (
        id BIGINT PRIMARY KEY,
        seq BIGINT NOT NULL,
        head_hash TEXT NOT NULL,
        at TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        key_id TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        signature TEXT NOT NULL,
        hash TEXT NOT NULL
      )`,
      'CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (seq)',
    ],
  },
  {
    version: 9,
    name: 'audit events by action or actor and time (the access review)',
    // `at` is ISO 8601 UTC with milliseconds (always 24 characters), so text order is time order.
    // (Version 8 belongs to signed audit checkpoints; versions apply in number order, each once.)
    statements: () => ['CREATE INDEX audit_events_action_at ON audit_events (action, at)', 'CREATE INDEX audit_events_actor_at ON audit_events (actor, at)'],
  },
  {
    version: 10,
    name: 'an audit chain per writer (gateways append side by side), checkpoints over every chain',
    // The single head row (audit_head), which every append locked, becomes one head row per
    // writer: "ca" for the CA's processes (the existing chain, its events keep their numbers),
    // a writer id per gateway process. An event's place in its chain is writer_seq; seq stays
    // the store-wide order, from a sequence on PostgreSQL (no lock), max + 1 on SQLite (one
    // writer anyway). A checkpoint signs every chain's head (chains, JSON; NULL: only "ca").
    statements: (d) => [
      'CREATE TABLE audit_chains (writer TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)',
      "INSERT INTO audit_chains (writer, seq, hash) SELECT 'ca', seq, hash FROM audit_head WHERE id = 1",
      'DROP TABLE audit_head',
      "ALTER TABLE audit_events ADD COLUMN writer TEXT NOT NULL DEFAULT 'ca'",
      'ALTER TABLE audit_events ADD COLUMN writer_seq BIGINT NOT NULL DEFAULT 0',
      'UPDATE audit_events SET writer_seq = seq',
      'CREATE UNIQUE INDEX audit_events_writer_seq ON audit_events (writer, writer_seq)',
      'ALTER TABLE audit_checkpoints ADD COLUMN chains TEXT',
      ...(d === 'postgres' ? ['CREATE SEQUENCE audit_events_seq', "SELECT setval('audit_events_seq', (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events), false)"] : []),
    ],
  },
  {
    version: 11,
    name: 'connection observations (what clients use, judged by the policy in force and the coming one)',
    // One row per day and distinct (who, certificate, protocol, suite, hello, verdicts), with a count:
    // the gateway sums in memory and upserts in batches (gateway/connection-observer.ts), never a row per
    // connection. subject: a facility number, "cert:<serial>" for a certificate of no facility, or
    // "addr:<address>" for a client that showed no certificate (then `hello` tells its ClientHellos apart).
    // day: YYYY-MM-DD, Japan time. Text columns default to '' so the key never holds NULL.
    statements: () => [
      `CREATE TABLE observations (
        day TEXT NOT NULL,
        subject TEXT NOT NULL,
        serial TEXT NOT NULL DEFAULT '',
        protocol TEXT NOT NULL DEFAULT '',
        suite TEXT NOT NULL DEFAULT '',
        hello TEXT NOT NULL DEFAULT '',
        verdict_now TEXT NOT NULL,
        verdict_coming TEXT NOT NULL DEFAULT '',
        coming_profile TEXT NOT NULL DEFAULT '',
        profile_now TEXT NOT NULL,
        facility TEXT,
        address TEXT,
        offered_versions TEXT NOT NULL DEFAULT '',
        offered_suites TEXT NOT NULL DEFAULT '',
        groups_offered TEXT NOT NULL DEFAULT '',
        cert_signature TEXT NOT NULL DEFAULT '',
        cert_key TEXT NOT NULL DEFAULT '',
        cert_rule TEXT NOT NULL DEFAULT '',
        exceptions TEXT NOT NULL DEFAULT '',
        refusal TEXT NOT NULL DEFAULT '',
        connections BIGINT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (day, subject, serial, protocol, suite, hello, verdict_now, verdict_coming, coming_profile)
      )`,
      'CREATE INDEX observations_facility ON observations (facility, day)',
      'CREATE INDEX observations_serial ON observations (serial)',
    ],
  },
  {
    version: 13,
    name: 'certificate indexes for a national-size store',
    // At a million certificates (bench/national.ts) the planners answered these from the
    // status index alone, reading every issued or revoked row: each gateway's poll of
    // "revoked after change N" (every second), the superseded-due check before every
    // revocation and listing, a renewal's successor lookup (a sequential scan on PostgreSQL),
    // and the listing's order (a sort of the whole table). The status prefix of the new
    // indexes serves what certificates_status did, so it goes.
    statements: () => [
      // Covering for the gateway's snapshot (serials by status) and its follow (status, change range).
      'CREATE INDEX certificates_status_change_seq ON certificates (status, change_seq, serial)',
      'CREATE INDEX certificates_status_revoke_due_at ON certificates (status, revoke_due_at)',
      'CREATE INDEX certificates_renewed_from ON certificates (renewed_from)',
      // The listing's order, whole or by status (`cert list --status revoked`: 160,000 rows, page after page, no sort).
      'CREATE INDEX certificates_reserved_at ON certificates (reserved_at, serial)',
      'CREATE INDEX certificates_status_reserved_at ON certificates (status, reserved_at, serial)',
      'DROP INDEX certificates_status',
    ],
  },
  {
    version: 14,
    name: 'operators of the web console',
    // A person at the operator's office, signed in to the console by a client certificate
    // of the operator profile. The role decides what the console lets them do (console/roles.ts);
    // the certificate's serial binds the row to exactly one certificate, looked up on every request.
    statements: () => [
      `CREATE TABLE operators (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'clerk', 'auditor')),
        status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
        certificate_serial TEXT NOT NULL REFERENCES certificates(serial),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`,
      'CREATE UNIQUE INDEX operators_certificate_serial ON operators (certificate_serial)',
    ],
  },
  {
    version: 15,
    name: 'downloads per notice: a notice may download again within its window, each download superseding the last',
    // downloads counts finished downloads; serial (version 3) keeps the latest certificate, the one the next
    // download supersedes. Notices made before this version were printed as single-use and stay so (1);
    // a used one has had its one download.
    statements: () => [
      'ALTER TABLE notices ADD COLUMN downloads INTEGER NOT NULL DEFAULT 0',
      'ALTER TABLE notices ADD COLUMN max_downloads INTEGER NOT NULL DEFAULT 1 CHECK (max_downloads >= 1)',
      "UPDATE notices SET downloads = 1 WHERE status = 'used'",
    ],
  },
  {
    version: 16,
    name: 'certificates by expiry',
    // "Which certificates end in the next 60 days" (cert list --expiring, the renewal campaign, the
    // console's expiring view) reads only the issued rows inside the window, soonest first, with no sort.
    statements: () => ['CREATE INDEX certificates_status_not_after ON certificates (status, not_after)'],
  },
];

/** The schema version this code needs (a gateway, which may not migrate, checks it). */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The newest migration applied to the store (0: none). */
export async function schemaVersion(x: SqlExecutor): Promise<number> {
  const r = await x.get<{ v: number | string | null }>('SELECT MAX(version) AS v FROM schema_migrations');
  return Number(r?.v ?? 0);
}

export async function migrate(db: Database): Promise<number> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  let applied = 0;
  for (const m of MIGRATIONS) {
    const done = await db.transaction(async (tx) => {
      if (tx.dialect === 'postgres') await tx.run('LOCK TABLE schema_migrations IN EXCLUSIVE MODE');
      if (await tx.get('SELECT version FROM schema_migrations WHERE version = ?', [m.version])) return false;
      for (const s of m.statements(tx.dialect)) await tx.run(s);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date().toISOString()]);
      return true;
    });
    if (done) applied++;
  }
  return applied;
}
