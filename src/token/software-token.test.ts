/**
 * The software token's own promises: PIN counting that survives restarts, SO
 * unlock, SO lock for good, the operator's minimum PIN length, private objects
 * encrypted at rest, backup and restore, and clear errors for every damaged
 * file — with a fuzz over mutated token files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { isSekishoError } from '../errors/index.js';
import { tempDir } from '../testing/stores.js';
import { CKF, flagNames } from './flags.js';
import { openSoftwareToken } from './software-token.js';
import { currentCredential, listCredentials } from './credential.js';
import { needCommand, run } from '../testing/peers.js';
import { parseTokenFile, serializeTokenFile } from './software-token-file.js';
import type { TokenPolicy } from './software-token-file.js';

const USER_PIN = 'user-PIN-4821';
const SO_PIN = 'so-PIN-77310';
const FAST_KDF = { N: 1 << 14, r: 8, p: 1 };
const code = (c: string) => (e: unknown) => isSekishoError(e) && e.code === c;

async function newToken(policy: Partial<TokenPolicy> = {}): Promise<string> {
  const file = join(tempDir('sekisho-swtoken-'), 'token.json');
  await openSoftwareToken(file, { kdf: FAST_KDF, policy }).initToken(0, { label: 'clinic', soPin: SO_PIN, userPin: USER_PIN });
  return file;
}

/** A fresh process's view: a new module on the same file, one login attempt, closed again. */
async function loginOnce(file: string, who: 'user' | 'so', pin: string): Promise<void> {
  const t = openSoftwareToken(file);
  const s = await t.openSession(0);
  try {
    await s.login(who, pin);
  } finally {
    await t.close();
  }
}

async function info(file: string) {
  return openSoftwareToken(file).tokenInfo(0);
}

test('the token file is created 0600 and keeps private objects out of sight', async () => {
  const file = await newToken();
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const t = openSoftwareToken(file);
  const s = await t.openSession(0);
  await s.login('user', USER_PIN);
  await s.generateKeyPair('ecdsa-p256', { label: 'hidden-key-label-93' });
  await s.createObject({ class: 'data', label: 'private-note-label-17', private: true, value: Buffer.from('private-note-value-55') });
  await t.close();
  const text = readFileSync(file, 'utf8');
  for (const secret of ['private-note-label-17', 'private-note-value-55', Buffer.from('private-note-value-55').toString('base64'), 'pkcs8', '"private-key"']) {
    assert.ok(!text.includes(secret), `${secret} is not in the file in the clear`);
  }
  const f = parseTokenFile(text, file);
  assert.deepEqual(f.body.publicObjects.map((o) => o.attrs.class), ['public-key'], 'only the public half of the key pair is stored in the clear');
  assert.deepEqual(readdirSync(dirname(file)), ['token.json'], 'no temporary file is left behind');
});

test('three wrong PINs lock the token across restarts; COUNT_LOW, FINAL_TRY and LOCKED are reported; the SO unlocks it', async () => {
  const file = await newToken();
  assert.equal((await info(file)).maxUserPinTries, 3);
  await assert.rejects(loginOnce(file, 'user', 'wrong-PIN-1'), (e: unknown) => isSekishoError(e) && e.code === 'PIN_WRONG' && /2 tries left/.test(e.message));
  let i = await info(file);
  assert.equal(i.userPinFailures, 1);
  assert.deepEqual(flagNames(i.flags).filter((f) => f.startsWith('USER_PIN_') && f !== 'USER_PIN_INITIALIZED'), ['USER_PIN_COUNT_LOW']);
  await assert.rejects(loginOnce(file, 'user', 'wrong-PIN-2'), (e: unknown) => isSekishoError(e) && e.code === 'PIN_WRONG' && /1 try left/.test(e.message));
  i = await info(file);
  assert.ok(i.flags & CKF.USER_PIN_FINAL_TRY);
  await assert.rejects(loginOnce(file, 'user', 'wrong-PIN-3'), code('PIN_LOCKED'));
  i = await info(file);
  assert.ok(i.flags & CKF.USER_PIN_LOCKED);
  assert.ok(!(i.flags & CKF.USER_PIN_COUNT_LOW));
  // Locked: the right PIN is refused too, in a new process as in this one.
  await assert.rejects(loginOnce(file, 'user', USER_PIN), code('PIN_LOCKED'));
  // The SO unlocks by setting a new user PIN.
  const t = openSoftwareToken(file);
  const s = await t.openSession(0);
  await s.login('so', SO_PIN);
  await s.initPin('fresh-user-PIN-2');
  await t.close();
  i = await info(file);
  assert.equal(i.userPinFailures, 0);
  assert.ok(!(i.flags & (CKF.USER_PIN_LOCKED | CKF.USER_PIN_COUNT_LOW | CKF.USER_PIN_FINAL_TRY)));
  await loginOnce(file, 'user', 'fresh-user-PIN-2');
  await assert.rejects(loginOnce(file, 'user', USER_PIN), code('PIN_WRONG'));
});

