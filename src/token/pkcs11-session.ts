/** A session on a PKCS#11 token (C_OpenSession … C_CloseSession), through pkcs11js. */
import { createHash, createPublicKey, KeyObject, timingSafeEqual, X509Certificate } from 'node:crypto';
import type * as P from 'pkcs11js';
import { badRequest, conflict, internal, unauthorized, type SekishoError } from '../errors/index.js';
import { describePublicKey, spkiDer, subjectNameDer, type KeyType } from '../pki/index.js';
import { keyIdFor, mechanismFits, SIGN_HASH } from './mechanisms.js';
import { operationEnded, tokenErrors } from './token-errors.js';
import { b64u, ckr, CLASS_OF, CURVE_OF_PARAMS, EC_PARAMS, guard, mapError, numberOf, pinDigest, pkcs11js, publicKeyTemplate, unb64u } from './pkcs11-binding.js';
import type {
  CipherMechanism,
  DigestMechanism,
  DigestOperation,
  EncryptOperation,
  GeneratedKeyPair,
  SessionInfo,
  SessionState,
  VerifyOperation,
  KeyAlgorithm,
  KeyPairTemplate,
  ObjectAttributes,
  ObjectClass,
  ObjectHandle,
  ObjectTemplate,
  SignMechanism,
  TokenSession,
  UserType,
} from './token.js';

/** What a session needs of its module. */
export interface Pkcs11SessionOwner {
  readonly lib: P.PKCS11;
  /** Per slot, who this process is logged in as and a digest of that PIN (Cryptoki keeps one login per application). */
  readonly logins: Map<number, { who: UserType; digest: Buffer }>;
}

/** A failed C_Login as a sekisho error that names the PIN it was about. */
function loginError(e: unknown, who: UserType): SekishoError {
  const p = pkcs11js();
  const rv = ckr(e);
  if (who === 'so' && rv === p.CKR_PIN_INCORRECT) {
    return tokenErrors.pinWrongUncounted('so', 'logging in as the security officer');
  }
  if (who === 'so' && rv === p.CKR_PIN_LOCKED) return tokenErrors.soLocked();
  if (rv === p.CKR_USER_ANOTHER_ALREADY_LOGGED_IN) {
    return conflict('TOKEN_ALREADY_LOGGED_IN', `this process is logged in to the token as the ${who === 'so' ? 'user' : 'security officer'} in another session; log that out first`);
  }
  return mapError(e, 'logging in');
}

export class Pkcs11Session implements TokenSession {
  #who: UserType | undefined;
  #closed = false;

  constructor(
    readonly module: Pkcs11SessionOwner,
    readonly slotId: number,
    readonly handle: Buffer,
    readonly onClose: () => void,
  ) {}

  get loggedInAs(): UserType | undefined {
    return this.#who;
  }
  get #lib(): P.PKCS11 {
    if (this.#closed) throw conflict('TOKEN_SESSION_CLOSED', 'this token session is closed; open a new one');
    return this.module.lib;
  }

  async login(userType: UserType, pin: string): Promise<void> {
    const p = pkcs11js();
    if (!pin) throw unauthorized('PIN_REQUIRED', 'a PIN is needed: set SEKISHO_PIN (user) or SEKISHO_SO_PIN (security officer)');
    const digest = pinDigest(pin);
    try {
      this.#lib.C_Login(this.handle, userType === 'so' ? p.CKU_SO : p.CKU_USER, pin);
    } catch (e) {
      if (ckr(e) !== p.CKR_USER_ALREADY_LOGGED_IN) throw loginError(e, userType);
      // Another session of this process is logged in, and the module answered without looking at this PIN.
      const known = this.module.logins.get(this.slotId);
      if (!known) throw conflict('TOKEN_ALREADY_LOGGED_IN', 'another part of this process (e.g. the OpenSSL engine) is logged in to this token, so the module cannot check this PIN; log in once per process');
      if (known.who !== userType || !timingSafeEqual(known.digest, digest)) {
        throw tokenErrors.pinWrongUncounted(userType, 'not the PIN this process is logged in to the token with');
      }
    }
    this.module.logins.set(this.slotId, { who: userType, digest });
    this.#who = userType;
  }

