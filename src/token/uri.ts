/**
 * RFC 7512 PKCS#11 URIs, e.g. `pkcs11:token=sekisho;object=ca-issuing;type=private`.
 *
 *   pk11-URI  = "pkcs11:" pk11-path [ "?" pk11-query ]
 *   pk11-path = [ pk11-pattr *( ";" pk11-pattr ) ]
 *   pk11-query = [ pk11-qattr *( "&" pk11-qattr ) ]
 *
 * Values are percent-encoded UTF-8 (the `id` value is raw bytes). An attribute
 * may appear only once. Unknown `x-` vendor attributes are kept; other unknown
 * attribute names are refused, as are characters the grammar does not allow.
 */
import { malformed } from '../errors/index.js';

export const PATH_ATTRIBUTES = [
  'token',
  'manufacturer',
  'serial',
  'model',
  'library-manufacturer',
  'library-description',
  'library-version',
  'object',
  'type',
  'id',
  'slot-description',
  'slot-manufacturer',
  'slot-id',
] as const;
export const QUERY_ATTRIBUTES = ['pin-source', 'pin-value', 'module-name', 'module-path'] as const;
export const OBJECT_TYPES = ['public', 'private', 'cert', 'secret-key', 'data'] as const;

export type ObjectType = (typeof OBJECT_TYPES)[number];

export interface Pkcs11Uri {
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  libraryManufacturer?: string;
  libraryDescription?: string;
  libraryVersion?: string;
  object?: string;
  type?: ObjectType;
  /** CKA_ID bytes. */
  id?: Buffer;
  slotDescription?: string;
  slotManufacturer?: string;
  slotId?: number;
  pinSource?: string;
  pinValue?: string;
  moduleName?: string;
  modulePath?: string;
  /** Vendor-specific `x-…` attributes, decoded. */
  vendor?: Record<string, string>;
}

const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

// unreserved / pk11-res-avail / pct-encoded (path); the query adds "/", "?", "|".
const PATH_VALUE = /^(?:[A-Za-z0-9\-._~:[\]@!$'()*+,=&]|%[0-9A-Fa-f]{2})*$/;
const QUERY_VALUE = /^(?:[A-Za-z0-9\-._~:[\]@!$'()*+,=/?|]|%[0-9A-Fa-f]{2})*$/;
const ATTR_NAME = /^[a-z][a-z0-9_-]*$/;

const bad = (why: string) => malformed('PKCS11_URI_INVALID', `not a valid PKCS#11 URI (RFC 7512): ${why}; write it like pkcs11:token=NAME;object=LABEL;type=private`);

function decodeBytes(v: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '%') {
      out.push(parseInt(v.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(v.charCodeAt(i));
  }
  return Buffer.from(out);
}

function decodeText(v: string, name: string): string {
  const bytes = decodeBytes(v);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (!Buffer.from(text, 'utf8').equals(bytes)) throw bad(`the value of "${name}" is not UTF-8`);
  return text;
}

const MAX_URI_LENGTH = 8192;

export function parsePkcs11Uri(text: string): Pkcs11Uri {
  if (typeof text !== 'string') throw bad('not a string');
  if (text.length > MAX_URI_LENGTH) throw bad(`longer than ${MAX_URI_LENGTH} characters`);
  if (!/^pkcs11:/i.test(text)) throw bad('it must start with "pkcs11:"');
  const rest = text.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? undefined : rest.slice(q + 1);
  const uri: Pkcs11Uri = {};
  const seen = new Set<string>();
  const take = (part: string, sep: string, known: readonly string[], valueRe: RegExp, where: string) => {
    if (part === '') return;
    for (const attr of part.split(sep)) {
      const eq = attr.indexOf('=');
      if (eq <= 0) throw bad(`"${attr.slice(0, 40)}" in the ${where} is not name=value`);
      const name = attr.slice(0, eq).toLowerCase();
      const raw = attr.slice(eq + 1);
      if (!ATTR_NAME.test(name)) throw bad(`"${name.slice(0, 40)}" is not an attribute name`);
      if (!valueRe.test(raw)) throw bad(`the value of "${name}" has a character that must be percent-encoded`);
      if (seen.has(name)) throw bad(`"${name}" appears twice`);
      seen.add(name);
      if (name.startsWith('x-')) {
        (uri.vendor ??= {})[name] = decodeText(raw, name);
        continue;
      }
      if (!known.includes(name)) throw bad(`"${name}" is not a ${where} attribute (known: ${known.join(', ')})`);
      if (name === 'id') {
        uri.id = decodeBytes(raw);
      } else if (name === 'type') {
        const t = decodeText(raw, name);
        if (!(OBJECT_TYPES as readonly string[]).includes(t)) throw bad(`type must be one of ${OBJECT_TYPES.join(', ')}`);
        uri.type = t as ObjectType;
      } else if (name === 'slot-id') {
        const t = decodeText(raw, name);
        if (!/^[0-9]{1,10}$/.test(t) || Number(t) > 0xffffffff) throw bad('slot-id must be a decimal number');
        uri.slotId = Number(t);
      } else if (name === 'library-version') {
        const t = decodeText(raw, name);
        if (!/^[0-9]{1,3}(\.[0-9]{1,3})?$/.test(t)) throw bad('library-version must be M or M.N');
        uri.libraryVersion = t;
      } else {
        (uri as Record<string, unknown>)[camel(name)] = decodeText(raw, name);
      }
    }
  };
  take(pathPart, ';', PATH_ATTRIBUTES, PATH_VALUE, 'path');
  if (queryPart !== undefined) take(queryPart, '&', QUERY_ATTRIBUTES, QUERY_VALUE, 'query');
  if (uri.pinSource !== undefined && uri.pinValue !== undefined) throw bad('give pin-source or pin-value, not both');
  return uri;
}

const encode = (v: string | Buffer) => {
  const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  let s = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return s;
};

/** Formats a URI in the attribute order of RFC 7512 §2.3, every reserved character percent-encoded. */
export function formatPkcs11Uri(u: Pkcs11Uri): string {
  const path: string[] = [];
  for (const name of PATH_ATTRIBUTES) {
    const v = name === 'slot-id' ? (u.slotId === undefined ? undefined : String(u.slotId)) : (u as Record<string, string | Buffer | undefined>)[camel(name)];
    if (v !== undefined) path.push(`${name}=${encode(v)}`);
  }
  for (const [name, v] of Object.entries(u.vendor ?? {})) path.push(`${name}=${encode(v)}`);
  const query: string[] = [];
  for (const name of QUERY_ATTRIBUTES) {
    const v = (u as Record<string, string | undefined>)[camel(name)];
    if (v !== undefined) query.push(`${name}=${encode(v)}`);
  }
  return `pkcs11:${path.join(';')}${query.length ? `?${query.join('&')}` : ''}`;
}

/** The URI without its PIN, for messages and logs. */
export function redactPkcs11Uri(u: Pkcs11Uri): string {
  const { pinValue: _p, ...rest } = u;
  return formatPkcs11Uri(rest);
}
