/**
 * The token interface over any PKCS#11 module (SoftHSM2 in tests, a smart
 * card or HSM in the field), through pkcs11js. The module keeps the keys and
 * decides PIN policy: what it reports in its token flags is what we report
 * (SoftHSM2 never locks a PIN).
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type * as P from 'pkcs11js';
import { badRequest, conflict, notFound } from '../errors/index.js';
import { CKF } from './flags.js';
import { tokenErrors } from './token-errors.js';
import { bindingMechanismName, ckr, guard, mapError, numberOf, pkcs11js, str } from './pkcs11-binding.js';
import { PKCS11_FUNCTIONS } from './functions.js';
import { mechanismName } from './mechanisms.js';
import { Pkcs11Session } from './pkcs11-session.js';
import type { MechanismInfo, ModuleInfo, SlotInfo, TokenInfo, TokenModule, TokenSession, UserType } from './token.js';
import { redactPkcs11Uri, type Pkcs11Uri } from './uri.js';

/** Loads a PKCS#11 module (C_Initialize). A missing or unloadable file is PKCS11_MODULE_NOT_FOUND. */
export function openPkcs11Module(path: string): Pkcs11Module {
  const p = pkcs11js();
  const lib = new p.PKCS11();
  try {
    lib.load(path);
  } catch (e) {
    throw notFound('PKCS11_MODULE_NOT_FOUND', `cannot load the PKCS#11 module ${path} (${(e as Error).message.split('\n')[0]}); check --module (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)`);
  }
  let initializedHere = true;
  try {
    lib.C_Initialize();
  } catch (e) {
    if (ckr(e) !== p.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      try {
        lib.close();
      } catch {
        /* nothing more to do */
      }
      throw mapError(e, 'initializing');
    }
    initializedHere = false;
  }
  const key = libraryKey(path);
  let shared = libraries.get(key);
  if (!shared) libraries.set(key, (shared = { opened: 0, finalize: initializedHere, logins: new Map(), sessions: new Map(), key }));
  shared.opened += 1;
  return new Pkcs11Module(path, lib, shared);
}

/**
 * What every Pkcs11Module of one module file in this process shares: Cryptoki
 * keeps initialization and logins per application, not per module object or
 * session. The last module object to close finalizes (and only if sekisho
 * initialized the library, not e.g. OpenSSL's engine); `logins` holds, per
 * slot, a keyed digest of the PIN this process logged in with, so a second
 * C_Login that the module answers "already logged in" without looking at the
 * PIN is still checked.
 */
