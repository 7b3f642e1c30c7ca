/**
 * The software token's file: one JSON document, written 0600 and atomically.
 *
 * - A random 256-bit token key encrypts the private objects (AES-256-GCM) and
 *   keys an HMAC-SHA-256 over everything but the PIN counters.
 * - The token key is stored twice, wrapped (AES-256-GCM) under keys derived
 *   with scrypt from the user PIN and from the SO PIN. A wrong PIN fails the
 *   GCM tag; nothing else tells a right PIN from a wrong one.
 * - The PIN counters must change when no PIN is known (a wrong try), so the
 *   MAC cannot cover them; a SHA-256 checksum over the whole document catches
 *   damage and truncation on every read, and the MAC catches edits to the rest
 *   at the next login. Someone who can write the file can reset the counters:
 *   docs/tokens.md says plainly what a software token cannot protect against.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { malformed, unauthorized } from '../errors/index.js';
import { isBase64 } from '../pki/index.js';
import type { ObjectAttributes } from './token.js';

const scryptAsync = promisify(scrypt) as (pw: string | Buffer, salt: Buffer, len: number, opts: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

export const TOKEN_FILE_FORMAT = 'sekisho-software-token' as const;
export const BACKUP_FORMAT = 'sekisho-software-token-backup' as const;

export interface KdfParams {
  N: number;
  r: number;
  p: number;
}
export const DEFAULT_KDF: KdfParams = { N: 1 << 15, r: 8, p: 1 };

export interface Sealed {
  iv: string;
  tag: string;
  ct: string;
}
export interface PinWrap extends Sealed {
  salt: string;
}

export interface TokenPolicy {
  minPinLength: number;
  maxUserPinTries: number;
  maxSoPinTries: number;
}

export interface PinCounters {
  userPinFailures: number;
  soPinFailures: number;
}

/** An object as stored: attributes with Buffers in base64, plus (private section only) the PKCS#8 key. */
export interface StoredObject {
  handle: number;
  attrs: Record<string, string | boolean>;
  pkcs8?: string;
}

export interface TokenFileBody {
  format: typeof TOKEN_FILE_FORMAT;
  version: 1;
  serial: string;
  label: string;
  createdAt: string;
  policy: TokenPolicy;
  kdf: { name: 'scrypt' } & KdfParams;
  wraps: { user: PinWrap; so: PinWrap };
  nextHandle: number;
  publicObjects: StoredObject[];
  privateObjects: Sealed;
}

export interface TokenFile {
  body: TokenFileBody;
  mac: string;
  counters: PinCounters;
}

const corrupt = (where: string, why: string) =>
  malformed('TOKEN_FILE_CORRUPT', `${where} is not an intact sekisho software token (${why}); restore it from your backup with "sekisho token restore"`, {
    ja: 'トークンファイルが壊れています。バックアップから復元してください。',
  });

// ---- attributes <-> stored form ----

const BUFFER_ATTRS = new Set(['id', 'value', 'publicKeyInfo']);

export function storeAttributes(a: ObjectAttributes): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined) continue;
    out[k] = Buffer.isBuffer(v) ? v.toString('base64') : (v as string | boolean);
  }
  return out;
}

export function loadAttributes(s: Record<string, string | boolean>): ObjectAttributes {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) out[k] = BUFFER_ATTRS.has(k) && typeof v === 'string' ? Buffer.from(v, 'base64') : v;
  return out as unknown as ObjectAttributes;
}

// ---- keys ----

export function objectKey(tokenKey: Buffer, serial: string): Buffer {
  return Buffer.from(hkdfSync('sha256', tokenKey, Buffer.from(serial), 'sekisho software token: objects', 32));
}
function macKey(tokenKey: Buffer, serial: string): Buffer {
  return Buffer.from(hkdfSync('sha256', tokenKey, Buffer.from(serial), 'sekisho software token: integrity', 32));
}

function checkKdf(kdf: KdfParams): boolean {
  const { N, r, p } = kdf;
  return [N, r, p].every((v) => Number.isInteger(v) && v > 0) && N >= 1 << 14 && N <= 1 << 20 && (N & (N - 1)) === 0 && r <= 16 && p <= 4;
}

/** A PIN as the token sees it: Unicode NFC, so a PIN typed as NFD (macOS input, some IMEs) is the same PIN. Every comparison and derivation goes through it. */
export const pinText = (pin: string): string => pin.normalize('NFC');

