import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initAuthority } from './init.js';
import { parseCsv, parseFacilityCsv } from './facility-csv.js';
import { checkDigit } from '../policy/index.js';
import { readPkcs12 } from '../pki/pkcs12.js';
import { tempDir } from '../testing/stores.js';
import { SekishoError } from '../errors/index.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const PASSPHRASE = 'bulk-test-passphrase';

function facilityNumber(i: number): string {
  const nine = `131${String(i).padStart(6, '0')}`;
  return nine + checkDigit(nine);
}

/** Sealed keys of interrupted bulk runs, kept under <home>/bulk-pending/<run>/. */
function pendingKeys(home: string): string[] {
  const dir = join(home, 'bulk-pending');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((run) => readdirSync(join(dir, run)).filter((f) => f.endsWith('.json')));
}

function cli(home: string, args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, SEKISHO_HOME: home, SEKISHO_PASSPHRASE: PASSPHRASE }, encoding: 'utf8' });
}

test('CSV: quotes, embedded commas and newlines, CRLF, BOM, Japanese header', () => {
  assert.deepEqual(parseCsv('\ufeffa,"b,c","d ""e"""\r\n1,"x\ny",z\n'), [
    ['a', 'b,c', 'd "e"'],
    ['1', 'x\ny', 'z'],
  ]);
  const rows = parseFacilityCsv('医療機関番号,名称,住所\n0110113719,はこだてクリニック,函館市\n');
  assert.deepEqual(rows, [{ row: 2, number: '0110113719', name: 'はこだてクリニック', address: '函館市' }]);
  assert.deepEqual(parseFacilityCsv('0110113719,A\n')[0], { row: 1, number: '0110113719', name: 'A' });
  assert.throws(() => parseCsv('a,"unterminated\n'), (e: unknown) => e instanceof SekishoError && e.code === 'CSV_MALFORMED');
  assert.throws(() => parseFacilityCsv('foo,bar\n1,2\n'), (e: unknown) => e instanceof SekishoError && e.code === 'CSV_HEADER');
});

test('CSV parser never throws anything but a SekishoError on random input', () => {
  const alphabet = ['"', ',', '\n', '\r', 'a', '0', 'あ', ' ', '\ufeff'];
  for (let i = 0; i < 2000; i++) {
    let s = '';
    const n = Math.floor(Math.random() * 40);
    for (let j = 0; j < n; j++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
    try {
      parseFacilityCsv(s);
    } catch (e) {
      assert.ok(e instanceof SekishoError, `input ${JSON.stringify(s)} threw ${String(e)}`);
    }
  }
});

test('cert bulk: per-row errors do not stop the batch; a rerun delivers nothing twice', async () => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: PASSPHRASE });
  const out = join(home, '..', 'delivery');
  const csv = join(home, '..', 'f.csv');
  writeFileSync(csv, `number,name\n${facilityNumber(1)},A医院\n0110113718,typo\n${facilityNumber(2)},B薬局\n${facilityNumber(1)},again\n`);
  const r = cli(home, ['cert', 'bulk', '--csv', csv, '--out', out, '--key', 'ecdsa-p256', '--json']);
  assert.equal(r.status, 1, 'rows with errors make the exit status 1');
  const report = JSON.parse(r.stdout) as { issued: number; errors: number; rows: { status: string; code?: string }[] };
  assert.equal(report.issued, 2);
  assert.deepEqual(report.rows.map((x) => x.code ?? x.status), ['issued', 'FACILITY_NUMBER_CHECK_DIGIT', 'issued', 'CSV_DUPLICATE']);
  assert.ok(existsSync(join(out, 'root-ca.cer')));
  const text = readFileSync(join(out, `${facilityNumber(1)}-A医院.txt`), 'utf8');
  const password = /Password:\s+(\S+)/.exec(text)![1]!;
  const p12 = readPkcs12(readFileSync(join(out, `${facilityNumber(1)}-A医院.p12`)), password);
  assert.equal(p12.friendlyName, 'A医院');
  assert.equal(p12.chain.length, 2);
  const again = cli(home, ['cert', 'bulk', '--csv', csv, '--out', out, '--key', 'ecdsa-p256', '--json']);
  const second = JSON.parse(again.stdout) as { issued: number; skipped: number };
  assert.equal(second.issued, 0);
  assert.equal(second.skipped, 2);
  const certs = JSON.parse(cli(home, ['cert', 'list', '--json', '--status', 'issued']).stdout) as { profile: string }[];
  assert.equal(certs.filter((c) => c.profile === 'facility').length, 2);
});

