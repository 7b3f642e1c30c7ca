import { createPublicKey, sign as cryptoSign, KeyObject } from 'node:crypto';
import { describePublicKey, type KeyType } from './keys.js';
import { badRequest } from '../errors/index.js';

/** Signature algorithms sekisho produces. Never SHA-1. */
export type SignatureAlgorithm = 'ecdsa-with-SHA256' | 'ecdsa-with-SHA384' | 'sha256WithRSAEncryption' | 'sha384WithRSAEncryption';

export const SIGNATURE_ALGORITHM_OIDS: Record<SignatureAlgorithm, string> = {
  'ecdsa-with-SHA256': '1.2.840.10045.4.3.2',
  'ecdsa-with-SHA384': '1.2.840.10045.4.3.3',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
};

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

/**
 * DER of the AlgorithmIdentifier for each algorithm (RSA carries NULL
 * parameters, ECDSA none: RFC 5758 §3.2, RFC 4055 §5).
 */
export const SIGNATURE_ALGORITHM_DER: Record<SignatureAlgorithm, Buffer> = {
  'ecdsa-with-SHA256': Buffer.from('300a06082a8648ce3d040302', 'hex'),
  'ecdsa-with-SHA384': Buffer.from('300a06082a8648ce3d040303', 'hex'),
  sha256WithRSAEncryption: Buffer.from('300d06092a864886f70d01010b0500', 'hex'),
  sha384WithRSAEncryption: Buffer.from('300d06092a864886f70d01010c0500', 'hex'),
};

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
