/**
 * The PKCS#11 bridge against the real peers: SoftHSM2 holds the keys, OpenSC's
 * pkcs11-tool sees and uses what sekisho made (and the other way round), and
 * OpenSSL verifies every signature.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isSekishoError } from '../errors/index.js';
import { needCommand, run, underCi } from '../testing/peers.js';
import { spkiDer } from '../pki/index.js';
import { openPkcs11Module, type Pkcs11Module } from './pkcs11-token.js';
import { TokenSigner } from './signer.js';
import { hasSoftHsm, needSoftHsm, PKCS11_ENGINE, SOFTHSM_MODULE, useTemporarySoftHsm } from '../testing/softhsm.js';
import { openTokenSigner, keyUri } from './key-ref.js';

const USER_PIN = 'user-PIN-4821';
const SO_PIN = 'so-PIN-77310';
const LABEL = 'interop';
const code = (c: string) => (e: unknown) => isSekishoError(e) && e.code === c;

let dir = '';
const skip = !hasSoftHsm() && !underCi;

function tool(args: string[]) {
  const r = run('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', LABEL, ...args]);
  assert.equal(r.status, 0, `pkcs11-tool ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function withModule<T>(fn: (m: Pkcs11Module) => Promise<T>): Promise<T> {
  const m = openPkcs11Module(SOFTHSM_MODULE);
  try {
    return await fn(m);
  } finally {
    await m.close();
  }
}

before(async () => {
  if (skip) return;
  dir = useTemporarySoftHsm().dir;
  await withModule(async (m) => {
    await m.initToken(await m.freeSlot(), { label: LABEL, soPin: SO_PIN, userPin: USER_PIN });
  });
});

test('a key made by sekisho is listed by pkcs11-tool and signs through it; OpenSSL verifies the signatures', { skip }, async (t) => {
  if (!needSoftHsm(t) || !needCommand(t, 'pkcs11-tool') || !needCommand(t, 'openssl')) return;
  const made = await withModule(async (m) => {
    const s = await m.openSession(await m.slotByLabel(LABEL));
    await s.login('user', USER_PIN);
    const ec = await s.generateKeyPair('ecdsa-p256', { label: 'made-by-sekisho' });
    const rsa = await s.generateKeyPair('rsa-2048', { label: 'made-by-sekisho-rsa' });
    return { ec: (await s.getAttributes(ec.privateKey)).id!, ecSpki: ec.publicKeyInfo, rsa: (await s.getAttributes(rsa.privateKey)).id!, rsaSpki: rsa.publicKeyInfo };
  });
  const listing = tool(['--login', '--pin', USER_PIN, '--list-objects']);
  assert.match(listing, /Private Key Object; EC[\s\S]*label:\s+made-by-sekisho\n/);
  assert.match(listing, new RegExp(`ID:\\s+${made.ec.toString('hex')}`));
  assert.match(listing, /Access:\s+sensitive, always sensitive, never extractable, local/);

  const data = join(dir, 'data.txt');
  writeFileSync(data, 'signed by a key that never left SoftHSM2');
  const hash = join(dir, 'data.sha256');
  writeFileSync(hash, createHash('sha256').update(readFileSync(data)).digest());
  const pubPem = join(dir, 'ec.pem');
  writeFileSync(pubPem, createPublicKey({ key: made.ecSpki, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
  const sig = join(dir, 'ec.sig');
  tool(['--login', '--pin', USER_PIN, '--sign', '--id', made.ec.toString('hex'), '--mechanism', 'ECDSA', '--signature-format', 'openssl', '--input-file', hash, '--output-file', sig]);
  const v = run('openssl', ['dgst', '-sha256', '-verify', pubPem, '-signature', sig, data]);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /Verified OK/);

  const rsaPem = join(dir, 'rsa.pem');
  writeFileSync(rsaPem, createPublicKey({ key: made.rsaSpki, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
  const rsaSig = join(dir, 'rsa.sig');
  tool(['--login', '--pin', USER_PIN, '--sign', '--id', made.rsa.toString('hex'), '--mechanism', 'SHA256-RSA-PKCS', '--input-file', data, '--output-file', rsaSig]);
  const vr = run('openssl', ['dgst', '-sha256', '-verify', rsaPem, '-signature', rsaSig, data]);
  assert.match(vr.stdout, /Verified OK/);
});

test('a key made by pkcs11-tool is found and used by sekisho, with the same public key pkcs11-tool exports', { skip }, async (t) => {
  if (!needSoftHsm(t) || !needCommand(t, 'pkcs11-tool')) return;
  tool(['--login', '--pin', USER_PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'made-by-tool', '--id', '4242']);
  const exported = join(dir, 'tool-pub.der');
  tool(['--read-object', '--type', 'pubkey', '--label', 'made-by-tool', '--output-file', exported]);
  const opened = await openTokenSigner({ kind: 'pkcs11', module: SOFTHSM_MODULE, uri: keyUri(LABEL, 'made-by-tool') }, USER_PIN);
  try {
    assert.deepEqual(spkiDer(opened.signer.publicKey), readFileSync(exported));
    assert.equal(opened.signer.keyType, 'ecdsa-p256');
    const data = Buffer.from('signed by sekisho with a pkcs11-tool key');
    assert.ok(cryptoVerify('sha256', data, createPublicKey({ key: readFileSync(exported), format: 'der', type: 'spki' }), await opened.signer.sign(data)));
  } finally {
    await opened.close();
  }
  // By id too, as a pkcs11: URI names it.
  await withModule(async (m) => {
    const s = await m.openSession(await m.slotByLabel(LABEL));
    await s.login('user', USER_PIN);
    const signer = await TokenSigner.find(s, { id: Buffer.from('4242', 'hex') });
    assert.equal(signer.keyType, 'ecdsa-p256');
  });
});

test('bad input at the module: missing module, missing slot, unknown token label, wrong PIN, missing key — each a clear error', { skip }, async (t) => {
  if (!needSoftHsm(t)) return;
  assert.throws(() => openPkcs11Module(join(dir, 'no-such-module.so')), code('PKCS11_MODULE_NOT_FOUND'));
  const notAModule = join(dir, 'not-a-module.so');
  writeFileSync(notAModule, 'not an ELF file');
  assert.throws(() => openPkcs11Module(notAModule), code('PKCS11_MODULE_NOT_FOUND'));
  await withModule(async (m) => {
    await assert.rejects(m.openSession(987654), code('TOKEN_SLOT_NOT_FOUND'));
    await assert.rejects(m.tokenInfo(987654), code('TOKEN_SLOT_NOT_FOUND'));
    await assert.rejects(m.slotByLabel('no-such-token'), code('TOKEN_NOT_FOUND'));
    await assert.rejects(m.initToken(await m.slotByLabel(LABEL), { label: 'wiped', soPin: SO_PIN, userPin: USER_PIN }), code('TOKEN_EXISTS'), 'an initialized token is never wiped');
  });
  await assert.rejects(openTokenSigner({ kind: 'pkcs11', module: SOFTHSM_MODULE, uri: keyUri(LABEL, 'made-by-tool') }, 'wrong-PIN-000'), code('PIN_WRONG'));
  await assert.rejects(openTokenSigner({ kind: 'pkcs11', module: SOFTHSM_MODULE, uri: keyUri(LABEL, 'no-such-key') }, USER_PIN), code('TOKEN_KEY_NOT_FOUND'));
  await assert.rejects(openTokenSigner({ kind: 'pkcs11', module: SOFTHSM_MODULE, uri: 'pkcs11:token=interop;object=x;bogus=1' }, USER_PIN), code('PKCS11_URI_INVALID'));
});

test('SoftHSM2 never locks a PIN: the bridge reports the module\'s own flags and the right PIN still works after many wrong ones', { skip }, async (t) => {
  if (!needSoftHsm(t)) return;
  await withModule(async (m) => {
    const s = await m.openSession(await m.slotByLabel(LABEL));
    for (let k = 0; k < 5; k++) await assert.rejects(s.login('user', `wrong-PIN-${k}`), code('PIN_WRONG'));
    const info = await m.tokenInfo(await m.slotByLabel(LABEL));
    assert.equal(info.userPinFailures, undefined, 'the module keeps its own counters');
    await s.login('user', USER_PIN);
  });
});


test('regression: a pkcs11: URI names one token — a label two tokens share is TOKEN_AMBIGUOUS (as OpenSSL\'s engine says), serial= picks the right one, and no PIN reaches another token', { skip }, async (t) => {
  if (!needSoftHsm(t) || !needCommand(t, 'softhsm2-util') || !needCommand(t, 'pkcs11-tool')) return;
  // Two tokens with one label, as a vendor's tool (or softhsm2-util) makes them; each with its own PIN and a key "twin-key".
  const pins = ['twin-PIN-1111', 'twin-PIN-2222'];
  for (const pin of pins) {
    const r = run('softhsm2-util', ['--init-token', '--free', '--label', 'twin', '--so-pin', SO_PIN, '--pin', pin]);
    assert.equal(r.status, 0, r.stderr);
  }
  const twins = await withModule(async (m) => {
    const out: { slot: number; serial: string }[] = [];
    for (const s of await m.slots()) {
      if (!s.tokenPresent) continue;
      const i = await m.tokenInfo(s.slotId);
      if (i.label === 'twin') out.push({ slot: s.slotId, serial: i.serialNumber });
    }
    return out;
  });
  assert.equal(twins.length, 2);
  // Which PIN went to which slot: try each (SoftHSM2 never locks).
  const pinOf = new Map<number, string>();
  for (const tw of twins) {
    for (const pin of pins) if (run('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--slot', String(tw.slot), '--login', '--pin', pin, '--list-objects']).status === 0) pinOf.set(tw.slot, pin);
  }
  const spki = new Map<number, Buffer>();
  for (const tw of twins) {
    const made = run('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--slot', String(tw.slot), '--login', '--pin', pinOf.get(tw.slot)!, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'twin-key', '--id', '77']);
    assert.equal(made.status, 0, made.stderr);
    const file = join(dir, `twin-${tw.slot}.der`);
    assert.equal(run('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--slot', String(tw.slot), '--read-object', '--type', 'pubkey', '--id', '77', '--output-file', file]).status, 0);
    spki.set(tw.slot, readFileSync(file));
  }
  const [first, second] = twins as [{ slot: number; serial: string }, { slot: number; serial: string }];
  const ref = (uri: string) => ({ kind: 'pkcs11' as const, module: SOFTHSM_MODULE, uri });

  // The label alone: refused before any login (it used to log in to the first token with the second's PIN, or sign with the first's key).
  for (const pin of pins) await assert.rejects(openTokenSigner(ref('pkcs11:token=twin;object=twin-key'), pin), code('TOKEN_AMBIGUOUS'));
  await withModule(async (m) => {
    await assert.rejects(m.slotByLabel('twin'), code('TOKEN_AMBIGUOUS'), 'the CLI\'s --label is refused as well');
    await assert.rejects(m.initToken(await m.freeSlot(), { label: LABEL, soPin: SO_PIN, userPin: USER_PIN }), code('TOKEN_LABEL_TAKEN'), 'sekisho never makes a second token with a label in use');
  });

  // serial= (with or without token=) names each one; the key is that token's own.
  for (const tw of [second, first]) {
    for (const uri of [`pkcs11:token=twin;serial=${tw.serial};object=twin-key`, `pkcs11:serial=${tw.serial};object=twin-key`]) {
      const opened = await openTokenSigner(ref(uri), pinOf.get(tw.slot)!);
      try {
        assert.deepEqual(spkiDer(opened.signer.publicKey), spki.get(tw.slot), `${uri} opens the key of slot ${tw.slot}`);
      } finally {
        await opened.close();
      }
    }
  }
  // Every token attribute given must match: a serial no token has, or a slot-id whose token has another label, names nothing.
  await assert.rejects(openTokenSigner(ref('pkcs11:token=twin;serial=0000000000000000;object=twin-key'), pins[0]!), code('TOKEN_NOT_FOUND'));
  await assert.rejects(openTokenSigner(ref(`pkcs11:token=${LABEL};slot-id=${first.slot};object=twin-key`), pinOf.get(first.slot)!), code('TOKEN_NOT_FOUND'));
  await assert.rejects(openTokenSigner(ref('pkcs11:token=twin;model=no-such-model;object=twin-key'), pins[0]!), code('TOKEN_NOT_FOUND'));

  // OpenSSL's pkcs11 engine (libp11) reaches the same verdicts: the label alone is refused, the serial signs with that token's key.
  if (!existsSync(PKCS11_ENGINE) || !needCommand(t, 'openssl')) return;
  const env = { ...process.env, OPENSSL_ENGINES: dirname(PKCS11_ENGINE), PKCS11_MODULE_PATH: SOFTHSM_MODULE };
  const hash = join(dir, 'twin.sha256');
  writeFileSync(hash, createHash('sha256').update('twin').digest());
  const engineSign = (uri: string, out: string) => run('openssl', ['pkeyutl', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', '-inkey', uri, '-in', hash, '-out', out], undefined, env);
  const refused = engineSign(`pkcs11:token=twin;object=twin-key;type=private?pin-value=${pinOf.get(second.slot)!}`, join(dir, 'twin-ambiguous.sig'));
  assert.match(refused.stdout + refused.stderr, /Multiple matching slots/);
  const sigFile = join(dir, 'twin-second.sig');
  engineSign(`pkcs11:token=twin;serial=${second.serial};object=twin-key;type=private?pin-value=${pinOf.get(second.slot)!}`, sigFile); // libp11 0.4.12 may crash at exit, after writing
  assert.ok(cryptoVerify('sha256', Buffer.from('twin'), createPublicKey({ key: spki.get(second.slot)!, format: 'der', type: 'spki' }), readFileSync(sigFile)));
});

test('regression: one login per process — a second session\'s wrong PIN is refused though the module says "already logged in", a wrong SO PIN is SO_PIN_WRONG, and closing one session or module leaves the others working', { skip }, async (t) => {
  if (!needSoftHsm(t)) return;
  const signs = async (s: Awaited<ReturnType<Pkcs11Module['openSession']>>) => {
    const [k] = await s.findObjects({ class: 'private-key', label: 'made-by-tool' });
    return (await s.sign('ecdsa-sha256', k!, Buffer.from('still logged in?'))).length > 0;
  };
  const m1 = openPkcs11Module(SOFTHSM_MODULE);
  const slot = await m1.slotByLabel(LABEL);
  const a = await m1.openSession(slot);
  await a.login('user', USER_PIN);
  // SoftHSM2 answers CKR_USER_ALREADY_LOGGED_IN before it looks at the PIN: the bridge took that as a login.
  const b = await m1.openSession(slot);
  for (const wrong of ['wrong-PIN-000', `${USER_PIN} `, USER_PIN.toLowerCase()]) await assert.rejects(b.login('user', wrong), code('PIN_WRONG'));
  assert.equal(b.loggedInAs, undefined);
  await b.login('user', USER_PIN);
  assert.ok(await signs(b));
  await assert.rejects((await m1.openSession(slot)).login('so', SO_PIN), code('TOKEN_ALREADY_LOGGED_IN'), 'the SO cannot log in beside the user');
  await b.close();
  assert.ok(await signs(a), 'closing one session does not log out the others (C_Logout is for every session of the process)');
  // A second module object on the same library (the CA's token and the audit key, a reload): its wrong PIN is refused, and closing it does not finalize the first.
  const m2 = openPkcs11Module(SOFTHSM_MODULE);
  const c = await m2.openSession(slot);
  await assert.rejects(c.login('user', 'wrong-PIN-111'), code('PIN_WRONG'));
  await c.login('user', USER_PIN);
  await m2.close();
  assert.ok(await signs(a), 'the first module still works after the second closed');
  await m1.close();
  // Nothing logged in any more: the module checks again, and an SO PIN is called an SO PIN.
  await withModule(async (m) => {
    const s = await m.openSession(slot);
    await assert.rejects(s.login('so', 'wrong-SO-PIN-0'), code('SO_PIN_WRONG'));
    await assert.rejects(s.login('user', 'wrong-PIN-222'), code('PIN_WRONG'));
    await s.login('so', SO_PIN);
    await s.logout();
    await s.login('user', USER_PIN);
  });
});
