/**
 * One secure-token interface shaped after PKCS#11 (v2.40): a module holds
 * slots, a slot holds a token, a session on a token logs in as the user or the
 * security officer (SO) and works on objects. Both implementations — the
 * encrypted software token and the bridge to a real PKCS#11 module — honour it,
 * and the conformance table in docs/tokens.md names the method behind each
 * PKCS#11 function.
 */
import type { KeyType } from '../pki/index.js';

/** C_GetInfo. */
export interface ModuleInfo {
  manufacturer: string;
  description: string;
  cryptokiVersion: string;
  libraryVersion: string;
}

/** C_GetSlotInfo. */
export interface SlotInfo {
  slotId: number;
  description: string;
  manufacturer: string;
  tokenPresent: boolean;
  flags: number;
}

/** C_GetTokenInfo, with the PIN counters spelled out (flags carry them as CKF_* bits). */
export interface TokenInfo {
  label: string;
  manufacturer: string;
  model: string;
  serialNumber: string;
  /** CKF_* token flags (see flags.ts). */
  flags: number;
  minPinLength: number;
  maxPinLength: number;
  /** Known only where the token keeps the counters itself (the software token); undefined for a PKCS#11 module. */
  userPinFailures?: number;
  maxUserPinTries?: number;
  soPinFailures?: number;
  maxSoPinTries?: number;
}

export type UserType = 'user' | 'so';
export type ObjectClass = 'certificate' | 'public-key' | 'private-key' | 'data';
export type KeyAlgorithm = 'ec' | 'rsa';
/** An object handle, valid while its session is open. */
export type ObjectHandle = string;

/**
 * The attributes sekisho reads and writes (CKA_* names in camelCase). Private
 * key values (CKA_VALUE, CKA_PRIVATE_EXPONENT, …) are never among them.
 */
export interface ObjectAttributes {
  class: ObjectClass;
  label?: string;
  /** CKA_ID: ties a private key, its public key and its certificate together. */
  id?: Buffer;
  /** CKA_PRIVATE: readable only after user login. */
  private?: boolean;
  modifiable?: boolean;
  keyType?: KeyAlgorithm;
  /** CKA_VALUE of a certificate (DER) or a data object. Never of a private key. */
  value?: Buffer;
  /** CKA_APPLICATION of a data object. */
  application?: string;
  /** CKA_PUBLIC_KEY_INFO: DER SubjectPublicKeyInfo of a key (public or private). */
  publicKeyInfo?: Buffer;
  sensitive?: boolean;
  extractable?: boolean;
  alwaysSensitive?: boolean;
  neverExtractable?: boolean;
  /** CKA_LOCAL: generated inside the token. */
  local?: boolean;
  sign?: boolean;
  verify?: boolean;
  encrypt?: boolean;
  decrypt?: boolean;
}

/** A search template: every given attribute must match (C_FindObjectsInit). */
export type ObjectTemplate = Partial<Pick<ObjectAttributes, 'class' | 'label' | 'id' | 'keyType' | 'application' | 'private'>>;

/** Signing mechanisms; the data is the message (hashing happens inside the mechanism). EC signatures come back as raw r‖s, as PKCS#11 returns them. */
export type SignMechanism = 'ecdsa-sha256' | 'ecdsa-sha384' | 'sha256-rsa-pkcs' | 'sha384-rsa-pkcs';
/** Encryption mechanisms (RSA keys): OAEP with SHA-1/MGF1-SHA-1 (what SoftHSM2 offers) or SHA-256. */
export type CipherMechanism = 'rsa-oaep-sha1' | 'rsa-oaep-sha256';
export type DigestMechanism = 'sha256' | 'sha384' | 'sha512';

export interface GeneratedKeyPair {
  publicKey: ObjectHandle;
  privateKey: ObjectHandle;
  publicKeyInfo: Buffer;
}

export interface KeyPairTemplate {
  label: string;
  id?: Buffer;
}

/** C_GetMechanismInfo, with the mechanism's CKM_* name. Key sizes in bits (0 where sizes do not apply, e.g. digests). */
export interface MechanismInfo {
  type: number;
  name: string;
  minKeySize: number;
  maxKeySize: number;
  /** CKF_* mechanism flags (MECHANISM_FLAGS in mechanisms.ts). */
  flags: number;
}

/** CK_STATE of a session: read-only or read/write, and who is logged in. */
export type SessionState = 'ro-public' | 'ro-user' | 'rw-public' | 'rw-user' | 'rw-so';

/** C_GetSessionInfo. */
export interface SessionInfo {
  slotId: number;
  state: SessionState;
  /** CKF_RW_SESSION is set. */
  readWrite: boolean;
  /** CKF_* session flags (CKF_SERIAL_SESSION 0x4, CKF_RW_SESSION 0x2). */
  flags: number;
}

/** A multi-part encryption (C_EncryptInit, C_EncryptUpdate…, C_EncryptFinal). */
export interface EncryptOperation {
  /** C_EncryptUpdate: returns what is ready (may be empty). */
  update(data: Uint8Array): Promise<Buffer>;
  /** C_EncryptFinal: the rest of the ciphertext; the operation ends. */
  final(): Promise<Buffer>;
}

/** A multi-part verification (C_VerifyInit, C_VerifyUpdate…, C_VerifyFinal). */
export interface VerifyOperation {
  update(data: Uint8Array): Promise<void>;
  /** C_VerifyFinal: whether the signature is good for all parts; the operation ends. */
  final(signature: Uint8Array): Promise<boolean>;
}

