/**
 * The encrypted software token: one file, one slot (0), the PKCS#11-shaped
 * interface of token.ts. Every operation reads the file afresh (so two
 * processes see each other's PIN counters) and every change is written to a
 * temporary file, fsynced and renamed, so the file is never half-written.
 */
import { createHash, createVerify, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, randomBytes, sign as cryptoSign, verify as cryptoVerify, constants, KeyObject, X509Certificate } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { badRequest, conflict, notFound, unauthorized, type SekishoError } from '../errors/index.js';
import { describePublicKey, generateKey, spkiDer, type KeyType } from '../pki/index.js';
import { writeFileAtomic } from '../files/index.js';
import { CKF, pinCounterFlags } from './flags.js';
import {
  DEFAULT_KDF,
  TOKEN_FILE_FORMAT,
  computeMac,
  loadAttributes,
  macMatches,
  openBackup,
  openPrivateObjects,
  parseTokenFile,
  pinText,
  sealBackup,
  sealPrivateObjects,
  serializeTokenFile,
  storeAttributes,
  unwrapTokenKey,
  wrapTokenKey,
  type KdfParams,
  type StoredObject,
  type TokenFile,
  type TokenPolicy,
} from './software-token-file.js';
import type {
  CipherMechanism,
  DigestMechanism,
  DigestOperation,
  EncryptOperation,
  GeneratedKeyPair,
  MechanismInfo,
  SessionInfo,
  VerifyOperation,
  KeyPairTemplate,
  ModuleInfo,
  ObjectAttributes,
  ObjectHandle,
  ObjectTemplate,
  SignMechanism,
  SlotInfo,
  TokenInfo,
  TokenModule,
  TokenSession,
  UserType,
} from './token.js';
import { CKM, keyIdFor, mechanismFits, mechanismName, MECHANISM_FLAGS as MF, SIGN_HASH } from './mechanisms.js';
import { operationEnded, tokenErrors } from './token-errors.js';
import { PKCS11_FUNCTIONS } from './functions.js';

/** What the software token offers (C_GetMechanismList / C_GetMechanismInfo); key sizes in bits. */
const SOFTWARE_MECHANISMS: readonly Omit<MechanismInfo, 'name'>[] = [
  { type: CKM.RSA_PKCS_KEY_PAIR_GEN, minKeySize: 2048, maxKeySize: 4096, flags: MF.GENERATE_KEY_PAIR },
  { type: CKM.EC_KEY_PAIR_GEN, minKeySize: 256, maxKeySize: 384, flags: MF.GENERATE_KEY_PAIR },
  { type: CKM.ECDSA_SHA256, minKeySize: 256, maxKeySize: 384, flags: MF.SIGN | MF.VERIFY },
  { type: CKM.ECDSA_SHA384, minKeySize: 256, maxKeySize: 384, flags: MF.SIGN | MF.VERIFY },
  { type: CKM.SHA256_RSA_PKCS, minKeySize: 2048, maxKeySize: 4096, flags: MF.SIGN | MF.VERIFY },
  { type: CKM.SHA384_RSA_PKCS, minKeySize: 2048, maxKeySize: 4096, flags: MF.SIGN | MF.VERIFY },
  { type: CKM.RSA_PKCS_OAEP, minKeySize: 2048, maxKeySize: 4096, flags: MF.ENCRYPT | MF.DECRYPT },
  { type: CKM.SHA256, minKeySize: 0, maxKeySize: 0, flags: MF.DIGEST },
  { type: CKM.SHA384, minKeySize: 0, maxKeySize: 0, flags: MF.DIGEST },
  { type: CKM.SHA512, minKeySize: 0, maxKeySize: 0, flags: MF.DIGEST },
];
/** Multi-part RSA encryption collects its parts up to this size (far above what OAEP can take, so the error is OAEP's). */
const MAX_MULTIPART_INPUT = 64 * 1024;

export const DEFAULT_TOKEN_POLICY: TokenPolicy = { minPinLength: 6, maxUserPinTries: 3, maxSoPinTries: 10 };
const MAX_PIN_LENGTH = 256;

export interface SoftwareTokenOptions {
  /** Used by initToken only; an existing token keeps the policy it was made with. */
  policy?: Partial<TokenPolicy>;
  kdf?: KdfParams;
}


export function checkPinLength(pin: string, min: number, what = 'PIN'): void {
  const n = [...pinText(pin)].length;
  if (n < min) throw badRequest('PIN_TOO_SHORT', `the ${what} must be at least ${min} characters (the operator's minimum; a longer PIN takes longer to guess offline)`, { ja: `PINは${min}文字以上にしてください。` });
  if (n > MAX_PIN_LENGTH) throw badRequest('PIN_TOO_LONG', `the ${what} must be at most ${MAX_PIN_LENGTH} characters`);
}

