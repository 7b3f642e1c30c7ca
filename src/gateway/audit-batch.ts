import { AuditSpool, SpoolStoreWriter, SyslogCollector, type AuditEvent, type AuditFormat, type CollectorConfig, type FsyncPolicy } from '../audit/index.js';
import { STORE_CONSUMER, StoreFollower, parseCollectorUrl, spoolWriterId } from '../audit/index.js';
import type { AuditChainStore } from '../store/index.js';

export interface AuditSpoolSettings {
  dir: string;
  maxBytes?: number;
  segmentBytes?: number;
  highWater?: number;
  fsync?: FsyncPolicy;
  fsyncMs?: number;
}

export interface AuditBatchOptions {
  spool: AuditSpoolSettings;
  collectors?: CollectorConfig[];
  /** What collectors are sent per event; required when there are collectors. */
  format?: AuditFormat;
  intervalMs?: number;
  maxBatch?: number;
  log?: (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;
  /** TLS collectors: seconds a connection must stay up after a write before it counts as delivered. */
  confirmMs?: number;
  /** Also send the CA's actions (committed straight to the store) to the collectors: one process per home does. */
  followStore?: boolean;
}

/**
 * The gateway's audit trail. Every authentication, accepted or refused, is
 * appended to the local spool (`record` returns once the event is in the
 * kernel, so it survives SIGKILL), then written to the store's hash chain in
 * batches (one transaction every `intervalMs`, or sooner at `maxBatch`) and
 * sent to each collector. "Acknowledged" for the gateway means spooled: the
 * authentication event of a connection is recorded before the connection is
 * let through to the upstream. A full spool makes `record` return false:
 * the gateway then refuses the connection (AUDIT_SPOOL_FULL) and counts it;
 * nothing is dropped silently.
 */
export class AuditBatch {
  readonly spool: AuditSpool;
  readonly store: SpoolStoreWriter;
  readonly collectors: SyslogCollector[];
  readonly follower: StoreFollower | undefined;
  /** Events refused because the spool was full. */
  refused = 0;

  /** This process's audit chain (see spoolWriterId). */
  readonly writer: string;

  constructor(db: AuditChainStore, private readonly options: AuditBatchOptions) {
    const collectors = options.collectors ?? [];
    if (collectors.length && !options.format) throw new Error('audit collectors need a message format');
    this.spool = AuditSpool.open({
      ...options.spool,
      consumers: [STORE_CONSUMER, ...collectors.map((c) => parseCollectorUrl(c.url).consumer)],
      ...(options.log ? { log: options.log } : {}),
    });
    this.writer = spoolWriterId(options.spool.dir);
    this.store = new SpoolStoreWriter(this.spool, db, this.writer, {
      ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
      ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
      onError: (m) => options.log?.('error', 'audit trail write failed; events stay in the spool and are retried', { error: m }),
    });
    this.follower =
      options.followStore && collectors.length
        ? new StoreFollower(this.spool, db, { dir: options.spool.dir, onError: (m) => options.log?.('error', 'reading CA audit events for the collectors failed; retried', { error: m }) })
        : undefined;
    this.collectors = collectors.map(
      (config) => new SyslogCollector({ spool: this.spool, config, format: options.format!, ...(options.confirmMs !== undefined ? { confirmMs: options.confirmMs } : {}), ...(options.log ? { log: options.log } : {}) }),
    );
  }

  /** Replays into the store what an earlier process spooled but did not store, then follows. */
  async start(): Promise<void> {
    await this.store.start();
    await this.follower?.start();
    for (const c of this.collectors) c.start();
  }

  /** Spools the event; false when the spool is full (the caller fails closed). */
  record(event: AuditEvent, at = new Date()): boolean {
    try {
      this.spool.append(event, at);
      return true;
    } catch (e) {
      // Full, or the disk refused the write (ENOSPC, EIO): either way not recorded, so the caller fails closed.
      if ((e as { code?: string }).code !== 'AUDIT_SPOOL_FULL') this.options.log?.('error', 'audit spool write failed', { error: e instanceof Error ? e.message : String(e) });
      this.refused++;
      return false;
    }
  }

  /** Writes what is spooled to the store. */
  flush(): Promise<void> {
    return this.store.flush();
  }

  /** Bytes spooled but not yet in the store. */
  pending(): number {
    return this.store.pendingBytes();
  }

  /** Stops collectors and writes what is left to the store; the spool keeps whatever collectors still lack. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.follower?.stop();
      for (const c of this.collectors) c.stop();
      await this.store.stop();
      this.spool.close();
    })();
    return this.#closing;
  }
  #closing: Promise<void> | undefined;

  /** For the status endpoint and metrics. */
  state(): Record<string, unknown> {
    return {
      writer: this.writer,
      spoolBytes: this.spool.bytes(),
      spoolMaxBytes: this.spool.maxBytes,
      alarm: this.spool.alarm() ?? null,
      refused: this.refused,
      behind: this.spool.behind(),
      collectors: this.collectors.map((c) => ({ url: c.target.transport + '://' + c.target.host + ':' + c.target.port, connected: c.connected, sent: c.sent, ...(c.target.transport === 'udp' ? { truncated: c.truncated } : {}), unformattable: c.unformattable, lastError: c.lastError ?? null })),
    };
  }
}
