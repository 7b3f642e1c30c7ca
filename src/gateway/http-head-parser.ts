import { createRequire } from 'node:module';

/**
 * HTTP/1.1 message framing for the gateway's relay, by llhttp: the parser
 * Node's own HTTP server and client run, with the same strict settings
 * (no lenient flag), so the relay refuses exactly what Node's server refused
 * before it: Content-Length beside Transfer-Encoding, duplicate or signed or
 * non-decimal Content-Length, a Transfer-Encoding whose last coding is not
 * chunked (requests), obs-fold, bare LF, NUL and other control characters in
 * names or values, invalid chunk sizes, data after `Connection: close`, and
 * heads over MAX_HEAD_BYTES. Nothing here is written by hand: this module only
 * gives the binding (Node's `_http_common`) a typed face.
 */

/** Node's default --max-http-header-size: the request head (request line and headers) and the upstream's response head. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Header fields in one head, at most (Node's server kept only the first 2000; the relay refuses the head). */
export const MAX_HEAD_FIELDS = 2000;

interface Binding {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | LlhttpError;
  finish(): number | LlhttpError | undefined;
  close(): void;
  remove(): void;
  [callback: number]: unknown;
}
interface HTTPParserClass {
  new (): Binding;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}
interface LlhttpError extends Error {
  code: string;
  reason?: string;
  bytesParsed?: number;
}

const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: HTTPParserClass; methods: string[] };
const { HTTPParser } = common;
const METHODS = common.methods;

/** One message head, as llhttp read it. */
export interface MessageHead {
  major: number;
  minor: number;
  /** name, value, name, value… as received (names in their case, values without surrounding whitespace; Latin-1, one char per byte). */
  raw: string[];
  /** Requests: the method and the request target as sent. */
  method: string;
  url: string;
  /** Responses. */
  status: number;
  /** Whether the sender may send another message on the connection after this one (HTTP/1.1 without `close`, HTTP/1.0 with `keep-alive`). */
  keepAlive: boolean;
  /** An upgrade or CONNECT: llhttp stops reading at the end of this message. */
  upgrade: boolean;
}

export interface MessageEvents {
  /** A message starts (its first byte). */
  begin(): void;
  /** The head is complete; return true to read no body (a response to HEAD). */
  head(h: MessageHead): boolean;
  /** Body bytes (chunked bodies already decoded); the buffer may be kept. */
  body(b: Buffer): void;
  /** The message is complete (trailers are read and dropped). */
  done(): void;
}

/** A framing or syntax error: llhttp's code (HPE_…) and reason. */
export class FramingError extends Error {
  constructor(
    readonly code: string,
    reason: string,
  ) {
    super(reason);
  }
}

/** Reads messages of one direction of one connection; events go to `events`. */
export class MessageParser {
  readonly #p: Binding;
  #raw: string[] = [];
  #url = '';
  #inHead = false;
  #fields = 0;
  /** What an event handler threw: parsing goes on inside llhttp, unheard, and execute() throws it. */
  #failure: unknown;
  #closed = false;

  constructor(
    kind: 'request' | 'response',
    private readonly events: MessageEvents,
  ) {
    const p = new HTTPParser();
    p.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, MAX_HEAD_BYTES, HTTPParser.kLenientNone);
    // No exception may cross the binding: a handler's is kept, the rest of the bytes go unheard, and execute() throws it.
    const guard = <A extends unknown[], R>(fn: (...a: A) => R, otherwise: R) => (...a: A): R => {
      if (this.#failure !== undefined) return otherwise;
      try {
        return fn(...a);
      } catch (e) {
        this.#failure = e ?? new Error('undefined thrown');
        return otherwise;
      }
    };
    p[HTTPParser.kOnMessageBegin] = guard(() => {
      this.#inHead = true;
      this.#raw = [];
      this.#url = '';
      this.#fields = 0;
      events.begin();
      return 0;
    }, 0);
    // Heads with many fields arrive in parts; after the head, these are trailers (dropped).
    p[HTTPParser.kOnHeaders] = guard((raw: string[], url: string) => {
      if (!this.#inHead) return;
      this.#fields += raw.length >> 1;
      if (this.#fields > MAX_HEAD_FIELDS) throw new FramingError('HEAD_FIELDS', `more than ${MAX_HEAD_FIELDS} header fields`);
      for (const x of raw) this.#raw.push(x);
      this.#url += url;
    }, undefined);
    p[HTTPParser.kOnHeadersComplete] = guard((major: number, minor: number, raw: string[] | undefined, method: number | undefined, url: string | undefined, status: number | undefined, _message: string | undefined, upgrade: boolean, keepAlive: boolean) => {
      this.#inHead = false;
      let all = raw ?? [];
      if (this.#raw.length) {
        for (const x of all) this.#raw.push(x);
        all = this.#raw;
      }
      if (all.length >> 1 > MAX_HEAD_FIELDS) throw new FramingError('HEAD_FIELDS', `more than ${MAX_HEAD_FIELDS} header fields`);
      this.#raw = [];
      const skipBody = events.head({ major, minor, raw: all, method: method === undefined ? '' : (METHODS[method] ?? ''), url: this.#url + (url ?? ''), status: status ?? 0, keepAlive, upgrade });
      return skipBody ? 1 : 0;
    }, 1);
    p[HTTPParser.kOnBody] = guard((b: Buffer) => events.body(b), undefined);
    p[HTTPParser.kOnMessageComplete] = guard(() => events.done(), undefined);
    this.#p = p;
  }

  /** Feeds bytes; throws FramingError on a framing or syntax error, or what an event handler threw. Nothing, once closed. */
  execute(data: Buffer): void {
    if (this.#closed) return;
    if (this.#failure !== undefined) throw this.#failure;
    const r = this.#p.execute(data);
    if (this.#failure !== undefined) throw this.#failure;
    if (typeof r !== 'number') throw asFramingError(r);
  }

  /** The peer closed its side: completes a body read until close, or throws FramingError when a message was cut short. Nothing, once closed. */
  finish(): void {
    if (this.#closed) return;
    if (this.#failure !== undefined) throw this.#failure;
    const r = this.#p.finish();
    if (this.#failure !== undefined) throw this.#failure;
    if (r !== undefined && typeof r !== 'number') throw asFramingError(r);
  }

  /**
   * Ends the parser (once; it reads nothing after). Only the binding's
   * close() deletes the native parser: until then a global handle keeps it
   * and, through its callbacks, everything they reach (the connection, its
   * TLS socket and OpenSSL's state), so a parser merely freed (free() only
   * reports its end to async hooks, for a parser going back to a pool) kept
   * every closed connection alive. Deleted on the next turn of the event
   * loop, as Node's HTTP server deletes a parser it does not pool, so that
   * no execute() of it is on the stack.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const p = this.#p;
    p.remove();
    setImmediate(() => p.close());
  }
}

function asFramingError(e: LlhttpError | undefined): Error {
  if (!e || typeof e.code !== 'string') return new FramingError('HPE_UNKNOWN', 'the message cannot be read');
  return new FramingError(e.code, e.reason ?? e.message);
}