test('cert bulk killed with SIGKILL at any point resumes to a consistent store: one certificate per facility, no serial twice, audit intact', async () => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: PASSPHRASE });
  const out = join(home, '..', 'delivery');
  const csv = join(home, '..', 'f.csv');
  const n = 24;
  writeFileSync(csv, Array.from({ length: n }, (_, i) => `${facilityNumber(i + 10)},施設${i}`).join('\n') + '\n');
  const args = [CLI, 'cert', 'bulk', '--csv', csv, '--out', out, '--key', 'rsa-2048', '--concurrency', '4'];
  const env = { ...process.env, SEKISHO_HOME: home, SEKISHO_PASSPHRASE: PASSPHRASE };
  const p12Count = () => (existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.p12')).length : 0);
  // Kill early (start-up / first keys), then mid-run twice, each with a real SIGKILL.
  for (const [atLeast, extraMs] of [
    [0, 250],
    [4, 40],
    [12, 90],
  ] as const) {
    const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + 60_000;
    while (p12Count() < atLeast && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, extraMs));
    child.kill('SIGKILL');
    await exited;
  }
  const killedAt = p12Count();
  assert.ok(killedAt < n, `the runs were killed before finishing (${killedAt} of ${n} delivered)`);
  const final = spawnSync(process.execPath, [...args, '--json'], { env, encoding: 'utf8' });
  assert.equal(final.status, 0, final.stderr);
  assert.equal(p12Count(), n);
  assert.deepEqual(pendingKeys(home), [], 'no pending key left behind');
  assert.ok(!existsSync(join(out, '.pending')) && !readdirSync(out).some((f) => f.includes('pending')), 'nothing secret but the delivery itself in the delivery directory');

  const certs = JSON.parse(cli(home, ['cert', 'list', '--json']).stdout) as { serial: string; status: string; profile: string; facilityNumber?: string; pem?: string }[];
  const issued = certs.filter((c) => c.profile === 'facility' && c.status === 'issued');
  assert.equal(new Set(certs.map((c) => c.serial)).size, certs.length, 'no serial repeats');
  const perFacility = new Map<string, number>();
  for (const c of issued) perFacility.set(c.facilityNumber!, (perFacility.get(c.facilityNumber!) ?? 0) + 1);
  assert.equal(perFacility.size, n);
  assert.ok([...perFacility.values()].every((v) => v === 1), `a facility got two certificates: ${JSON.stringify([...perFacility])}`);
  // Every delivered PKCS#12 opens with its password and holds the certificate the store recorded.
  for (let i = 0; i < n; i++) {
    const number = facilityNumber(i + 10);
    const base = join(out, `${number}-施設${i}`);
    const password = /Password:\s+(\S+)/.exec(readFileSync(`${base}.txt`, 'utf8'))![1]!;
    const p12 = readPkcs12(readFileSync(`${base}.p12`), password);
    const stored = issued.find((c) => c.facilityNumber === number)!;
    const pemBody = Buffer.from(stored.pem!.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    assert.ok(p12.certificate.equals(pemBody), `${number}: the delivered certificate is the stored one`);
  }
  const audit = cli(home, ['audit', 'verify', '--json']);
  assert.equal(audit.status, 0, audit.stdout);
  assert.equal((JSON.parse(audit.stdout) as { intact: boolean }).intact, true);
});

