import { STATUS_CODES } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { allows, type AccessRule } from './access-rule.js';
import type { ClientIdentity } from './client-identity.js';
import { FramingError, MessageParser, type MessageHead } from './http-head-parser.js';
import { connectionNamed, forwardingLines, forwardLines, isEndToEnd } from './identity-headers.js';
import { refusalPage } from './refusal-page.js';
import { normalizeTarget } from './request-target.js';
import { isSekishoError, type SekishoError } from '../errors/index.js';
import type { RefusalReason } from './refusal.js';

export interface HttpRoute {
  /** Path prefix ("/" matches everything); the longest matching prefix wins. */
  path: string;
  upstream: URL;
  allow: AccessRule;
}

/** What the TLS side decided about a connection before any request is read. */
export type ConnectionState = { identity: ClientIdentity } | { refusal: RefusalReason; identity?: ClientIdentity };

/** The HTTP timeouts of a gateway listener (listener/limits.ts). */
export interface HttpTimeouts {
  /** A request head (from its first byte; a connection's first request from the connection's start) within this. */
  headersTimeoutMs: number;
  /** A whole request (head and body) within this. */
  requestTimeoutMs: number;
  /** No traffic either way for this long while a request is open: closed. */
  idleTimeoutMs: number;
}

export interface HttpForwarderOptions {
  routes: readonly HttpRoute[];
  stateOf: (socket: TLSSocket) => ConnectionState | undefined;
  timeouts: HttpTimeouts;
  contact?: string;
  /** The self-check page's address, shown on refusal pages. */
  selfCheckUrl?: string;
  onAccessDenied: (socket: TLSSocket, identity: ClientIdentity, path: string) => void;
  /** A request target that cannot be normalized safely (answered 400). */
  onBadTarget: (socket: TLSSocket, identity: ClientIdentity, error: SekishoError) => void;
  /** Every answered request; `path` is the normalized path (undefined when the connection was refused). */
  onRequest: (status: number, socket: TLSSocket, method: string, url: string, identity: ClientIdentity | undefined, path?: string) => void;
  onUpstreamError: (message: string) => void;
}

export interface HttpForwarder {
  /** Serves HTTP/1.1 on an authenticated (or refused-with-a-page) TLS connection. */
  serve(socket: TLSSocket): void;
  /** Closes the connections with no request open (a drain begins). */
  closeIdleConnections(): void;
  closeAllConnections(): void;
  closeUpstreams(): void;
}