test('parallel wrong PINs from several sessions are all counted: the token locks at exactly the limit and releases its lock file', async () => {
  const file = await newToken();
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, k) => loginOnce(file, 'user', `parallel-wrong-${k}`)));
  const codes = results.map((r) => (r.status === 'rejected' && isSekishoError(r.reason) ? r.reason.code : 'accepted')).sort();
  assert.deepEqual(codes, ['PIN_LOCKED', 'PIN_LOCKED', 'PIN_LOCKED', 'PIN_LOCKED', 'PIN_WRONG', 'PIN_WRONG']);
  assert.equal((await info(file)).userPinFailures, 3);
  await assert.rejects(loginOnce(file, 'user', USER_PIN), code('PIN_LOCKED'));
  assert.deepEqual(readdirSync(dirname(file)), ['token.json'], 'the lock file is gone');
});

/** One login in a separate process (a second program on the same token file): its outcome and the tries left it reported. */
function loginInProcess(file: string, pin: string): Promise<{ outcome: string; left?: number }> {
  const module = new URL('./software-token.js', import.meta.url).href;
  const script = `
    const { openSoftwareToken } = await import(${JSON.stringify(module)});
    const t = openSoftwareToken(process.argv[1]);
    const s = await t.openSession(0);
    let out;
    try { await s.login('user', process.argv[2]); out = { outcome: 'ok' }; }
    catch (e) { const m = /(\\d+) tr(?:y|ies) left/.exec(e.message); out = { outcome: e.code ?? String(e), ...(m ? { left: Number(m[1]) } : {}) }; }
    finally { await t.close(); }
    process.stdout.write(JSON.stringify(out));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script, file, pin], { timeout: 120_000 }, (e, stdout, stderr) => {
      if (e) reject(new Error(`${e.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as { outcome: string; left?: number });
    });
  });
}

test('concurrent logins from several processes, wrong and right PINs interleaved, lose no try: the token locks after exactly 3 wrong tries in total (regression: a right PIN reset the counter unconditionally, erasing a wrong try counted meanwhile)', { timeout: 600_000 }, async () => {
  for (let round = 0; round < 3; round++) {
    const file = await newToken();
    const pins = [USER_PIN, 'wrong-PIN-a', USER_PIN, USER_PIN, 'wrong-PIN-b', USER_PIN, USER_PIN, 'wrong-PIN-c'];
    const results = await Promise.all(pins.map((pin) => loginInProcess(file, pin)));
    // Every wrong try reports the count it left behind (3 − left). A serial history has a try that left n behind only
    // after one that left n − 1 in the same run, so there are never more "left 1" reports than "left 2" ones.
    const wrong = results.filter((r, i) => pins[i] !== USER_PIN);
    for (const r of wrong) assert.ok(r.outcome === 'PIN_WRONG' || r.outcome === 'PIN_LOCKED', JSON.stringify(r));
    const leftOne = wrong.filter((r) => r.left === 1).length;
    const leftTwo = wrong.filter((r) => r.left === 2).length;
    assert.ok(leftOne <= leftTwo, `round ${round}: ${JSON.stringify(results)}`);
    for (const [i, r] of results.entries()) if (pins[i] === USER_PIN) assert.ok(r.outcome === 'ok' || r.outcome === 'PIN_LOCKED', JSON.stringify(r));
    const counted = (await info(file)).userPinFailures ?? -1;
    assert.ok(counted <= 3);
    // A run of wrong tries that ended the history is on file: the last one left 3 − counted.
    if (counted > 0 && counted < 3) assert.ok(wrong.some((r) => r.left === 3 - counted), `round ${round}: ${counted} counted, ${JSON.stringify(results)}`);
    // From here, the token locks after exactly 3 − counted more wrong tries (3 in that run in total).
    let more = 0;
    while ((await loginInProcess(file, `more-wrong-${more}`)).outcome === 'PIN_WRONG') more++;
    assert.equal(counted === 3 ? 0 : more + 1, 3 - counted, `round ${round}`);
    assert.equal((await info(file)).userPinFailures, 3);
    assert.equal((await loginInProcess(file, USER_PIN)).outcome, 'PIN_LOCKED');
    assert.deepEqual(readdirSync(dirname(file)), ['token.json'], 'the lock file is gone');
  }
});

