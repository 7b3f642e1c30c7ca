import { createHash, generateKeyPair, KeyObject, createPublicKey } from 'node:crypto';
import { promisify } from 'node:util';
import { badRequest } from '../errors/index.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Key types sekisho makes and accepts. Names are the CLI's `--key` values. */
export const KEY_TYPES = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export function isKeyType(s: string): s is KeyType {
  return (KEY_TYPES as readonly string[]).includes(s);
}

export function parseKeyType(s: string): KeyType {
  if (!isKeyType(s)) {
    throw badRequest('KEY_TYPE_UNSUPPORTED', `unknown key type "${s}"; use one of ${KEY_TYPES.join(', ')}`);
  }
  return s;
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/**
 * Makes a key pair. RSA generation runs on libuv's thread pool, so several
 * calls in flight use every core.
 */
export async function generateKey(type: KeyType): Promise<KeyPair> {
  switch (type) {
    case 'ecdsa-p256':
      return generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
    case 'ecdsa-p384':
      return generateKeyPairAsync('ec', { namedCurve: 'secp384r1' });
    case 'rsa-2048':
      return generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
    case 'rsa-3072':
      return generateKeyPairAsync('rsa', { modulusLength: 3072, publicExponent: 0x10001 });
    case 'rsa-4096':
      return generateKeyPairAsync('rsa', { modulusLength: 4096, publicExponent: 0x10001 });
  }
}

/** What a public key is, as policy sees it. */
export interface PublicKeyDescription {
  algorithm: 'rsa' | 'ec' | 'other';
  /** RSA modulus bits, or EC field size in bits. */
  bits: number;
  /** EC curve name as OpenSSL spells it (prime256v1, secp384r1, …). */
  curve?: string;
  /** The matching sekisho key type, when there is one. */
  keyType?: KeyType;
}

const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521, secp256k1: 256 };

export function describePublicKey(key: KeyObject): PublicKeyDescription {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const d = pub.asymmetricKeyDetails ?? {};
  if (pub.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    const keyType = ({ 2048: 'rsa-2048', 3072: 'rsa-3072', 4096: 'rsa-4096' } as Record<number, KeyType>)[bits];
    return keyType ? { algorithm: 'rsa', bits, keyType } : { algorithm: 'rsa', bits };
  }
  if (pub.asymmetricKeyType === 'ec') {
    const curve = d.namedCurve ?? 'unknown';
    const bits = CURVE_BITS[curve] ?? 0;
    const keyType = curve === 'prime256v1' ? 'ecdsa-p256' : curve === 'secp384r1' ? 'ecdsa-p384' : undefined;
    return keyType ? { algorithm: 'ec', bits, curve, keyType } : { algorithm: 'ec', bits, curve };
  }
  return { algorithm: 'other', bits: 0 };
}

/** DER SubjectPublicKeyInfo. */
export function spkiDer(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

/** SHA-256 (hex) of a DER SubjectPublicKeyInfo: how the store finds certificates by key. */
export function spkiSha256(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}
