import { createCipheriv, createDecipheriv, createPrivateKey, randomBytes, scrypt, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { malformed, notFound, unauthorized } from '../errors/index.js';
import { writeFileAtomic } from '../files/index.js';
import { isBase64 } from '../pki/index.js';

const scryptAsync = promisify(scrypt) as (pw: string | Buffer, salt: Buffer, len: number, opts: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

/**
 * A private key at rest: PKCS#8 DER encrypted with AES-256-GCM under a key
 * derived from the passphrase with scrypt (memory-hard). The JSON header is the
 * GCM additional data, so the parameters cannot be swapped.
 */
interface KeyFileV1 {
  format: 'sekisho-encrypted-key';
  version: 1;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: { name: 'aes-256-gcm'; iv: string; tag: string };
  ciphertext: string;
}

const DEFAULT_KDF = { N: 1 << 15, r: 8, p: 1 };

function aad(f: Pick<KeyFileV1, 'format' | 'version' | 'kdf'> & { iv: string }): Buffer {
  return Buffer.from(JSON.stringify([f.format, f.version, f.kdf, f.iv]));
}

export async function encryptPrivateKey(key: KeyObject, passphrase: string, kdf = DEFAULT_KDF): Promise<string> {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const dk = await scryptAsync(passphrase.normalize('NFC'), salt, 32, { ...kdf, maxmem: 256 * kdf.N * kdf.r + 1024 * 1024 });
  const header = { format: 'sekisho-encrypted-key' as const, version: 1 as const, kdf: { name: 'scrypt' as const, ...kdf, salt: salt.toString('base64') } };
  const cipher = createCipheriv('aes-256-gcm', dk, iv, { authTagLength: 16 });
  cipher.setAAD(aad({ ...header, iv: iv.toString('base64') }));
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const ciphertext = Buffer.concat([cipher.update(der), cipher.final()]);
  der.fill(0);
  const file: KeyFileV1 = { ...header, cipher: { name: 'aes-256-gcm', iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64') }, ciphertext: ciphertext.toString('base64') };
  return JSON.stringify(file, null, 2) + '\n';
}

export async function decryptPrivateKey(text: string, passphrase: string, where = 'the key file'): Promise<KeyObject> {
  let f: KeyFileV1;
  try {
    f = JSON.parse(text) as KeyFileV1;
    if (f.format !== 'sekisho-encrypted-key' || f.version !== 1 || f.kdf?.name !== 'scrypt' || f.cipher?.name !== 'aes-256-gcm') throw new Error('format');
  } catch {
    throw malformed('KEY_FILE_MALFORMED', `${where} is not a sekisho encrypted key file (damaged?); restore it from backup`);
  }
  // Every field that is read is checked first: a damaged file is KEY_FILE_MALFORMED ("restore it"), never a crash or a "wrong passphrase".
  if (!isBase64(f.kdf.salt, 16) || !isBase64(f.cipher.iv, 12) || !isBase64(f.cipher.tag, 16) || !isBase64(f.ciphertext) || f.ciphertext.length === 0) {
    throw malformed('KEY_FILE_MALFORMED', `${where} is damaged (its salt, IV, tag or ciphertext is missing or cut short); restore it from backup`);
  }
  const { N, r, p } = f.kdf;
  if (![N, r, p].every((v) => Number.isInteger(v) && v > 0) || N < 1 << 14 || N > 1 << 20 || (N & (N - 1)) !== 0 || r > 16 || p > 4) {
    throw malformed('KEY_FILE_MALFORMED', `${where} has out-of-range key derivation parameters`);
  }
  const dk = await scryptAsync(passphrase.normalize('NFC'), Buffer.from(f.kdf.salt, 'base64'), 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  const decipher = createDecipheriv('aes-256-gcm', dk, Buffer.from(f.cipher.iv, 'base64'), { authTagLength: 16 });
  decipher.setAAD(aad({ format: f.format, version: f.version, kdf: f.kdf, iv: f.cipher.iv }));
  decipher.setAuthTag(Buffer.from(f.cipher.tag, 'base64'));
  let der: Buffer;
  try {
    der = Buffer.concat([decipher.update(Buffer.from(f.ciphertext, 'base64')), decipher.final()]);
  } catch {
    throw unauthorized('PASSPHRASE_WRONG', `the passphrase does not open ${where}; check SEKISHO_PASSPHRASE`);
  }
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

export async function writeKeyFile(path: string, key: KeyObject, passphrase: string): Promise<void> {
  writeFileAtomic(path, await encryptPrivateKey(key, passphrase), 0o600);
}

export async function readKeyFile(path: string, passphrase: string): Promise<KeyObject> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw notFound('KEY_FILE_MISSING', `cannot read the CA key ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}); restore it from backup`);
  }
  return decryptPrivateKey(text, passphrase, path);
}