/** A process that takes the token's lock (as a login does) and holds it: killed, it leaves the lock behind as a crash would. */
function lockHolder(file: string, holdMs: number): { child: ChildProcess; locked: Promise<void> } {
  const module = new URL('./software-token.js', import.meta.url).href;
  const script = `
    const { openSoftwareToken } = await import(${JSON.stringify(module)});
    await openSoftwareToken(process.argv[1]).locked(async () => { process.stdout.write('locked'); await new Promise((r) => setTimeout(r, Number(process.argv[2]))); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, file, String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`the lock holder exited (${c}) before locking`)));
  });
  return { child, locked };
}

test('regression: a lock left by a crashed process is taken over at once (for 30 s it made every login wait 10 s and fail with TOKEN_BUSY, exit 2: the CLI, the doctor, an agent restarted sooner than the shipped unit\'s RestartSec=30, which then stayed down); a live holder is waited for', { timeout: 120_000 }, async () => {
  const file = await newToken();
  let deadPid = 0;
  for (let round = 0; round < 3; round++) {
    const h = lockHolder(file, 60_000);
    await h.locked;
    deadPid = h.child.pid!;
    h.child.kill('SIGKILL');
    await new Promise((r) => h.child.once('exit', r));
    assert.ok(existsSync(`${file}.lock`), 'the killed process left its lock');
    const started = Date.now();
    await loginOnce(file, 'user', USER_PIN);
    assert.ok(Date.now() - started < 5_000, `round ${round}: the login waited ${Date.now() - started} ms for a dead holder`);
    assert.deepEqual(readdirSync(dirname(file)), ['token.json'], 'the lock file is gone');
  }
  // A holder that is alive keeps the token: the login waits for it, then counts as usual.
  const live = lockHolder(file, 1_500);
  await live.locked;
  const started = Date.now();
  await assert.rejects(loginOnce(file, 'user', 'wrong-PIN-9'), code('PIN_WRONG'));
  assert.ok(Date.now() - started >= 1_000, `the login did not wait for the live holder (${Date.now() - started} ms)`);
  assert.equal((await info(file)).userPinFailures, 1);
  // A lock from another host (a shared directory) is not judged by process id: only its age frees it.
  writeFileSync(`${file}.lock`, `1 some-other-host 00\n`);
  await assert.rejects(loginOnce(file, 'user', USER_PIN), code('TOKEN_BUSY'));
  // Nor is one from this host's name in another PID namespace (a container on the host's network, a pod's
  // sidecar): its process id means nothing here, so a dead-looking id there is no reason to take its lock.
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  writeFileSync(`${file}.lock`, `${deadPid} ${hostname()} pid:[1] ${bootId} 00\n`);
  await assert.rejects(loginOnce(file, 'user', USER_PIN), code('TOKEN_BUSY'));
});

test('a right PIN resets the counter; the number of tries is configurable', async () => {
  const file = await newToken({ maxUserPinTries: 5 });
  for (let k = 0; k < 4; k++) await assert.rejects(loginOnce(file, 'user', `wrong-PIN-${k}`), code('PIN_WRONG'));
  assert.ok((await info(file)).flags & CKF.USER_PIN_FINAL_TRY);
  await loginOnce(file, 'user', USER_PIN);
  assert.equal((await info(file)).userPinFailures, 0);
});

test('too many wrong SO PINs lock the SO for good; the user PIN still works', async () => {
  const file = await newToken({ maxSoPinTries: 2 });
  await assert.rejects(loginOnce(file, 'so', 'wrong-SO-PIN-1'), code('SO_PIN_WRONG'));
  await assert.rejects(loginOnce(file, 'so', 'wrong-SO-PIN-2'), code('SO_PIN_LOCKED'));
  await assert.rejects(loginOnce(file, 'so', SO_PIN), code('SO_PIN_LOCKED'));
  assert.ok((await info(file)).flags & CKF.SO_PIN_LOCKED);
  await loginOnce(file, 'user', USER_PIN);
  await assert.rejects(loginOnce(file, 'so', SO_PIN), code('SO_PIN_LOCKED'), 'a user login does not reset the SO lock');
});

test('the operator\'s minimum PIN length is enforced at init, at unlock and at PIN change', async () => {
  const dir = tempDir('sekisho-swtoken-');
  const file = join(dir, 'token.json');
  const t = openSoftwareToken(file, { kdf: FAST_KDF, policy: { minPinLength: 10 } });
  await assert.rejects(t.initToken(0, { label: 'clinic', soPin: 'so-PIN-long-enough', userPin: '123456789' }), code('PIN_TOO_SHORT'));
  assert.equal(existsSync(file), false, 'nothing is written');
  await assert.rejects(openSoftwareToken(file, { policy: { minPinLength: 2 } }).initToken(0, { label: 'x', soPin: 'so-PIN-77310', userPin: 'u-PIN-77310' }), code('TOKEN_POLICY_INVALID'));
  await t.initToken(0, { label: 'clinic', soPin: 'so-PIN-long-enough', userPin: 'user-PIN-long' });
  assert.equal((await t.tokenInfo(0)).minPinLength, 10);
  const s = await t.openSession(0);
  await s.login('so', 'so-PIN-long-enough');
  await assert.rejects(s.initPin('short-pin'), code('PIN_TOO_SHORT'));
  await s.logout();
  await s.login('user', 'user-PIN-long');
  await assert.rejects(s.setPin('user-PIN-long', 'tiny'), code('PIN_TOO_SHORT'));
  await t.close();
});

test('regression: a user PIN equal to the SO PIN in another Unicode form (NFD, as macOS input gives) is PIN_SAME_AS_SO_PIN — it derived the same key, so the user PIN opened the SO login', async () => {
  for (const pin of ['ぱすわーど12', 'Ünïcödé-PIN', 'ガギグゲゴ-1234', '\u212b-angstrom']) {
    const file = join(tempDir('sekisho-swtoken-'), 'token.json');
    const forms = [pin.normalize('NFC'), pin.normalize('NFD'), pin.normalize('NFKC')].filter((v, i, a) => a.indexOf(v) === i && v.normalize('NFC') === pin.normalize('NFC'));
    for (const user of forms) {
      for (const so of forms) {
        await assert.rejects(openSoftwareToken(file, { kdf: FAST_KDF }).initToken(0, { label: 'clinic', soPin: so, userPin: user }), code('PIN_SAME_AS_SO_PIN'), `${JSON.stringify(user)} / ${JSON.stringify(so)}`);
      }
    }
    assert.equal(existsSync(file), false, 'nothing is written');
    // A PIN typed in either form opens the token made with the other.
    await openSoftwareToken(file, { kdf: FAST_KDF }).initToken(0, { label: 'clinic', soPin: SO_PIN, userPin: pin.normalize('NFD') });
    await loginOnce(file, 'user', pin.normalize('NFC'));
  }
});

test('C_InitToken on an existing file is TOKEN_EXISTS and leaves it untouched; a missing file is TOKEN_FILE_MISSING', async () => {
  const file = await newToken();
  const before = readFileSync(file);
  await assert.rejects(openSoftwareToken(file, { kdf: FAST_KDF }).initToken(0, { label: 'other', soPin: SO_PIN, userPin: USER_PIN }), code('TOKEN_EXISTS'));
  assert.deepEqual(readFileSync(file), before);
  await assert.rejects(openSoftwareToken(join(dirname(file), 'nope.json')).tokenInfo(0), code('TOKEN_FILE_MISSING'));
  await assert.rejects(openSoftwareToken(file).tokenInfo(1), code('TOKEN_SLOT_NOT_FOUND'));
});

test('backup and restore: the backup opens only with its passphrase and restores a working token to a new file', async () => {
  const file = await newToken();
  const t = openSoftwareToken(file);
  const s = await t.openSession(0);
  await s.login('user', USER_PIN);
  const pair = await s.generateKeyPair('ecdsa-p256', { label: 'facility-key' });
  await t.close();
  const backup = await openSoftwareToken(file).backup('backup-Passphrase-19', FAST_KDF);
  assert.ok(!backup.includes('facility-key'));
  const target = join(dirname(file), 'restored.json');
  const restored = openSoftwareToken(target);
  await assert.rejects(restored.restore(backup, 'wrong-Passphrase-00', { where: 'backup.json' }), code('BACKUP_PASSPHRASE_WRONG'));
  await assert.rejects(restored.restore(backup.slice(0, backup.length / 2), 'backup-Passphrase-19', { where: 'backup.json' }), code('TOKEN_BACKUP_CORRUPT'));
  const edited = JSON.parse(backup) as { ct: string };
  edited.ct = Buffer.from(Buffer.from(edited.ct, 'base64').map((b, k) => (k === 5 ? b ^ 1 : b))).toString('base64');
  await assert.rejects(restored.restore(JSON.stringify(edited), 'backup-Passphrase-19', { where: 'backup.json' }), code('BACKUP_PASSPHRASE_WRONG'));
  assert.equal(existsSync(target), false, 'no failed restore writes anything');
  await restored.restore(backup, 'backup-Passphrase-19', { where: 'backup.json' });
  assert.equal(statSync(target).mode & 0o777, 0o600);
  const s2 = await restored.openSession(0);
  await s2.login('user', USER_PIN);
  const sig = await s2.sign('ecdsa-sha256', pair.privateKey, Buffer.from('restored'));
  assert.equal(await s2.verify('ecdsa-sha256', pair.publicKey, Buffer.from('restored'), sig), true);
  await restored.close();
  await assert.rejects(openSoftwareToken(file).restore(backup, 'backup-Passphrase-19', { where: 'backup.json' }), code('TOKEN_EXISTS'));
});

test('regression: concurrent inits and restores never replace a token: one is made, the others are TOKEN_EXISTS; a restore over a token waits for a login in progress, which cannot write the old token back', async () => {
  // Init: every call checked "no file yet", derived its PIN keys, then renamed its file over the others' (all said "initialized").
  const file = join(tempDir('sekisho-swtoken-'), 'token.json');
  const pins = [0, 1, 2, 3].map((k) => `user-PIN-${k}${k}${k}${k}`);
  const made = await Promise.allSettled(pins.map((pin, k) => openSoftwareToken(file, { kdf: FAST_KDF }).initToken(0, { label: `clinic-${k}`, soPin: `${SO_PIN}-${k}`, userPin: pin })));
  assert.equal(made.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(made.map((r) => r.status)));
  for (const r of made) if (r.status === 'rejected') assert.ok(code('TOKEN_EXISTS')(r.reason), String(r.reason));
  const winner = made.findIndex((r) => r.status === 'fulfilled');
  assert.equal((await info(file)).label, `clinic-${winner}`);
  await loginOnce(file, 'user', pins[winner]!);
  assert.deepEqual(readdirSync(dirname(file)), ['token.json'], 'no temporary or lock file is left');

  // Restore to a new file: the same race between restores of two backups.
  const other = await newToken();
  const backups = [await openSoftwareToken(file).backup('backup-Passphrase-19', FAST_KDF), await openSoftwareToken(other).backup('backup-Passphrase-19', FAST_KDF)];
  const target = join(dirname(file), 'restored.json');
  const restores = await Promise.allSettled([0, 1, 0, 1].map((k) => openSoftwareToken(target).restore(backups[k]!, 'backup-Passphrase-19', { where: `backup-${k}` })));
  assert.equal(restores.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(restores.map((r) => r.status)));
  for (const r of restores) if (r.status === 'rejected') assert.ok(code('TOKEN_EXISTS')(r.reason), String(r.reason));

  // --replace while a right PIN is being checked: the login counted its try, then writes the reset from the file it read.
  const serialOf = async (f: string) => (await info(f)).serialNumber;
  const otherSerial = await serialOf(other);
  for (let round = 0; round < 3; round++) {
    const login = loginOnce(file, 'user', pins[winner]!).catch((e: unknown) => e);
    while (!existsSync(`${file}.lock`)) await new Promise((r) => setImmediate(r));
    await openSoftwareToken(file).restore(backups[1]!, 'backup-Passphrase-19', { where: 'backup-1', replace: true });
    await login;
    assert.equal(await serialOf(file), otherSerial, `round ${round}: the restored token is on file, not the one the login read`);
    await loginOnce(file, 'user', USER_PIN);
    // Back to the first token for the next round.
    await openSoftwareToken(file).restore(backups[0]!, 'backup-Passphrase-19', { where: 'backup-0', replace: true });
  }
});

test('regression: a certificate of another key stored under a key\'s id never becomes its credential: the key\'s own certificate is chosen even when the other expires later, and with only the other one the error says so (the agent started with it and failed in OpenSSL, "key values mismatch")', async (t) => {
  if (!needCommand(t, 'openssl')) return;
  const dir = tempDir('sekisho-swtoken-cred-');
  const make = (name: string, days: number) => {
    const r = run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`), '-subj', `/CN=${name}`, '-days', String(days), '-addext', 'basicConstraints=critical,CA:FALSE', '-outform', 'DER', '-out', join(dir, `${name}.der`)]);
    assert.equal(r.status, 0, r.stderr);
    return { key: createPrivateKey(readFileSync(join(dir, `${name}.key`))), der: readFileSync(join(dir, `${name}.der`)) };
  };
  const own = make('own', 30);
  const other = make('other', 365);
  const file = await newToken();
  const tk = openSoftwareToken(file);
  const s = await tk.openSession(0);
  await s.login('user', USER_PIN);
  const key = await s.importPrivateKey(own.key, { label: 'facility' });
  const id = (await s.getAttributes(key)).id!;
  const otherHandle = await s.createObject({ class: 'certificate', label: 'facility', id, value: other.der });
  await s.createObject({ class: 'certificate', label: 'facility', id, value: own.der });
  const chosen = await currentCredential(s, 'facility');
  assert.deepEqual(chosen.certificate!.der, own.der, 'the key\'s own certificate, not the later-expiring one of another key');
  const pem = await s.tlsPrivateKeyPem!(chosen.privateKey);
  createSecureContext({ cert: new X509Certificate(chosen.certificate!.der).toString(), key: pem });
  pem.fill(0);
  // Only the other key's certificate left: a clear error, in Japanese too.
  await s.destroyObject(chosen.certificate!.handle);
  await assert.rejects(currentCredential(s, 'facility'), (e: unknown) => code('TOKEN_CERTIFICATE_KEY_MISMATCH')(e) && Boolean((e as { ja?: string }).ja));
  assert.equal((await listCredentials(s, 'facility'))[0]!.certificate!.matchesKey, false, 'the doctor still sees it, to report CLIENT_KEY_MISMATCH');
  // A second key with its own certificate (mid-renewal): listed first, though the other expires later, so the
  // doctor judges the credential the agent uses (it reported CLIENT_KEY_MISMATCH while the agent worked).
  const second = make('second', 30);
  const secondKey = await s.importPrivateKey(second.key, { label: 'facility' });
  await s.createObject({ class: 'certificate', label: 'facility', id: (await s.getAttributes(secondKey)).id!, value: second.der });
  const listed = await listCredentials(s, 'facility');
  assert.deepEqual([listed[0]!.certificate!.der, listed[0]!.certificate!.matchesKey], [second.der, true]);
  assert.deepEqual((await currentCredential(s, 'facility')).certificate!.der, second.der);
  await s.destroyObject(otherHandle);
  await tk.close();
});