test('cert bulk: a row whose certificate was issued but not delivered is resumed with that same certificate', async () => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: PASSPHRASE });
  const out = join(home, '..', 'delivery');
  const csv = join(home, '..', 'f.csv');
  const number = facilityNumber(77);
  writeFileSync(csv, `${number},C診療所\n`);
  // A directory where the .p12 must go makes the final write fail after issuance.
  const { mkdirSync, rmdirSync } = await import('node:fs');
  mkdirSync(join(out, `${number}-C診療所.p12`), { recursive: true });
  const first = cli(home, ['cert', 'bulk', '--csv', csv, '--out', out, '--key', 'ecdsa-p256', '--json']);
  assert.equal(first.status, 1);
  const issuedBefore = (JSON.parse(cli(home, ['cert', 'list', '--json', '--facility', number]).stdout) as { serial: string; status: string }[]).filter((c) => c.status === 'issued');
  assert.equal(issuedBefore.length, 1, 'the certificate was issued before the write failed');
  assert.equal(pendingKeys(home).length, 1, 'its key waits, sealed, in the CA home');
  rmdirSync(join(out, `${number}-C診療所.p12`));
  const second = cli(home, ['cert', 'bulk', '--csv', csv, '--out', out, '--key', 'ecdsa-p256', '--json']);
  assert.equal(second.status, 0, second.stderr);
  assert.equal((JSON.parse(second.stdout) as { resumed: number }).resumed, 1);
  const issuedAfter = (JSON.parse(cli(home, ['cert', 'list', '--json', '--facility', number]).stdout) as { serial: string; status: string }[]).filter((c) => c.status === 'issued');
  assert.deepEqual(issuedAfter.map((c) => c.serial), issuedBefore.map((c) => c.serial), 'no second certificate');
  const password = /Password:\s+(\S+)/.exec(readFileSync(join(out, `${number}-C診療所.txt`), 'utf8'))![1]!;
  const p12 = readPkcs12(readFileSync(join(out, `${number}-C診療所.p12`)), password);
  assert.match(p12.certificate.toString('hex'), new RegExp(issuedBefore[0]!.serial));
});

test('cert bulk: an undelivered certificate revoked before the rerun is never delivered; the rerun makes a new key (regression)', async () => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: PASSPHRASE });
  const out = join(home, '..', 'delivery');
  const csv = join(home, '..', 'f.csv');
  const number = facilityNumber(78);
  writeFileSync(csv, `${number},D歯科\n`);
  const { mkdirSync, rmdirSync } = await import('node:fs');
  mkdirSync(join(out, `${number}-D歯科.p12`), { recursive: true });
  assert.equal(cli(home, ['cert', 'bulk', '--csv', csv, '--out', out, '--key', 'ecdsa-p256']).status, 1);
  const first = (JSON.parse(cli(home, ['cert', 'list', '--json', '--facility', number]).stdout) as { serial: string; status: string }[]).find((c) => c.status === 'issued')!;
  assert.equal(cli(home, ['cert', 'revoke', first.serial, '--reason', 'keyCompromise']).status, 0);
  rmdirSync(join(out, `${number}-D歯科.p12`));
  const rerun = cli(home, ['cert', 'bulk', '--csv', csv, '--out', out, '--key', 'ecdsa-p256', '--json']);
  assert.equal(rerun.status, 0, rerun.stderr);
  const certs = JSON.parse(cli(home, ['cert', 'list', '--json', '--facility', number]).stdout) as { serial: string; status: string; pem?: string }[];
  const issued = certs.filter((c) => c.status === 'issued');
  assert.equal(issued.length, 1);
  assert.notEqual(issued[0]!.serial, first.serial);
  const password = /Password:\s+(\S+)/.exec(readFileSync(join(out, `${number}-D歯科.txt`), 'utf8'))![1]!;
  const p12 = readPkcs12(readFileSync(join(out, `${number}-D歯科.p12`)), password);
  assert.match(p12.certificate.toString('hex'), new RegExp(issued[0]!.serial), 'the delivered certificate is the new one');
});

test('cert bulk: two runs on one delivery directory cannot overlap; a dead run\'s lock is taken over', async (t) => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: PASSPHRASE });
  const out = join(home, '..', 'delivery');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(out, { recursive: true });
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
  writeFileSync(join(out, '.sekisho-bulk.lock'), String(holder.pid));
  t.after(() => holder.kill('SIGKILL'));
  const csv = join(home, '..', 'f.csv');
  writeFileSync(csv, `${facilityNumber(79)},E\n`);
  const r = cli(home, ['cert', 'bulk', '--csv', csv, '--out', out]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^sekisho: BULK_LOCKED: /);
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.on('exit', resolve));
  assert.equal(cli(home, ['cert', 'bulk', '--csv', csv, '--out', out, '--key', 'ecdsa-p256']).status, 0, 'the lock of a process that is gone is stale');
});