/** Kept-alive connections between requests: closed after this (capped by the idle timeout). */
const KEEP_ALIVE_MS = 60_000;
const KEEP_ALIVE_LINES = `connection: keep-alive\r\nkeep-alive: timeout=${KEEP_ALIVE_MS / 1000}\r\n`;
const CLOSE_LINE = 'connection: close\r\n';
const CHUNK_END = Buffer.from('0\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
/** Methods that change nothing: sent again once when a reused upstream connection turns out closed. */
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Requests read and not yet answered on one connection; one more is answered 429 after them, and the connection ends. */
const MAX_PIPELINED = 32;
/** Informational (1xx) answers read for one request before the upstream counts as failed (each is activity that keeps the client's connection). */
const MAX_INFORMATIONAL = 8;
/** A Content-Length as llhttp read it (digits), in canonical decimal: `007` goes on as `7`. */
const decimal = (v: string): string => v.trim().replace(/^0+(?=\d)/, '');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
/** Where every upstream connection's reads land (see Upstream): bytes kept past a read are copied out. */
const UPSTREAM_READS = Buffer.allocUnsafe(64 * 1024);

/** A response the gateway writes itself. */
interface OwnAnswer {
  status: number;
  headers: string;
  body: string;
  close: boolean;
}

interface Route extends HttpRoute {
  /** The upstream's path prefix ('' for /). */
  prefix: string;
  key: string;
  host: string;
  port: number;
  hostLine: string;
}

/** One request on a client connection, from its head to the end of its answer. */
interface Exchange {
  method: string;
  url: string;
  /** The normalized path (audit), when the target was one. */
  path?: string;
  /** The client may send another request after this one. */
  keepAlive: boolean;
  http10: boolean;
  /** Answered by the gateway (a page, an error) instead of the upstream. */
  own?: OwnAnswer;
  route?: Route;
  /** Request head as the upstream receives it (latin1). */
  head: string;
  /** How the request body goes to the upstream: none, as is (Content-Length), or re-chunked. */
  body: 'none' | 'length' | 'chunked';
  /** Body bytes read before the exchange had an upstream connection. */
  pending: Buffer[];
  /** The whole request is read. */
  read: boolean;
  upstream?: Upstream;
  /** The response head went to the client. */
  answered: boolean;
  status: number;
  /** The answer ends the client connection. */
  closeAfter: boolean;
  /** Retried once already (a kept-alive upstream connection closed under a bodiless request). */
  retried: boolean;
  /** Expect: 100-continue: the client waits for the interim answer before its body. */
  expectContinue: boolean;
  /** Not a request (a framing error, a timeout): answered, not recorded. */
  unrecorded: boolean;
}

/** What an upstream connection reports to the client connection it serves. */
interface UpstreamUser {
  upData(up: Upstream, chunk: Buffer): void;
  upEnd(up: Upstream): void;
  upstreamFailed(up: Upstream, message: string): void;
  upDrain(): void;
  respHead(up: Upstream, h: MessageHead): boolean;
  respBody(up: Upstream, b: Buffer): void;
  respDone(up: Upstream): void;
}

/**
 * One kept-alive plain-TCP connection to an upstream, with its response
 * parser: made once, reused for exchange after exchange (listeners and
 * parser stay; `conn` and `ex` say whom it serves now).
 */
class Upstream {
  readonly socket: Socket;
  readonly parser: MessageParser;
  conn: UpstreamUser | undefined;
  ex: Exchange | undefined;
  reused = false;
  /** Bytes of the response seen (a retry is safe only before any). */
  gotBytes = false;
  /** Response framing towards the client. */
  mode: 'none' | 'length' | 'chunked' | 'close' = 'none';
  /** An informational (1xx) response is being read: not forwarded. */
  informational = false;
  /** Informational answers to the current request (bounded: each one is activity that keeps the client's connection). */
  informationalCount = 0;
  keepAlive = false;
  done = false;
  dead = false;
  out: Buffer[] = [];
  outBytes = 0;
  lastActivity = 0;
  idleSince = 0;

  constructor(
    readonly key: string,
    host: string,
    port: number,
    onGone: (up: Upstream) => void,
  ) {
    // Reads land in one buffer shared by every upstream connection (each read is parsed before the next can
    // arrive), not in a fresh Buffer per read through the stream's 'data' machinery; what must outlive the read
    // is copied (flush).
    this.socket = netConnect({ host, port, noDelay: true, onread: { buffer: UPSTREAM_READS, callback: (n) => this.#read(UPSTREAM_READS.subarray(0, n)) } });
    this.parser = new MessageParser('response', {
      begin: () => undefined,
      head: (h) => this.conn!.respHead(this, h),
      body: (b) => this.conn!.respBody(this, b),
      done: () => this.conn!.respDone(this),
    });
    this.socket.on('end', () => (this.conn ? this.conn.upEnd(this) : this.drop()));
    this.socket.on('error', (e) => (this.conn ? this.conn.upstreamFailed(this, e.message) : this.drop()));
    this.socket.on('close', () => {
      if (this.conn && !this.done) this.conn.upstreamFailed(this, 'the upstream closed the connection');
      this.drop();
      onGone(this);
    });
    this.socket.on('drain', () => this.conn?.upDrain());
  }

  /** One read: true, reading goes on (pause() stops it). */
  #read(chunk: Buffer): boolean {
    // While idle (no conn), anything from the upstream is out of protocol: the connection goes.
    if (this.conn) this.conn.upData(this, chunk);
    else this.drop();
    return true;
  }

  /** Ready for a new exchange. */
  reset(): void {
    this.gotBytes = false;
    this.mode = 'none';
    this.informational = false;
    this.informationalCount = 0;
    this.keepAlive = false;
    this.done = false;
    this.lastActivity = performance.now();
  }

  /** Closed for good (once). */
  drop(): void {
    if (this.dead) return;
    this.dead = true;
    this.conn = undefined;
    this.ex = undefined;
    this.socket.destroy();
    this.parser.close();
  }
}

/**
 * Kept-alive upstream connections by host:port: one goes back to the pool
 * only after a complete exchange (the whole request written, the whole
 * response read, neither side asking to close), so a reused connection never
 * starts in the middle of a message. At most `maxIdle` idle per upstream
 * (the rest are closed); an idle one is closed after `idleMs` (sweep) or
 * when the upstream closes it or sends anything.
 */
class UpstreamPool {
  readonly #idle = new Map<string, Upstream[]>();
  readonly #all = new Set<Upstream>();
  constructor(private readonly o: { maxIdle: number; idleMs: number }) {}

  take(route: { key: string; host: string; port: number }): Upstream {
    const idle = this.#idle.get(route.key);
    while (idle?.length) {
      const up = idle.pop()!;
      if (up.dead || up.socket.destroyed || !up.socket.writable) continue;
      up.reset();
      up.reused = true;
      return up;
    }
    const up = new Upstream(route.key, route.host, route.port, (u) => this.#all.delete(u));
    up.lastActivity = performance.now();
    this.#all.add(up);
    return up;
  }

  give(up: Upstream): void {
    up.conn = undefined;
    up.ex = undefined;
    // Paused for its last client's backpressure, it would answer the next client's request into a socket nobody reads;
    // idle, it reads, so that the upstream closing it (or sending out of turn) is seen at once.
    up.socket.resume();
    let idle = this.#idle.get(up.key);
    if (!idle) this.#idle.set(up.key, (idle = []));
    if (idle.length >= this.o.maxIdle) {
      up.drop();
      return;
    }
    up.idleSince = performance.now();
    idle.push(up);
  }

  /** Closes idle connections older than idleMs, forgets dead ones. */
  sweep(now: number): void {
    for (const idle of this.#idle.values()) {
      for (let i = idle.length - 1; i >= 0; i--) {
        const up = idle[i]!;
        if (up.dead || now - up.idleSince > this.o.idleMs) {
          up.drop();
          idle.splice(i, 1);
        }
      }
    }
  }

  destroy(): void {
    for (const up of this.#all) up.drop();
    this.#all.clear();
    this.#idle.clear();
  }
}

/**
 * HTTP mode: a streaming HTTP/1.1 relay. Each request head on an
 * authenticated connection is read once (llhttp, http-head-parser.ts),
 * judged (request target, route, access rule), rewritten as one block
 * (hop-by-hop and spoofable headers out, Host, forwarding and identity
 * headers in, framing from what was read) and written to a kept-alive
 * upstream connection; the body follows as it arrives, and the response
 * comes back the same way, its head rewritten and its body streamed, with
 * each read's output in one write. Requests on a connection are answered in
 * order; a pipelined request waits (the connection stops reading) until
 * the one before is answered. A known client that may not in gets a page
 * saying why, in Japanese and English.
 */
export function httpForwarder(o: HttpForwarderOptions): HttpForwarder {
  // Per route, once: the upstream's path prefix; longest route path first.
  const routes: Route[] = [...o.routes]
    .sort((a, b) => b.path.length - a.path.length)
    .map((r) => ({
      ...r,
      prefix: r.upstream.pathname === '/' ? '' : r.upstream.pathname.replace(/\/$/, ''),
      key: r.upstream.host,
      host: r.upstream.hostname.replace(/^\[|\]$/g, ''),
      port: Number(r.upstream.port || 80),
      hostLine: `host: ${r.upstream.host}\r\n`,
    }));
  const pool = new UpstreamPool({ maxIdle: 256, idleMs: 30_000 });
  const connections = new Set<ClientConnection>();
  const t = o.timeouts;
  const keepAliveMs = Math.min(KEEP_ALIVE_MS, t.idleTimeoutMs);
  // One sweep a second for every timeout (no timer per request).
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of connections) c.checkTimeouts(now);
    pool.sweep(now);
  }, 1000).unref();

  const page = (status: number, reason: RefusalReason, id: ClientIdentity | undefined, close: boolean): OwnAnswer => ({
    status,
    body: refusalPage(reason, {
      ...(id?.facilityNumber ? { facilityNumber: id.facilityNumber } : {}),
      ...(id?.facilityName ? { facilityName: id.facilityName } : {}),
      ...(id ? { serial: id.serial } : {}),
      ...(o.contact ? { contact: o.contact } : {}),
      ...(o.selfCheckUrl ? { selfCheckUrl: o.selfCheckUrl } : {}),
    }),
    headers: `content-type: text/html; charset=utf-8\r\ncache-control: no-store\r\nx-sekisho-refusal: ${reason}\r\n`,
    close,
  });
  const text = (status: number, body: string, close: boolean): OwnAnswer => ({ status, body, headers: 'content-type: text/plain; charset=utf-8\r\ncache-control: no-store\r\n', close });
  const bare = (status: number): OwnAnswer => ({ status, body: '', headers: '', close: true });

  class ClientConnection {
    readonly parser: MessageParser;
    readonly state: ConnectionState | undefined;
    /** Requests read and not yet answered, in order; the first is the one being served. */
    readonly queue: Exchange[] = [];
    /** The request being read. */
    reading: Exchange | undefined;
    /** A message has begun and is not complete (its start, for the timeouts). */
    messageStart = -1;
    /** Between a message's first byte and its end. */
    inMessage = false;
    headDone = false;
    lastActivity = performance.now();
    /** No more requests are read (Connection: close, an upgrade, an error, the client's end). */
    noMore = false;
    clientEnded = false;
    closed = false;
    forwarding: string | undefined;

    constructor(readonly socket: TLSSocket) {
      this.state = o.stateOf(socket);
      // The first request's head is due within the headers timeout of the connection's start.
      this.messageStart = this.lastActivity;
      this.parser = new MessageParser('request', {
        begin: () => {
          this.messageStart = performance.now();
          this.inMessage = true;
          this.headDone = false;
        },
        head: (h) => {
          this.headDone = true;
          // One read can hold hundreds of pipelined requests, each earning an answer (a refusal page is ~40× its request).
          if (this.queue.length >= MAX_PIPELINED) throw new FramingError('PIPELINE_DEPTH', `more than ${MAX_PIPELINED} requests waiting on one connection`);
          this.reading = this.exchangeFor(h);
          this.queue.push(this.reading);
          return false;
        },
        body: (b) => {
          const ex = this.reading!;
          if (ex.own || ex.body === 'none') return;
          if (ex.upstream && this.queue[0] === ex) this.toUpstream(ex, b);
          else ex.pending.push(b);
        },
        done: () => {
          const ex = this.reading!;
          this.reading = undefined;
          this.messageStart = -1;
          this.inMessage = false;
          ex.read = true;
          if (!ex.keepAlive) this.noMore = true;
          if (this.queue[0] !== ex) return;
          if (ex.upstream && ex.body === 'chunked') this.writeUpstream(ex.upstream, CHUNK_END);
          // An own answer written while the body was still coming: done now that it is read.
          if (ex.own && ex.answered) {
            this.queue.shift();
            this.finished(ex);
          }
        },
      });
      socket.allowHalfOpen = true;
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.on('end', () => this.onEnd());
      socket.on('error', () => undefined);
      socket.on('drain', () => {
        this.queue[0]?.upstream?.socket.resume();
        this.pump();
        this.resumeReading();
      });
      socket.once('close', () => this.onClose());
      connections.add(this);
    }

    onData(chunk: Buffer): void {
      // Bytes no longer read (after a last request, a refusal, an error) are no sign of life: they keep nothing open.
      if (this.noMore) return;
      this.lastActivity = performance.now();
      try {
        this.parser.execute(chunk);
      } catch (e) {
        if (!(e instanceof FramingError)) throw e;
        this.badRequest(e);
        return;
      }
      this.pump();
    }

    /** A request that cannot be framed: answered 400 (431 for a head too large) and the connection closed; nothing more is read. */
    badRequest(e: FramingError): void {
      this.noMore = true;
      this.inMessage = false;
      // Bytes after a request that said Connection: close are not read: no error to answer.
      if (e.code === 'HPE_CLOSED_CONNECTION') {
        this.pump();
        return;
      }
      const ex = this.reading;
      this.reading = undefined;
      if (ex) {
        if (ex === this.queue[0] && (ex.upstream || ex.answered)) {
          // Its head went on and its body is broken: the exchange cannot end well.
          this.socket.destroy();
          return;
        }
        this.queue.splice(this.queue.indexOf(ex), 1);
      }
      this.unrecorded(e.code === 'HPE_HEADER_OVERFLOW' || e.code === 'HEAD_FIELDS' ? 431 : e.code === 'PIPELINE_DEPTH' ? 429 : 400);
    }

    /** A bare answer (400, 408, 431) after those already queued, then the end of the connection. */
    unrecorded(status: number): void {
      this.queue.push({ ...this.blank('', ''), own: bare(status), read: true, keepAlive: false, unrecorded: true });
      this.pump();
    }

    onEnd(): void {
      this.clientEnded = true;
      if (this.inMessage) {
        // The client stopped in the middle of a request.
        this.socket.destroy();
        return;
      }
      this.noMore = true;
      if (!this.queue.length) this.end();
    }

    /** Ends the client side once: a second end() on a finished stream builds an error (stack and all) only to drop it. */
    end(): void {
      if (!this.socket.writableEnded) this.socket.end();
    }

    onClose(): void {
      this.closed = true;
      connections.delete(this);
      for (const ex of this.queue) ex.upstream?.drop();
      this.queue.length = 0;
      this.parser.close();
    }

    checkTimeouts(now: number): void {
      if (this.closed) return;
      if (this.messageStart >= 0 && !this.noMore) {
        const late = this.headDone ? now - this.messageStart > t.requestTimeoutMs : now - this.messageStart > t.headersTimeoutMs;
        if (late) {
          this.noMore = true;
          if (this.queue.length) this.socket.destroy();
          else {
            this.reading = undefined;
            this.inMessage = false;
            this.unrecorded(408);
          }
          return;
        }
      }
      const up = this.queue[0]?.upstream;
      const quiet = now - Math.max(this.lastActivity, up?.lastActivity ?? 0);
      if (this.queue.length ? quiet > t.idleTimeoutMs : this.messageStart < 0 && quiet > keepAliveMs) this.socket.destroy();
    }

    blank(method: string, url: string): Exchange {
      return { method, url, keepAlive: true, http10: false, head: '', body: 'none', pending: [], read: false, answered: false, status: 0, closeAfter: false, retried: false, expectContinue: false, unrecorded: false };
    }

    /** What to do with a request, decided from its head alone (nothing is written here). */
    exchangeFor(h: MessageHead): Exchange {
      const ex = this.blank(h.method, h.url);
      ex.keepAlive = h.keepAlive && !h.upgrade;
      ex.http10 = h.minor === 0;
      const state = this.state;
      if (!state || 'refusal' in state) {
        ex.own = page(403, state && 'refusal' in state ? state.refusal : 'HANDSHAKE_FAILED', state?.identity, true);
        return ex;
      }
      const id = state.identity;
      if (h.major !== 1) {
        ex.own = bare(505);
        return ex;
      }
      if (h.method === 'CONNECT') {
        ex.own = text(400, 'bad request target / 不正なリクエストです\n', true);
        return ex;
      }
      // Route rules judge, and the upstream receives, the one normalized path (request-target.ts).
      let path: string;
      let routePath: string;
      let query: string;
      try {
        ({ path, routePath, query } = normalizeTarget(h.url));
      } catch (e) {
        if (!isSekishoError(e)) throw e;
        o.onBadTarget(this.socket, id, e);
        ex.own = text(400, 'bad request target / 不正なリクエストです\n', true);
        ex.path = '(bad request target)';
        return ex;
      }
      ex.path = path;
      // Framing: what llhttp read decides; only chunked is a transfer coding the gateway forwards.
      let length: string | undefined;
      let chunked = false;
      let expect: string | undefined;
      const raw = h.raw;
      for (let i = 0; i < raw.length; i += 2) {
        const n = raw[i]!;
        if (n.length === 14 && n.toLowerCase() === 'content-length') length = decimal(raw[i + 1]!);
        else if (n.length === 17 && n.toLowerCase() === 'transfer-encoding') {
          if (raw[i + 1]!.trim().toLowerCase() !== 'chunked') {
            ex.own = text(501, 'transfer coding not implemented / 対応していない転送符号化です\n', true);
            return ex;
          }
          chunked = true;
        } else if (n.length === 6 && n.toLowerCase() === 'expect') expect = raw[i + 1]!;
      }
      if (expect !== undefined) {
        if (expect.trim().toLowerCase() !== '100-continue' || ex.http10) {
          ex.own = bare(417);
          return ex;
        }
        ex.expectContinue = true;
      }
      // Judged by the path without its parameters (`;…`), which is what a Java upstream routes by.
      const route = routes.find((r) => routePath.startsWith(r.path) || (r.path.endsWith('/') && routePath === r.path.slice(0, -1)));
      if (!route || !allows(route.allow, id)) {
        o.onAccessDenied(this.socket, id, path);
        ex.own = page(403, 'ACCESS_DENIED', id, false);
        return ex;
      }
      ex.route = route;
      ex.body = chunked ? 'chunked' : length !== undefined ? 'length' : 'none';
      const framing = chunked ? 'transfer-encoding: chunked\r\n' : length !== undefined ? `content-length: ${length}\r\n` : '';
      this.forwarding ??= forwardingLines(id, this.socket.remoteAddress ?? '');
      ex.head = `${h.method} ${route.prefix}${path}${query} HTTP/1.1\r\n${route.hostLine}${forwardLines(raw)}${framing}connection: keep-alive\r\n${this.forwarding}\r\n`;
      // An upgrade request is relayed as a plain one (the upstream may not switch: 101 is refused); its body is read and
      // forwarded like any other, and nothing after it (done() ends the connection: it is not kept alive).
      return ex;
    }

    /** Starts the first request in the queue when it is not started; stops reading while a later one waits. */
    pump(): void {
      const ex = this.queue[0];
      if (this.queue.length > 1) this.socket.pause();
      if (!ex || ex.answered || ex.upstream) return;
      if (ex.expectContinue && !ex.read && !ex.own) this.write(CONTINUE);
      if (ex.own) {
        // The gateway's own answers (refusal pages) wait while the client has not taken the last one ('drain' goes on).
        if (!this.socket.writableNeedDrain) this.answerOwn(ex);
        return;
      }
      this.connect(ex);
    }

    connect(ex: Exchange): void {
      const route = ex.route!;
      const up = pool.take(route);
      up.conn = this;
      up.ex = ex;
      ex.upstream = up;
      // The head and whatever body is already read, in one write.
      const head = Buffer.from(ex.head, 'latin1');
      const parts = [head];
      for (const b of ex.pending) this.frame(ex, b, parts);
      ex.pending = [];
      if (ex.read && ex.body === 'chunked') parts.push(CHUNK_END);
      this.writeUpstream(up, parts.length === 1 ? head : Buffer.concat(parts));
    }

    upData(up: Upstream, chunk: Buffer): void {
      up.gotBytes = true;
      up.lastActivity = performance.now();
      try {
        up.parser.execute(chunk);
      } catch (e) {
        if (!(e instanceof FramingError)) throw e;
        if (!up.done) {
          this.upstreamFailed(up, `the upstream's response cannot be read: ${e.code}`);
          return;
        }
        // Bytes after a complete response: the response stands, the connection is not reused.
        up.keepAlive = false;
      }
      this.flush(up);
      if (up.done) this.complete(up.ex!);
    }

    upEnd(up: Upstream): void {
      if (up.done) return;
      try {
        up.parser.finish();
      } catch (e) {
        if (!(e instanceof FramingError)) throw e;
      }
      this.flush(up);
      if (up.done) this.complete(up.ex!);
      else this.upstreamFailed(up, 'the upstream closed the connection before its response was complete');
    }

    upDrain(): void {
      this.resumeReading();
    }

    frame(ex: Exchange, b: Buffer, parts: Buffer[]): void {
      if (ex.body === 'chunked') parts.push(Buffer.from(`${b.length.toString(16)}\r\n`, 'latin1'), b, CRLF);
      else parts.push(b);
    }

    toUpstream(ex: Exchange, b: Buffer): void {
      if (ex.body === 'chunked') {
        const parts: Buffer[] = [];
        this.frame(ex, b, parts);
        this.writeUpstream(ex.upstream!, Buffer.concat(parts));
      } else this.writeUpstream(ex.upstream!, b);
    }

    writeUpstream(up: Upstream, b: Buffer): void {
      if (!up.socket.write(b)) this.socket.pause();
    }

    respHead(up: Upstream, h: MessageHead): boolean {
      const ex = up.ex!;
      if (up.done) throw new FramingError('EXTRA', 'a response nobody asked for');
      if (h.status < 200) {
        // 100 Continue and other 1xx: read, not forwarded (101 means an upgrade the gateway never asked for).
        if (h.status === 101) throw new FramingError('UPGRADE', 'the upstream switched protocols');
        if (++up.informationalCount > MAX_INFORMATIONAL) throw new FramingError('INFORMATIONAL', `more than ${MAX_INFORMATIONAL} informational (1xx) answers to one request`);
        up.informational = true;
        return false;
      }
      up.informational = false;
      up.keepAlive = h.keepAlive;
      ex.status = h.status;
      const noBody = ex.method === 'HEAD' || h.status === 204 || h.status === 304;
      const raw = h.raw;
      const named = connectionNamed(raw);
      let lines = '';
      let length: string | undefined;
      let chunked = false;
      let date = false;
      for (let i = 0; i < raw.length; i += 2) {
        const n = raw[i]!.toLowerCase();
        if (n === 'content-length') length = decimal(raw[i + 1]!);
        else if (n === 'transfer-encoding') {
          // Re-chunked for the client: any other coding (gzip, chunked) would reach it undone and unnamed.
          if (raw[i + 1]!.trim().toLowerCase() !== 'chunked') throw new FramingError('CODING', `a response transfer coding the gateway does not relay (${raw[i + 1]!.trim().slice(0, 40)})`);
          chunked = true;
        } else if (isEndToEnd(n, named)) {
          if (n === 'date') date = true;
          lines += `${n}: ${raw[i + 1]}\r\n`;
        }
      }
      // The client's framing: the upstream's length when it gave one, chunks otherwise (HTTP/1.0: until close).
      if (noBody) {
        up.mode = 'none';
        if (length !== undefined && !chunked) lines += `content-length: ${length}\r\n`;
      } else if (length !== undefined && !chunked) {
        up.mode = 'length';
        lines += `content-length: ${length}\r\n`;
      } else if (ex.http10) {
        up.mode = 'close';
        ex.closeAfter = true;
      } else {
        up.mode = 'chunked';
        lines += 'transfer-encoding: chunked\r\n';
      }
      // An answer before the whole request was read (an early 413, say): the connection ends with it.
      if (!ex.read || !ex.keepAlive) ex.closeAfter = true;
      if (!date) lines += `date: ${httpDate()}\r\n`;
      const head = `HTTP/1.1 ${h.status} ${STATUS_CODES[h.status] ?? 'Unknown'}\r\n${lines}${ex.closeAfter ? CLOSE_LINE : KEEP_ALIVE_LINES}\r\n`;
      this.push(up, Buffer.from(head, 'latin1'));
      ex.answered = true;
      return noBody;
    }

    respBody(up: Upstream, b: Buffer): void {
      if (up.informational) return;
      if (up.mode === 'chunked') {
        this.push(up, Buffer.from(`${b.length.toString(16)}\r\n`, 'latin1'));
        this.push(up, b);
        this.push(up, CRLF);
      } else this.push(up, b);
    }

    respDone(up: Upstream): void {
      if (up.informational) {
        up.informational = false;
        return;
      }
      if (up.mode === 'chunked') this.push(up, CHUNK_END);
      up.done = true;
    }

    push(up: Upstream, b: Buffer): void {
      up.out.push(b);
      up.outBytes += b.length;
    }

    /** What one upstream read produced goes to the client in one write (a copy: the read's buffer is reused by the next read). */
    flush(up: Upstream): void {
      if (!up.out.length) return;
      const one = up.out.length === 1 ? up.out[0]! : undefined;
      const b = one && one.buffer !== UPSTREAM_READS.buffer ? one : Buffer.concat(up.out, up.outBytes);
      up.out = [];
      up.outBytes = 0;
      if (!this.write(b)) up.socket.pause();
    }

    write(b: Buffer): boolean {
      return this.closed ? true : this.socket.write(b);
    }

    /** The response is complete (and, for the upstream to be reused, the request too). */
    complete(ex: Exchange): void {
      const up = ex.upstream!;
      if (!ex.read) {
        // Answered early: the client's remaining body is not read; the connection ends with the answer.
        this.noMore = true;
      }
      if (this.queue[0] !== ex) return;
      this.queue.shift();
      if (up.keepAlive && ex.read && up.mode !== 'close') pool.give(up);
      else up.drop();
      this.finished(ex);
    }

    /** The exchange is answered (and out of the queue): recorded; the connection goes on or ends. */
    finished(ex: Exchange): void {
      if (ex.unrecorded) {
        this.noMore = true;
        this.queue.length = 0;
        this.end();
        return;
      }
      const refused = !this.state || 'refusal' in this.state;
      o.onRequest(ex.status, this.socket, ex.method, ex.url, this.state?.identity, refused ? undefined : ex.path);
      if (ex.closeAfter || !ex.read) {
        this.noMore = true;
        this.queue.length = 0;
        this.end();
        return;
      }
      if (this.clientEnded && !this.queue.length && !this.reading) {
        this.end();
        return;
      }
      this.resumeReading();
      this.pump();
    }

    /**
     * Reads the client again once at most one request is open and what was
     * written to it is taken: a client that sends and never reads gets no
     * more answers queued for it than one read's requests produce.
     */
    resumeReading(): void {
      if (this.queue.length <= 1 && !this.closed && !this.socket.writableNeedDrain) this.socket.resume();
    }

    upstreamFailed(up: Upstream, message: string): void {
      const ex = up.ex!;
      if (up.done || ex.upstream !== up) return;
      up.done = true;
      up.drop();
      if (this.closed) return;
      // A kept-alive connection the upstream had closed meanwhile: a bodiless GET, HEAD or OPTIONS goes again, once, on a new
      // one (as nginx retries only methods that change nothing: a DELETE the upstream did but did not answer must not run twice).
      if (up.reused && !up.gotBytes && ex.body === 'none' && !ex.retried && RETRYABLE.has(ex.method)) {
        ex.retried = true;
        ex.upstream = undefined;
        this.connect(ex);
        return;
      }
      o.onUpstreamError(message);
      if (ex.answered) {
        // The client has part of an answer: only closing tells it the rest will not come.
        this.socket.destroy();
        return;
      }
      ex.upstream = undefined;
      ex.own = text(502, 'upstream unavailable / 接続先のサービスに接続できません\n', !ex.read);
      // The rest of its body (if any) is read and dropped, so the connection stays in step.
      ex.body = 'none';
      this.answerOwn(ex);
    }

    /** Writes the gateway's own answer for the first request in the queue. */
    answerOwn(ex: Exchange): void {
      const a = ex.own!;
      ex.answered = true;
      ex.status = a.status;
      // A client waiting to send its body (Expect: 100-continue) gets no 100 here: it may never send it, so the connection ends.
      if (a.close || !ex.keepAlive || (ex.expectContinue && !ex.read)) ex.closeAfter = true;
      const body = ex.method === 'HEAD' ? '' : a.body;
      const head = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? 'Unknown'}\r\n${a.headers}content-length: ${Buffer.byteLength(a.body)}\r\ndate: ${httpDate()}\r\n${ex.closeAfter ? CLOSE_LINE : KEEP_ALIVE_LINES}\r\n`;
      const b = Buffer.allocUnsafe(head.length + Buffer.byteLength(body));
      b.write(head, 0, 'latin1');
      if (body) b.write(body, head.length, 'utf8');
      this.write(b);
      // Done now, or (a body still coming on a connection that stays) when the body has been read and dropped.
      if (ex.read || ex.closeAfter) {
        this.queue.shift();
        this.finished(ex);
      }
    }
  }

  return {
    serve: (socket) => void new ClientConnection(socket),
    closeIdleConnections: () => {
      for (const c of connections) if (!c.queue.length && !c.inMessage) c.end();
    },
    closeAllConnections: () => {
      for (const c of connections) c.socket.destroy();
    },
    closeUpstreams: () => {
      clearInterval(sweep);
      pool.destroy();
    },
  };
}

let dateText = '';
let dateSecond = -1;
/** The Date header's value, made once a second. */
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