export interface SharedLibrary {
  /** The module file's real path, by which the process shares it. */
  key: string;
  opened: number;
  finalize: boolean;
  logins: Map<number, { who: UserType; digest: Buffer }>;
  /** Per slot, the sessions this process has open on it: when the last closes Cryptoki logs out, and the digest goes. */
  sessions: Map<number, number>;
}
const libraries = new Map<string, SharedLibrary>();
function libraryKey(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

export class Pkcs11Module implements TokenModule {
  readonly kind = 'pkcs11' as const;
  readonly #sessions = new Set<Pkcs11Session>();
  #closed = false;

  constructor(
    readonly path: string,
    readonly lib: P.PKCS11,
    readonly shared: SharedLibrary,
  ) {}

  /** Per slot, who this process is logged in as and a digest of that PIN (see SharedLibrary). */
  get logins(): SharedLibrary['logins'] {
    return this.shared.logins;
  }

  async info(): Promise<ModuleInfo> {
    const i = guard('reading its info', () => this.lib.C_GetInfo());
    return {
      manufacturer: str(i.manufacturerID),
      description: str(i.libraryDescription),
      cryptokiVersion: `${i.cryptokiVersion.major}.${i.cryptokiVersion.minor}`,
      libraryVersion: `${i.libraryVersion.major}.${i.libraryVersion.minor}`,
    };
  }

  async slots(): Promise<SlotInfo[]> {
    return guard('listing slots', () =>
      this.lib.C_GetSlotList(false).map((h) => {
        const s = this.lib.C_GetSlotInfo(h);
        return { slotId: numberOf(h), description: str(s.slotDescription), manufacturer: str(s.manufacturerID), tokenPresent: (s.flags & 0x1) !== 0, flags: s.flags };
      }),
    );
  }

  async #slot(slotId: number): Promise<Buffer> {
    const known = guard('listing slots', () => this.lib.C_GetSlotList(false));
    const h = known.find((k) => numberOf(k) === slotId);
    if (!h) throw tokenErrors.slot(slotId, `the slots of ${this.path} are ${known.map(numberOf).join(', ') || 'none'}; SoftHSM2 renumbers a slot when its token is initialized`);
    return h;
  }

  /** The one slot whose token has this label (two tokens with one label are TOKEN_AMBIGUOUS: name it with --slot or serial=). */
  async slotByLabel(label: string): Promise<number> {
    return this.slotForUri({ token: label });
  }

  /**
   * The one slot whose token matches every token, slot and library attribute
   * of an RFC 7512 URI (§2.3: an attribute that is given must match; token,
   * manufacturer, serial, model, slot-id, slot-description, slot-manufacturer,
   * library-*). No match is TOKEN_NOT_FOUND; more than one is TOKEN_AMBIGUOUS,
   * never "the first": that token would get the PIN meant for another one,
   * and OpenSSL's pkcs11 engine refuses such a URI too.
   */
  async slotForUri(u: Pkcs11Uri): Promise<number> {
    const shown = redactPkcs11Uri({ token: u.token, manufacturer: u.manufacturer, serial: u.serial, model: u.model, slotId: u.slotId });
    const none = () => notFound('TOKEN_NOT_FOUND', `no token in ${this.path} matches ${shown}; list them with "sekisho token info --module ${this.path}"`, { ja: `${shown} に合うトークンが見つかりません。"sekisho token info --module ${this.path}" で一覧を確認してください。` });
    if (u.libraryManufacturer !== undefined || u.libraryDescription !== undefined || u.libraryVersion !== undefined) {
      const i = guard('reading its info', () => this.lib.C_GetInfo());
      const version = `${i.libraryVersion.major}.${i.libraryVersion.minor}`;
      if (
        (u.libraryManufacturer !== undefined && str(i.manufacturerID) !== u.libraryManufacturer) ||
        (u.libraryDescription !== undefined && str(i.libraryDescription) !== u.libraryDescription) ||
        (u.libraryVersion !== undefined && u.libraryVersion !== version && `${u.libraryVersion}.0` !== version)
      ) {
        throw none();
      }
    }
    const found: { slot: number; label: string; serial: string }[] = [];
    for (const h of guard('listing slots', () => this.lib.C_GetSlotList(true))) {
      const slot = numberOf(h);
      if (u.slotId !== undefined && slot !== u.slotId) continue;
      if (u.slotDescription !== undefined || u.slotManufacturer !== undefined) {
        const s = guard('reading slot info', () => this.lib.C_GetSlotInfo(h));
        if ((u.slotDescription !== undefined && str(s.slotDescription) !== u.slotDescription) || (u.slotManufacturer !== undefined && str(s.manufacturerID) !== u.slotManufacturer)) continue;
      }
      const t = guard('reading token info', () => this.lib.C_GetTokenInfo(h));
      if ((t.flags & CKF.TOKEN_INITIALIZED) === 0) continue;
      if (u.token !== undefined && str(t.label) !== u.token) continue;
      if (u.manufacturer !== undefined && str(t.manufacturerID) !== u.manufacturer) continue;
      if (u.serial !== undefined && str(t.serialNumber) !== u.serial) continue;
      if (u.model !== undefined && str(t.model) !== u.model) continue;
      found.push({ slot, label: str(t.label), serial: str(t.serialNumber) });
    }
    if (found.length === 0) throw none();
    if (found.length > 1) {
      const list = found.map((f) => `slot ${f.slot} serial ${f.serial}`).join(', ');
      throw conflict('TOKEN_AMBIGUOUS', `${found.length} tokens in ${this.path} match ${shown} (${list}); name one: add serial=… to the pkcs11: URI, or give --slot N`, {
        ja: `${shown} に合うトークンが${found.length}個あります（${list}）。URIに serial=… を加えるか --slot で1つを指定してください。`,
      });
    }
    return found[0]!.slot;
  }

  /** The first slot whose token is not yet initialized (SoftHSM2 always offers one). */
  async freeSlot(): Promise<number> {
    for (const h of guard('listing slots', () => this.lib.C_GetSlotList(true))) {
      const t = guard('reading token info', () => this.lib.C_GetTokenInfo(h));
      if ((t.flags & CKF.TOKEN_INITIALIZED) === 0) return numberOf(h);
    }
    throw notFound('TOKEN_NO_FREE_SLOT', `${this.path} has no uninitialized token; give --slot`);
  }

  async tokenInfo(slotId: number): Promise<TokenInfo> {
    const h = await this.#slot(slotId);
    const t = guard('reading token info', () => this.lib.C_GetTokenInfo(h));
    return { label: str(t.label), manufacturer: str(t.manufacturerID), model: str(t.model), serialNumber: str(t.serialNumber), flags: t.flags, minPinLength: t.minPinLen, maxPinLength: t.maxPinLen };
  }

  async initToken(slotId: number, o: { label: string; soPin: string; userPin: string }): Promise<void> {
    const h = await this.#slot(slotId);
    const present = guard('reading token info', () => this.lib.C_GetTokenInfo(h));
    if (present.flags & CKF.TOKEN_INITIALIZED) {
      // C_InitToken would wipe every key on it; sekisho never does that for you.
      throw conflict('TOKEN_EXISTS', `the token in slot ${slotId} ("${str(present.label)}") is already initialized; re-initializing would destroy its keys — use the token's own tools if you really mean to`);
    }
    for (const other of guard('listing slots', () => this.lib.C_GetSlotList(true))) {
      const t = guard('reading token info', () => this.lib.C_GetTokenInfo(other));
      if (t.flags & CKF.TOKEN_INITIALIZED && str(t.label) === o.label) {
        throw conflict('TOKEN_LABEL_TAKEN', `a token labelled "${o.label}" is already in ${this.path} (serial ${str(t.serialNumber)}); choose another --label, so that token=LABEL names one token`);
      }
    }
    const label = Buffer.from(o.label, 'utf8');
    if (label.length === 0 || label.length > 32) throw badRequest('TOKEN_LABEL_INVALID', 'the token label must be 1–32 bytes (the PKCS#11 label field)');
    // CK_TOKEN_INFO.label is blank-padded (pkcs11js would pad with NULs, which pkcs11-tool then shows).
    const padded = Buffer.concat([label, Buffer.alloc(32 - label.length, 0x20)]).toString('utf8');
    guard('initializing the token', () => this.lib.C_InitToken(h, o.soPin, padded));
    const s = await this.openSession(slotId);
    try {
      await s.login('so', o.soPin);
      await s.initPin(o.userPin);
    } finally {
      await s.close();
    }
  }

  async openSession(slotId: number): Promise<TokenSession> {
    if (this.#closed) throw conflict('TOKEN_MODULE_CLOSED', 'the PKCS#11 module was finalized');
    const h = await this.#slot(slotId);
    const p = pkcs11js();
    const session = guard('opening a session', () => this.lib.C_OpenSession(h, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION));
    const open = this.shared.sessions;
    open.set(slotId, (open.get(slotId) ?? 0) + 1);
    const s = new Pkcs11Session(this, slotId, session, () => {
      this.#sessions.delete(s);
      const left = (open.get(slotId) ?? 1) - 1;
      if (left > 0) open.set(slotId, left);
      else {
        open.delete(slotId);
        this.shared.logins.delete(slotId); // Cryptoki logged out with the last session
      }
    });
    this.#sessions.add(s);
    return s;
  }

  /** pkcs11js reaches every function through the CK_FUNCTION_LIST that C_GetFunctionList returned when the module was loaded (a library without it is refused at load). */
  async functionList(): Promise<string[]> {
    return [...PKCS11_FUNCTIONS];
  }

  async waitForSlotEvent(): Promise<number | undefined> {
    const p = pkcs11js();
    const slot = guard('waiting for a slot event', () => this.lib.C_WaitForSlotEvent(p.CKF_DONT_BLOCK));
    return slot ? numberOf(slot) : undefined;
  }

  async mechanismList(slotId: number): Promise<number[]> {
    const h = await this.#slot(slotId);
    return guard('listing mechanisms', () => this.lib.C_GetMechanismList(h));
  }

  async mechanismInfo(slotId: number, type: number): Promise<MechanismInfo> {
    const h = await this.#slot(slotId);
    const i = guard('reading mechanism info', () => this.lib.C_GetMechanismInfo(h, type));
    return { type, name: mechanismName(type, bindingMechanismName), minKeySize: i.minKeySize, maxKeySize: i.maxKeySize, flags: i.flags };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    for (const s of [...this.#sessions]) await s.close();
    this.#closed = true;
    // Another Pkcs11Module of this file in the process still uses the library: finalizing would end its sessions too.
    this.shared.opened -= 1;
    const last = this.shared.opened === 0;
    if (last && libraries.get(this.shared.key) === this.shared) libraries.delete(this.shared.key);
    try {
      if (last && this.shared.finalize) this.lib.C_Finalize();
    } catch {
      /* finalized meanwhile by another user of the library */
    } finally {
      this.lib.close();
    }
  }
}

