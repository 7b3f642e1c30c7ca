import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { badRequest, notFound, unauthorized } from '../../errors/index.js';
import { writeFileAtomic } from '../../ca/index.js';
import { parseKeyType, pemOrDer, readPkcs12, toPem, type KeyType } from '../../pki/index.js';
import {
  deleteById,
  listCredentials,
  replaceCertificate,
  tokenCsr,
  flagNames,
  formatPkcs11Uri,
  openPkcs11Module,
  openSoftwareToken,
  type ObjectAttributes,
  type Pkcs11Module,
  type TokenModule,
  type TokenSession,
} from '../../token/index.js';
import { JSON_OPTION, type Command, type CommandContext, type OptionSpec } from '../command.js';
import { prompt, secretFromFile } from '../secrets.js';
import { checkOutputPath } from '../output-file.js';

const DEVICE_ID_LABEL = 'device-identification';
const DEVICE_ID_APPLICATION = 'sekisho device identification';

const TOKEN_OPTIONS: Record<string, OptionSpec> = {
  token: { type: 'string', description: 'software token file', valueName: 'FILE' },
  module: { type: 'string', description: 'PKCS#11 module (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)', valueName: 'PATH' },
  label: { type: 'string', description: 'token label (PKCS#11: selects the token; init: names it)', valueName: 'NAME' },
  slot: { type: 'string', description: 'PKCS#11 slot id (instead of --label)', valueName: 'N' },
};

const oneToken = (v: CommandContext['values']) => {
  const given = ['token', 'module'].filter((n) => v[n] !== undefined);
  return given.length === 1 ? undefined : 'give --token FILE (software token) or --module PATH (PKCS#11), not both';
};
const softwareOnly = (what: string) => (v: CommandContext['values']) => (v.module !== undefined ? `${what} works on a software token (--token FILE); a PKCS#11 token keeps its own backups` : undefined);

/** A PIN from its environment variable, else a prompt on a terminal; never from argv. */
export async function pinFrom(ctx: CommandContext, variable: 'SEKISHO_PIN' | 'SEKISHO_SO_PIN' | 'SEKISHO_NEW_PIN' | 'SEKISHO_BACKUP_PASSPHRASE', what: string): Promise<string> {
  let p = ctx.env[variable];
  if (p === undefined && ctx.isTTY) p = await prompt(`${what}: `);
  if (p === undefined || p === '') throw unauthorized('PIN_REQUIRED', `this command needs the ${what}: set ${variable} (or run it on a terminal to be asked)`);
  return p;
}

function slotOption(v: CommandContext['values']): number | undefined {
  if (v.slot === undefined) return undefined;
  const s = String(v.slot);
  if (!/^[0-9]{1,10}$/.test(s)) throw badRequest('TOKEN_SLOT_INVALID', '--slot takes a slot number (see "sekisho token info --module PATH")');
  return Number(s);
}

interface Target {
  module: TokenModule;
  slot: number;
}

/** Opens the token named by --token or --module/--label/--slot, runs fn, and always closes it. */
async function withToken<T>(ctx: CommandContext, fn: (t: Target) => Promise<T>, o: { forInit?: boolean } = {}): Promise<T> {
  const v = ctx.values;
  let module: TokenModule;
  let slot: number;
  if (v.token !== undefined) {
    const policy: Record<string, number> = {};
    for (const [flag, key] of [['min-pin-length', 'minPinLength'], ['max-pin-tries', 'maxUserPinTries'], ['max-so-pin-tries', 'maxSoPinTries']] as const) {
      if (v[flag] === undefined) continue;
      if (!/^[0-9]{1,3}$/.test(String(v[flag]))) throw badRequest('TOKEN_POLICY_INVALID', `--${flag} takes a whole number`);
      policy[key] = Number(v[flag]);
    }
    module = openSoftwareToken(v.token as string, { policy });
    slot = slotOption(v) ?? 0;
  } else {
    const m = openPkcs11Module(v.module as string);
    module = m;
    try {
      const explicit = slotOption(v);
      if (explicit !== undefined) slot = explicit;
      else if (o.forInit) slot = await m.freeSlot();
      else if (v.label !== undefined) slot = await m.slotByLabel(v.label as string);
      else throw badRequest('TOKEN_NOT_SELECTED', 'name the PKCS#11 token with --label NAME or --slot N (list them with "sekisho token info --module PATH")');
    } catch (e) {
      await m.close();
      throw e;
    }
  }
  try {
    return await fn({ module, slot });
  } finally {
    await module.close();
  }
}