export async function pinKey(pin: string, salt: Buffer, kdf: KdfParams): Promise<Buffer> {
  return scryptAsync(pinText(pin), salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + 1024 * 1024 });
}

export function seal(key: Buffer, plaintext: Buffer, aad: string): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), ct: ct.toString('base64') };
}

/** Undefined when the key is wrong (or the sealed bytes were changed). */
export function open(key: Buffer, s: Sealed, aad: string): Buffer | undefined {
  const iv = Buffer.from(s.iv, 'base64');
  const tag = Buffer.from(s.tag, 'base64');
  if (iv.length !== 12 || tag.length !== 16) return undefined;
  const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(Buffer.from(s.ct, 'base64')), d.final()]);
  } catch {
    return undefined;
  }
}

const wrapAad = (serial: string, who: 'user' | 'so') => `${TOKEN_FILE_FORMAT}/1 token key for ${who} of ${serial}`;

export async function wrapTokenKey(tokenKey: Buffer, pin: string, serial: string, who: 'user' | 'so', kdf: KdfParams): Promise<PinWrap> {
  const salt = randomBytes(16);
  const kek = await pinKey(pin, salt, kdf);
  return { salt: salt.toString('base64'), ...seal(kek, tokenKey, wrapAad(serial, who)) };
}

/** The token key, or undefined for a wrong PIN. */
export async function unwrapTokenKey(f: TokenFileBody, pin: string, who: 'user' | 'so'): Promise<Buffer | undefined> {
  const w = f.wraps[who];
  const kek = await pinKey(pin, Buffer.from(w.salt, 'base64'), f.kdf);
  const key = open(kek, w, wrapAad(f.serial, who));
  return key?.length === 32 ? key : undefined;
}

// ---- private objects ----

const objectsAad = (serial: string) => `${TOKEN_FILE_FORMAT}/1 private objects of ${serial}`;

export function sealPrivateObjects(tokenKey: Buffer, serial: string, objects: StoredObject[]): Sealed {
  return seal(objectKey(tokenKey, serial), Buffer.from(JSON.stringify(objects)), objectsAad(serial));
}

export function openPrivateObjects(tokenKey: Buffer, body: TokenFileBody, where: string): StoredObject[] {
  const plain = open(objectKey(tokenKey, body.serial), body.privateObjects, objectsAad(body.serial));
  if (!plain) throw corrupt(where, 'its private objects do not decrypt');
  try {
    const objects = JSON.parse(plain.toString('utf8')) as unknown;
    if (!Array.isArray(objects)) throw new Error('shape');
    return objects.map((o) => checkObject(o, where));
  } finally {
    plain.fill(0);
  }
}

// ---- integrity ----

export function computeMac(tokenKey: Buffer, body: TokenFileBody): string {
  return createHmac('sha256', macKey(tokenKey, body.serial)).update(JSON.stringify(body)).digest('base64');
}

export function macMatches(tokenKey: Buffer, f: TokenFile): boolean {
  const expected = Buffer.from(computeMac(tokenKey, f.body), 'base64');
  const got = Buffer.from(f.mac, 'base64');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

function checksum(f: TokenFile): string {
  return createHash('sha256').update(JSON.stringify([f.body, f.mac, f.counters])).digest('base64');
}

export function serializeTokenFile(f: TokenFile): string {
  return JSON.stringify({ body: f.body, mac: f.mac, counters: f.counters, checksum: checksum(f) }, null, 1) + '\n';
}

// ---- parsing (every field checked: the file may have been damaged or edited) ----

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown, max = 1000): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
const isSealed = (v: unknown): v is Sealed => isObj(v) && isBase64(v.iv) && isBase64(v.tag) && isBase64(v.ct);
const isWrap = (v: unknown): v is PinWrap => isSealed(v) && isBase64((v as unknown as Record<string, unknown>).salt);

function checkObject(o: unknown, where: string): StoredObject {
  if (!isObj(o) || !isCount(o.handle, 2 ** 31) || !isObj(o.attrs) || (o.pkcs8 !== undefined && !isBase64(o.pkcs8))) throw corrupt(where, 'an object record is damaged');
  const attrs = o.attrs;
  if (!['certificate', 'public-key', 'private-key', 'data'].includes(attrs.class as string)) throw corrupt(where, 'an object has an unknown class');
  for (const [k, v] of Object.entries(attrs)) {
    if (BUFFER_ATTRS.has(k) ? !isBase64(v) : !(typeof v === 'string' || typeof v === 'boolean')) throw corrupt(where, `an object attribute "${k.slice(0, 30)}" is damaged`);
  }
  return o as unknown as StoredObject;
}

