/**
 * The JAHIS conformance table of docs/tokens.md, one test per PKCS#11
 * function, run against both token kinds: the encrypted software token and
 * SoftHSM2 through the PKCS#11 bridge. Signatures and ciphertexts are checked
 * with Node's crypto (OpenSSL), not with the token that made them.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, constants, publicEncrypt, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { isSekishoError } from '../errors/index.js';
import { tempDir } from '../testing/stores.js';
import { underCi } from '../testing/peers.js';
import { CKF, flagNames } from './flags.js';
import { openPkcs11Module, type Pkcs11Module } from './pkcs11-token.js';
import { JAHIS_MANDATORY_FUNCTIONS, PKCS11_FUNCTION_METHODS, type Pkcs11FunctionName } from './functions.js';
import { CKM, MECHANISM_CARRIERS, MECHANISM_FLAGS as MF, usableMechanisms } from './mechanisms.js';
import { openSoftwareToken } from './software-token.js';
import { TokenSigner } from './signer.js';
import { hasSoftHsm, SOFTHSM_MODULE, useTemporarySoftHsm } from '../testing/softhsm.js';
import type { GeneratedKeyPair, TokenModule, TokenSession } from './token.js';
import { generateKey, SIGNATURE_HASH } from '../pki/index.js';

const USER_PIN = 'user-PIN-4821';
const SO_PIN = 'so-PIN-77310';
const LABEL = 'conformance';
const FAST_KDF = { N: 1 << 14, r: 8, p: 1 };

const code = (c: string) => (e: unknown) => isSekishoError(e) && e.code === c;

interface Kind {
  name: string;
  available: () => boolean;
  /** C_Initialize: load the module; returns it and the slot the tests use. */
  open(): Promise<{ module: TokenModule; slot: number }>;
  /** Where the kinds differ, what each does (measured; docs/tokens.md says the same). */
  differs: {
    /** C_WaitForSlotEvent(CKF_DONT_BLOCK) right after C_InitToken. */
    slotEventAfterInit: 'this slot' | 'no event';
    /** C_GetObjectSize of a certificate: a size, or CK_UNAVAILABLE_INFORMATION. */
    objectSize: 'known' | 'unavailable';
  };
}

const KINDS: Kind[] = [
  {
    name: 'software token',
    available: () => true,
    async open() {
      const file = join(tempDir('sekisho-token-'), 'token.json');
      return { module: openSoftwareToken(file, { kdf: FAST_KDF }), slot: 0 };
    },
    // The token is its file: creating it is the "insertion"; every object's record has a size.
    differs: { slotEventAfterInit: 'this slot', objectSize: 'known' },
  },
  {
    name: 'SoftHSM2 (PKCS#11)',
    available: hasSoftHsm,
    async open() {
      useTemporarySoftHsm();
      const module = openPkcs11Module(SOFTHSM_MODULE);
      return { module, slot: await (module as ReturnType<typeof openPkcs11Module>).freeSlot() };
    },
    // SoftHSM2 2.6.1 answers CKF_DONT_BLOCK with CKR_NO_EVENT always, and C_GetObjectSize with CK_UNAVAILABLE_INFORMATION.
    differs: { slotEventAfterInit: 'no event', objectSize: 'unavailable' },
  },
];

