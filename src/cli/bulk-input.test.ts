/**
 * What an office clerk feeds `cert bulk` and `facility add` (regressions
 * found by review): a Shift_JIS CSV (Excel's "CSV (コンマ区切り)"), a row whose
 * number is another registered facility's (a swapped pair of digits passes
 * the check digit), names with control or direction characters, and an
 * `--out` directory that is shared. Bad input is refused and changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initAuthority } from '../ca/index.js';
import { SEKISHO_MAIN } from '../testing/cli-process.js';
import { tempDir } from '../testing/stores.js';

const PASSPHRASE = 'bulk-input-passphrase';
const cli = (home: string, args: string[]) => spawnSync(process.execPath, [SEKISHO_MAIN, ...args], { env: { ...process.env, SEKISHO_HOME: home, SEKISHO_PASSPHRASE: PASSPHRASE }, encoding: 'utf8' });

async function freshHome(): Promise<{ dir: string; home: string }> {
  const dir = tempDir('sekisho-bulk-input-');
  const home = join(dir, 'home');
  await initAuthority({ home, passphrase: PASSPHRASE });
  return { dir, home };
}

const registered = (home: string) => JSON.parse(cli(home, ['facility', 'list', '--json']).stdout) as { number: string; name: string }[];

test('a Shift_JIS CSV is refused with CSV_ENCODING (in Japanese and English), nothing registered or written', async () => {
  const { dir, home } = await freshHome();
  // "0110113719,はこだてクリニック" in Shift_JIS.
  writeFileSync(join(dir, 'f.csv'), Buffer.concat([Buffer.from('0110113719,'), Buffer.from('82cd82b182be82c4834e838a836a8362834e', 'hex'), Buffer.from('\r\n')]));
  const r = cli(home, ['cert', 'bulk', '--csv', join(dir, 'f.csv'), '--out', join(dir, 'out'), '--key', 'ecdsa-p256']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /CSV_ENCODING/);
  assert.match(r.stderr, /CSV UTF-8/);
  assert.deepEqual(registered(home), []);
  assert.equal(existsSync(join(dir, 'out')) ? readdirSync(join(dir, 'out')).length : 0, 0);
  // The same rows in UTF-8 (with Excel's BOM) go through.
  writeFileSync(join(dir, 'g.csv'), '\ufeff0110113719,はこだてクリニック\r\n');
  assert.equal(cli(home, ['cert', 'bulk', '--csv', join(dir, 'g.csv'), '--out', join(dir, 'out'), '--key', 'ecdsa-p256']).status, 0);
  assert.deepEqual(registered(home).map((f) => f.name), ['はこだてクリニック']);
});

test('a row whose number is registered under another name fails (FACILITY_NAME_MISMATCH), and nothing is issued for it; the other rows go on', async () => {
  const { dir, home } = await freshHome();
  assert.equal(cli(home, ['facility', 'add', '--code', '1310000094', '--name', 'A医院']).status, 0);
  // B医院 is 1310000904: "90" typed as "09" passes the check digit and names A医院.
  writeFileSync(join(dir, 'f.csv'), 'number,name,address\n1310000094,B医院,B町1-1\n0110113719,はこだてクリニック,函館市\n');
  const out = join(dir, 'out');
  const r = cli(home, ['cert', 'bulk', '--csv', join(dir, 'f.csv'), '--out', out, '--key', 'ecdsa-p256', '--json']);
  assert.notEqual(r.status, 0, 'the failing row is reported');
  assert.match(r.stdout + r.stderr, /FACILITY_NAME_MISMATCH/);
  const files = readdirSync(out);
  assert.ok(!files.some((f) => f.startsWith('1310000094')), `nothing for A医院: ${files.join(', ')}`);
  assert.ok(files.some((f) => f.startsWith('0110113719')), 'the good row was issued');
  // The same name with other spacing or composition is the same facility.
  writeFileSync(join(dir, 'g.csv'), 'number,name\n1310000094, A医院 \n');
  assert.equal(cli(home, ['cert', 'bulk', '--csv', join(dir, 'g.csv'), '--out', out, '--key', 'ecdsa-p256']).status, 0);
});

test('names with C1 controls, DEL, direction overrides or U+FFFD are refused (FACILITY_NAME_INVALID); a delivery file name never carries them', async () => {
  const { home } = await freshHome();
  for (const name of ['A\u0085B', 'A\u007fB', 'はこだて\u202Egpj', 'はこだて\u2066x', '\ufffd\ufffd医院']) {
    const r = cli(home, ['facility', 'add', '--code', '0110113719', '--name', name]);
    assert.match(r.stderr, /FACILITY_NAME_INVALID/, JSON.stringify(name));
  }
  assert.deepEqual(registered(home), []);
});

test('cert bulk --out an existing (shared) directory leaves its mode alone; a directory it makes is 0700', async () => {
  const { dir, home } = await freshHome();
  const shared = join(dir, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  writeFileSync(join(dir, 'f.csv'), '0110113719,はこだてクリニック\n');
  const r = cli(home, ['cert', 'bulk', '--csv', join(dir, 'f.csv'), '--out', shared, '--key', 'ecdsa-p256']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((statSync(shared).mode & 0o7777).toString(8), '1777');
  for (const f of readdirSync(shared)) assert.equal((statSync(join(shared, f)).mode & 0o777).toString(8), '600', f);
  writeFileSync(join(dir, 'g.csv'), '1310000094,A医院\n');
  assert.equal(cli(home, ['cert', 'bulk', '--csv', join(dir, 'g.csv'), '--out', join(dir, 'made'), '--key', 'ecdsa-p256']).status, 0);
  assert.equal((statSync(join(dir, 'made')).mode & 0o777).toString(8), '700');
});