const BAD_FILES: [string, (text: string) => string, string][] = [
  ['an empty file', () => '', 'TOKEN_FILE_CORRUPT'],
  ['a truncated file', (t) => t.slice(0, Math.floor(t.length * 0.6)), 'TOKEN_FILE_CORRUPT'],
  ['not JSON at all', () => '\u0000\u0001binary garbage', 'TOKEN_FILE_CORRUPT'],
  ['a label edited by hand (checksum no longer matches)', (t) => t.replace('"clinic"', '"clinix"'), 'TOKEN_FILE_CORRUPT'],
  ['the PIN counter reset by hand', (t) => t.replace('"userPinFailures": 1', '"userPinFailures": 0'), 'TOKEN_FILE_CORRUPT'],
  ['another JSON document', () => '{"hello": "world"}', 'TOKEN_FILE_CORRUPT'],
];

for (const [name, mutate, expected] of BAD_FILES) {
  test(`a token file with ${name} is ${expected}, with a message saying to restore from backup`, async () => {
    const file = await newToken();
    await assert.rejects(loginOnce(file, 'user', 'wrong-PIN-1'), code('PIN_WRONG'));
    writeFileSync(file, mutate(readFileSync(file, 'utf8')));
    const before = readFileSync(file);
    await assert.rejects(info(file), (e: unknown) => isSekishoError(e) && e.code === expected && /restore/.test(e.message));
    await assert.rejects(loginOnce(file, 'user', USER_PIN), code(expected));
    assert.deepEqual(readFileSync(file), before, 'a failed open changes nothing');
  });
}