const INIT_HINT = 'choose another file, or remove this one if it is really no longer needed';
const RESTORE_HINT = 'restore to a new file, or pass --replace';
const tokenExists = (file: string, hint: string) =>
  conflict('TOKEN_EXISTS', `${file} already holds a token; ${hint}`, { ja: `${file} には既にトークンがあります。別のファイルを指定してください（既存のトークンは上書きしません）。` });

/**
 * Who holds a lock, as written into it: the process id means something only
 * to a process of the same host, PID namespace and boot (a container sharing
 * the host's name and the token's directory has ids of its own).
 */
const LOCK_HOLDER = `${process.pid} ${hostname()} ${readOr(() => readlinkSync('/proc/self/ns/pid'))} ${readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim())}`;
const STALE_LOCK_MS = 30_000;

function readOr(read: () => string): string {
  try {
    return read().replace(/\s+/g, '');
  } catch {
    return '-'; // not Linux: a holder is then judged by its lock's age only
  }
}

/**
 * Removes a lock left behind: its holder (same host, PID namespace and boot)
 * no longer runs, or the lock is older than 30 s. Waiters break locks one at
 * a time, under `FILE.lock.break` (created exclusively), and re-read the lock
 * under it: a lock another waiter broke and a live process took meanwhile is
 * never removed.
 */