async function userSession(ctx: CommandContext, t: Target): Promise<TokenSession> {
  const s = await t.module.openSession(t.slot);
  await s.login('user', await pinFrom(ctx, 'SEKISHO_PIN', 'user PIN'));
  return s;
}

const hex = (b: Buffer | undefined) => b?.toString('hex');

function describeObject(handle: string, a: ObjectAttributes, tokenLabel: string) {
  const type = a.class === 'private-key' ? 'private' : a.class === 'public-key' ? 'public' : a.class === 'certificate' ? 'cert' : 'data';
  return {
    handle,
    class: a.class,
    label: a.label,
    id: hex(a.id),
    keyType: a.keyType,
    private: a.private,
    ...(a.class === 'private-key' ? { sensitive: a.sensitive, extractable: a.extractable, local: a.local } : {}),
    ...(a.publicKeyInfo ? { publicKeySha256: createHash('sha256').update(a.publicKeyInfo).digest('hex') } : {}),
    ...(a.class === 'data' ? { value: a.value?.toString('utf8') } : {}),
    uri: formatPkcs11Uri({ token: tokenLabel, ...(a.label !== undefined ? { object: a.label } : {}), ...(a.id ? { id: a.id } : {}), type }),
  };
}

export const tokenInitCommand: Command = {
  path: ['token', 'init'],
  summary: 'initialize a token: a new software token file, or a PKCS#11 token (PINs from SEKISHO_SO_PIN and SEKISHO_PIN)',
  options: {
    ...TOKEN_OPTIONS,
    'min-pin-length': { type: 'string', description: 'software token: shortest PIN accepted (default 6)', valueName: 'N' },
    'max-pin-tries': { type: 'string', description: 'software token: wrong user PINs before it locks (default 3)', valueName: 'N' },
    'max-so-pin-tries': { type: 'string', description: 'software token: wrong SO PINs before it locks for good (default 10)', valueName: 'N' },
    'device-id': { type: 'string', description: 'device identification written as a public data object (readable without PIN)', valueName: 'TEXT' },
    ...JSON_OPTION,
  },
  validators: [oneToken, (v) => (v.label === undefined ? 'give the new token a --label NAME' : undefined)],
  run: (ctx) =>
    withToken(
      ctx,
      async (t) => {
        const soPin = await pinFrom(ctx, 'SEKISHO_SO_PIN', 'new SO PIN');
        const userPin = await pinFrom(ctx, 'SEKISHO_PIN', 'new user PIN');
        await t.module.initToken(t.slot, { label: ctx.values.label as string, soPin, userPin });
        const slot = t.module.kind === 'pkcs11' ? await (t.module as Pkcs11Module).slotByLabel(ctx.values.label as string) : t.slot;
        if (ctx.values['device-id'] !== undefined) {
          const s = await t.module.openSession(slot);
          await s.login('user', userPin);
          await s.createObject({ class: 'data', label: DEVICE_ID_LABEL, application: DEVICE_ID_APPLICATION, private: false, value: Buffer.from(ctx.values['device-id'] as string, 'utf8') });
          await s.close();
        }
        const info = await t.module.tokenInfo(slot);
        const summary = { label: info.label, serialNumber: info.serialNumber, slot, minPinLength: info.minPinLength, maxUserPinTries: info.maxUserPinTries };
        if (ctx.values.json) return ctx.json(summary);
        ctx.out(`token "${info.label}" initialized (serial ${info.serialNumber}${t.module.kind === 'pkcs11' ? `, slot ${slot}` : ''})`);
      },
      { forInit: true },
    ),
};

