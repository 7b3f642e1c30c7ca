import type { OutgoingHttpHeaders } from 'node:http';
import type { ClientIdentity } from './client-identity.js';

/**
 * The headers an HTTP upstream learns the client from. Names under
 * X-Sekisho-*, values ASCII (names in Japanese percent-encoded as UTF-8,
 * RFC 3986), and RFC 9440's Client-Cert / Client-Cert-Chain (structured-field
 * byte sequences of the DER). Every incoming copy of these, and of the
 * forwarding headers, is removed first, under every spelling an upstream
 * folds into the same name (see isSpoofable): a client cannot claim to be
 * another facility by sending them.
 */
export const IDENTITY_HEADERS = {
  facilityNumber: 'x-sekisho-facility-number',
  facilityName: 'x-sekisho-facility-name',
  deviceName: 'x-sekisho-device-name',
  profile: 'x-sekisho-profile',
  serial: 'x-sekisho-cert-serial',
  fingerprint: 'x-sekisho-cert-sha256',
  subject: 'x-sekisho-subject',
  clientCert: 'client-cert',
  clientCertChain: 'client-cert-chain',
} as const;

const STRIPPED_PREFIXES = ['x-sekisho-', 'x-ssl-client', 'ssl-client', 'x-client-cert', 'x-forwarded-'];
// `Proxy` too: CGI and WSGI turn it into HTTP_PROXY, which many HTTP client libraries take as their proxy ("httpoxy").
const STRIPPED = new Set(['client-cert', 'client-cert-chain', 'forwarded', 'x-real-ip', 'proxy']);
/** Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

/** Characters other than letters, digits and '-' in a header name: folded to '-' before the check. */
const FOLDED = /[^a-z0-9-]/;
const FOLDED_ALL = /[^a-z0-9-]/g;

/**
 * Whether an incoming header may claim an identity or forwarding value: its
 * name, case-folded and with every character other than a letter, digit or
 * '-' read as '-', is protected. CGI and WSGI upstreams (and Apache's
 * mod_cgi, PHP) turn `X_Sekisho_Facility_Number`, `x.sekisho.facility.number`
 * and `X-Sekisho-Facility-Number` into the same HTTP_X_SEKISHO_FACILITY_NUMBER,
 * so every such spelling is removed, not only the one with dashes.
 */
export function isSpoofable(name: string): boolean {
  let n = name.toLowerCase();
  if (FOLDED.test(n)) n = n.replace(FOLDED_ALL, '-');
  return STRIPPED.has(n) || STRIPPED_PREFIXES.some((p) => n.startsWith(p));
}

/** The identity headers of one client (forwardingLines renders them once per identity). */
function identityHeaders(identity: ClientIdentity): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (identity.facilityNumber) out[IDENTITY_HEADERS.facilityNumber] = identity.facilityNumber;
  if (identity.facilityName) out[IDENTITY_HEADERS.facilityName] = encodeURIComponent(identity.facilityName);
  if (identity.deviceName) out[IDENTITY_HEADERS.deviceName] = encodeURIComponent(identity.deviceName);
  out[IDENTITY_HEADERS.profile] = identity.profile;
  out[IDENTITY_HEADERS.serial] = identity.serial;
  out[IDENTITY_HEADERS.fingerprint] = identity.fingerprint;
  out[IDENTITY_HEADERS.subject] = encodeURIComponent(identity.subject);
  out[IDENTITY_HEADERS.clientCert] = `:${identity.certificate.toString('base64')}:`;
  if (identity.chain.length) out[IDENTITY_HEADERS.clientCertChain] = identity.chain.map((c) => `:${c.toString('base64')}:`).join(', ');
  return out;
}

/**
 * The request headers an upstream receives: the client's header lines
 * (raw name/value pairs as llhttp read them) an upstream receives, each
 * `name: value\r\n`, names lowercased. Dropped: hop-by-hop ones and those
 * the Connection header names, every spoofable spelling (isSpoofable), Host
 * (the route's goes instead: route rules judge paths only, so a client-chosen
 * Host could pick another virtual host behind the same upstream),
 * and the framing headers (Content-Length, Transfer-Encoding: the relay
 * writes its own from the framing llhttp read) and Expect (the relay answers
 * it). Of the fields an upstream reads once (Authorization, Content-Type, …)
 * only the first is kept, and Cookie lines are joined with "; ", as Node's
 * server did. The caller adds Host, the forwarding and identity lines
 * (forwardingLines).
 */
export function forwardLines(raw: readonly string[]): string {
  const named = connectionNamed(raw);
  let out = '';
  let seen: Set<string> | undefined;
  let cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(k) || RELAY_OWN.has(k) || named?.has(k) || isSpoofable(k)) continue;
    const v = raw[i + 1]!;
    if (k === 'cookie') {
      cookie = cookie === undefined ? v : `${cookie}; ${v}`;
      continue;
    }
    if (FIRST_ONLY.has(k)) {
      if (seen?.has(k)) continue;
      (seen ??= new Set()).add(k);
    }
    out += `${k}: ${v}\r\n`;
  }
  return cookie === undefined ? out : `${out}cookie: ${cookie}\r\n`;
}

/** Set by the relay itself from what it read, never copied from the client. */
const RELAY_OWN = new Set(['host', 'content-length', 'expect']);
/** Fields Node's server kept the first of (IncomingMessage's discarded duplicates). */
const FIRST_ONLY = new Set(['content-type', 'user-agent', 'referer', 'authorization', 'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires']);

/** The header names a Connection header (any of them) lists, lowercased; undefined when there is none. */
export function connectionNamed(raw: readonly string[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const t of raw[i + 1]!.toLowerCase().split(',')) {
      const n = t.trim();
      if (n) (named ??= new Set()).add(n);
    }
  }
  return named;
}

/** The lines after the client's: X-Forwarded-For/-Proto and the identity of the connection's client (rendered once per identity). */
export function forwardingLines(identity: ClientIdentity, clientAddress: string): string {
  let lines = identityLines.get(identity);
  if (lines === undefined) {
    lines = '';
    for (const [k, v] of Object.entries(identityHeaders(identity))) lines += `${k}: ${String(v)}\r\n`;
    identityLines.set(identity, lines);
  }
  return `x-forwarded-for: ${clientAddress}\r\nx-forwarded-proto: https\r\n${lines}`;
}
const identityLines = new WeakMap<ClientIdentity, string>();

/** Whether a response header goes back to the client: not hop-by-hop, not named by the response's Connection header. */
export function isEndToEnd(lowerName: string, named: Set<string> | undefined): boolean {
  return !HOP_BY_HOP.has(lowerName) && !named?.has(lowerName);
}
