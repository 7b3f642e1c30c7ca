import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { listenFailure } from '../errors/index.js';
import type { ListenerLimits } from './limits.js';
import { addressKey } from './address-key.js';
import type { ListenerLedger, ListenerCounts } from './ledger.js';

/** The part of a logger the gate needs (the gateway's JSON logger fits). */
export interface LimitLog {
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

/** JSON lines on stderr: the log of a listener started without one. */
export const stderrLimitLog: LimitLog = {
  log: (level, msg, fields) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`),
};

export interface GuardedListenerOptions {
  /** The listener's name in metrics and logs (e.g. a gateway listener's name, "portal", "admin"). */
  name: string;
  host: string;
  port: number;
  limits: ListenerLimits;
  ledger: ListenerLedger;
  log: LimitLog;
  /** Receives every admitted socket (plain TCP: no TLS work has been spent on it yet). */
  onConnection: (raw: Socket) => void;
  /** The setting that names the address, for a listen failure's message (e.g. "--portal"). */
  setting: string;
  /** How often refusals over the caps are logged, summed (default 10 s). */
  logIntervalMs?: number;
  /**
   * Keep a socket writable after the client has ended its side (default
   * false): a client may send its request, close its side (TLS 1.3
   * close_notify, TCP FIN) and still read the answer. The TLS socket takes the
   * setting from the raw socket; whoever answers ends it.
   */
  allowHalfOpen?: boolean;
  /**
   * Bind a listening socket of this process's own with SO_REUSEPORT (Linux),
   * even in a cluster worker, instead of sharing the primary's: each
   * `--workers` process then accepts on its own socket and the kernel spreads
   * new connections over them (cluster.ts). Ignored for port 0 (each process
   * would get a different port): that listener is shared as before.
   */
  reusePort?: boolean;
}

/** Distinct addresses remembered per log interval (the rest are only counted). */
const LOGGED_ADDRESSES = 256;

/**
 * The TCP front every listener shares: it admits a connection only while
 * the listener is under its total cap and the client's address under its
 * per-address cap, and closes any other at once, before any TLS work. Every
 * refusal is counted (ledger) and they are logged in sums, one line per
 * interval, never one per socket. Admitted sockets go to `onConnection`
 * (a TLS listener, or an HTTP(S) server through its 'connection' event).
 */
export class GuardedListener {
  readonly server: Server;
  readonly counts: ListenerCounts;
  readonly #sockets = new Set<Socket>();
  readonly #perAddress = new Map<string, number>();
  /** Refusals since the last log line, by address. */
  #pending = new Map<string, number>();
  #pendingTotal = 0;
  #pendingPerAddress = 0;
  #logTimer: NodeJS.Timeout | undefined;
  readonly #release: (this: Socket) => void;

  constructor(private readonly o: GuardedListenerOptions) {
    this.counts = o.ledger.listener(o.name, o.limits);
    const sockets = this.#sockets;
    const perAddress = this.#perAddress;
    const counts = this.counts;
    // One shared close handler: nothing allocated per connection beyond the set and map entries.
    this.#release = function (this: Socket) {
      sockets.delete(this);
      counts.open--;
      const a = addressKey(this.remoteAddress ?? '');
      const n = (perAddress.get(a) ?? 1) - 1;
      if (n <= 0) perAddress.delete(a);
      else perAddress.set(a, n);
    };
    this.server = createNetServer({ noDelay: true, allowHalfOpen: o.allowHalfOpen === true }, (raw) => this.#accept(raw));
  }

  #accept(raw: Socket): void {
    const address = addressKey(raw.remoteAddress ?? '');
    const { limits } = this.o;
    if (this.counts.open >= limits.maxConnections) return this.#refuse(raw, address, 'total');
    const held = this.#perAddress.get(address) ?? 0;
    if (held >= limits.maxConnectionsPerAddress) return this.#refuse(raw, address, 'perAddress');
    this.#perAddress.set(address, held + 1);
    this.counts.open++;
    this.counts.accepted++;
    this.#sockets.add(raw);
    raw.once('close', this.#release);
    this.o.onConnection(raw);
  }

  #refuse(raw: Socket, address: string, cap: 'total' | 'perAddress'): void {
    raw.destroy();
    if (cap === 'total') {
      this.counts.refusedTotal++;
      this.#pendingTotal++;
    } else {
      this.counts.refusedPerAddress++;
      this.#pendingPerAddress++;
    }
    const seen = this.#pending.get(address);
    if (seen !== undefined) this.#pending.set(address, seen + 1);
    else if (this.#pending.size < LOGGED_ADDRESSES) this.#pending.set(address, 1);
    this.#logTimer ??= setTimeout(() => this.#flushLog(), this.o.logIntervalMs ?? 10_000).unref();
  }

  #flushLog(): void {
    this.#logTimer = undefined;
    if (!this.#pendingTotal && !this.#pendingPerAddress) return;
    const top = [...this.#pending].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([address, refused]) => ({ address, refused }));
    this.o.log.log('warn', 'connections refused over the connection caps', {
      listener: this.o.name,
      overTotalCap: this.#pendingTotal,
      overPerAddressCap: this.#pendingPerAddress,
      maxConnections: this.o.limits.maxConnections,
      maxConnectionsPerAddress: this.o.limits.maxConnectionsPerAddress,
      addresses: this.#pending.size,
      top,
    });
    this.#pending = new Map();
    this.#pendingTotal = 0;
    this.#pendingPerAddress = 0;
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (e) => reject(listenFailure(e, `${this.o.host}:${this.o.port}`, this.o.setting)));
      const own = this.o.reusePort === true && this.o.port !== 0;
      this.server.listen({ port: this.o.port, host: this.o.host, ...(own ? { reusePort: true, exclusive: true } : {}) }, () => {
        this.server.removeAllListeners('error');
        const a = this.server.address() as { address: string; port: number };
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** Stops accepting (open connections stay); the pending refusal sums are logged. */
  stop(): Promise<void> {
    if (this.#logTimer) clearTimeout(this.#logTimer);
    this.#flushLog();
    return new Promise((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
  }

  destroyAll(): void {
    for (const s of this.#sockets) s.destroy();
  }

  /**
   * Closes an HTTP(S) server this front feeds: stops accepting, ends idle
   * keep-alive connections at once, lets requests in flight finish within
   * the listener's request timeout, then ends what is left.
   */
  async closeHttp(server: HttpServer): Promise<void> {
    await this.stop();
    server.close(() => undefined);
    server.closeIdleConnections();
    const deadline = Date.now() + this.o.limits.requestTimeoutMs;
    while (this.open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.destroyAll();
  }

  get open(): number {
    return this.counts.open;
  }
}

/**
 * Puts an HTTP(S) server that never listens itself (a GuardedListener hands
 * it its sockets) under the listener's timeouts: headers, whole request and
 * idle (an HTTPS server takes the handshake timeout as its `handshakeTimeout`
 * option). Node checks headers and request times only from a timer it starts
 * on 'listening', so that is started here.
 */
export function applyHttpLimits(server: HttpServer, limits: ListenerLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.timeout = limits.idleTimeoutMs;
  server.keepAliveTimeout = Math.min(server.keepAliveTimeout || 5_000, limits.idleTimeoutMs);
  // Checked every second, so short timeouts are kept to within a second.
  (server as HttpServer & { connectionsCheckingInterval: number }).connectionsCheckingInterval = 1_000;
  server.emit('listening');
}