export const tokenInfoCommand: Command = {
  path: ['token', 'info'],
  summary: 'show a token: flags, PIN counters and lock state, device identification (no PIN needed)',
  options: { ...TOKEN_OPTIONS, ...JSON_OPTION },
  validators: [oneToken],
  async run(ctx) {
    const v = ctx.values;
    if (v.module !== undefined && v.label === undefined && v.slot === undefined) {
      // No token named: list the module's slots.
      const m = openPkcs11Module(v.module as string);
      try {
        const rows = [];
        for (const s of await m.slots()) rows.push({ ...s, token: s.tokenPresent ? await m.tokenInfo(s.slotId).then((i) => ({ label: i.label, serialNumber: i.serialNumber, flags: flagNames(i.flags) })) : undefined });
        if (v.json) return ctx.json({ module: await m.info(), slots: rows });
        for (const r of rows) ctx.out(`slot ${r.slotId}: ${r.token ? `"${r.token.label}" serial ${r.token.serialNumber} [${r.token.flags.join(' ')}]` : 'no token'}`);
        return;
      } finally {
        await m.close();
      }
    }
    return withToken(ctx, async (t) => {
      const info = await t.module.tokenInfo(t.slot);
      const s = await t.module.openSession(t.slot);
      let deviceId: string | undefined;
      try {
        const [h] = await s.findObjects({ class: 'data', label: DEVICE_ID_LABEL });
        if (h) deviceId = (await s.getAttributes(h)).value?.toString('utf8');
      } finally {
        await s.close();
      }
      const flags = flagNames(info.flags);
      const summary = {
        kind: t.module.kind,
        slot: t.slot,
        ...info,
        flagNames: flags,
        userPinLocked: flags.includes('USER_PIN_LOCKED'),
        soPinLocked: flags.includes('SO_PIN_LOCKED'),
        ...(deviceId !== undefined ? { deviceId } : {}),
      };
      if (v.json) return ctx.json(summary);
      ctx.out(`token "${info.label}" (${info.model}, serial ${info.serialNumber})`);
      ctx.out(`flags: ${flags.join(' ')}`);
      if (info.maxUserPinTries !== undefined) ctx.out(`user PIN: ${info.userPinFailures}/${info.maxUserPinTries} wrong tries${summary.userPinLocked ? ' — LOCKED (sekisho token unlock)' : ''}`);
      if (info.maxSoPinTries !== undefined) ctx.out(`SO PIN: ${info.soPinFailures}/${info.maxSoPinTries} wrong tries${summary.soPinLocked ? ' — LOCKED for good' : ''}`);
      ctx.out(`PIN length: ${info.minPinLength}–${info.maxPinLength}`);
      if (deviceId !== undefined) ctx.out(`device identification: ${deviceId}`);
    });
  },
};

export const tokenLoginTestCommand: Command = {
  path: ['token', 'login-test'],
  summary: 'check a PIN against the token (SEKISHO_PIN; with --so, SEKISHO_SO_PIN); a wrong one counts',
  options: { ...TOKEN_OPTIONS, so: { type: 'boolean', description: 'check the security officer PIN' }, ...JSON_OPTION },
  validators: [oneToken],
  run: (ctx) =>
    withToken(ctx, async (t) => {
      const so = ctx.values.so === true;
      const s = await t.module.openSession(t.slot);
      await s.login(so ? 'so' : 'user', await pinFrom(ctx, so ? 'SEKISHO_SO_PIN' : 'SEKISHO_PIN', so ? 'SO PIN' : 'user PIN'));
      await s.close();
      if (ctx.values.json) return ctx.json({ ok: true, userType: so ? 'so' : 'user' });
      ctx.out(`${so ? 'SO PIN' : 'PIN'} accepted`);
    }),
};

