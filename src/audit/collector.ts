import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { badRequest, isSekishoError } from '../errors/index.js';
import { complianceProfile, tlsServerOptions } from '../policy/index.js';
import type { RecordedAuditEvent } from './event.js';
import type { AuditSpool, SpoolEntry, SpoolPosition, SpooledEvent } from './spool.js';

/**
 * A syslog collector the audit trail is sent to:
 * - `tls://host:port` — RFC 5425: octet-counting frames `LEN SP MSG` over
 *   mutual TLS (TLS 1.2+ with the project's recommended profile; the client
 *   certificate `cert`/`key` issued by sekisho, the collector verified
 *   against `ca`);
 * - `udp://host:port` — RFC 5426: one message per datagram, cut to
 *   `maxDatagram` octets (UDP gives no delivery guarantee).
 */
export interface CollectorConfig {
  url: string;
  cert?: string;
  key?: string;
  ca?: string;
  /** UDP: the largest datagram sent (RFC 5426 §3.2; default 8192, what rsyslog takes by default: an ITI-20 message is 3–4 KB). */
  maxDatagram?: number;
}

export interface CollectorTarget {
  transport: 'tls' | 'udp';
  host: string;
  port: number;
  /** The spool consumer (cursor) name. */
  consumer: string;
}

export function parseCollectorUrl(url: string): CollectorTarget {
  const m = /^(tls|udp):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(url);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw badRequest('AUDIT_COLLECTOR_INVALID', `audit collector "${url}" must be tls://host:port (RFC 5425) or udp://host:port (RFC 5426)`);
  const host = m[2]!.replace(/^\[|\]$/g, '');
  if (m[2]!.startsWith('[') && isIP(host) !== 6) throw badRequest('AUDIT_COLLECTOR_INVALID', `audit collector "${url}": bad IPv6 address`);
  const transport = m[1] as 'tls' | 'udp';
  return { transport, host, port, consumer: `collector-${transport}-${host.replace(/[^A-Za-z0-9.-]/g, '_')}-${port}` };
}

/** What a collector is sent for each event (the ATNA XML in an RFC 5424 message, in production). */
export type AuditFormat = (event: RecordedAuditEvent) => Buffer;

export interface CollectorOptions {
  spool: AuditSpool;
  config: CollectorConfig;
  format: AuditFormat;
  /** TLS: a message counts as delivered once the connection stayed up this long after it was written (default 2000 ms). */
  confirmMs?: number;
  /** Reconnect backoff (default 500 ms doubling to 30 s). */
  backoffMs?: { min: number; max: number };
  /** TLS: a connection that takes no data for this long is dropped and retried (default 30 s). */
  stallMs?: number;
  log?: (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;
}

/**
 * Sends the spool to one collector, in order, from its own cursor.
 * At-least-once: over TLS the cursor moves past a message only when the
 * write was flushed to the kernel and the connection then stayed up for
 * `confirmMs`; when it breaks, sending resumes from the cursor, so the
 * collector may see again only what was sent in the last `confirmMs` (plus
 * what was unconfirmed when the process stopped). Every message carries the
 * event's unique id, so duplicates can be recognised.
 */
/** The UDP datagram size used when the configuration names none: rsyslog's default message size (RFC 5426 asks receivers for 2048 at least). */
export const UDP_DEFAULT_MAX_DATAGRAM = 8192;

export class SyslogCollector {
  readonly target: CollectorTarget;
  readonly #o: CollectorOptions;
  #socket: TLSSocket | undefined;
  #udp: UdpSocket | undefined;
  #sendPos: SpoolPosition | undefined;
  /** Written on this connection, not yet confirmed: position after each, and when it was flushed. */
  #inFlight: { next: SpoolPosition; flushedAt: number | undefined; count: number }[] = [];
  #backoff: number;
  #retry: NodeJS.Timeout | undefined;
  #confirmTimer: NodeJS.Timeout | undefined;
  #off: (() => void) | undefined;
  #pumping = false;
  #stopped = false;
  sent = 0;
  /** Messages sent again after a connection broke (sent, not yet confirmed): at most this many duplicates. */
  resent = 0;
  connects = 0;
  /** UDP: messages longer than maxDatagram, sent cut (no longer well-formed; their record object lost). */
  truncated = 0;
  #truncatedLoggedAt = 0;
  /** Records the format could not render, each sent as an `audit.record-unformattable` alert instead. */
  unformattable = 0;
  lastError: string | undefined;
  connected = false;

  constructor(o: CollectorOptions) {
    this.#o = o;
    this.target = parseCollectorUrl(o.config.url);
    if (this.target.transport === 'tls' && !(o.config.cert && o.config.key && o.config.ca)) {
      throw badRequest('AUDIT_COLLECTOR_INVALID', `audit collector ${o.config.url}: tls needs cert, key (the client certificate sekisho issued) and ca (the collector's CA)`);
    }
    this.#backoff = o.backoffMs?.min ?? 500;
  }

