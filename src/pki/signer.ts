import { createPublicKey, sign as cryptoSign, KeyObject } from 'node:crypto';
import { describePublicKey, type KeyType } from './keys.js';
import { badRequest } from '../errors/index.js';
import { SIGNATURE_ALGORITHM_DER_HEX, type SignatureAlgorithm } from './signature-algorithms.js';

export { SIGNATURE_ALGORITHM_OIDS, type SignatureAlgorithm } from './signature-algorithms.js';

/** Hash of each signature algorithm, as Node's crypto names it. */
export const SIGNATURE_HASH: Record<SignatureAlgorithm, 'sha256' | 'sha384'> = {
  'ecdsa-with-SHA256': 'sha256',
  'ecdsa-with-SHA384': 'sha384',
  sha256WithRSAEncryption: 'sha256',
  sha384WithRSAEncryption: 'sha384',
};

/**
 * The signatures sekisho accepts from others (CSRs, CRLs, OCSP responses):
 * RSA PKCS#1 v1.5 and ECDSA with SHA-256/384/512, by OID, with the hash
 * Node's crypto verifies them with. SHA-1 and anything else is absent, so
 * it is refused wherever this table is asked.
 */
export const SHA2_SIGNATURE_HASH: Readonly<Record<string, 'sha256' | 'sha384' | 'sha512'>> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/** DER of the AlgorithmIdentifier for each algorithm (signature-algorithms.ts). */
export const SIGNATURE_ALGORITHM_DER: Record<SignatureAlgorithm, Buffer> = Object.fromEntries(
  Object.entries(SIGNATURE_ALGORITHM_DER_HEX).map(([k, hex]) => [k, Buffer.from(hex, 'hex')]),
) as Record<SignatureAlgorithm, Buffer>;

/**
 * Everything that signs (certificates, CRLs, OCSP responses) goes through a
 * Signer. The code that builds a structure never sees private key bytes, so a
 * token can hold the key.
 */
export interface Signer {
  /** The public half, for SubjectPublicKeyInfo and key identifiers. */
  readonly publicKey: KeyObject;
  readonly keyType: KeyType;
  readonly algorithm: SignatureAlgorithm;
  /** Signs `data` (hashing it first); returns the X.509 signature value (DER ECDSA-Sig-Value for EC). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** The signature algorithm sekisho uses with each key type. */
export function signatureAlgorithmFor(keyType: KeyType): SignatureAlgorithm {
  switch (keyType) {
    case 'ecdsa-p256':
      return 'ecdsa-with-SHA256';
    case 'ecdsa-p384':
      return 'ecdsa-with-SHA384';
    case 'rsa-2048':
      return 'sha256WithRSAEncryption';
    case 'rsa-3072':
    case 'rsa-4096':
      return 'sha384WithRSAEncryption';
  }
}

/** A Signer over a private key held in this process (decrypted from the key file). */
export class SoftwareSigner implements Signer {
  readonly publicKey: KeyObject;
  readonly keyType: KeyType;
  readonly algorithm: SignatureAlgorithm;
  readonly #privateKey: KeyObject;

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private') throw badRequest('KEY_NOT_PRIVATE', 'a signer needs a private key');
    const described = describePublicKey(privateKey);
    if (!described.keyType) {
      throw badRequest('KEY_TYPE_UNSUPPORTED', `this ${described.algorithm} key (${described.bits} bits) is not a supported signing key type`);
    }
    this.#privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    this.keyType = described.keyType;
    this.algorithm = signatureAlgorithmFor(described.keyType);
  }

  /** Synchronous form for hot paths where the key is in-process. */
  signSync(data: Uint8Array): Buffer {
    return cryptoSign(SIGNATURE_HASH[this.algorithm], data, this.#privateKey);
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    return this.signSync(data);
  }
}