  /** C_Logout: PKCS#11 logs out every session of this process on the token. */
  async logout(): Promise<void> {
    if (!this.#who) return;
    try {
      this.#lib.C_Logout(this.handle);
    } catch {
      /* already logged out */
    }
    this.module.logins.delete(this.slotId);
    this.#who = undefined;
  }

  #requireUser(doing: string): void {
    // The JAHIS rule for user data: readable by anyone, written only after authentication.
    if (this.#who !== 'user') throw tokenErrors.notLoggedIn(doing);
  }

  async initPin(newPin: string): Promise<void> {
    guard('setting the user PIN', () => this.#lib.C_InitPIN(this.handle, newPin));
  }

  async setPin(oldPin: string, newPin: string): Promise<void> {
    guard('changing the PIN', () => this.#lib.C_SetPIN(this.handle, oldPin, newPin));
    const known = this.module.logins.get(this.slotId);
    if (known) this.module.logins.set(this.slotId, { who: known.who, digest: pinDigest(newPin) });
  }

  #template(t: ObjectTemplate): P.Template {
    const p = pkcs11js();
    const out: P.Template = [];
    if (t.class) out.push({ type: p.CKA_CLASS, value: CLASS_OF[t.class]() });
    if (t.label !== undefined) out.push({ type: p.CKA_LABEL, value: t.label });
    if (t.id !== undefined) out.push({ type: p.CKA_ID, value: t.id });
    if (t.keyType) out.push({ type: p.CKA_KEY_TYPE, value: t.keyType === 'ec' ? p.CKK_EC : p.CKK_RSA });
    if (t.application !== undefined) out.push({ type: p.CKA_APPLICATION, value: t.application });
    if (t.private !== undefined) out.push({ type: p.CKA_PRIVATE, value: t.private });
    return out;
  }

  async findObjects(t: ObjectTemplate): Promise<ObjectHandle[]> {
    const lib = this.#lib;
    return guard('finding objects', () => {
      lib.C_FindObjectsInit(this.handle, this.#template(t));
      try {
        const found: Buffer[] = [];
        for (;;) {
          const batch = lib.C_FindObjects(this.handle, 64);
          found.push(...batch);
          if (batch.length < 64) break;
        }
        return found.map((h) => h.toString('hex'));
      } finally {
        lib.C_FindObjectsFinal(this.handle);
      }
    });
  }

  #attr(obj: Buffer, type: number): Buffer | undefined {
    try {
      const [a] = this.#lib.C_GetAttributeValue(this.handle, obj, [{ type }]);
      return a?.value as Buffer | undefined;
    } catch {
      return undefined; // not an attribute of this class, or sensitive
    }
  }

  async getAttributes(handle: ObjectHandle): Promise<ObjectAttributes> {
    const p = pkcs11js();
    const obj = Buffer.from(handle, 'hex');
    const clsBuf = this.#attr(obj, p.CKA_CLASS);
    if (!clsBuf) throw tokenErrors.noSuchObject(handle);
    const cls = numberOf(Buffer.concat([clsBuf, Buffer.alloc(8)]).subarray(0, 8));
    const klass = (Object.keys(CLASS_OF) as ObjectClass[]).find((k) => CLASS_OF[k]() === cls);
    if (!klass) throw badRequest('TOKEN_OBJECT_CLASS_UNSUPPORTED', `object ${handle} is of a class sekisho does not handle (${cls})`);
    const bool = (type: number) => {
      const b = this.#attr(obj, type);
      return b && b.length ? b[0] !== 0 : undefined;
    };
    const a: ObjectAttributes = { class: klass };
    const label = this.#attr(obj, p.CKA_LABEL);
    if (label) a.label = label.toString('utf8');
    const id = this.#attr(obj, p.CKA_ID);
    if (id && id.length) a.id = id;
    a.private = bool(p.CKA_PRIVATE);
    a.modifiable = bool(p.CKA_MODIFIABLE);
    if (klass === 'certificate' || klass === 'data') {
      const v = this.#attr(obj, p.CKA_VALUE);
      if (v) a.value = v;
      if (klass === 'data') {
        const app = this.#attr(obj, p.CKA_APPLICATION);
        if (app) a.application = app.toString('utf8');
      }
    }
    if (klass === 'public-key' || klass === 'private-key') {
      const kt = this.#attr(obj, p.CKA_KEY_TYPE);
      const ktn = kt ? numberOf(Buffer.concat([kt, Buffer.alloc(8)]).subarray(0, 8)) : undefined;
      a.keyType = ktn === p.CKK_EC ? 'ec' : ktn === p.CKK_RSA ? 'rsa' : undefined;
      const spki = this.#publicKeyInfo(obj, a.keyType);
      if (spki) a.publicKeyInfo = spki;
      a.local = bool(p.CKA_LOCAL);
      if (klass === 'private-key') {
        a.sensitive = bool(p.CKA_SENSITIVE);
        a.extractable = bool(p.CKA_EXTRACTABLE);
        a.alwaysSensitive = bool(p.CKA_ALWAYS_SENSITIVE);
        a.neverExtractable = bool(p.CKA_NEVER_EXTRACTABLE);
        a.sign = bool(p.CKA_SIGN);
        a.decrypt = bool(p.CKA_DECRYPT);
      } else {
        a.verify = bool(p.CKA_VERIFY);
        a.encrypt = bool(p.CKA_ENCRYPT);
      }
    }
    for (const k of Object.keys(a) as (keyof ObjectAttributes)[]) if (a[k] === undefined) delete a[k];
    return a;
  }

  /** DER SubjectPublicKeyInfo of a key object: from its public components, or from the public key with the same CKA_ID. */
  #publicKeyInfo(obj: Buffer, keyType: KeyAlgorithm | undefined): Buffer | undefined {
    const p = pkcs11js();
    if (keyType === 'ec') {
      const params = this.#attr(obj, p.CKA_EC_PARAMS);
      const point = this.#attr(obj, p.CKA_EC_POINT);
      const crv = params && CURVE_OF_PARAMS[params.toString('hex')];
      if (crv && point) {
        // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (SoftHSM2, OpenSC); accept the bare point too.
        let raw = point;
        if (raw[0] === 0x04 && raw.length > 2 && raw[1]! + 2 === raw.length) raw = raw.subarray(2);
        else if (raw[0] === 0x04 && raw[1] === 0x81) raw = raw.subarray(3);
        const n = (raw.length - 1) / 2;
        return spkiDer(createPublicKey({ key: { kty: 'EC', crv, x: b64u(raw.subarray(1, 1 + n)), y: b64u(raw.subarray(1 + n)) }, format: 'jwk' }));
      }
    } else if (keyType === 'rsa') {
      const n = this.#attr(obj, p.CKA_MODULUS);
      const e = this.#attr(obj, p.CKA_PUBLIC_EXPONENT);
      if (n && e) return spkiDer(createPublicKey({ key: { kty: 'RSA', n: b64u(n), e: b64u(e) }, format: 'jwk' }));
    }
    // A private EC key carries no point: take it from the public key with the same id.
    const id = this.#attr(obj, p.CKA_ID);
    if (!id || !id.length) return undefined;
    const lib = this.#lib;
    lib.C_FindObjectsInit(this.handle, [
      { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY },
      { type: p.CKA_ID, value: id },
    ]);
    let pub: Buffer | null;
    try {
      pub = lib.C_FindObjects(this.handle);
    } finally {
      lib.C_FindObjectsFinal(this.handle);
    }
    if (!pub || pub.equals(obj)) return undefined;
    return this.#publicKeyInfo(pub, keyType);
  }

  async setAttributes(handle: ObjectHandle, attrs: Pick<ObjectAttributes, 'label' | 'value'>): Promise<ObjectHandle> {
    this.#requireUser('changing an object');
    const p = pkcs11js();
    const obj = Buffer.from(handle, 'hex');
    const t: P.Template = [];
    if (attrs.label !== undefined) t.push({ type: p.CKA_LABEL, value: attrs.label });
    if (attrs.value !== undefined) t.push({ type: p.CKA_VALUE, value: Buffer.from(attrs.value) });
    try {
      this.#lib.C_SetAttributeValue(this.handle, obj, t);
      return handle;
    } catch (e) {
      if (ckr(e) !== p.CKR_ATTRIBUTE_READ_ONLY) throw mapError(e, 'changing an object');
    }
    // SoftHSM2 (like many modules) fixes a data object's CKA_VALUE at creation: write the new object first, then remove the old one.
    const a = await this.getAttributes(handle);
    if (a.class !== 'data' || a.modifiable === false) throw badRequest('TOKEN_OBJECT_READ_ONLY', `object ${handle} cannot be modified`);
    const created = await this.createObject({ ...a, ...(attrs.label !== undefined ? { label: attrs.label } : {}), ...(attrs.value !== undefined ? { value: Buffer.from(attrs.value) } : {}) });
    await this.destroyObject(handle);
    return created;
  }

  async createObject(a: ObjectAttributes): Promise<ObjectHandle> {
    this.#requireUser('writing to the token');
    const p = pkcs11js();
    const t: P.Template = [
      { type: p.CKA_CLASS, value: CLASS_OF[a.class]() },
      { type: p.CKA_TOKEN, value: true },
      { type: p.CKA_PRIVATE, value: a.private ?? false },
      { type: p.CKA_MODIFIABLE, value: a.modifiable ?? true },
    ];
    if (a.label !== undefined) t.push({ type: p.CKA_LABEL, value: a.label });
    if (a.class === 'certificate') {
      if (!a.value) throw badRequest('TOKEN_TEMPLATE_INCOMPLETE', 'a certificate object needs its DER value');
      const cert = new X509Certificate(a.value);
      t.push(
        { type: p.CKA_CERTIFICATE_TYPE, value: p.CKC_X_509 },
        { type: p.CKA_VALUE, value: Buffer.from(a.value) },
        { type: p.CKA_SUBJECT, value: subjectNameDer(Buffer.from(a.value)) },
        { type: p.CKA_ID, value: a.id ?? keyIdFor(spkiDer(cert.publicKey)) },
      );
    } else if (a.class === 'data') {
      t.push({ type: p.CKA_VALUE, value: Buffer.from(a.value ?? Buffer.alloc(0)) });
      if (a.application !== undefined) t.push({ type: p.CKA_APPLICATION, value: a.application });
      if (a.id) t.push({ type: p.CKA_OBJECT_ID, value: a.id });
    } else if (a.class === 'public-key') {
      if (!a.publicKeyInfo) throw badRequest('TOKEN_TEMPLATE_INCOMPLETE', 'a public key object needs its SubjectPublicKeyInfo');
      const key = createPublicKey({ key: a.publicKeyInfo, format: 'der', type: 'spki' });
      t.push(...publicKeyTemplate(key), { type: p.CKA_ID, value: a.id ?? keyIdFor(a.publicKeyInfo) }, { type: p.CKA_VERIFY, value: true });
    } else {
      throw badRequest('TOKEN_TEMPLATE_INCONSISTENT', 'write private keys with importPrivateKey (from a PKCS#12) or generate them in the token');
    }
    return guard('creating an object', () => this.#lib.C_CreateObject(this.handle, t)).toString('hex');
  }

  async importPrivateKey(key: KeyObject, tmpl: KeyPairTemplate): Promise<ObjectHandle> {
    this.#requireUser('writing a key to the token');
    const p = pkcs11js();
    const d = describePublicKey(key);
    if (key.type !== 'private' || !d.keyType) throw badRequest('KEY_TYPE_UNSUPPORTED', 'only an ECDSA P-256/P-384 or RSA private key can be imported');
    const jwk = key.export({ format: 'jwk' });
    const id = tmpl.id ?? keyIdFor(spkiDer(key));
    const t: P.Template = [
      { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
      { type: p.CKA_TOKEN, value: true },
      { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_SENSITIVE, value: true },
      { type: p.CKA_EXTRACTABLE, value: false },
      { type: p.CKA_SIGN, value: true },
      { type: p.CKA_LABEL, value: tmpl.label },
      { type: p.CKA_ID, value: id },
    ];
    if (jwk.kty === 'EC') {
      t.push({ type: p.CKA_KEY_TYPE, value: p.CKK_EC }, { type: p.CKA_EC_PARAMS, value: EC_PARAMS[d.keyType]! }, { type: p.CKA_VALUE, value: unb64u(jwk.d) });
    } else {
      t.push(
        { type: p.CKA_KEY_TYPE, value: p.CKK_RSA },
        { type: p.CKA_DECRYPT, value: true },
        { type: p.CKA_MODULUS, value: unb64u(jwk.n) },
        { type: p.CKA_PUBLIC_EXPONENT, value: unb64u(jwk.e) },
        { type: p.CKA_PRIVATE_EXPONENT, value: unb64u(jwk.d) },
        { type: p.CKA_PRIME_1, value: unb64u(jwk.p) },
        { type: p.CKA_PRIME_2, value: unb64u(jwk.q) },
        { type: p.CKA_EXPONENT_1, value: unb64u(jwk.dp) },
        { type: p.CKA_EXPONENT_2, value: unb64u(jwk.dq) },
        { type: p.CKA_COEFFICIENT, value: unb64u(jwk.qi) },
      );
    }
    const h = guard('importing a private key', () => this.#lib.C_CreateObject(this.handle, t)).toString('hex');
    // The public half beside it, so verify/encrypt and pkcs11-tool find it by the same id.
    const pub = createPublicKey(key);
    guard('importing the public key', () =>
      this.#lib.C_CreateObject(this.handle, [
        { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY },
        { type: p.CKA_TOKEN, value: true },
        { type: p.CKA_PRIVATE, value: false },
        { type: p.CKA_LABEL, value: tmpl.label },
        { type: p.CKA_ID, value: id },
        { type: p.CKA_VERIFY, value: true },
        ...(jwk.kty === 'RSA' ? [{ type: p.CKA_ENCRYPT, value: true }] : []),
        ...publicKeyTemplate(pub),
      ]),
    );
    return h;
  }

  async destroyObject(handle: ObjectHandle): Promise<void> {
    this.#requireUser('removing an object');
    guard('removing an object', () => this.#lib.C_DestroyObject(this.handle, Buffer.from(handle, 'hex')));
  }

  async generateKeyPair(keyType: KeyType, tmpl: KeyPairTemplate): Promise<GeneratedKeyPair> {
    this.#requireUser('generating a key');
    const p = pkcs11js();
    const ec = keyType.startsWith('ecdsa');
    const common = (isPrivate: boolean): P.Template => [
      { type: p.CKA_TOKEN, value: true },
      { type: p.CKA_PRIVATE, value: isPrivate },
      { type: p.CKA_LABEL, value: tmpl.label },
      ...(tmpl.id ? [{ type: p.CKA_ID, value: tmpl.id }] : []),
    ];
    const pubT: P.Template = [...common(false), { type: p.CKA_VERIFY, value: true }];
    const privT: P.Template = [...common(true), { type: p.CKA_SIGN, value: true }, { type: p.CKA_SENSITIVE, value: true }, { type: p.CKA_EXTRACTABLE, value: false }];
    let mech: P.Mechanism;
    if (ec) {
      mech = { mechanism: p.CKM_EC_KEY_PAIR_GEN };
      pubT.push({ type: p.CKA_EC_PARAMS, value: EC_PARAMS[keyType]! });
    } else {
      mech = { mechanism: p.CKM_RSA_PKCS_KEY_PAIR_GEN };
      pubT.push({ type: p.CKA_MODULUS_BITS, value: Number(keyType.slice(4)) }, { type: p.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }, { type: p.CKA_ENCRYPT, value: true });
      privT.push({ type: p.CKA_DECRYPT, value: true });
    }
    const pair = guard('generating a key pair', () => this.#lib.C_GenerateKeyPair(this.handle, mech, pubT, privT));
    const spki = this.#publicKeyInfo(pair.publicKey, ec ? 'ec' : 'rsa');
    if (!spki) throw internal('PKCS11_ERROR', 'the token made a key pair but does not show its public key');
    if (!tmpl.id) {
      // Like the software token: CKA_ID from the public key, so certificates imported later find their key.
      const id = keyIdFor(spki);
      guard('setting the key id', () => {
        this.#lib.C_SetAttributeValue(this.handle, pair.publicKey, [{ type: p.CKA_ID, value: id }]);
        this.#lib.C_SetAttributeValue(this.handle, pair.privateKey, [{ type: p.CKA_ID, value: id }]);
      });
    }
    return { publicKey: pair.publicKey.toString('hex'), privateKey: pair.privateKey.toString('hex'), publicKeyInfo: spki };
  }

  async #keyAlgorithm(handle: ObjectHandle): Promise<KeyAlgorithm | undefined> {
    return (await this.getAttributes(handle)).keyType;
  }

  async sign(mechanism: SignMechanism, handle: ObjectHandle, data: Uint8Array): Promise<Buffer> {
    const p = pkcs11js();
    const alg = await this.#keyAlgorithm(handle);
    if (!mechanismFits(mechanism, alg)) throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} does not fit a ${alg ?? 'non-key'} object`);
    const key = Buffer.from(handle, 'hex');
    return guard('signing', () => {
      if (alg === 'ec') {
        // CKM_ECDSA over a hash made here: SoftHSM2 (and many cards) do not offer CKM_ECDSA_SHA256.
        this.#lib.C_SignInit(this.handle, { mechanism: p.CKM_ECDSA }, key);
        return Buffer.from(this.#lib.C_Sign(this.handle, createHash(SIGN_HASH[mechanism]).update(data).digest(), Buffer.alloc(256)));
      }
      this.#lib.C_SignInit(this.handle, { mechanism: mechanism === 'sha256-rsa-pkcs' ? p.CKM_SHA256_RSA_PKCS : p.CKM_SHA384_RSA_PKCS }, key);
      return Buffer.from(this.#lib.C_Sign(this.handle, Buffer.from(data), Buffer.alloc(1024)));
    });
  }

  async verify(mechanism: SignMechanism, handle: ObjectHandle, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const p = pkcs11js();
    const alg = await this.#keyAlgorithm(handle);
    if (!mechanismFits(mechanism, alg)) throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} does not fit this key`);
    const key = Buffer.from(handle, 'hex');
    const lib = this.#lib;
    try {
      if (alg === 'ec') {
        lib.C_VerifyInit(this.handle, { mechanism: p.CKM_ECDSA }, key);
        return lib.C_Verify(this.handle, createHash(SIGN_HASH[mechanism]).update(data).digest(), Buffer.from(signature));
      }
      lib.C_VerifyInit(this.handle, { mechanism: mechanism === 'sha256-rsa-pkcs' ? p.CKM_SHA256_RSA_PKCS : p.CKM_SHA384_RSA_PKCS }, key);
      return lib.C_Verify(this.handle, Buffer.from(data), Buffer.from(signature));
    } catch (e) {
      const code = ckr(e);
      if (code === p.CKR_SIGNATURE_INVALID || code === p.CKR_SIGNATURE_LEN_RANGE) return false;
      throw mapError(e, 'verifying');
    }
  }

  #oaep(mechanism: CipherMechanism): P.Mechanism {
    const p = pkcs11js();
    const sha1 = mechanism === 'rsa-oaep-sha1';
    return {
      mechanism: p.CKM_RSA_PKCS_OAEP,
      parameter: { type: p.CK_PARAMS_RSA_OAEP, hashAlg: sha1 ? p.CKM_SHA_1 : p.CKM_SHA256, mgf: sha1 ? p.CKG_MGF1_SHA1 : p.CKG_MGF1_SHA256, source: 1 /* CKZ_DATA_SPECIFIED */ } as P.RsaOAEP,
    };
  }

