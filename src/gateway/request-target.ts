import { malformed, type SekishoError } from '../errors/index.js';

/**
 * The request target as the upstream will understand it, so that route rules
 * judge the path the upstream serves. Normalization (RFC 3986 §6.2.2, with
 * what nginx and most frameworks do on top):
 *  - only origin-form (`/path?query`) is taken: absolute-form
 *    (`http://host/…`), authority-form (`host:port`) and asterisk-form (`*`)
 *    are refused;
 *  - percent-encodings of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are
 *    decoded (so `%2e` is a dot and `%61` an `a`), the others kept with
 *    uppercase hex; characters that must be encoded (`"`, `<`, `{`, bytes
 *    above 0x7f, …) are encoded, so every spelling of a path has one form;
 *  - repeated slashes collapse into one (nginx `merge_slashes`), then dot
 *    segments are removed (RFC 3986 §5.2.4);
 *  - refused, because an upstream may read them in more than one way: an
 *    encoded `/` (`%2F`) or `\` (`%5C`), a raw `\`, NUL and other control
 *    characters (raw or encoded), invalid percent-encoding, encoded bytes
 *    that are not UTF-8 (overlong `%C0%AE` is a dot to some decoders), a dot
 *    segment carrying path parameters (`..;`, a dot segment to Java servlet
 *    containers), and `..` climbing above the root.
 * Path parameters (`;…` in a segment) are kept in the path the upstream
 * gets, and left out of the one route rules judge (`routePath`).
 * The query is kept as it is (it is not matched by route rules).
 */
export interface RequestTarget {
  /** Normalized path: starts with `/`, no `//`, no `.` or `..` segment. What the upstream receives. */
  path: string;
  /**
   * The path route rules judge: `path` with each segment's parameters (`;…`)
   * removed and the segments they leave empty dropped, as Java servlet
   * containers (Tomcat, Jetty, Undertow) and Spring map a path before routing
   * it: to them `/closed;x/secret` and `/;/closed/secret` are
   * `/closed/secret`, so its rule must decide, not the one for `/`. The
   * same as `path` when it holds no `;`.
   */
  routePath: string;
  /** `?…` as received, or ''. */
  query: string;
}

const HEX = '0123456789ABCDEF';
/** Per ASCII code: 0 refuse, 1 keep as is (pchar or `/`), 2 percent-encode. */
const RAW = new Uint8Array(128);
/** Per byte value: whether its percent-encoding is decoded (unreserved). */
const UNRESERVED = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) RAW[c] = 2;
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%") RAW[ch.charCodeAt(0)] = 1;
RAW[0x5c] = 0; // backslash: a separator to some upstreams
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[ch.charCodeAt(0)] = 1;
/** A path already in normal form: segments of pchars (no %) that do not start with a dot. */
const CANONICAL = /^(?:\/[A-Za-z0-9\-_~!$&'()*+,;=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*)*\/?$/;
/** Characters a query may not hold (what Node's client also refuses to send). */
const BAD_QUERY = /[^\u0021-\u00ff]/;

const refuse = (why: string): SekishoError => malformed('REQUEST_TARGET_INVALID', `the request target is refused: ${why}`);

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Normalizes one request target (as Node hands it: one char per byte); throws SekishoError REQUEST_TARGET_INVALID. */
export function normalizeTarget(target: string): RequestTarget {
  if (target.charCodeAt(0) !== 0x2f) {
    if (target === '*') throw refuse('asterisk-form (*) is not served by this gateway');
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) throw refuse('absolute-form (scheme://host/…) is for proxies; send the path only');
    throw refuse('only a path starting with / is served (no authority-form)');
  }
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  if (BAD_QUERY.test(query)) throw refuse('control characters or spaces in the query');
  // The common case costs one regular expression: nothing to decode, merge or remove.
  if (CANONICAL.test(rawPath)) return { path: rawPath, routePath: withoutParameters(rawPath), query };

  // One pass: canonical percent-encoding, segments split on '/'.
  const segments: string[] = [];
  let seg = '';
  let highBytes = false;
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 0x2f) {
      segments.push(seg);
      seg = '';
      continue;
    }
    if (c === 0x25) {
      const hi = hexValue(rawPath.charCodeAt(i + 1));
      const lo = hexValue(rawPath.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) throw refuse('invalid percent-encoding');
      const b = hi * 16 + lo;
      i += 2;
      if (b === 0x2f || b === 0x5c) throw refuse('an encoded / or \\ (%2F, %5C) in the path');
      if (b < 0x20 || b === 0x7f) throw refuse('an encoded control character in the path');
      if (UNRESERVED[b]) seg += String.fromCharCode(b);
      else {
        if (b > 0x7f) highBytes = true;
        seg += '%' + HEX[hi]! + HEX[lo]!;
      }
      continue;
    }
    if (c > 0xff) throw refuse('a character outside the byte range');
    if (c >= 0x80) {
      highBytes = true;
      seg += '%' + HEX[c >> 4]! + HEX[c & 15]!;
      continue;
    }
    const kind = RAW[c];
    if (kind === 1) seg += rawPath[i];
    else if (kind === 2) seg += '%' + HEX[c >> 4]! + HEX[c & 15]!;
    else if (c === 0x5c) throw refuse('a backslash in the path');
    else throw refuse('a control character or space in the path');
  }
  segments.push(seg);

  // segments[0] is '' (the leading '/'). Empty segments collapse (merge_slashes), then dot segments go.
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '') {
      if (last) trailingSlash = true;
      continue;
    }
    if (s === '.' || s === '..') {
      if (s === '..') {
        if (!out.length) throw refuse('a .. segment climbs above the root');
        out.pop();
      }
      if (last) trailingSlash = true;
      continue;
    }
    if (s.charCodeAt(0) === 0x2e && /^\.\.?;/.test(s)) throw refuse('a dot segment with path parameters (..;)');
    out.push(s);
  }
  const path = out.length ? '/' + out.join('/') + (trailingSlash ? '/' : '') : '/';
  if (highBytes) checkUtf8(path);
  return { path, routePath: withoutParameters(path), query };
}

/** A normalized path without its segments' parameters (`/a;x/b;y/` → `/a/b/`); segments left empty go, as `//` does. */
function withoutParameters(path: string): string {
  if (!path.includes(';')) return path;
  const segments = path.split('/').map((s) => {
    const p = s.indexOf(';');
    return p < 0 ? s : s.slice(0, p);
  });
  // The last segment empty (a trailing slash, or parameters alone): the path still ends with '/'.
  const trailing = segments[segments.length - 1] === '';
  const kept = segments.filter((s) => s !== '');
  return kept.length ? `/${kept.join('/')}${trailing ? '/' : ''}` : '/';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function checkUtf8(path: string): void {
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25) {
      bytes.push(parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c);
  }
  try {
    utf8.decode(Uint8Array.from(bytes));
  } catch {
    throw refuse('percent-encoded bytes that are not UTF-8');
  }
}

/** Route paths are written in the normalized form, with unreserved characters only, so a prefix match on the normalized path is exact. */
export function checkRoutePath(path: string): string | undefined {
  if (!/^\/[A-Za-z0-9\-._~/]*$/.test(path)) return 'must start with / and hold only letters, digits, - . _ ~ and / (request paths are matched after normalization)';
  let n: RequestTarget;
  try {
    n = normalizeTarget(path);
  } catch {
    return 'must not climb above the root';
  }
  if (n.path !== path) return `is not in normalized form (write "${n.path}": no //, no . or .. segments)`;
  return undefined;
}