/** A multi-part digest (C_DigestInit, C_DigestUpdate…, C_DigestFinal). */
export interface DigestOperation {
  update(data: Uint8Array): Promise<void>;
  final(): Promise<Buffer>;
}

/** A session on one token (C_OpenSession … C_CloseSession). */
export interface TokenSession {
  readonly slotId: number;
  login(userType: UserType, pin: string): Promise<void>;
  logout(): Promise<void>;
  /** Who is logged in on this session, if anyone. */
  readonly loggedInAs: UserType | undefined;
  /** C_InitPIN: the SO sets a new user PIN (and so unlocks a locked user PIN). */
  initPin(newPin: string): Promise<void>;
  /** C_SetPIN: the logged-in user (or SO) changes its own PIN. */
  setPin(oldPin: string, newPin: string): Promise<void>;
  findObjects(template: ObjectTemplate): Promise<ObjectHandle[]>;
  getAttributes(handle: ObjectHandle): Promise<ObjectAttributes>;
  /**
   * C_SetAttributeValue for label and value (e.g. the device-identification data
   * object). Returns the object's handle, which changes where a module fixes a
   * data object's value at creation (SoftHSM2): then the object is rewritten
   * (C_CreateObject, then C_DestroyObject of the old one).
   */
  setAttributes(handle: ObjectHandle, attrs: Pick<ObjectAttributes, 'label' | 'value'>): Promise<ObjectHandle>;
  /** C_CreateObject for certificates, data objects, public keys; `importPrivateKey` for private keys. */
  createObject(attrs: ObjectAttributes): Promise<ObjectHandle>;
  /** Writes a private key taken from elsewhere (a PKCS#12 from the CA) as a sensitive, non-extractable object. */
  importPrivateKey(key: import('node:crypto').KeyObject, template: KeyPairTemplate): Promise<ObjectHandle>;
  destroyObject(handle: ObjectHandle): Promise<void>;
  generateKeyPair(keyType: KeyType, template: KeyPairTemplate): Promise<GeneratedKeyPair>;
  sign(mechanism: SignMechanism, key: ObjectHandle, data: Uint8Array): Promise<Buffer>;
  verify(mechanism: SignMechanism, key: ObjectHandle, data: Uint8Array, signature: Uint8Array): Promise<boolean>;
  encrypt(mechanism: CipherMechanism, key: ObjectHandle, data: Uint8Array): Promise<Buffer>;
  decrypt(mechanism: CipherMechanism, key: ObjectHandle, data: Uint8Array): Promise<Buffer>;
  digest(mechanism: DigestMechanism, data: Uint8Array): Promise<Buffer>;
  generateRandom(length: number): Promise<Buffer>;
  /** C_GetSessionInfo: the session's state (who is logged in) and flags. */
  sessionInfo(): Promise<SessionInfo>;
  /** C_GetObjectSize: bytes the object takes in the token; undefined where the module answers CK_UNAVAILABLE_INFORMATION (SoftHSM2). */
  objectSize(handle: ObjectHandle): Promise<number | undefined>;
  /** C_EncryptInit for a multi-part encryption (see docs/tokens.md for how RSA mechanisms, single-part in PKCS#11, are handled). */
  encryptInit(mechanism: CipherMechanism, key: ObjectHandle): Promise<EncryptOperation>;
  /** C_VerifyInit for a multi-part verification. */
  verifyInit(mechanism: SignMechanism, key: ObjectHandle): Promise<VerifyOperation>;
  /** C_DigestInit for a multi-part digest. */
  digestInit(mechanism: DigestMechanism): Promise<DigestOperation>;
  /**
   * The software token only (a PKCS#11 key goes to TLS through the OpenSSL
   * engine instead): the private key as PKCS#8 PEM in a Buffer, decrypted in
   * this process's memory for `tls.createSecureContext` and never written
   * anywhere. The caller zeroes the Buffer once the context holds the key.
   * Needs a user login and a key whose CKA_SIGN is true.
   */
  tlsPrivateKeyPem?(key: ObjectHandle): Promise<Buffer>;
  close(): Promise<void>;
}

/** A loaded module (C_Initialize … C_Finalize). */
export interface TokenModule {
  readonly kind: 'software' | 'pkcs11';
  info(): Promise<ModuleInfo>;
  slots(): Promise<SlotInfo[]>;
  tokenInfo(slotId: number): Promise<TokenInfo>;
  /** C_InitToken (and, for convenience, C_InitPIN with the first user PIN). */
  initToken(slotId: number, o: { label: string; soPin: string; userPin: string }): Promise<void>;
  openSession(slotId: number): Promise<TokenSession>;
  /**
   * C_GetFunctionList: the PKCS#11 functions sekisho reaches through this
   * module, each backed by a method (PKCS11_FUNCTION_METHODS in functions.ts).
   */
  functionList(): Promise<string[]>;
  /**
   * C_WaitForSlotEvent with CKF_DONT_BLOCK: the slot where a token was
   * inserted or removed since the last call, or undefined (CKR_NO_EVENT).
   * Never blocks: a blocking Cryptoki call would stop Node's event loop; poll.
   */
  waitForSlotEvent(): Promise<number | undefined>;
  /** C_GetMechanismList: the CKM_* types the token in the slot offers. */
  mechanismList(slotId: number): Promise<number[]>;
  /** C_GetMechanismInfo; a type the token does not offer is TOKEN_MECHANISM_INVALID. */
  mechanismInfo(slotId: number, type: number): Promise<MechanismInfo>;
  /** C_Finalize: closes every session. */
  close(): Promise<void>;
}