export function parseTokenFile(text: string, where: string): TokenFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt(where, text.length === 0 ? 'it is empty' : 'it is not complete JSON — truncated or edited');
  }
  if (!isObj(doc) || !isObj(doc.body) || typeof doc.mac !== 'string' || !isObj(doc.counters) || typeof doc.checksum !== 'string') {
    throw corrupt(where, 'its top-level fields are missing');
  }
  const f = { body: doc.body as unknown as TokenFileBody, mac: doc.mac, counters: doc.counters as unknown as PinCounters };
  if (checksum(f) !== doc.checksum) throw corrupt(where, 'its checksum does not match — damaged or edited by hand');
  const b = doc.body;
  if (b.format !== TOKEN_FILE_FORMAT || b.version !== 1) throw corrupt(where, 'unknown format or version');
  if (typeof b.serial !== 'string' || !/^[0-9a-f]{16}$/.test(b.serial) || typeof b.label !== 'string' || typeof b.createdAt !== 'string') throw corrupt(where, 'its identity fields are damaged');
  const pol = b.policy;
  if (!isObj(pol) || !isCount(pol.minPinLength, 64) || !isCount(pol.maxUserPinTries, 100) || !isCount(pol.maxSoPinTries, 100) || (pol.minPinLength as number) < 4 || (pol.maxUserPinTries as number) < 1 || (pol.maxSoPinTries as number) < 1) {
    throw corrupt(where, 'its PIN policy is damaged');
  }
  const kdf = b.kdf;
  if (!isObj(kdf) || kdf.name !== 'scrypt' || !checkKdf(kdf as unknown as KdfParams)) throw corrupt(where, 'its key derivation parameters are out of range');
  if (!isObj(b.wraps) || !isWrap(b.wraps.user) || !isWrap(b.wraps.so)) throw corrupt(where, 'its wrapped keys are damaged');
  if (!isCount(b.nextHandle, 2 ** 31) || !Array.isArray(b.publicObjects) || !isSealed(b.privateObjects)) throw corrupt(where, 'its object lists are damaged');
  b.publicObjects.forEach((o) => checkObject(o, where));
  const c = doc.counters;
  if (!isCount(c.userPinFailures) || !isCount(c.soPinFailures)) throw corrupt(where, 'its PIN counters are damaged');
  return f;
}

// ---- backup ----

const backupAad = (kdf: KdfParams, salt: string) => JSON.stringify([BACKUP_FORMAT, 1, kdf, salt]);

/** The token file sealed under a backup passphrase (scrypt + AES-256-GCM). */
export async function sealBackup(tokenFileText: string, passphrase: string, kdf: KdfParams = DEFAULT_KDF): Promise<string> {
  const salt = randomBytes(16);
  const key = await pinKey(passphrase, salt, kdf);
  const sealed = seal(key, Buffer.from(tokenFileText, 'utf8'), backupAad(kdf, salt.toString('base64')));
  return JSON.stringify({ format: BACKUP_FORMAT, version: 1, kdf: { name: 'scrypt', ...kdf }, salt: salt.toString('base64'), ...sealed }, null, 1) + '\n';
}

export async function openBackup(text: string, passphrase: string, where: string): Promise<string> {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
    if (!isObj(doc) || doc.format !== BACKUP_FORMAT || doc.version !== 1 || !isObj(doc.kdf) || doc.kdf.name !== 'scrypt' || !isBase64(doc.salt) || !isSealed(doc)) throw new Error('shape');
  } catch {
    throw malformed('TOKEN_BACKUP_CORRUPT', `${where} is not a readable sekisho token backup (damaged or truncated); use another copy`);
  }
  const kdf = { N: doc.kdf.N, r: doc.kdf.r, p: doc.kdf.p } as KdfParams;
  if (!checkKdf(kdf)) throw malformed('TOKEN_BACKUP_CORRUPT', `${where} has out-of-range key derivation parameters`);
  const key = await pinKey(passphrase, Buffer.from(doc.salt as string, 'base64'), kdf);
  const plain = open(key, doc as unknown as Sealed, backupAad(kdf, doc.salt as string));
  if (!plain) throw unauthorized('BACKUP_PASSPHRASE_WRONG', `the backup passphrase does not open ${where} (or the backup was changed); check SEKISHO_BACKUP_PASSPHRASE`);
  const inner = plain.toString('utf8');
  parseTokenFile(inner, `the token inside ${where}`);
  return inner;
}