for (const kind of KINDS) {
  describe(`conformance: ${kind.name}`, { skip: !kind.available() && !underCi ? `${kind.name} is not installed` : false }, () => {
    let module: TokenModule;
    let slot: number;
    let s: TokenSession;
    let ec: GeneratedKeyPair;
    let rsa: GeneratedKeyPair;
    const pub = (pair: GeneratedKeyPair): KeyObject => createPublicKey({ key: pair.publicKeyInfo, format: 'der', type: 'spki' });

    before(async () => {
      ({ module, slot } = await kind.open());
    });
    after(async () => {
      await module?.close();
    });

    test('C_Initialize + C_GetInfo: the module loads and describes itself', async () => {
      const info = await module.info();
      assert.match(info.cryptokiVersion, /^2\.\d+$/);
      assert.ok(info.manufacturer.length > 0);
    });

    test('C_InitToken: a token is initialized with a label, an SO PIN and a first user PIN', async () => {
      await module.initToken(slot, { label: LABEL, soPin: SO_PIN, userPin: USER_PIN });
      if (module.kind === 'pkcs11') slot = await (module as ReturnType<typeof openPkcs11Module>).slotByLabel(LABEL);
      const info = await module.tokenInfo(slot);
      assert.equal(info.label, LABEL);
      assert.ok(info.flags & CKF.TOKEN_INITIALIZED);
    });

    test('C_WaitForSlotEvent (CKF_DONT_BLOCK): never blocks; reports the initialized slot where the module sees events, then no event', async () => {
      const first = await module.waitForSlotEvent();
      assert.equal(first, kind.differs.slotEventAfterInit === 'this slot' ? slot : undefined);
      assert.equal(await module.waitForSlotEvent(), undefined, 'nothing happened since');
      if (module.kind === 'pkcs11') {
        // Why sekisho never asks for a blocking wait: SoftHSM2 does not support it (and it would stop Node's event loop).
        assert.throws(() => (module as Pkcs11Module).lib.C_WaitForSlotEvent(0), /CKR_FUNCTION_NOT_SUPPORTED/);
      }
    });

    test('C_GetMechanismList + C_GetMechanismInfo: every sekisho mechanism is offered, with fitting flags and key sizes; an unknown type is TOKEN_MECHANISM_INVALID', async () => {
      const list = await module.mechanismList(slot);
      assert.deepEqual(usableMechanisms(list).sort(), Object.keys(MECHANISM_CARRIERS).sort());
      const gen = await module.mechanismInfo(slot, CKM.RSA_PKCS_KEY_PAIR_GEN);
      assert.equal(gen.name, 'CKM_RSA_PKCS_KEY_PAIR_GEN');
      assert.ok(gen.flags & MF.GENERATE_KEY_PAIR);
      assert.ok(gen.minKeySize <= 2048 && gen.maxKeySize >= 4096, `${gen.minKeySize}–${gen.maxKeySize}`);
      const ecGen = await module.mechanismInfo(slot, CKM.EC_KEY_PAIR_GEN);
      assert.ok(ecGen.minKeySize <= 256 && ecGen.maxKeySize >= 384);
      const oaep = await module.mechanismInfo(slot, CKM.RSA_PKCS_OAEP);
      assert.equal(oaep.flags & (MF.ENCRYPT | MF.DECRYPT), MF.ENCRYPT | MF.DECRYPT);
      const rsaSign = await module.mechanismInfo(slot, CKM.SHA256_RSA_PKCS);
      assert.equal(rsaSign.flags & (MF.SIGN | MF.VERIFY), MF.SIGN | MF.VERIFY);
      assert.ok((await module.mechanismInfo(slot, CKM.SHA384)).flags & MF.DIGEST);
      await assert.rejects(module.mechanismInfo(slot, 0x7fff0000), code('TOKEN_MECHANISM_INVALID'));
      await assert.rejects(module.mechanismList(424242), code('TOKEN_SLOT_NOT_FOUND'));
    });

    test('C_GetSlotList + C_GetSlotInfo: the slot is listed with a token present', async () => {
      const slots = await module.slots();
      const mine = slots.find((x) => x.slotId === slot);
      assert.ok(mine, `slot ${slot} is listed`);
      assert.equal(mine.tokenPresent, true);
    });

    test('C_GetTokenInfo: label, serial and flags (login required, user PIN initialized, RNG)', async () => {
      const info = await module.tokenInfo(slot);
      assert.ok(info.serialNumber.length > 0);
      for (const f of ['LOGIN_REQUIRED', 'USER_PIN_INITIALIZED', 'RNG'] as const) assert.ok(flagNames(info.flags).includes(f), f);
      assert.ok(info.minPinLength >= 4);
    });

    test('C_OpenSession: a session opens on the slot, and a missing slot is TOKEN_SLOT_NOT_FOUND', async () => {
      s = await module.openSession(slot);
      assert.equal(s.loggedInAs, undefined);
      await assert.rejects(module.openSession(424242), code('TOKEN_SLOT_NOT_FOUND'));
    });

    test('C_GetFunctionList: every JAHIS mandatory function is listed, and every listed function has its method on both kinds', async () => {
      const list = (await module.functionList()) as Pkcs11FunctionName[];
      for (const f of JAHIS_MANDATORY_FUNCTIONS) assert.ok(list.includes(f), f);
      for (const f of list) {
        for (const m of PKCS11_FUNCTION_METHODS[f].split(/ \/ /)) {
          const [owner, method] = m.split(' ')[0]!.split('.') as [string, string];
          if (owner !== 'module' && owner !== 'session') continue; // C_Initialize: the open functions
          const target = owner === 'module' ? module : s;
          assert.equal(typeof (target as unknown as Record<string, unknown>)[method], 'function', `${f} → ${m}`);
        }
      }
      if (module.kind === 'pkcs11') {
        // A library without C_GetFunctionList is no PKCS#11 module: refused at load.
        assert.throws(() => openPkcs11Module('/lib/x86_64-linux-gnu/libc.so.6'), code('PKCS11_MODULE_NOT_FOUND'));
      }
    });

    test('C_Login: a wrong user PIN is PIN_WRONG; the right one logs in', async () => {
      await assert.rejects(s.login('user', 'not-the-PIN-000'), code('PIN_WRONG'));
      await s.login('user', USER_PIN);
      assert.equal(s.loggedInAs, 'user');
    });

    test('C_GetSessionInfo: a read/write session on the slot, public before login, user after C_Login, SO after an SO login', async () => {
      await s.logout();
      let i = await s.sessionInfo();
      assert.deepEqual([i.slotId, i.state, i.readWrite], [slot, 'rw-public', true]);
      assert.ok(i.flags & 0x4, 'CKF_SERIAL_SESSION');
      await s.login('so', SO_PIN);
      assert.equal((await s.sessionInfo()).state, 'rw-so');
      await s.logout();
      await s.login('user', USER_PIN);
      i = await s.sessionInfo();
      assert.equal(i.state, 'rw-user');
    });

    test('C_GenerateKeyPair: ECDSA P-256 and RSA-2048 key pairs made inside the token, not extractable', async () => {
      ec = await s.generateKeyPair('ecdsa-p256', { label: 'conf-ec' });
      rsa = await s.generateKeyPair('rsa-2048', { label: 'conf-rsa' });
      for (const pair of [ec, rsa]) {
        const a = await s.getAttributes(pair.privateKey);
        assert.equal(a.class, 'private-key');
        assert.equal(a.sensitive, true);
        assert.equal(a.extractable, false);
        assert.equal(a.neverExtractable, true);
        assert.equal(a.local, true);
        assert.equal(a.value, undefined, 'no private value is ever returned');
      }
      assert.equal(pub(ec).asymmetricKeyType, 'ec');
      assert.equal(pub(rsa).asymmetricKeyDetails?.modulusLength, 2048);
    });

    test('C_CreateObject: a certificate and a device-identification data object are written', async () => {
      const cert = new X509Certificate(selfSigned);
      const h = await s.createObject({ class: 'certificate', label: 'conf-cert', value: cert.raw });
      assert.deepEqual((await s.getAttributes(h)).value, cert.raw);
      await s.createObject({ class: 'data', label: 'device-identification', application: 'sekisho', value: Buffer.from('device 0110113719-01') });
    });

    test('C_GetObjectSize: a certificate\'s size where the module keeps one (CK_UNAVAILABLE_INFORMATION on SoftHSM2); a destroyed object is TOKEN_OBJECT_NOT_FOUND', async () => {
      const [cert] = await s.findObjects({ class: 'certificate', label: 'conf-cert' });
      const size = await s.objectSize(cert!);
      if (kind.differs.objectSize === 'known') assert.ok(size !== undefined && size >= new X509Certificate(selfSigned).raw.length, String(size));
      else assert.equal(size, undefined);
      const gone = await s.createObject({ class: 'data', label: 'short-lived', value: Buffer.from('x') });
      await s.destroyObject(gone);
      await assert.rejects(s.objectSize(gone), code('TOKEN_OBJECT_NOT_FOUND'));
    });

    test('C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal: objects found by class and label; private keys only after login', async () => {
      assert.equal((await s.findObjects({ class: 'private-key', label: 'conf-ec' })).length, 1);
      assert.equal((await s.findObjects({ class: 'certificate' })).length, 1);
      assert.equal((await s.findObjects({ label: 'no-such-label' })).length, 0);
      const other = await module.openSession(slot);
      try {
        if (module.kind === 'software') assert.equal((await other.findObjects({ class: 'private-key' })).length, 0);
        assert.equal((await other.findObjects({ class: 'data', label: 'device-identification' })).length, 1);
      } finally {
        await other.close();
      }
    });

    test('C_GetAttributeValue: label, id, key type and public key of a key; a certificate\'s id matches its key', async () => {
      const a = await s.getAttributes(ec.privateKey);
      assert.equal(a.label, 'conf-ec');
      assert.equal(a.keyType, 'ec');
      assert.ok(a.id && a.id.length > 0);
      assert.deepEqual(a.publicKeyInfo, ec.publicKeyInfo);
      const [pubHandle] = await s.findObjects({ class: 'public-key', id: a.id! });
      assert.equal(pubHandle, ec.publicKey);
    });

    test('C_SignInit/C_Sign: ECDSA and RSA signatures that OpenSSL verifies', async () => {
      const data = Buffer.from('JAHIS node authentication');
      const ecSig = await s.sign('ecdsa-sha256', ec.privateKey, data);
      assert.equal(ecSig.length, 64, 'raw r‖s');
      assert.ok(cryptoVerify('sha256', data, { key: pub(ec), dsaEncoding: 'ieee-p1363' }, ecSig));
      const rsaSig = await s.sign('sha256-rsa-pkcs', rsa.privateKey, data);
      assert.ok(cryptoVerify('sha256', data, pub(rsa), rsaSig));
      await assert.rejects(s.sign('sha256-rsa-pkcs', ec.privateKey, data), code('TOKEN_MECHANISM_INVALID'));
      // The Signer the CA uses: DER ECDSA-Sig-Value.
      const signer = await TokenSigner.find(s, { label: 'conf-ec' });
      assert.ok(cryptoVerify(SIGNATURE_HASH[signer.algorithm], data, signer.publicKey, await signer.sign(data)));
    });

    test('C_VerifyInit/C_Verify: a good signature verifies, a changed message does not', async () => {
      const data = Buffer.from('verify me');
      const sig = await s.sign('ecdsa-sha256', ec.privateKey, data);
      assert.equal(await s.verify('ecdsa-sha256', ec.publicKey, data, sig), true);
      assert.equal(await s.verify('ecdsa-sha256', ec.publicKey, Buffer.from('verify mE'), sig), false);
      const rsaSig = await s.sign('sha384-rsa-pkcs', rsa.privateKey, data);
      assert.equal(await s.verify('sha384-rsa-pkcs', rsa.publicKey, data, rsaSig), true);
    });

    test('C_EncryptInit/C_Encrypt and C_DecryptInit/C_Decrypt: RSA-OAEP round trip, and OpenSSL\'s ciphertext decrypts', async () => {
      const secret = Buffer.from('shared key for the device 鍵');
      const ct = await s.encrypt('rsa-oaep-sha1', rsa.publicKey, secret);
      assert.deepEqual(await s.decrypt('rsa-oaep-sha1', rsa.privateKey, ct), secret);
      const fromOpenssl = publicEncrypt({ key: pub(rsa), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, secret);
      assert.deepEqual(await s.decrypt('rsa-oaep-sha1', rsa.privateKey, fromOpenssl), secret);
      const damaged = Buffer.from(ct);
      damaged[10]! ^= 1;
      await assert.rejects(s.decrypt('rsa-oaep-sha1', rsa.privateKey, damaged), code('TOKEN_DECRYPT_FAILED'));
    });

    test('C_VerifyInit/C_VerifyUpdate/C_VerifyFinal: a message given in parts verifies (ECDSA and RSA); a changed part does not; a second final is TOKEN_OPERATION_NOT_INITIALIZED', async () => {
      const whole = Buffer.from('JAHIS multi-part verification of a long message');
      const cases = [
        { mech: 'ecdsa-sha256' as const, pair: ec },
        { mech: 'sha256-rsa-pkcs' as const, pair: rsa },
      ];
      for (const { mech, pair } of cases) {
        const sig = await s.sign(mech, pair.privateKey, whole);
        const good = await s.verifyInit(mech, pair.publicKey);
        await good.update(whole.subarray(0, 10));
        await good.update(whole.subarray(10));
        assert.equal(await good.final(sig), true, mech);
        await assert.rejects(good.final(sig), code('TOKEN_OPERATION_NOT_INITIALIZED'));
        const bad = await s.verifyInit(mech, pair.publicKey);
        await bad.update(whole.subarray(0, 10));
        await bad.update(Buffer.alloc(0));
        await bad.update(Buffer.from('changed'));
        assert.equal(await bad.final(sig), false, `${mech}: changed`);
      }
      await assert.rejects(s.verifyInit('ecdsa-sha256', rsa.publicKey), code('TOKEN_MECHANISM_INVALID'));
    });

    test('C_EncryptInit/C_EncryptUpdate/C_EncryptFinal: RSA-OAEP given in parts decrypts to the whole; too much data is TOKEN_DATA_LEN_RANGE', async () => {
      const op = await s.encryptInit('rsa-oaep-sha1', rsa.publicKey);
      assert.equal((await op.update(Buffer.from('shared key '))).length, 0, 'RSA is single-part: nothing until final');
      await op.update(Buffer.from('for the device 鍵'));
      const ct = await op.final();
      assert.equal(ct.length, 256);
      assert.equal((await s.decrypt('rsa-oaep-sha1', rsa.privateKey, ct)).toString(), 'shared key for the device 鍵');
      await assert.rejects(op.final(), code('TOKEN_OPERATION_NOT_INITIALIZED'));
      const big = await s.encryptInit('rsa-oaep-sha1', rsa.publicKey);
      await big.update(Buffer.alloc(300, 1));
      await assert.rejects(big.final(), code('TOKEN_DATA_LEN_RANGE'));
      await assert.rejects(s.encryptInit('rsa-oaep-sha1', ec.publicKey), code('TOKEN_MECHANISM_INVALID'));
      if (module.kind === 'pkcs11') {
        // Why the bridge collects the parts: SoftHSM2 refuses C_EncryptUpdate for RSA-OAEP (single-part in PKCS#11).
        const lib = (module as Pkcs11Module).lib;
        const raw = lib.C_OpenSession(lib.C_GetSlotList(true).find((h) => Number(h.readBigUInt64LE(0)) === slot)!, 0x4);
        try {
          const p = (await import('./pkcs11-binding.js')).pkcs11js();
          lib.C_EncryptInit(raw, { mechanism: p.CKM_RSA_PKCS_OAEP, parameter: { type: p.CK_PARAMS_RSA_OAEP, hashAlg: p.CKM_SHA_1, mgf: p.CKG_MGF1_SHA1, source: 1 } as never }, Buffer.from(rsa.publicKey, 'hex'));
          assert.throws(() => lib.C_EncryptUpdate(raw, Buffer.from('x'), Buffer.alloc(512)), /CKR_FUNCTION_NOT_SUPPORTED/);
        } finally {
          lib.C_CloseSession(raw);
        }
      }
    });

    test('C_DigestInit/C_DigestUpdate/C_DigestFinal: a message in parts hashes as OpenSSL hashes the whole', async () => {
      for (const h of ['sha256', 'sha384', 'sha512'] as const) {
        const op = await s.digestInit(h);
        await op.update(Buffer.from('a'));
        await op.update(Buffer.from('bc'));
        await op.update(Buffer.alloc(0));
        assert.deepEqual(await op.final(), createHash(h).update('abc').digest(), h);
        await assert.rejects(op.final(), code('TOKEN_OPERATION_NOT_INITIALIZED'));
      }
    });

    test('C_DigestInit/C_Digest: SHA-256/384/512 equal to OpenSSL', async () => {
      const data = Buffer.from('abc');
      for (const h of ['sha256', 'sha384', 'sha512'] as const) assert.deepEqual(await s.digest(h, data), createHash(h).update(data).digest());
    });

    test('C_GenerateRandom: the requested number of bytes, different each time', async () => {
      const a = await s.generateRandom(32);
      const b = await s.generateRandom(32);
      assert.equal(a.length, 32);
      assert.notDeepEqual(a, b);
    });

    test('C_SetAttributeValue: the device-identification object is rewritten after login', async () => {
      const [h] = await s.findObjects({ class: 'data', label: 'device-identification' });
      const after = await s.setAttributes(h!, { value: Buffer.from('device 0110113719-02') });
      assert.equal((await s.getAttributes(after)).value?.toString(), 'device 0110113719-02');
      assert.equal((await s.findObjects({ class: 'data', label: 'device-identification' })).length, 1, 'one object, not two');
    });

    test('C_Logout: after logout, private keys cannot sign and user data cannot be written', async () => {
      await s.logout();
      assert.equal(s.loggedInAs, undefined);
      const [h] = await s.findObjects({ class: 'data', label: 'device-identification' });
      assert.equal((await s.getAttributes(h!)).value?.toString(), 'device 0110113719-02', 'readable without login');
      await assert.rejects(s.setAttributes(h!, { value: Buffer.from('forged') }), code('TOKEN_NOT_LOGGED_IN'));
      await assert.rejects(s.createObject({ class: 'data', label: 'x', value: Buffer.from('x') }), code('TOKEN_NOT_LOGGED_IN'));
      await assert.rejects(s.sign('ecdsa-sha256', ec.privateKey, Buffer.from('x')));
    });

    test('C_SetPIN: the user changes the PIN; the old one stops working', async () => {
      await s.login('user', USER_PIN);
      await s.setPin(USER_PIN, `${USER_PIN}-new`);
      await s.logout();
      await assert.rejects(s.login('user', USER_PIN), code('PIN_WRONG'));
      await s.login('user', `${USER_PIN}-new`);
      await s.logout();
    });

    test('C_InitPIN: the SO sets a new user PIN', async () => {
      await s.login('so', SO_PIN);
      await s.initPin(USER_PIN);
      await s.logout();
      await s.login('user', USER_PIN);
    });

    test('C_CreateObject (private key from a PKCS#12) and C_DestroyObject', async () => {
      const { privateKey } = await generateKey('ecdsa-p384');
      const h = await s.importPrivateKey(privateKey, { label: 'imported' });
      const a = await s.getAttributes(h);
      assert.equal(a.sensitive, true);
      assert.equal(a.extractable, false);
      const signer = await TokenSigner.find(s, { label: 'imported' });
      assert.equal(signer.keyType, 'ecdsa-p384');
      const data = Buffer.from('p384');
      assert.ok(cryptoVerify('sha384', data, createPublicKey(privateKey), await signer.sign(data)));
      await s.destroyObject(h);
      assert.equal((await s.findObjects({ class: 'private-key', label: 'imported' })).length, 0);
    });

    test('C_CloseSession + C_Finalize: a closed session refuses work', async () => {
      await s.close();
      await assert.rejects(s.generateRandom(4), code('TOKEN_SESSION_CLOSED'));
      await module.close();
    });
  });
}

/** A self-signed certificate to store (any certificate will do). */
const selfSigned = Buffer.from(
  'MIIBgjCCASegAwIBAgIUHwlzViBRSKkCkzlr0xVDEq8QXOswCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLY29uZm9ybWFuY2UwHhcNMjYxMTIzMDA0NzU0WhcNMzYxMTIwMDA0NzU0WjAWMRQwEgYDVQQDDAtjb25mb3JtYW5jZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABBf8iUorOw1IXVDrhISrKk4aPIuM6VTxgqkDGFsFCVZcj2GCVaNoOzSA3eUIwfui0Fo27AZkNAvThDmofjtdzcGjUzBRMB0GA1UdDgQWBBTha32rLKk8x7opWqEHwAfokPDBOTAfBgNVHSMEGDAWgBTha32rLKk8x7opWqEHwAfokPDBOTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDFdG0w65lEcd/7DZBHZIQwj1b6QjSuSbfiq6O3nixxLAIhAMEoeoTcZHSdyIfmXhgolhKUa8w2af1hpoHXdAt6GQgF',
  'base64',
);
