import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
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
const STRIPPED = new Set(['client-cert', 'client-cert-chain', 'forwarded', 'x-real-ip']);
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

/** The request headers as forwarded: hop-by-hop and spoofable ones dropped, identity and forwarding added. */
/**
 * The request headers an upstream receives: hop-by-hop and spoofable ones
 * dropped, then `Host` (the route's upstream host:port, never the client's:
 * route rules judge paths only, so a client-chosen Host could pick another
 * virtual host behind the same upstream), the forwarding headers and the
 * client's identity.
 */
export function forwardHeaders(incoming: IncomingHttpHeaders, identity: ClientIdentity, clientAddress: string, host: string): OutgoingHttpHeaders {
  const named = new Set(String(incoming.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k) || isSpoofable(k)) continue;
    out[k] = v;
  }
  out.host = host;
  out['x-forwarded-for'] = clientAddress;
  out['x-forwarded-proto'] = 'https';
  return Object.assign(out, identityHeaders(identity));
}

/** The identity headers of one client: the same on every request, so encoded once per identity. */
const identityCache = new WeakMap<ClientIdentity, OutgoingHttpHeaders>();
function identityHeaders(identity: ClientIdentity): OutgoingHttpHeaders {
  let out = identityCache.get(identity);
  if (out) return out;
  out = {};
  if (identity.facilityNumber) out[IDENTITY_HEADERS.facilityNumber] = identity.facilityNumber;
  if (identity.facilityName) out[IDENTITY_HEADERS.facilityName] = encodeURIComponent(identity.facilityName);
  if (identity.deviceName) out[IDENTITY_HEADERS.deviceName] = encodeURIComponent(identity.deviceName);
  out[IDENTITY_HEADERS.profile] = identity.profile;
  out[IDENTITY_HEADERS.serial] = identity.serial;
  out[IDENTITY_HEADERS.fingerprint] = identity.fingerprint;
  out[IDENTITY_HEADERS.subject] = encodeURIComponent(identity.subject);
  out[IDENTITY_HEADERS.clientCert] = `:${identity.certificate.toString('base64')}:`;
  if (identity.chain.length) out[IDENTITY_HEADERS.clientCertChain] = identity.chain.map((c) => `:${c.toString('base64')}:`).join(', ');
  identityCache.set(identity, out);
  return out;
}

/** Response headers as returned to the client: hop-by-hop ones dropped. */
export function responseHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(String(incoming.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}