  get consumer(): string {
    return this.target.consumer;
  }

  start(): void {
    this.#off = this.#o.spool.onAppend(() => this.#pump());
    this.#connect();
  }

  #log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
    this.#o.log?.(level, message, { collector: this.#o.config.url, ...fields });
  }

  #connect(): void {
    if (this.#stopped) return;
    this.#sendPos = this.#o.spool.cursor(this.consumer);
    this.#inFlight = [];
    if (this.target.transport === 'udp') {
      const s = createSocket(isIP(this.target.host) === 6 ? 'udp6' : 'udp4');
      s.on('error', (e) => this.#broken(e.message));
      s.connect(this.target.port, this.target.host, () => {
        this.connected = true;
        this.connects++;
        this.#pump();
      });
      this.#udp = s;
      return;
    }
    const c = this.#o.config;
    const profile = tlsServerOptions(complianceProfile('recommended'));
    let socket: TLSSocket;
    try {
      socket = tlsConnect({
        host: this.target.host,
        port: this.target.port,
        ...(isIP(this.target.host) ? {} : { servername: this.target.host }),
        cert: readFileSync(c.cert!),
        key: readFileSync(c.key!),
        ca: readFileSync(c.ca!),
        minVersion: profile.minVersion,
        maxVersion: profile.maxVersion,
        ciphers: profile.ciphers,
        ...(profile.ecdhCurve ? { ecdhCurve: profile.ecdhCurve } : {}),
        ...(profile.sigalgs ? { sigalgs: profile.sigalgs } : {}),
      });
    } catch (e) {
      this.#broken(e instanceof Error ? e.message : String(e));
      return;
    }
    this.#socket = socket;
    socket.setNoDelay(true);
    // Quiet is fine; a collector that leaves written data unread this long is stalled.
    socket.setTimeout(this.#o.stallMs ?? 30_000, () => {
      if (socket.writableLength > 0 || this.#inFlight.some((e) => e.flushedAt === undefined)) socket.destroy(new Error('the collector took no data for too long'));
    });
    socket.once('secureConnect', () => {
      this.connected = true;
      this.connects++;
      this.#backoff = this.#o.backoffMs?.min ?? 500;
      this.#log('info', 'audit collector connected', { protocol: socket.getProtocol() });
      this.#confirmTimer = setInterval(() => this.#confirm(), Math.max(50, (this.#o.confirmMs ?? 2000) / 4)).unref();
      this.#pump();
    });
    // A collector sends nothing over RFC 5425; anything read is ignored.
    socket.on('data', () => undefined);
    socket.on('error', (e) => this.#broken(e.message));
    socket.on('close', () => this.#broken('the collector closed the connection'));
  }

  #broken(reason: string): void {
    if (!this.connected && !this.#socket && !this.#udp) return;
    this.connected = false;
    if (this.#confirmTimer) clearInterval(this.#confirmTimer);
    this.#confirmTimer = undefined;
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#udp?.close();
    this.#udp = undefined;
    // What was sent but not confirmed is sent again: the bound on duplicates.
    this.resent += this.#inFlight.reduce((a, e) => a + e.count, 0);
    this.#inFlight = [];
    if (this.#stopped) return;
    this.lastError = reason;
    this.#log('warn', 'audit collector unreachable; events stay in the spool and are resent', { error: reason, retryMs: this.#backoff });
    const wait = this.#backoff * (0.75 + Math.random() / 2);
    this.#backoff = Math.min(this.#backoff * 2, this.#o.backoffMs?.max ?? 30_000);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect();
    }, wait).unref();
  }

  /** Sends what the spool holds after the send position, as fast as the connection takes it. */
  #pump(): void {
    if (this.#pumping || !this.connected || this.#stopped) return;
    this.#pumping = true;
    try {
      while (this.connected && this.#sendPos) {
        if (this.#socket?.writableNeedDrain) {
          this.#socket.once('drain', () => this.#pump());
          return;
        }
        const batch = this.#o.spool.read(this.#sendPos, 100);
        if (!batch.length) return;
        this.#sendPos = batch[batch.length - 1]!.next;
        if (this.#udp) this.#sendUdp(batch);
        else this.#sendTls(batch);
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * The message for one spooled record. A record the format cannot render
   * (a time outside the years 0000–9999, a field of the wrong type: a row
   * altered in the store, followed from it) is not sent as it is, nor does it
   * stop the collector: an `audit.record-unformattable` alert goes in its
   * place, naming the event id and why, and it is counted and logged.
   */
  #message(r: SpooledEvent): Buffer | undefined {
    try {
      return this.#o.format(recordedFromSpool(r));
    } catch (e) {
      this.unformattable++;
      const error = (e instanceof Error ? e.message : String(e)).slice(0, 300);
      const stored = r.stored && typeof r.stored === 'object' ? r.stored : undefined;
      this.#log('error', 'an audit event could not be formatted for the collector; an alert was sent in its place', { eventId: r.id, seq: stored?.seq ?? null, error });
      try {
        return this.#o.format({
          actor: 'audit-spool',
          action: 'audit.record-unformattable',
          outcome: 'seriousFailure',
          reasonCode: isSekishoError(e) ? e.code : 'AUDIT_RECORD_UNFORMATTABLE',
          details: { eventId: String(r.id), action: String((r.event as { action?: unknown } | null)?.action ?? '').slice(0, 100), recordedAt: String(r.at).slice(0, 100), error },
          at: new Date().toISOString(),
          seq: typeof stored?.seq === 'number' ? stored.seq : 0,
          hash: typeof stored?.hash === 'string' ? stored.hash : '',
        });
      } catch {
        return undefined;
      }
    }
  }

  #sendTls(batch: SpoolEntry[]): void {
    const frames = batch.flatMap(({ record }) => {
      const msg = this.#message(record);
      return msg ? [Buffer.concat([Buffer.from(`${msg.length} `), msg])] : [];
    });
    const entry = { next: batch[batch.length - 1]!.next, flushedAt: undefined as number | undefined, count: batch.length };
    this.#inFlight.push(entry);
    const socket = this.#socket!;
    socket.write(Buffer.concat(frames), (e) => {
      if (!e && socket === this.#socket) entry.flushedAt = Date.now();
    });
    this.sent += batch.length;
  }

  #sendUdp(batch: SpoolEntry[]): void {
    const max = this.#o.config.maxDatagram ?? UDP_DEFAULT_MAX_DATAGRAM;
    const udp = this.#udp!;
    for (const { record, next } of batch) {
      const msg = this.#message(record);
      if (!msg) {
        // Nothing can be sent for it (counted and logged by #message): the cursor moves past it all the same.
        this.#o.spool.commit(this.consumer, next);
        continue;
      }
      if (msg.length > max) {
        this.truncated++;
        // Said, once a minute: the collector gets a cut message (RFC 5426 allows no more), and the operator the remedy.
        if (Date.now() - this.#truncatedLoggedAt > 60_000) {
          this.#truncatedLoggedAt = Date.now();
          this.#o.log?.('warn', 'an audit message longer than the UDP collector\'s maxDatagram was sent cut', {
            collector: this.#o.config.url,
            bytes: msg.length,
            maxDatagram: max,
            truncated: this.truncated,
            remedy: 'raise maxDatagram to what the collector accepts, or send over tls:// (RFC 5425), which is never cut',
          });
        }
      }
      udp.send(msg.length > max ? msg.subarray(0, max) : msg, (e) => {
        // UDP cannot confirm delivery: a datagram the kernel sent counts as sent (RFC 5426).
        if (!e && udp === this.#udp) this.#o.spool.commit(this.consumer, next);
      });
      this.sent++;
    }
  }

  /** Moves the cursor past what was flushed at least confirmMs ago on a connection still up. */
  #confirm(): void {
    const before = Date.now() - (this.#o.confirmMs ?? 2000);
    let last: SpoolPosition | undefined;
    while (this.#inFlight.length && this.#inFlight[0]!.flushedAt !== undefined && this.#inFlight[0]!.flushedAt <= before) last = this.#inFlight.shift()!.next;
    if (last) this.#o.spool.commit(this.consumer, last);
  }

  /** Stops sending; what is unconfirmed stays in the spool for the next start. */
  stop(): void {
    this.#stopped = true;
    this.#off?.();
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#confirmTimer) clearInterval(this.#confirmTimer);
    this.#socket?.destroy();
    this.#udp?.close();
    this.#socket = undefined;
    this.#udp = undefined;
    this.connected = false;
  }
}

/**
 * The event as the formatter sees it, with its spool id in `details.eventId`.
 * A gateway event reaches collectors before the store assigns seq and hash
 * (the store may be down): seq 0, hash ''. A CA action followed from the
 * store has both.
 */
export function recordedFromSpool(r: SpooledEvent): RecordedAuditEvent {
  if (r.stored) return { ...r.event, at: r.at, seq: r.stored.seq, hash: r.stored.hash, details: { ...(r.event.details ?? {}), eventId: r.id } };
  return { ...r.event, details: { ...(r.event.details ?? {}), eventId: r.id }, at: r.at, seq: 0, hash: '' };
}