  async encrypt(mechanism: CipherMechanism, handle: ObjectHandle, data: Uint8Array): Promise<Buffer> {
    // SoftHSM2 answers too much data with CKR_GENERAL_ERROR and keeps the operation active: check the OAEP limit first.
    const spki = (await this.getAttributes(handle)).publicKeyInfo;
    if (spki) {
      const bits = createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength ?? 0;
      const max = Math.floor(bits / 8) - 2 * (mechanism === 'rsa-oaep-sha1' ? 20 : 32) - 2;
      if (bits && data.length > max) throw badRequest('TOKEN_DATA_LEN_RANGE', `RSA-OAEP with this key takes at most ${max} bytes`);
    }
    return guard('encrypting', () => {
      this.#lib.C_EncryptInit(this.handle, this.#oaep(mechanism), Buffer.from(handle, 'hex'));
      return Buffer.from(this.#lib.C_Encrypt(this.handle, Buffer.from(data), Buffer.alloc(1024)));
    });
  }

  async decrypt(mechanism: CipherMechanism, handle: ObjectHandle, data: Uint8Array): Promise<Buffer> {
    const p = pkcs11js();
    guard('decrypting', () => this.#lib.C_DecryptInit(this.handle, this.#oaep(mechanism), Buffer.from(handle, 'hex')));
    try {
      return Buffer.from(this.#lib.C_Decrypt(this.handle, Buffer.from(data), Buffer.alloc(1024)));
    } catch (e) {
      // SoftHSM2 answers a failed OAEP check with CKR_GENERAL_ERROR.
      if (ckr(e) === p.CKR_GENERAL_ERROR) throw badRequest('TOKEN_DECRYPT_FAILED', 'the data does not decrypt with this key (wrong key, mechanism or damaged data)');
      throw mapError(e, 'decrypting');
    }
  }

  async digest(mechanism: DigestMechanism, data: Uint8Array): Promise<Buffer> {
    const p = pkcs11js();
    const m = { sha256: p.CKM_SHA256, sha384: p.CKM_SHA384, sha512: p.CKM_SHA512 }[mechanism];
    return guard('hashing', () => {
      this.#lib.C_DigestInit(this.handle, { mechanism: m });
      return Buffer.from(this.#lib.C_Digest(this.handle, Buffer.from(data), Buffer.alloc(64)));
    });
  }

  async generateRandom(length: number): Promise<Buffer> {
    if (!Number.isInteger(length) || length < 1 || length > 65536) throw badRequest('TOKEN_RANDOM_LENGTH', 'ask for 1 to 65536 random bytes');
    return guard('making random bytes', () => Buffer.from(this.#lib.C_GenerateRandom(this.handle, Buffer.alloc(length))));
  }

  async sessionInfo(): Promise<SessionInfo> {
    const i = guard('reading session info', () => this.#lib.C_GetSessionInfo(this.handle));
    const states: SessionState[] = ['ro-public', 'ro-user', 'rw-public', 'rw-user', 'rw-so'];
    const state = states[i.state];
    if (!state) throw internal('PKCS11_ERROR', `the module reports an unknown session state ${i.state}`);
    return { slotId: numberOf(i.slotID), state, readWrite: (i.flags & 0x2) !== 0, flags: i.flags };
  }

  async objectSize(handle: ObjectHandle): Promise<number | undefined> {
    const n = guard('reading an object size', () => this.#lib.C_GetObjectSize(this.handle, Buffer.from(handle, 'hex')));
    // CK_UNAVAILABLE_INFORMATION (~0UL; pkcs11js hands it over as 2^32−1): the module does not say (SoftHSM2).
    return n >= 0xffffffff ? undefined : n;
  }

  async encryptInit(mechanism: CipherMechanism, handle: ObjectHandle): Promise<EncryptOperation> {
    if ((await this.#keyAlgorithm(handle)) !== 'rsa') throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} needs an RSA key`);
    // RSA-OAEP is single-part in PKCS#11: SoftHSM2 answers C_EncryptUpdate with CKR_FUNCTION_NOT_SUPPORTED and leaves the
    // operation stuck in the session. So the parts are collected here and encrypted in one C_EncryptInit/C_Encrypt at final.
    const parts: Buffer[] = [];
    let size = 0;
    let ended = false;
    return {
      update: async (data) => {
        void this.#lib;
        if (ended) throw operationEnded();
        size += data.length;
        if (size > 64 * 1024) {
          ended = true;
          throw badRequest('TOKEN_DATA_LEN_RANGE', 'too much data for one RSA-OAEP encryption');
        }
        parts.push(Buffer.from(data));
        return Buffer.alloc(0);
      },
      final: async () => {
        if (ended) throw operationEnded();
        ended = true;
        return this.encrypt(mechanism, handle, Buffer.concat(parts));
      },
    };
  }

  async verifyInit(mechanism: SignMechanism, handle: ObjectHandle): Promise<VerifyOperation> {
    const p = pkcs11js();
    const alg = await this.#keyAlgorithm(handle);
    if (!mechanismFits(mechanism, alg)) throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} does not fit this key`);
    let ended = false;
    if (alg === 'ec') {
      // CKM_ECDSA is single-part (the bridge hashes, as for C_Sign): the parts are hashed here, and C_Verify checks the hash at final.
      const h = createHash(SIGN_HASH[mechanism]);
      return {
        update: async (data) => {
          void this.#lib;
          if (ended) throw operationEnded();
          h.update(data);
        },
        final: async (signature) => {
          if (ended) throw operationEnded();
          ended = true;
          return this.#verifyDigest(h.digest(), handle, signature);
        },
      };
    }
    const key = Buffer.from(handle, 'hex');
    guard('verifying', () => this.#lib.C_VerifyInit(this.handle, { mechanism: mechanism === 'sha256-rsa-pkcs' ? p.CKM_SHA256_RSA_PKCS : p.CKM_SHA384_RSA_PKCS }, key));
    return {
      update: async (data) => {
        if (ended) throw operationEnded();
        if (data.length === 0) return;
        try {
          this.#lib.C_VerifyUpdate(this.handle, Buffer.from(data));
        } catch (e) {
          ended = true; // a failed C_VerifyUpdate ends the operation (PKCS#11 v2.40 §5.13)
          throw mapError(e, 'verifying');
        }
      },
      final: async (signature) => {
        if (ended) throw operationEnded();
        ended = true;
        try {
          return this.#lib.C_VerifyFinal(this.handle, Buffer.from(signature));
        } catch (e) {
          const code = ckr(e);
          if (code === p.CKR_SIGNATURE_INVALID || code === p.CKR_SIGNATURE_LEN_RANGE) return false;
          throw mapError(e, 'verifying');
        }
      },
    };
  }

  #verifyDigest(digest: Buffer, handle: ObjectHandle, signature: Uint8Array): boolean {
    const p = pkcs11js();
    try {
      this.#lib.C_VerifyInit(this.handle, { mechanism: p.CKM_ECDSA }, Buffer.from(handle, 'hex'));
      return this.#lib.C_Verify(this.handle, digest, Buffer.from(signature));
    } catch (e) {
      const code = ckr(e);
      if (code === p.CKR_SIGNATURE_INVALID || code === p.CKR_SIGNATURE_LEN_RANGE) return false;
      throw mapError(e, 'verifying');
    }
  }

  async digestInit(mechanism: DigestMechanism): Promise<DigestOperation> {
    const p = pkcs11js();
    const m = { sha256: p.CKM_SHA256, sha384: p.CKM_SHA384, sha512: p.CKM_SHA512 }[mechanism];
    guard('hashing', () => this.#lib.C_DigestInit(this.handle, { mechanism: m }));
    let ended = false;
    return {
      update: async (data) => {
        if (ended) throw operationEnded();
        if (data.length === 0) return; // an empty part is nothing to add (SoftHSM2 calls it CKR_ARGUMENTS_BAD)
        try {
          this.#lib.C_DigestUpdate(this.handle, Buffer.from(data));
        } catch (e) {
          ended = true;
          throw mapError(e, 'hashing');
        }
      },
      final: async () => {
        if (ended) throw operationEnded();
        ended = true;
        return guard('hashing', () => Buffer.from(this.#lib.C_DigestFinal(this.handle, Buffer.alloc(64))));
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // No C_Logout here: it would log out every other session of this process on the token. Cryptoki logs out when the last one closes.
    this.#who = undefined;
    try {
      this.module.lib.C_CloseSession(this.handle);
    } catch {
      /* the module may have been finalized */
    }
    this.#closed = true;
    this.onClose();
  }
}