function breakStaleLock(lock: string): void {
  let text: string;
  try {
    text = readFileSync(lock, 'utf8');
    const [pid, ...where] = text.split(' ');
    const [, ...ours] = LOCK_HOLDER.split(' ');
    const sameSystem = where.length >= 3 && where.slice(0, 3).join(' ') === ours.join(' ') && !ours.includes('-');
    const gone = sameSystem && /^[0-9]{1,10}$/.test(pid ?? '') && !processAlive(Number(pid));
    if (!gone && Date.now() - statSync(lock).mtimeMs <= STALE_LOCK_MS) return;
  } catch {
    return; // released meanwhile
  }
  const guard = `${lock}.break`;
  try {
    closeSync(openSync(guard, 'wx', 0o600));
  } catch {
    // Another waiter is breaking it; a guard left by a crash is old news after a few seconds.
    try {
      if (Date.now() - statSync(guard).mtimeMs > 5_000) unlinkSync(guard);
    } catch {
      /* gone meanwhile */
    }
    return;
  }
  try {
    if (readFileSync(lock, 'utf8') === text) unlinkSync(lock);
  } catch {
    /* released meanwhile */
  } finally {
    try {
      unlinkSync(guard);
    } catch {
      /* removed as stale by another waiter */
    }
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Opens (or, through initToken, creates) the software token in `file`. */
export function openSoftwareToken(file: string, o: SoftwareTokenOptions = {}): SoftwareToken {
  return new SoftwareToken(file, o);
}

export class SoftwareToken implements TokenModule {
  readonly kind = 'software' as const;
  readonly #sessions = new Set<SoftwareTokenSession>();

  constructor(
    readonly file: string,
    readonly options: SoftwareTokenOptions = {},
  ) {
    this.#present = existsSync(file);
  }

  /** Reads and checks the file (checksum, shape). */
  read(): TokenFile {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw notFound('TOKEN_FILE_MISSING', `cannot read the token file ${this.file} (${code ?? 'error'})${code === 'ENOENT' ? '; create it with "sekisho token init --token FILE"' : ''}`);
    }
    return parseTokenFile(text, this.file);
  }

  write(f: TokenFile): void {
    writeFileAtomic(this.file, serializeTokenFile(f), 0o600);
  }

  /** Writes a new token file, never over one that exists (made before or, by another process, meanwhile). */
  #create(text: string, hint: string): void {
    try {
      writeFileAtomic(this.file, text, 0o600, { noReplace: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw tokenExists(this.file, hint);
      throw e;
    }
  }

  /**
   * Runs `fn` holding the token's lock file (`FILE.lock`, created exclusively),
   * so read-change-write steps of several sessions and processes never
   * interleave. The lock names its holder (process id and host name): a lock
   * whose holder on this host is gone (a crash, a kill) is taken over at once;
   * any other lock older than 30 s is taken to be left by a crash.
   */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    const lock = `${this.file}.lock`;
    const mine = `${LOCK_HOLDER} ${randomBytes(8).toString('hex')}\n`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const fd = openSync(lock, 'wx', 0o600);
        try {
          writeSync(fd, mine);
        } catch (e) {
          unlinkSync(lock); // an empty lock (a full disk) would block everyone for 30 s
          throw e;
        } finally {
          closeSync(fd);
        }
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') throw notFound('TOKEN_FILE_MISSING', `cannot lock the token file ${this.file} (${code ?? 'error'}); check that its directory exists and is writable`);
        breakStaleLock(lock);
        if (Date.now() > deadline) throw conflict('TOKEN_BUSY', `the token ${this.file} is in use by another process (lock ${lock}); try again`);
        await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 20)));
      }
    }
    try {
      return await fn();
    } finally {
      try {
        // Only our own lock: one taken over as stale meanwhile belongs to someone else now.
        if (readFileSync(lock, 'utf8') === mine) unlinkSync(lock);
      } catch {
        /* already gone */
      }
    }
  }

  async info(): Promise<ModuleInfo> {
    return { manufacturer: 'sekisho', description: 'sekisho encrypted software token', cryptokiVersion: '2.40', libraryVersion: '0.1' };
  }

  async slots(): Promise<SlotInfo[]> {
    return [{ slotId: 0, description: `software token ${this.file}`, manufacturer: 'sekisho', tokenPresent: existsSync(this.file), flags: 0x1 /* CKF_TOKEN_PRESENT when the file exists */ }];
  }

  async tokenInfo(slotId: number): Promise<TokenInfo> {
    if (slotId !== 0) throw tokenErrors.slot(slotId);
    const { body, counters } = this.read();
    const p = body.policy;
    const flags =
      CKF.RNG | CKF.LOGIN_REQUIRED | CKF.USER_PIN_INITIALIZED | CKF.TOKEN_INITIALIZED | pinCounterFlags(counters.userPinFailures, p.maxUserPinTries, 'USER') | pinCounterFlags(counters.soPinFailures, p.maxSoPinTries, 'SO');
    return {
      label: body.label,
      manufacturer: 'sekisho',
      model: 'software token',
      serialNumber: body.serial,
      flags,
      minPinLength: p.minPinLength,
      maxPinLength: MAX_PIN_LENGTH,
      userPinFailures: counters.userPinFailures,
      maxUserPinTries: p.maxUserPinTries,
      soPinFailures: counters.soPinFailures,
      maxSoPinTries: p.maxSoPinTries,
    };
  }

  async initToken(slotId: number, o: { label: string; soPin: string; userPin: string }): Promise<void> {
    if (slotId !== 0) throw tokenErrors.slot(slotId);
    if (existsSync(this.file)) throw tokenExists(this.file, INIT_HINT);
    const policy = { ...DEFAULT_TOKEN_POLICY, ...this.options.policy };
    if (!Number.isInteger(policy.minPinLength) || policy.minPinLength < 4 || policy.minPinLength > 64) throw badRequest('TOKEN_POLICY_INVALID', 'the minimum PIN length must be a whole number from 4 to 64');
    if (!Number.isInteger(policy.maxUserPinTries) || policy.maxUserPinTries < 1 || policy.maxUserPinTries > 100) throw badRequest('TOKEN_POLICY_INVALID', 'the number of PIN tries must be a whole number from 1 to 100');
    if (!Number.isInteger(policy.maxSoPinTries) || policy.maxSoPinTries < 1 || policy.maxSoPinTries > 100) throw badRequest('TOKEN_POLICY_INVALID', 'the number of SO PIN tries must be a whole number from 1 to 100');
    const label = o.label.trim();
    if (!label || [...label].length > 32 || /[\u0000-\u001f]/.test(label)) throw badRequest('TOKEN_LABEL_INVALID', 'the token label must be 1–32 characters (the PKCS#11 label field) without control characters');
    checkPinLength(o.userPin, policy.minPinLength, 'user PIN');
    checkPinLength(o.soPin, policy.minPinLength, 'SO PIN');
    if (pinText(o.userPin) === pinText(o.soPin)) throw badRequest('PIN_SAME_AS_SO_PIN', 'the user PIN and the SO PIN must differ (they are compared as Unicode NFC, as the token derives its keys)', { ja: '利用者PINと管理者PIN（SO PIN）は別のものにしてください。' });
    const kdf = this.options.kdf ?? DEFAULT_KDF;
    const serial = randomBytes(8).toString('hex');
    const tokenKey = randomBytes(32);
    try {
      const body = {
        format: TOKEN_FILE_FORMAT,
        version: 1 as const,
        serial,
        label,
        createdAt: new Date().toISOString(),
        policy,
        kdf: { name: 'scrypt' as const, ...kdf },
        wraps: { user: await wrapTokenKey(tokenKey, o.userPin, serial, 'user', kdf), so: await wrapTokenKey(tokenKey, o.soPin, serial, 'so', kdf) },
        nextHandle: 1,
        publicObjects: [],
        privateObjects: sealPrivateObjects(tokenKey, serial, []),
      };
      this.#create(serializeTokenFile({ body, mac: computeMac(tokenKey, body), counters: { userPinFailures: 0, soPinFailures: 0 } }), INIT_HINT);
    } finally {
      tokenKey.fill(0);
    }
  }

  /** Whether the token file existed at the last C_WaitForSlotEvent (or when the module was opened). */
  #present: boolean;

  async functionList(): Promise<string[]> {
    return [...PKCS11_FUNCTIONS];
  }

  /** The "slot event" of a file token: its file appeared or went away since the last call. */
  async waitForSlotEvent(): Promise<number | undefined> {
    const now = existsSync(this.file);
    if (now === this.#present) return undefined;
    this.#present = now;
    return 0;
  }

  async mechanismList(slotId: number): Promise<number[]> {
    if (slotId !== 0) throw tokenErrors.slot(slotId);
    return SOFTWARE_MECHANISMS.map((m) => m.type);
  }

  async mechanismInfo(slotId: number, type: number): Promise<MechanismInfo> {
    if (slotId !== 0) throw tokenErrors.slot(slotId);
    const m = SOFTWARE_MECHANISMS.find((x) => x.type === type);
    if (!m) throw badRequest('TOKEN_MECHANISM_INVALID', `the software token does not offer ${mechanismName(type)}`);
    return { ...m, name: mechanismName(type) };
  }

  async openSession(slotId: number): Promise<TokenSession> {
    if (slotId !== 0) throw tokenErrors.slot(slotId);
    this.read();
    const s = new SoftwareTokenSession(this, () => this.#sessions.delete(s));
    this.#sessions.add(s);
    return s;
  }

  async close(): Promise<void> {
    for (const s of [...this.#sessions]) await s.close();
  }

  /** An encrypted copy of the token file, for removable media. */
  async backup(passphrase: string, kdf?: KdfParams): Promise<string> {
    if (!passphrase) throw badRequest('BACKUP_PASSPHRASE_EMPTY', 'a backup needs a passphrase: set SEKISHO_BACKUP_PASSPHRASE');
    const text = readFileSync(this.file, 'utf8');
    parseTokenFile(text, this.file);
    return sealBackup(text, passphrase, kdf);
  }

  /** Writes the token held in a backup to this file (atomically; refuses to replace a token unless `replace`). */
  async restore(backupText: string, passphrase: string, o: { where: string; replace?: boolean }): Promise<void> {
    const inner = await openBackup(backupText, passphrase, o.where);
    if (!o.replace) return this.#create(inner, RESTORE_HINT);
    // Under the token's lock: a login or change in another process cannot write the old token back over the restored one.
    await this.locked(async () => writeFileAtomic(this.file, inner, 0o600));
  }
}

type Unlocked = { file: TokenFile; privates: StoredObject[] };

class SoftwareTokenSession implements TokenSession {
  readonly slotId = 0;
  #who: UserType | undefined;
  #tokenKey: Buffer | undefined;
  #closed = false;

  constructor(
    readonly token: SoftwareToken,
    readonly onClose: () => void,
  ) {}

  get loggedInAs(): UserType | undefined {
    return this.#who;
  }

  #open(): void {
    if (this.#closed) throw conflict('TOKEN_SESSION_CLOSED', 'this token session is closed; open a new one');
  }

  /**
   * Checks the PIN of `who` as one read-modify-write under the token's lock
   * file, so attempts from every session and process are serialized and no
   * try is ever lost. The try is counted and written *before* the (slow)
   * check, as a smart card does: a crash mid-check counts as a wrong try. A
   * right PIN then resets the count it read itself — nobody else can have
   * counted a try in between. Returns the token key.
   */
  async #checkPin(who: UserType, pin: string): Promise<Buffer> {
    const field = who === 'so' ? 'soPinFailures' : 'userPinFailures';
    const locked = () => (who === 'so' ? tokenErrors.soLocked() : tokenErrors.pinLocked());
    return this.token.locked(async () => {
      const f = this.token.read();
      const max = who === 'so' ? f.body.policy.maxSoPinTries : f.body.policy.maxUserPinTries;
      if (f.counters[field] >= max) throw locked();
      f.counters[field] += 1;
      this.token.write(f);
      const key = await unwrapTokenKey(f.body, pin, who);
      if (!key) {
        const left = max - f.counters[field];
        throw left <= 0 ? locked() : tokenErrors.pinWrong(left, who);
      }
      if (!macMatches(key, f)) {
        key.fill(0);
        throw badRequest('TOKEN_FILE_TAMPERED', `${this.token.file} was changed outside sekisho (its integrity code does not match); restore it from your backup`, {
          ja: 'トークンファイルが改ざんされています。バックアップから復元してください。',
        });
      }
      f.counters[field] = 0;
      this.token.write(f);
      return key;
    });
  }

  async login(userType: UserType, pin: string): Promise<void> {
    this.#open();
    if (this.#who) throw conflict('TOKEN_ALREADY_LOGGED_IN', `this session is already logged in as ${this.#who}; log out first`);
    if (typeof pin !== 'string' || pin.length === 0) throw unauthorized('PIN_REQUIRED', 'a PIN is needed: set SEKISHO_PIN (user) or SEKISHO_SO_PIN (security officer)');
    this.#tokenKey = await this.#checkPin(userType, pin);
    this.#who = userType;
  }

  async logout(): Promise<void> {
    this.#tokenKey?.fill(0);
    this.#tokenKey = undefined;
    this.#who = undefined;
  }

  /** The file with its private objects, after checking that it still belongs to the key this session holds. */
  #unlocked(what: string, as: UserType = 'user'): Unlocked {
    this.#open();
    if (!this.#tokenKey || this.#who !== as) throw as === 'so' ? unauthorized('TOKEN_NOT_LOGGED_IN', `${what} needs a login with the SO PIN (SEKISHO_SO_PIN)`) : tokenErrors.notLoggedIn(what);
    const file = this.token.read();
    if (!macMatches(this.#tokenKey, file)) throw badRequest('TOKEN_FILE_TAMPERED', `${this.token.file} changed outside sekisho since login; restore it from your backup`);
    return { file, privates: as === 'user' ? openPrivateObjects(this.#tokenKey, file.body, this.token.file) : [] };
  }

  #save(u: Unlocked): void {
    const key = this.#tokenKey!;
    if (this.#who === 'user') u.file.body.privateObjects = sealPrivateObjects(key, u.file.body.serial, u.privates);
    u.file.mac = computeMac(key, u.file.body);
    this.token.write(u.file);
  }

  /** One change to the token under its lock: read, check, change, write. */
  #mutate<T>(what: string, as: UserType, fn: (u: Unlocked) => Promise<T>): Promise<T> {
    return this.token.locked(async () => {
      const u = this.#unlocked(what, as);
      const r = await fn(u);
      this.#save(u);
      return r;
    });
  }

  /** Every object this session may see: public ones always, private ones after user login. */
  #visible(): StoredObject[] {
    this.#open();
    const f = this.token.read();
    if (this.#who === 'user' && this.#tokenKey) {
      if (!macMatches(this.#tokenKey, f)) throw badRequest('TOKEN_FILE_TAMPERED', `${this.token.file} changed outside sekisho since login; restore it from your backup`);
      return [...f.body.publicObjects, ...openPrivateObjects(this.#tokenKey, f.body, this.token.file)];
    }
    return f.body.publicObjects;
  }

  #find(handle: ObjectHandle): StoredObject {
    const o = this.#visible().find((x) => String(x.handle) === handle);
    if (!o) throw tokenErrors.noSuchObject(handle);
    return o;
  }

  async initPin(newPin: string): Promise<void> {
    return this.#mutate('setting a new user PIN', 'so', async (u) => {
      checkPinLength(newPin, u.file.body.policy.minPinLength, 'new user PIN');
      u.file.body.wraps.user = await wrapTokenKey(this.#tokenKey!, newPin, u.file.body.serial, 'user', u.file.body.kdf);
      u.file.counters.userPinFailures = 0;
    });
  }

  async setPin(oldPin: string, newPin: string): Promise<void> {
    const who = this.#who;
    if (!who) throw tokenErrors.notLoggedIn('changing the PIN');
    const policy = this.token.read().body.policy;
    checkPinLength(newPin, policy.minPinLength, 'new PIN');
    const key = await this.#checkPin(who, oldPin);
    key.fill(0);
    return this.#mutate('changing the PIN', who, async (u) => {
      u.file.body.wraps[who] = await wrapTokenKey(this.#tokenKey!, newPin, u.file.body.serial, who, u.file.body.kdf);
    });
  }

  async findObjects(t: ObjectTemplate): Promise<ObjectHandle[]> {
    return this.#visible()
      .filter((o) => {
        const a = loadAttributes(o.attrs);
        return (
          (t.class === undefined || a.class === t.class) &&
          (t.label === undefined || a.label === t.label) &&
          (t.id === undefined || (a.id !== undefined && a.id.equals(t.id))) &&
          (t.keyType === undefined || a.keyType === t.keyType) &&
          (t.application === undefined || a.application === t.application) &&
          (t.private === undefined || (a.private ?? false) === t.private)
        );
      })
      .map((o) => String(o.handle));
  }

  async getAttributes(handle: ObjectHandle): Promise<ObjectAttributes> {
    return loadAttributes(this.#find(handle).attrs);
  }

  async setAttributes(handle: ObjectHandle, attrs: Pick<ObjectAttributes, 'label' | 'value'>): Promise<ObjectHandle> {
    return this.#mutate('changing an object', 'user', async (u) => {
      const o = [...u.file.body.publicObjects, ...u.privates].find((x) => String(x.handle) === handle);
      if (!o) throw tokenErrors.noSuchObject(handle);
      const a = loadAttributes(o.attrs);
      if (a.modifiable === false) throw badRequest('TOKEN_OBJECT_READ_ONLY', `object ${handle} cannot be modified`);
      if (attrs.value !== undefined && a.class !== 'data') throw badRequest('TOKEN_ATTRIBUTE_READ_ONLY', 'only a data object\'s value can be changed');
      o.attrs = storeAttributes({ ...a, ...(attrs.label !== undefined ? { label: attrs.label } : {}), ...(attrs.value !== undefined ? { value: Buffer.from(attrs.value) } : {}) });
      return handle;
    });
  }

  #add(u: Unlocked, attrs: ObjectAttributes, pkcs8?: Buffer): ObjectHandle {
    const handle = u.file.body.nextHandle++;
    const rec: StoredObject = { handle, attrs: storeAttributes(attrs), ...(pkcs8 ? { pkcs8: pkcs8.toString('base64') } : {}) };
    if (attrs.private) u.privates.push(rec);
    else u.file.body.publicObjects.push(rec);
    return String(handle);
  }

  async createObject(attrs: ObjectAttributes): Promise<ObjectHandle> {
    return this.#mutate('writing to the token', 'user', async (u) => {
      const a = normalizeNewObject(attrs);
      const h = this.#add(u, a);
      return h;
    });
  }

  async importPrivateKey(key: KeyObject, t: KeyPairTemplate): Promise<ObjectHandle> {
    return this.#mutate('writing a key to the token', 'user', async (u) => {
      if (key.type !== 'private') throw badRequest('KEY_NOT_PRIVATE', 'only a private key can be imported as one');
      const spki = spkiDer(key);
      const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
      const h = this.#add(u, { ...privateKeyAttributes(key, spki, t), local: false, alwaysSensitive: false, neverExtractable: false }, pkcs8);
      pkcs8.fill(0);
      return h;
    });
  }

  async destroyObject(handle: ObjectHandle): Promise<void> {
    return this.#mutate('removing an object', 'user', async (u) => {
      const before = u.file.body.publicObjects.length + u.privates.length;
      u.file.body.publicObjects = u.file.body.publicObjects.filter((o) => String(o.handle) !== handle);
      u.privates = u.privates.filter((o) => String(o.handle) !== handle);
      if (u.file.body.publicObjects.length + u.privates.length === before) throw tokenErrors.noSuchObject(handle);
    });
  }

  async generateKeyPair(keyType: KeyType, t: KeyPairTemplate): Promise<GeneratedKeyPair> {
    return this.#mutate('generating a key', 'user', async (u) => {
      const pair = await generateKey(keyType);
      const spki = spkiDer(pair.publicKey);
      const pkcs8 = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
      const priv = this.#add(u, { ...privateKeyAttributes(pair.privateKey, spki, t), local: true, alwaysSensitive: true, neverExtractable: true }, pkcs8);
      pkcs8.fill(0);
      const pub = this.#add(u, { class: 'public-key', label: t.label, id: t.id ?? keyIdFor(spki), private: false, modifiable: true, keyType: keyAlgorithm(pair.publicKey), publicKeyInfo: spki, local: true, verify: true, encrypt: keyAlgorithm(pair.publicKey) === 'rsa' });
      return { publicKey: pub, privateKey: priv, publicKeyInfo: spki };
    });
  }

  #privateKey(handle: ObjectHandle, use: 'sign' | 'decrypt'): { key: KeyObject; attrs: ObjectAttributes } {
    const u = this.#unlocked(use === 'sign' ? 'signing' : 'decrypting');
    const o = u.privates.find((x) => String(x.handle) === handle);
    if (!o || !o.pkcs8) throw tokenErrors.noSuchObject(handle);
    const attrs = loadAttributes(o.attrs);
    if (attrs[use] !== true) throw badRequest('TOKEN_KEY_FUNCTION_NOT_PERMITTED', `key ${handle} may not be used to ${use}`);
    const der = Buffer.from(o.pkcs8, 'base64');
    try {
      return { key: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), attrs };
    } finally {
      der.fill(0);
    }
  }

  #publicKey(handle: ObjectHandle): { key: KeyObject; attrs: ObjectAttributes } {
    const attrs = loadAttributes(this.#find(handle).attrs);
    let key: KeyObject | undefined;
    if (attrs.publicKeyInfo) key = createPublicKey({ key: attrs.publicKeyInfo, format: 'der', type: 'spki' });
    else if (attrs.class === 'certificate' && attrs.value) key = new X509Certificate(attrs.value).publicKey;
    if (!key) throw badRequest('TOKEN_KEY_TYPE_INCONSISTENT', `object ${handle} holds no public key`);
    return { key, attrs };
  }

  async sign(mechanism: SignMechanism, handle: ObjectHandle, data: Uint8Array): Promise<Buffer> {
    const { key, attrs } = this.#privateKey(handle, 'sign');
    if (!mechanismFits(mechanism, attrs.keyType)) throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} does not fit a ${attrs.keyType} key`);
    return cryptoSign(SIGN_HASH[mechanism], data, attrs.keyType === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  }

  async tlsPrivateKeyPem(handle: ObjectHandle): Promise<Buffer> {
    const { key } = this.#privateKey(handle, 'sign');
    const der = key.export({ type: 'pkcs8', format: 'der' });
    try {
      return pemBuffer(der, 'PRIVATE KEY');
    } finally {
      der.fill(0);
    }
  }

  async verify(mechanism: SignMechanism, handle: ObjectHandle, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const { key, attrs } = this.#publicKey(handle);
    if (!mechanismFits(mechanism, attrs.keyType ?? keyAlgorithm(key))) throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} does not fit this key`);
    return cryptoVerify(SIGN_HASH[mechanism], data, keyAlgorithm(key) === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
  }

  async encrypt(mechanism: CipherMechanism, handle: ObjectHandle, data: Uint8Array): Promise<Buffer> {
    const { key } = this.#publicKey(handle);
    if (keyAlgorithm(key) !== 'rsa') throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} needs an RSA key`);
    return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: mechanism === 'rsa-oaep-sha1' ? 'sha1' : 'sha256' }, data);
  }

  async decrypt(mechanism: CipherMechanism, handle: ObjectHandle, data: Uint8Array): Promise<Buffer> {
    const { key, attrs } = this.#privateKey(handle, 'decrypt');
    if (attrs.keyType !== 'rsa') throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} needs an RSA key`);
    try {
      return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: mechanism === 'rsa-oaep-sha1' ? 'sha1' : 'sha256' }, data);
    } catch {
      throw badRequest('TOKEN_DECRYPT_FAILED', 'the data does not decrypt with this key (wrong key, mechanism or damaged data)');
    }
  }

  async digest(mechanism: DigestMechanism, data: Uint8Array): Promise<Buffer> {
    this.#open();
    return createHash(mechanism).update(data).digest();
  }

  async generateRandom(length: number): Promise<Buffer> {
    this.#open();
    if (!Number.isInteger(length) || length < 1 || length > 65536) throw badRequest('TOKEN_RANDOM_LENGTH', 'ask for 1 to 65536 random bytes');
    return randomBytes(length);
  }

  async sessionInfo(): Promise<SessionInfo> {
    this.#open();
    // Every software-token session is a read/write serial session (CKF_SERIAL_SESSION | CKF_RW_SESSION).
    return { slotId: 0, state: this.#who === 'so' ? 'rw-so' : this.#who === 'user' ? 'rw-user' : 'rw-public', readWrite: true, flags: 0x4 | 0x2 };
  }

  /** The bytes of the object's record in the token (inside the encrypted part for a private object). */
  async objectSize(handle: ObjectHandle): Promise<number> {
    return Buffer.byteLength(JSON.stringify(this.#find(handle)));
  }

  async encryptInit(mechanism: CipherMechanism, handle: ObjectHandle): Promise<EncryptOperation> {
    const { key } = this.#publicKey(handle);
    if (keyAlgorithm(key) !== 'rsa') throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} needs an RSA key`);
    // RSA-OAEP is a single-part mechanism: the parts are collected and encrypted as one message at C_EncryptFinal.
    const parts: Buffer[] = [];
    let size = 0;
    let ended = false;
    return {
      update: async (data) => {
        this.#open();
        if (ended) throw operationEnded();
        size += data.length;
        if (size > MAX_MULTIPART_INPUT) {
          ended = true;
          throw badRequest('TOKEN_DATA_LEN_RANGE', 'too much data for one RSA-OAEP encryption');
        }
        parts.push(Buffer.from(data));
        return Buffer.alloc(0);
      },
      final: async () => {
        this.#open();
        if (ended) throw operationEnded();
        ended = true;
        try {
          return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: mechanism === 'rsa-oaep-sha1' ? 'sha1' : 'sha256' }, Buffer.concat(parts));
        } catch {
          throw badRequest('TOKEN_DATA_LEN_RANGE', 'the data is too long for one RSA-OAEP encryption with this key');
        }
      },
    };
  }

  async verifyInit(mechanism: SignMechanism, handle: ObjectHandle): Promise<VerifyOperation> {
    const { key, attrs } = this.#publicKey(handle);
    if (!mechanismFits(mechanism, attrs.keyType ?? keyAlgorithm(key))) throw badRequest('TOKEN_MECHANISM_INVALID', `${mechanism} does not fit this key`);
    const v = createVerify(SIGN_HASH[mechanism]);
    let ended = false;
    return {
      update: async (data) => {
        this.#open();
        if (ended) throw operationEnded();
        v.update(data);
      },
      final: async (signature) => {
        this.#open();
        if (ended) throw operationEnded();
        ended = true;
        return v.verify(keyAlgorithm(key) === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
      },
    };
  }

  async digestInit(mechanism: DigestMechanism): Promise<DigestOperation> {
    this.#open();
    const h = createHash(mechanism);
    let ended = false;
    return {
      update: async (data) => {
        this.#open();
        if (ended) throw operationEnded();
        h.update(data);
      },
      final: async () => {
        this.#open();
        if (ended) throw operationEnded();
        ended = true;
        return h.digest();
      },
    };
  }

  async close(): Promise<void> {
    await this.logout();
    this.#closed = true;
    this.onClose();
  }
}

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

/** PEM of `der` written straight into a Buffer (no intermediate string, which could not be wiped). */
function pemBuffer(der: Buffer, label: string): Buffer {
  const head = Buffer.from(`-----BEGIN ${label}-----\n`);
  const tail = Buffer.from(`-----END ${label}-----\n`);
  const b64Len = Math.ceil(der.length / 3) * 4;
  const out = Buffer.alloc(head.length + b64Len + Math.ceil(b64Len / 64) + tail.length);
  let o = head.copy(out, 0);
  let col = 0;
  const put = (c: number) => {
    out[o++] = c;
    if (++col === 64) {
      out[o++] = 0x0a;
      col = 0;
    }
  };
  for (let i = 0; i < der.length; i += 3) {
    const n = (der[i]! << 16) | ((der[i + 1] ?? 0) << 8) | (der[i + 2] ?? 0);
    put(B64[(n >> 18) & 63]!);
    put(B64[(n >> 12) & 63]!);
    put(i + 1 < der.length ? B64[(n >> 6) & 63]! : 0x3d);
    put(i + 2 < der.length ? B64[n & 63]! : 0x3d);
  }
  if (col !== 0) out[o++] = 0x0a;
  o += tail.copy(out, o);
  return out.subarray(0, o);
}

function keyAlgorithm(k: KeyObject): 'ec' | 'rsa' {
  return k.asymmetricKeyType === 'ec' ? 'ec' : 'rsa';
}

function privateKeyAttributes(key: KeyObject, spki: Buffer, t: KeyPairTemplate): ObjectAttributes {
  const d = describePublicKey(key);
  if (!d.keyType) throw badRequest('KEY_TYPE_UNSUPPORTED', `this ${d.algorithm} key (${d.bits} bits) is not a supported key type`);
  const alg = keyAlgorithm(key);
  return { class: 'private-key', label: t.label, id: t.id ?? keyIdFor(spki), private: true, modifiable: true, keyType: alg, publicKeyInfo: spki, sensitive: true, extractable: false, sign: true, decrypt: alg === 'rsa' };
}

function normalizeNewObject(a: ObjectAttributes): ObjectAttributes {
  switch (a.class) {
    case 'certificate': {
      if (!a.value) throw badRequest('TOKEN_TEMPLATE_INCOMPLETE', 'a certificate object needs its DER value');
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(a.value);
      } catch {
        throw badRequest('TOKEN_TEMPLATE_INCONSISTENT', 'the certificate object\'s value is not a DER certificate');
      }
      return { class: 'certificate', label: a.label, id: a.id ?? keyIdFor(spkiDer(cert.publicKey)), private: a.private ?? false, modifiable: a.modifiable ?? true, value: Buffer.from(a.value) };
    }
    case 'data':
      return { class: 'data', label: a.label, application: a.application, id: a.id, private: a.private ?? false, modifiable: a.modifiable ?? true, value: Buffer.from(a.value ?? Buffer.alloc(0)) };
    case 'public-key': {
      if (!a.publicKeyInfo) throw badRequest('TOKEN_TEMPLATE_INCOMPLETE', 'a public key object needs its SubjectPublicKeyInfo');
      const k = createPublicKey({ key: a.publicKeyInfo, format: 'der', type: 'spki' });
      return { class: 'public-key', label: a.label, id: a.id ?? keyIdFor(a.publicKeyInfo), private: false, modifiable: a.modifiable ?? true, keyType: keyAlgorithm(k), publicKeyInfo: Buffer.from(a.publicKeyInfo), verify: true, encrypt: keyAlgorithm(k) === 'rsa' };
    }
    default:
      throw badRequest('TOKEN_TEMPLATE_INCONSISTENT', 'write private keys with importPrivateKey (from a PKCS#12) or generate them in the token') as SekishoError;
  }
}