export const tokenKeygenCommand: Command = {
  path: ['token', 'keygen'],
  summary: 'generate a key pair inside the token (not exportable); prints its pkcs11: URI',
  options: {
    ...TOKEN_OPTIONS,
    'key-label': { type: 'string', description: 'label of the new key pair', valueName: 'NAME' },
    type: { type: 'string', description: 'ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072, rsa-4096', valueName: 'TYPE' },
    successor: { type: 'boolean', description: 'renewal: a new key beside the existing one(s) under the same label, told apart by its id' },
    ...JSON_OPTION,
  },
  validators: [oneToken, (v) => (v['key-label'] === undefined ? 'give the key a --key-label NAME' : undefined)],
  run: (ctx) =>
    withToken(ctx, async (t) => {
      const keyType: KeyType = ctx.values.type ? parseKeyType(ctx.values.type as string) : 'ecdsa-p256';
      const label = ctx.values['key-label'] as string;
      const s = await userSession(ctx, t);
      const existing = (await s.findObjects({ class: 'private-key', label })).length;
      if (existing && ctx.values.successor !== true) throw badRequest('TOKEN_KEY_EXISTS', `the token already holds a key labelled "${label}"; choose another --key-label, or add --successor to renew it (both keys stay, with distinct ids, until "sekisho token delete --id" removes the old one)`);
      if (!existing && ctx.values.successor === true) throw notFound('TOKEN_KEY_NOT_FOUND', `--successor renews a key, but the token holds no key labelled "${label}"`);
      const pair = await s.generateKeyPair(keyType, { label });
      const o = describeObject(pair.privateKey, await s.getAttributes(pair.privateKey), (await t.module.tokenInfo(t.slot)).label);
      await s.close();
      if (ctx.values.json) return ctx.json({ ...o, keyType });
      ctx.out(`${keyType} key "${label}" generated in the token`);
      ctx.out(`uri: ${o.uri}`);
      ctx.out(`public key SHA-256: ${o.publicKeySha256}`);
    }),
};