test('a hand edit that also fixes the checksum is caught at login as TOKEN_FILE_TAMPERED', async () => {
  const file = await newToken();
  const f = parseTokenFile(readFileSync(file, 'utf8'), file);
  f.body.label = 'forged';
  f.body.policy.maxUserPinTries = 100;
  writeFileSync(file, serializeTokenFile(f));
  assert.equal((await info(file)).label, 'forged', 'before login, only the checksum can be checked');
  await assert.rejects(loginOnce(file, 'user', USER_PIN), code('TOKEN_FILE_TAMPERED'));
});

const ALLOWED = new Set(['TOKEN_FILE_CORRUPT', 'TOKEN_FILE_TAMPERED', 'PIN_WRONG', 'PIN_LOCKED', 'TOKEN_FILE_MISSING']);

test('fuzz: mutated token files never crash: each open either works or fails with a token error, and is never rewritten half', async () => {
  const file = await newToken();
  const t = openSoftwareToken(file);
  const s = await t.openSession(0);
  await s.login('user', USER_PIN);
  await s.generateKeyPair('ecdsa-p256', { label: 'k' });
  await s.createObject({ class: 'data', label: 'device-identification', value: Buffer.from('dev') });
  await t.close();
  const original = readFileSync(file, 'utf8');
  const target = join(dirname(file), 'fuzzed.json');
  let opened = 0;
  // Byte-level damage: flips, cuts, insertions (the checksum catches nearly all).
  for (let i = 0; i < 1500; i++) {
    const r = randomBytes(6);
    const buf = Buffer.from(original);
    const at = r.readUInt32LE(0) % buf.length;
    const mutated = r[4]! % 3 === 0 ? buf.subarray(0, at) : r[4]! % 3 === 1 ? Buffer.concat([buf.subarray(0, at), randomBytes(1 + (r[5]! % 8)), buf.subarray(at)]) : ((buf[at] = buf[at]! ^ (1 << (r[5]! % 8))), buf);
    writeFileSync(target, mutated);
    try {
      await openSoftwareToken(target).tokenInfo(0);
      opened++;
    } catch (e) {
      assert.ok(isSekishoError(e) && ALLOWED.has(e.code), `unexpected ${String(e)}`);
    }
  }
  // Structured damage with a valid checksum: every field of the document replaced by something else.
  const doc = JSON.parse(original) as { body: Record<string, unknown>; mac: string; counters: Record<string, unknown> };
  const paths: string[][] = [];
  const walk = (v: unknown, p: string[]) => {
    if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
    else paths.push(p);
  };
  walk(doc, []);
  const replacements: unknown[] = [null, -1, 0, 2 ** 40, '', 'x', true, [], {}, 'AAAA', 1 << 14];
  let n = 0;
  for (const p of paths) {
    for (const rep of replacements.filter((_, k) => (k + paths.indexOf(p)) % 4 === 0)) {
      const d = JSON.parse(original) as Record<string, unknown>;
      let cur: Record<string, unknown> = d;
      for (const k of p.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
      cur[p[p.length - 1]!] = rep;
      writeFileSync(target, serializeTokenFile({ body: d.body, mac: d.mac, counters: d.counters } as unknown as Parameters<typeof serializeTokenFile>[0]));
      const before = readFileSync(target);
      try {
        // Only try a (slow, scrypt) login on a sample; always read the info.
        await openSoftwareToken(target).tokenInfo(0);
        if (n++ % 5 === 0) await loginOnce(target, 'user', USER_PIN);
      } catch (e) {
        assert.ok(isSekishoError(e) && ALLOWED.has(e.code), `field ${p.join('.')} = ${JSON.stringify(rep)}: unexpected ${String(e)}`);
        const after = readFileSync(target);
        // A wrong-PIN count may rewrite the file — but then completely.
        if (!after.equals(before)) parseTokenFile(after.toString('utf8'), target);
      }
    }
  }
  assert.ok(opened < 1500, 'damage is noticed');
  assert.deepEqual(readdirSync(dirname(file)).filter((f) => f.endsWith('.tmp')), [], 'no temporary files are left');
});
