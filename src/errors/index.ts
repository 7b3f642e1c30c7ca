/**
 * One closed set of error kinds, each with a stable code. Domain code throws
 * `SekishoError`; only `cli/` turns a kind into an exit status and only `web/`
 * into an HTTP status, each from the kind alone (never from the code). Messages
 * say what to do next; where a clinic reads them they come in Japanese and
 * English (`ja`). The message of an `internal` or `unavailable` error is for
 * the operator: it never reaches a web client.
 */
export type ErrorKind =
  | 'malformed' // input cannot be parsed or violates a format rule
  | 'badRequest' // well-formed but refused by policy
  | 'unauthorized' // wrong or missing secret (passphrase, PIN, password, notice IDs)
  | 'forbidden' // who is asking is known, but may not do this (suspended facility, revoked certificate)
  | 'notFound'
  | 'methodNotAllowed' // the operation exists, but not with this method
  | 'conflict' // already exists / wrong state
  | 'gone' // existed, but is spent for good (an expired, used or revoked notice)
  | 'tooLarge' // the input is larger than the limit
  | 'unsupportedMediaType' // the input comes in a format this operation does not take
  | 'locked' // locked after too many wrong tries; an operator unlocks it
  | 'rateLimited' // too many attempts: try again after `retryAfterSeconds`
  | 'internal' // a defect or a broken invariant: the operator must look
  | 'unavailable'; // cannot serve now (CA locked, store unreachable or busy): try again later

export const ERROR_KINDS: readonly ErrorKind[] = ['malformed', 'badRequest', 'unauthorized', 'forbidden', 'notFound', 'methodNotAllowed', 'conflict', 'gone', 'tooLarge', 'unsupportedMediaType', 'locked', 'rateLimited', 'internal', 'unavailable'];

export interface SekishoErrorOptions {
  /** Japanese text for messages a facility reads. */
  ja?: string;
  cause?: unknown;
  /** When trying again makes sense (rateLimited, unavailable): seconds to wait. */
  retryAfterSeconds?: number;
}

export class SekishoError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly ja: string | undefined;
  /** Seconds after which a retry may succeed; always set for `rateLimited`. */
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: ErrorKind, code: string, message: string, options: SekishoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SekishoError';
    this.kind = kind;
    this.code = code;
    this.ja = options.ja;
    const r = options.retryAfterSeconds;
    this.retryAfterSeconds = r === undefined ? undefined : Math.max(1, Math.ceil(r));
  }
}

type Options = Omit<SekishoErrorOptions, 'retryAfterSeconds'>;

export const malformed = (code: string, message: string, o?: SekishoErrorOptions) => new SekishoError('malformed', code, message, o);
export const badRequest = (code: string, message: string, o?: SekishoErrorOptions) => new SekishoError('badRequest', code, message, o);
export const unauthorized = (code: string, message: string, o?: SekishoErrorOptions) => new SekishoError('unauthorized', code, message, o);
export const forbidden = (code: string, message: string, o?: Options) => new SekishoError('forbidden', code, message, o);
export const notFound = (code: string, message: string, o?: SekishoErrorOptions) => new SekishoError('notFound', code, message, o);
export const methodNotAllowed = (code: string, message: string, o?: Options) => new SekishoError('methodNotAllowed', code, message, o);
export const conflict = (code: string, message: string, o?: SekishoErrorOptions) => new SekishoError('conflict', code, message, o);
export const gone = (code: string, message: string, o?: Options) => new SekishoError('gone', code, message, o);
export const tooLarge = (code: string, message: string, o?: Options) => new SekishoError('tooLarge', code, message, o);
export const unsupportedMediaType = (code: string, message: string, o?: Options) => new SekishoError('unsupportedMediaType', code, message, o);
export const locked = (code: string, message: string, o?: Options) => new SekishoError('locked', code, message, o);
/** Too many attempts; the wait is part of the error, so every edge can say it (HTTP Retry-After). */
export const rateLimited = (code: string, message: string, retryAfterSeconds: number, o?: Options) =>
  new SekishoError('rateLimited', code, message, { ...o, retryAfterSeconds });
export const internal = (code: string, message: string, o?: SekishoErrorOptions) => new SekishoError('internal', code, message, o);
/** The service cannot serve now; the message is the operator's (what to fix), never shown to a web client. */
export const unavailable = (code: string, message: string, o?: SekishoErrorOptions) => new SekishoError('unavailable', code, message, o);

export function isSekishoError(e: unknown): e is SekishoError {
  return e instanceof SekishoError;
}

/** A listening socket that could not be opened is the operator's to fix: say which address and which setting. */
export function listenFailure(e: unknown, address: string, setting: string): unknown {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (code === 'EADDRINUSE') return badRequest('PORT_IN_USE', `${address} is already in use (another sekisho, or another server); stop it or choose another ${setting} HOST:PORT`);
  if (code === 'EACCES') return badRequest('PORT_FORBIDDEN', `this user may not listen on ${address} (ports below 1024 need privileges); choose another ${setting} HOST:PORT`);
  if (code === 'EADDRNOTAVAIL') return badRequest('ADDRESS_UNAVAILABLE', `${address} is not an address of this machine; choose another ${setting} HOST:PORT`);
  return e;
}
export { HIDDEN_CHARACTERS, terminalText } from './terminal-text.js';