export const tokenImportCommand: Command = {
  path: ['token', 'import'],
  summary: 'write a PKCS#12 from the CA (key, certificate, CA chain) into the token',
  options: {
    ...TOKEN_OPTIONS,
    p12: { type: 'string', description: 'PKCS#12 file (.p12/.pfx)', valueName: 'FILE' },
    'password-file': { type: 'string', description: 'file holding the PKCS#12 password', valueName: 'F' },
    'key-label': { type: 'string', description: 'label for the key and certificate (default: the PKCS#12 friendly name, else "imported")', valueName: 'NAME' },
    ...JSON_OPTION,
  },
  validators: [oneToken, (v) => (v.p12 === undefined || v['password-file'] === undefined ? 'give --p12 FILE and --password-file F' : undefined)],
  run: (ctx) =>
    withToken(ctx, async (t) => {
      let der: Buffer;
      try {
        der = readFileSync(ctx.values.p12 as string);
      } catch (e) {
        throw notFound('PKCS12_FILE_UNREADABLE', `cannot read ${ctx.values.p12 as string} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      const p12 = readPkcs12(der, secretFromFile(ctx.values['password-file'] as string, 'PKCS#12 password'));
      const label = (ctx.values['key-label'] as string | undefined) ?? p12.friendlyName ?? 'imported';
      const s = await userSession(ctx, t);
      if ((await s.findObjects({ class: 'private-key', label })).length) throw badRequest('TOKEN_KEY_EXISTS', `the token already holds a key labelled "${label}"; choose another --key-label`);
      const key = await s.importPrivateKey(p12.privateKey, { label });
      const keyAttrs = await s.getAttributes(key);
      await s.createObject({ class: 'certificate', label, value: p12.certificate, id: keyAttrs.id });
      for (const [i, ca] of p12.chain.entries()) await s.createObject({ class: 'certificate', label: `${label} CA ${i + 1}`, value: ca, id: Buffer.from(`ca${i + 1}`) });
      const o = describeObject(key, keyAttrs, (await t.module.tokenInfo(t.slot)).label);
      await s.close();
      if (ctx.values.json) return ctx.json({ ...o, chain: p12.chain.length });
      ctx.out(`key and certificate "${label}" imported (${p12.chain.length} CA certificate${p12.chain.length === 1 ? '' : 's'})`);
      ctx.out(`uri: ${o.uri}`);
    }),
};

export const tokenListCommand: Command = {
  path: ['token', 'list'],
  summary: 'list the objects in a token (private ones only with SEKISHO_PIN)',
  options: { ...TOKEN_OPTIONS, ...JSON_OPTION },
  validators: [oneToken],
  run: (ctx) =>
    withToken(ctx, async (t) => {
      const s = await t.module.openSession(t.slot);
      if (ctx.env.SEKISHO_PIN) await s.login('user', ctx.env.SEKISHO_PIN);
      const label = (await t.module.tokenInfo(t.slot)).label;
      const rows = [];
      for (const h of await s.findObjects({})) {
        try {
          rows.push(describeObject(h, await s.getAttributes(h), label));
        } catch {
          /* an object of a class sekisho does not handle */
        }
      }
      await s.close();
      if (ctx.values.json) return ctx.json({ loggedIn: Boolean(ctx.env.SEKISHO_PIN), objects: rows });
      if (!rows.length) ctx.out('no objects');
      for (const r of rows) ctx.out(`${r.class.padEnd(12)} ${(r.label ?? '').padEnd(24)} ${r.keyType ?? ''} ${r.uri}`);
    }),
};

export const tokenUnlockCommand: Command = {
  path: ['token', 'unlock'],
  summary: 'the security officer sets a new user PIN (SEKISHO_SO_PIN, SEKISHO_NEW_PIN), which unlocks a locked token',
  options: { ...TOKEN_OPTIONS, ...JSON_OPTION },
  validators: [oneToken],
  run: (ctx) =>
    withToken(ctx, async (t) => {
      const s = await t.module.openSession(t.slot);
      await s.login('so', await pinFrom(ctx, 'SEKISHO_SO_PIN', 'SO PIN'));
      await s.initPin(await pinFrom(ctx, 'SEKISHO_NEW_PIN', 'new user PIN'));
      await s.close();
      if (ctx.values.json) return ctx.json({ ok: true });
      ctx.out('new user PIN set; the token is unlocked');
    }),
};

export const tokenBackupCommand: Command = {
  path: ['token', 'backup'],
  summary: 'write an encrypted backup of a software token (passphrase from SEKISHO_BACKUP_PASSPHRASE), e.g. to removable media',
  options: { token: TOKEN_OPTIONS.token!, module: TOKEN_OPTIONS.module!, out: { type: 'string', description: 'backup file to write (0600)', valueName: 'FILE' }, ...JSON_OPTION },
  validators: [oneToken, softwareOnly('backup'), (v) => (v.out === undefined ? 'give --out FILE' : undefined)],
  async run(ctx) {
    const out = ctx.values.out as string;
    checkOutputPath(out, '--out', false);
    const passphrase = await pinFrom(ctx, 'SEKISHO_BACKUP_PASSPHRASE', 'backup passphrase');
    if ([...passphrase].length < 8) throw badRequest('BACKUP_PASSPHRASE_TOO_SHORT', 'the backup passphrase must be at least 8 characters');
    const text = await openSoftwareToken(ctx.values.token as string).backup(passphrase);
    writeFileAtomic(out, text, 0o600);
    if (ctx.values.json) return ctx.json({ file: out });
    ctx.out(`encrypted backup written to ${out}; keep it apart from the token and the passphrase`);
  },
};

export const tokenRestoreCommand: Command = {
  path: ['token', 'restore'],
  summary: 'restore a software token from an encrypted backup (SEKISHO_BACKUP_PASSPHRASE)',
  options: {
    token: TOKEN_OPTIONS.token!,
    module: TOKEN_OPTIONS.module!,
    from: { type: 'string', description: 'backup file', valueName: 'FILE' },
    replace: { type: 'boolean', description: 'replace an existing token file' },
    ...JSON_OPTION,
  },
  validators: [oneToken, softwareOnly('restore'), (v) => (v.from === undefined ? 'give --from FILE' : undefined)],
  async run(ctx) {
    const from = ctx.values.from as string;
    let text: string;
    try {
      text = readFileSync(from, 'utf8');
    } catch (e) {
      throw notFound('TOKEN_BACKUP_MISSING', `cannot read the backup ${from} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const passphrase = await pinFrom(ctx, 'SEKISHO_BACKUP_PASSPHRASE', 'backup passphrase');
    await openSoftwareToken(ctx.values.token as string).restore(text, passphrase, { where: from, replace: ctx.values.replace === true });
    if (ctx.values.json) return ctx.json({ file: ctx.values.token });
    ctx.out(`token restored to ${ctx.values.token as string}`);
  },
};

const KEY_SELECT: Record<string, OptionSpec> = {
  'key-label': { type: 'string', description: 'label of the key', valueName: 'NAME' },
  id: { type: 'string', description: 'CKA_ID of the key in hex (when several keys share the label, e.g. during a renewal)', valueName: 'HEX' },
};

function idOption(v: CommandContext['values']): Buffer | undefined {
  if (v.id === undefined) return undefined;
  const h = String(v.id).replace(/:/g, '');
  if (!/^([0-9a-fA-F]{2}){1,64}$/.test(h)) throw badRequest('TOKEN_ID_INVALID', '--id takes the key\'s CKA_ID in hex, as "sekisho token list" shows it');
  return Buffer.from(h, 'hex');
}

/** The one private key named by --key-label and/or --id. */
async function selectedKey(s: TokenSession, v: CommandContext['values']): Promise<{ handle: string; attrs: ObjectAttributes }> {
  const id = idOption(v);
  const label = v['key-label'] as string | undefined;
  const found = await s.findObjects({ class: 'private-key', ...(label !== undefined ? { label } : {}), ...(id ? { id } : {}) });
  const what = [label !== undefined ? `label "${label}"` : '', id ? `id ${id.toString('hex')}` : ''].filter(Boolean).join(' and ');
  if (!found.length) throw notFound('TOKEN_KEY_NOT_FOUND', `the token holds no private key with ${what}; list them with "sekisho token list" (with SEKISHO_PIN)`);
  if (found.length > 1) throw badRequest('TOKEN_KEY_AMBIGUOUS', `the token holds ${found.length} keys with ${what}; name one with --id HEX`);
  return { handle: found[0]!, attrs: await s.getAttributes(found[0]!) };
}

const keyNamed = (v: CommandContext['values']) => (v['key-label'] === undefined && v.id === undefined ? 'name the key with --key-label NAME and/or --id HEX' : undefined);

export const tokenCsrCommand: Command = {
  path: ['token', 'csr'],
  summary: 'make a PKCS#10 request signed inside the token by one of its keys (subject from a certificate, default: the key\'s current certificate)',
  options: {
    ...TOKEN_OPTIONS,
    ...KEY_SELECT,
    'subject-from': { type: 'string', description: 'certificate (PEM or DER) whose subject the request repeats, e.g. the one being renewed', valueName: 'FILE' },
    out: { type: 'string', description: 'write the request here (PEM) instead of stdout', valueName: 'FILE' },
    ...JSON_OPTION,
  },
  validators: [oneToken, keyNamed],
  run: (ctx) =>
    withToken(ctx, async (t) => {
      const s = await userSession(ctx, t);
      const key = await selectedKey(s, ctx.values);
      let subjectCert: Buffer | undefined;
      if (ctx.values['subject-from'] !== undefined) {
        const file = ctx.values['subject-from'] as string;
        let raw: Buffer;
        try {
          raw = readFileSync(file);
        } catch (e) {
          throw notFound('CERTIFICATE_FILE_UNREADABLE', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
        }
        subjectCert = pemOrDer(raw, ['CERTIFICATE'], 'CERTIFICATE_INVALID', 'certificate');
      } else {
        const current = (await listCredentials(s, key.attrs.label)).find((c) => c.certificate && key.attrs.id && c.id.equals(key.attrs.id)) ?? (await listCredentials(s, key.attrs.label)).find((c) => c.certificate);
        if (!current?.certificate) throw notFound('TOKEN_CERTIFICATE_NOT_FOUND', 'the token holds no certificate to take the subject from; give --subject-from FILE');
        subjectCert = current.certificate.der;
      }
      const der = await tokenCsr(s, key.handle, { fromCertificate: subjectCert });
      await s.close();
      const pem = toPem(der, 'CERTIFICATE REQUEST');
      if (ctx.values.out !== undefined) {
        checkOutputPath(ctx.values.out as string, '--out', false);
        writeFileAtomic(ctx.values.out as string, pem, 0o644);
      }
      if (ctx.values.json) return ctx.json({ id: hex(key.attrs.id), label: key.attrs.label, csr: pem });
      if (ctx.values.out === undefined) ctx.out(pem.trimEnd());
      else ctx.out(`request written to ${ctx.values.out as string} (key id ${hex(key.attrs.id)})`);
    }),
};

export const tokenCertCommand: Command = {
  path: ['token', 'cert'],
  summary: 'store a certificate under the token key it certifies, replacing that key\'s earlier certificate (renewal)',
  options: { ...TOKEN_OPTIONS, cert: { type: 'string', description: 'certificate file (PEM or DER)', valueName: 'FILE' }, 'key-label': KEY_SELECT['key-label']!, ...JSON_OPTION },
  validators: [oneToken, (v) => (v.cert === undefined ? 'give --cert FILE' : undefined)],
  run: (ctx) =>
    withToken(ctx, async (t) => {
      const file = ctx.values.cert as string;
      let raw: Buffer;
      try {
        raw = readFileSync(file);
      } catch (e) {
        throw notFound('CERTIFICATE_FILE_UNREADABLE', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      const der = pemOrDer(raw, ['CERTIFICATE'], 'CERTIFICATE_INVALID', 'certificate');
      const s = await userSession(ctx, t);
      const r = await replaceCertificate(s, der, ctx.values['key-label'] as string | undefined);
      await s.close();
      if (ctx.values.json) return ctx.json({ id: r.id.toString('hex'), replaced: r.replaced });
      ctx.out(`certificate stored under key id ${r.id.toString('hex')}${r.replaced ? ` (replaced ${r.replaced})` : ''}`);
    }),
};

export const tokenDeleteCommand: Command = {
  path: ['token', 'delete'],
  summary: 'remove a key and everything under its id (public key, certificate) from the token, e.g. the old key after a renewal',
  options: { ...TOKEN_OPTIONS, ...KEY_SELECT, ...JSON_OPTION },
  validators: [oneToken, keyNamed],
  run: (ctx) =>
    withToken(ctx, async (t) => {
      const s = await userSession(ctx, t);
      const key = await selectedKey(s, ctx.values);
      if (!key.attrs.id) throw badRequest('TOKEN_KEY_WITHOUT_ID', 'this key has no CKA_ID; remove it with the token\'s own tools');
      const removed = await deleteById(s, key.attrs.id);
      await s.close();
      if (ctx.values.json) return ctx.json({ id: key.attrs.id.toString('hex'), removed });
      ctx.out(`removed ${removed} object${removed === 1 ? '' : 's'} with id ${key.attrs.id.toString('hex')}`);
    }),
};

export const TOKEN_COMMANDS: readonly Command[] = [
  tokenInitCommand,
  tokenInfoCommand,
  tokenLoginTestCommand,
  tokenKeygenCommand,
  tokenImportCommand,
  tokenListCommand,
  tokenUnlockCommand,
  tokenBackupCommand,
  tokenRestoreCommand,
  tokenCsrCommand,
  tokenCertCommand,
  tokenDeleteCommand,
];
