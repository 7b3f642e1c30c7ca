/**
 * `sekisho operator add/list/revoke` end to end: the PKCS#12 opens with
 * openssl and holds an operator certificate (OU=operator, clientAuth) that
 * can never read as a facility; bad names and duplicates change nothing;
 * revocation revokes the operator and its certificate, once.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { needCommand } from '../testing/peers.js';
import { runPeer, startTestEnrollment, TEST_PASSPHRASE, type TestEnrollment } from '../testing/enrollment-server.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const PASSWORD = 'Operator-Pass-7731';

describe('sekisho operator', () => {
  let t: TestEnrollment;
  let dir: string;
  before(async () => {
    t = await startTestEnrollment({ facility: false });
    dir = mkdtempSync(join(tmpdir(), 'sekisho-operator-cli-'));
    writeFileSync(join(dir, 'password.txt'), `${PASSWORD}\n`);
  });
  after(() => t.close());

  const sekisho = (args: string[]) =>
    runPeer(process.execPath, [MAIN, ...args], undefined, { PATH: process.env.PATH, LANG: 'C.UTF-8', SEKISHO_HOME: t.home, SEKISHO_PASSPHRASE: TEST_PASSPHRASE, SEKISHO_ACTOR: 'operator:root', SEKISHO_SQLITE_SYNC: 'NORMAL' });

  test('add writes a PKCS#12 (0600) with an operator certificate; list shows it; the audit names the actor', async (tc) => {
    if (!needCommand(tc, 'openssl')) return;
    const p12 = join(dir, 'sato.p12');
    const r = await sekisho(['operator', 'add', '--name', 'sato', '--role', 'admin', '--p12', p12, '--password-file', join(dir, 'password.txt'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    const added = JSON.parse(r.stdout) as { name: string; role: string; status: string; certificateSerial: string };
    assert.deepEqual([added.name, added.role, added.status], ['sato', 'admin', 'active']);
    assert.equal(statSync(p12).mode & 0o777, 0o600);
    const leaf = await runPeer('openssl', ['pkcs12', '-in', p12, '-passin', `pass:${PASSWORD}`, '-nokeys', '-clcerts']);
    assert.equal(leaf.status, 0, leaf.stderr);
    const text = await runPeer('openssl', ['x509', '-noout', '-subject', '-ext', 'extendedKeyUsage'], leaf.stdout);
    assert.match(text.stdout, /OU\s*=\s*operator, CN\s*=\s*sato/);
    assert.match(text.stdout, /TLS Web Client Authentication/);
    const list = await sekisho(['operator', 'list']);
    assert.match(list.stdout, /^sato\s+admin\s+active\s+[0-9a-f]+/m);
    const ev = (await t.ca.audit.list()).find((e) => e.action === 'operator.add');
    assert.equal(ev?.actor, 'operator:root');
    assert.equal(ev?.subject, 'sato');
  });

  test('a name that is not a login name, an unknown role or a taken name changes nothing', async () => {
    const cases: [string, string[], RegExp][] = [
      ['a facility number as a name', ['--name', '0110113719', '--role', 'clerk'], /OPERATOR_NAME_INVALID/],
      ['markup in the name', ['--name', 'a<b>', '--role', 'clerk'], /OPERATOR_NAME_INVALID/],
      ['an unknown role', ['--name', 'tanaka', '--role', 'root'], /OPERATOR_ROLE_INVALID/],
      ['a taken name', ['--name', 'sato', '--role', 'clerk'], /OPERATOR_EXISTS/],
    ];
    const before = (await t.ca.listCertificates()).length;
    for (const [name, args, code] of cases) {
      const out = join(dir, `${name.replace(/\W/g, '_')}.p12`);
      const r = await sekisho(['operator', 'add', ...args, '--p12', out, '--password-file', join(dir, 'password.txt')]);
      assert.notEqual(r.status, 0, name);
      assert.match(r.stderr, code, name);
      assert.ok(!existsSync(out), `${name}: no file`);
    }
    assert.equal((await t.ca.listCertificates()).length, before, 'no certificate was issued');
  });

  test('revoke revokes the operator and its certificate; a second revoke is a conflict', async () => {
    const r = await sekisho(['operator', 'revoke', 'sato', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout) as { status: string; certificateSerial: string };
    assert.equal(o.status, 'revoked');
    assert.equal((await t.ca.certificate(o.certificateSerial))?.status, 'revoked');
    const again = await sekisho(['operator', 'revoke', 'sato']);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /OPERATOR_ALREADY_REVOKED/);
  });
});
