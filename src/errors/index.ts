/**
 * One closed set of error kinds, each with a stable code. Domain code throws
 * `SekishoError`; only `cli/` turns a kind into an exit status and only `web/`
 * into an HTTP status. Messages say what to do next; where a clinic reads them
 * they come in Japanese and English (`ja`).
 */
export type ErrorKind =
  | 'malformed' // input cannot be parsed or violates a format rule
  | 'badRequest' // well-formed but refused by policy
  | 'unauthorized' // wrong secret (passphrase, PIN, password)
  | 'notFound'
  | 'conflict' // already exists / wrong state
  | 'internal';

export interface SekishoErrorOptions {
  /** Japanese text for messages a facility reads. */
  ja?: string;
  cause?: unknown;
}

export class SekishoError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly ja: string | undefined;

  constructor(kind: ErrorKind, code: string, message: string, options: SekishoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SekishoError';
    this.kind = kind;
    this.code = code;
    this.ja = options.ja;
  }
}

export const malformed = (code: string, message: string, o?: SekishoErrorOptions) =>
  new SekishoError('malformed', code, message, o);
export const badRequest = (code: string, message: string, o?: SekishoErrorOptions) =>
  new SekishoError('badRequest', code, message, o);
export const unauthorized = (code: string, message: string, o?: SekishoErrorOptions) =>
  new SekishoError('unauthorized', code, message, o);
export const notFound = (code: string, message: string, o?: SekishoErrorOptions) =>
  new SekishoError('notFound', code, message, o);
export const conflict = (code: string, message: string, o?: SekishoErrorOptions) =>
  new SekishoError('conflict', code, message, o);
export const internal = (code: string, message: string, o?: SekishoErrorOptions) =>
  new SekishoError('internal', code, message, o);

export function isSekishoError(e: unknown): e is SekishoError {
  return e instanceof SekishoError;
}

/** A listening socket that could not be opened is the operator's to fix: say which address and which setting. */
export function listenFailure(e: unknown, address: string, setting: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return badRequest('PORT_IN_USE', `${address} is already in use (another sekisho, or another server); stop it or choose another ${setting} HOST:PORT`);
  if (code === 'EACCES') return badRequest('PORT_FORBIDDEN', `this user may not listen on ${address} (ports below 1024 need privileges); choose another ${setting} HOST:PORT`);
  if (code === 'EADDRNOTAVAIL') return badRequest('ADDRESS_UNAVAILABLE', `${address} is not an address of this machine; choose another ${setting} HOST:PORT`);
  return e;
}
