import { createPublicKey, type KeyObject } from 'node:crypto';
import { badRequest, notFound } from '../errors/index.js';
import { describePublicKey, integerFromUnsigned, sequence, SIGNATURE_HASH, signatureAlgorithmFor, type KeyType, type SignatureAlgorithm, type Signer } from '../pki/index.js';
import { signMechanismFor } from './mechanisms.js';
import type { ObjectHandle, ObjectTemplate, TokenSession } from './token.js';

/** Raw r‖s (PKCS#11 CKM_ECDSA output) as DER ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3). */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw badRequest('TOKEN_SIGNATURE_MALFORMED', 'the token returned an ECDSA signature of odd length');
  const n = raw.length / 2;
  return sequence(integerFromUnsigned(raw.subarray(0, n)), integerFromUnsigned(raw.subarray(n)));
}

/**
 * A Signer whose private key stays in a token: the session must be logged in
 * as the user for as long as the signer is used.
 */
export class TokenSigner implements Signer {
  readonly publicKey: KeyObject;
  readonly keyType: KeyType;
  readonly algorithm: SignatureAlgorithm;

  private constructor(
    readonly session: TokenSession,
    readonly privateKey: ObjectHandle,
    publicKey: KeyObject,
  ) {
    const d = describePublicKey(publicKey);
    if (!d.keyType) throw badRequest('KEY_TYPE_UNSUPPORTED', `the token key is a ${d.algorithm} key of ${d.bits} bits, not a supported signing key type`);
    this.publicKey = publicKey;
    this.keyType = d.keyType;
    this.algorithm = signatureAlgorithmFor(d.keyType);
  }

  /** The signer for the private key matching `template` (a label and/or an id). */
  static async find(session: TokenSession, template: Omit<ObjectTemplate, 'class'>): Promise<TokenSigner> {
    const found = await session.findObjects({ ...template, class: 'private-key' });
    const what = [template.label !== undefined ? `label "${template.label}"` : '', template.id ? `id ${template.id.toString('hex')}` : ''].filter(Boolean).join(' and ');
    if (found.length === 0) throw notFound('TOKEN_KEY_NOT_FOUND', `the token holds no private key with ${what || 'that template'} (or the PIN was not given); list keys with "sekisho token list"`);
    if (found.length > 1) throw badRequest('TOKEN_KEY_AMBIGUOUS', `the token holds ${found.length} private keys with ${what}; name one by its id`);
    return TokenSigner.forHandle(session, found[0]!);
  }

  static async forHandle(session: TokenSession, handle: ObjectHandle): Promise<TokenSigner> {
    const a = await session.getAttributes(handle);
    if (a.class !== 'private-key') throw badRequest('TOKEN_KEY_NOT_PRIVATE', `object ${handle} is not a private key`);
    if (!a.publicKeyInfo) throw notFound('TOKEN_PUBLIC_KEY_MISSING', 'the token does not show the public half of this key (no public key object with the same id)');
    return new TokenSigner(session, handle, createPublicKey({ key: a.publicKeyInfo, format: 'der', type: 'spki' }));
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    const alg = this.keyType.startsWith('ecdsa') ? 'ec' : 'rsa';
    const sig = await this.session.sign(signMechanismFor(alg, SIGNATURE_HASH[this.algorithm]), this.privateKey, data);
    return alg === 'ec' ? ecdsaRawToDer(sig) : sig;
  }
}
