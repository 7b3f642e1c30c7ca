import { ensurePrivateDir } from '../files/index.js';
import { join } from 'node:path';
import { badRequest } from '../errors/index.js';
import type { Database, SqlExecutor } from './database.js';
import { SqliteDatabase } from './sqlite.js';
import { PostgresDatabase } from './postgres.js';
import { migrate } from './migrations.js';
import { FacilityRepository } from './facilities.js';
import { OperatorRepository } from './operators.js';
import { CertificateRepository } from './certificates.js';
import { AuditEventRepository } from './audit-events.js';
import { AuditCheckpointRepository } from './audit-checkpoints.js';
import { CrlStateRepository } from './crl-state.js';
import { CaIdentityRepository } from './ca-identity.js';
import { NoticeRepository } from './notices.js';
import { StatusFeedRepository } from './status-feed.js';
import { NoticeAttemptRepository } from './notice-attempts.js';
import { AccessEventReader, ACCESS_ACTIONS } from './access-events.js';
import { checkSchema } from './gateway-store.js';
import { ExpiryReader } from './expiry.js';
export { gatewayStoreOf, checkSchema } from './gateway-store.js';
export { applyRole, roleStatements, type DbPart } from './db-roles.js';
export type { GatewayStore, AuditChainStore, AuditChainAppender } from './gateway-store.js';
import { ObservationRepository, type ObservationRow } from './observations.js';
export { ObservationRepository, type ObservationRow };

export type { Database, SqlExecutor, Dialect } from './database.js';
export type { Facility, FacilityStatus } from './facilities.js';
export { OPERATOR_ROLES, type OperatorRecord, type OperatorRole, type OperatorStatus } from './operators.js';
export type { CertificateRecord, CertificateStatus, CertificateFilter, RevokedSerial } from './certificates.js';
export type { AuditRow, ChainHead, WriterHead } from './audit-events.js';
export { detailsOf } from './audit-events.js';
export { CA_WRITER } from './audit-events.js';
export type { ChangeListener, ChangeListenerOptions } from './change-listener.js';
export { CHANGE_CHANNEL } from './change-seq.js';
export { SCHEMA_VERSION, schemaVersion } from './migrations.js';
export type { AuditCheckpointRow } from './audit-checkpoints.js';
export type { AccessEventQuery } from './access-events.js';
export { AccessEventReader, ACCESS_ACTIONS };
export { ExpiryReader };
export type { ExpiringRow } from './expiry.js';
export type { AuditSearch } from './audit-events.js';
export { databaseClockMs } from './database-clock.js';
export type { CaIdentity } from './ca-identity.js';
export type { NoticeRecord, NoticeKind, NoticeStatus } from './notices.js';
export type { StatusFeedReader, StatusFeedBatch, FeedFacility } from './status-feed.js';
export { RENEWAL_PENDING } from './certificates.js';
export { FacilityRepository, CertificateRepository, AuditEventRepository, AuditCheckpointRepository, CrlStateRepository, CaIdentityRepository, NoticeRepository, NoticeAttemptRepository, StatusFeedRepository, OperatorRepository, migrate };

/** The repositories over one executor (the database itself, or a transaction). */
export interface Repositories {
  facilities: FacilityRepository;
  certificates: CertificateRepository;
  audit: AuditEventRepository;
  /** Signed checkpoints of the audit trail. */
  checkpoints: AuditCheckpointRepository;
  crl: CrlStateRepository;
  identity: CaIdentityRepository;
  notices: NoticeRepository;
  /** Read-only: what gateways follow (revocations and facility status by change sequence). */
  feed: StatusFeedRepository;
  noticeAttempts: NoticeAttemptRepository;
  /** Read-only: certificates ending in a window, with their renewals under way. */
  expiry: ExpiryReader;
  /** The console's operators and their certificates. */
  operators: OperatorRepository;
}

export function repositories(x: SqlExecutor): Repositories {
  return {
    facilities: new FacilityRepository(x),
    certificates: new CertificateRepository(x),
    audit: new AuditEventRepository(x),
    checkpoints: new AuditCheckpointRepository(x),
    crl: new CrlStateRepository(x),
    identity: new CaIdentityRepository(x),
    notices: new NoticeRepository(x),
    feed: new StatusFeedRepository(x),
    noticeAttempts: new NoticeAttemptRepository(x),
    expiry: new ExpiryReader(x),
    operators: new OperatorRepository(x),
  };
}

/**
 * Opens (and migrates) the store: `postgres://…` for PostgreSQL, otherwise
 * SQLite at `<home>/sekisho.db` (or an explicit `sqlite:FILE` / file path).
 */
export async function openStore(options: {
  home: string;
  url?: string;
  /** SQLite: create the file (init only). */
  create?: boolean;
  /** false: only check that the schema is current (a gateway's role may not migrate). */
  migrate?: boolean;
  /** SQLite: how long a write keeps trying for a lock another process holds before STORE_BUSY (default 10 s). */
  lockLimitMs?: number;
}): Promise<Database> {
  let db: Database;
  const url = options.url;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    const u = new URL(url);
    if (u.password || u.searchParams.has('password')) {
      throw badRequest('STORE_URL_SECRET', 'put no password in the database URL (it would show in the process list and config); set PGPASSWORD or use ~/.pgpass');
    }
    db = new PostgresDatabase(url);
  } else if (url && url.includes('://')) {
    throw badRequest('STORE_URL_UNSUPPORTED', `unsupported --db "${url.replace(/\/\/[^@]*@/, '//***@')}"; use postgres://user@host/db or a SQLite file path`);
  } else {
    if (options.create !== false) ensurePrivateDir(options.home);
    db = new SqliteDatabase(url ? url.replace(/^sqlite:/, '') : join(options.home, 'sekisho.db'), { create: options.create !== false, ...(options.lockLimitMs !== undefined ? { lockLimitMs: options.lockLimitMs } : {}) });
  }
  try {
    if (options.migrate === false) await checkSchema(db);
    else await migrate(db);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return db;
}
export { GroupCommit } from './group-commit.js';
