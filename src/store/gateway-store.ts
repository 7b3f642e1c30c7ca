import { unavailable } from '../errors/index.js';
import type { AuditRow, ChainHead } from './audit-events.js';
import { AuditEventRepository } from './audit-events.js';
import { AuditCheckpointRepository, type AuditCheckpointRow } from './audit-checkpoints.js';
import type { ChangeListener, ChangeListenerOptions } from './change-listener.js';
import { databaseClockMs } from './database-clock.js';
import { CaIdentityRepository, type CaIdentity } from './ca-identity.js';
import type { Database, Dialect } from './database.js';
import { SCHEMA_VERSION, schemaVersion } from './migrations.js';
import { StatusFeedRepository, type StatusFeedReader } from './status-feed.js';
import { ObservationRepository } from './observations.js';

/** What appending to an audit chain may touch, inside one transaction: the writer's head row and new event rows. */
export interface AuditChainAppender {
  /** Makes the writer's head row if it has none. */
  register(writer: string): Promise<void>;
  /** The writer's head, locked until the transaction ends (PostgreSQL). */
  head(writer: string): Promise<ChainHead>;
  /** Inserts the event and moves the writer's head; returns its store-wide seq. */
  append(row: Omit<AuditRow, 'seq'>): Promise<number>;
}

/** The audit trail as a gateway may use it: append to its own chain, read chains and checkpoints (to resume and to forward). */
export interface AuditChainStore {
  readonly dialect: Dialect;
  /** Runs `fn` in one transaction given only the chain appender. */
  appendInTransaction<T>(fn: (chains: AuditChainAppender) => Promise<T>): Promise<T>;
  head(writer: string): Promise<ChainHead>;
  listChain(writer: string, after: number, limit?: number): Promise<AuditRow[]>;
  checkpointsAfterId(id: number): Promise<AuditCheckpointRow[]>;
  lastCheckpoint(): Promise<AuditCheckpointRow | undefined>;
}

/**
 * The store as a gateway is given it, and nothing more (Boulder's split of
 * the storage authority into subsets): read the status feed (revocations,
 * facility status) and its change notifications, append to the audit trail,
 * read the database clock. No certificate, facility, notice or CA-identity
 * writes are reachable through this type; on PostgreSQL the gateway's
 * database role (`sekisho db roles`) refuses them as well.
 */
export interface GatewayStore {
  readonly dialect: Dialect;
  readonly description: string;
  readonly feed: StatusFeedReader;
  readonly audit: AuditChainStore;
  /** Connection observations (what clients use, judged by the policy in force and the coming one): summed rows upserted, old days pruned. */
  readonly observations: ObservationRepository;
  /** PostgreSQL: notifications of committed changes (push); absent on SQLite (the feed polls). */
  listenChanges?: (o: ChangeListenerOptions) => ChangeListener;
  /** The database server's clock (ms since 1970); undefined on SQLite. */
  clockMs(): Promise<number | undefined>;
  /** Which CA the store belongs to (its issuing certificate's SHA-256), so a gateway apart from the CA checks its trust anchors against it. */
  caIdentity(): Promise<CaIdentity | undefined>;
  close(): Promise<void>;
}

/** The gateway's subset of an open store. `owned`: close() closes the database too (a store the gateway opened itself). */
export function gatewayStoreOf(db: Database, owned = false): GatewayStore {
  const audit = new AuditEventRepository(db);
  const checkpoints = new AuditCheckpointRepository(db);
  return {
    dialect: db.dialect,
    description: db.description,
    feed: new StatusFeedRepository(db),
    observations: new ObservationRepository(db),
    audit: {
      dialect: db.dialect,
      appendInTransaction: (fn) => db.transaction((tx) => fn(new AuditEventRepository(tx))),
      head: (writer) => audit.head(writer, { lock: false }),
      listChain: (writer, after, limit) => audit.listChain(writer, after, limit),
      checkpointsAfterId: (id) => checkpoints.afterId(id),
      lastCheckpoint: () => checkpoints.last(),
    },
    ...(db.listenChanges ? { listenChanges: (o: ChangeListenerOptions) => db.listenChanges!(o) } : {}),
    clockMs: () => databaseClockMs(db),
    caIdentity: () => new CaIdentityRepository(db).get(),
    close: async () => {
      if (owned) await db.close();
    },
  };
}

/**
 * Checks that the store's schema is the one this code needs, without
 * migrating it: a gateway's database role may not change the schema (the
 * CA host migrates with `sekisho db migrate` or any CA command).
 */
export async function checkSchema(db: Database): Promise<void> {
  let v: number;
  try {
    v = await schemaVersion(db);
  } catch (e) {
    throw unavailable('STORE_SCHEMA_OLD', `${db.description} has no sekisho schema a gateway can read (${(e as Error).message}); initialise it from the CA host ("sekisho init --db …") and grant the gateway role ("sekisho db roles")`, { cause: e });
  }
  if (v < SCHEMA_VERSION) throw unavailable('STORE_SCHEMA_OLD', `${db.description} is at schema version ${v}, this gateway needs ${SCHEMA_VERSION}; upgrade the CA host first (any CA command migrates), then start the gateway`);
}
