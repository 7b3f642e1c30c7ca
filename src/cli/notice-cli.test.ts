/**
 * The notice and enroll commands end to end: the operator creates a notice
 * (IDs printed once, letter as HTML + PDF), the clinic runs `sekisho enroll`
 * against the live portal, trusting it by --ca or by the thumbprint typed
 * from the letter; then list, revoke, unlock and EST codes.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { fingerprint } from '../pki/index.js';
import { hasChromium } from '../testing/browser.js';
import { needCommand, needPeer } from '../testing/peers.js';
import { runPeer, startTestEnrollment, TEST_FACILITY, TEST_PASSPHRASE, type TestEnrollment } from '../testing/enrollment-server.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const PASSWORD = 'Clinic-Pass-55821';

describe('sekisho notice / est-code / enroll', () => {
  let t: TestEnrollment;
  let dir: string;
  before(async () => {
    t = await startTestEnrollment({ rateLimit: { attempts: 1000 } });
    dir = mkdtempSync(join(tmpdir(), 'sekisho-notice-cli-'));
    writeFileSync(join(dir, 'password.txt'), `${PASSWORD}\n`);
  });
  after(async () => {
    await t.close();
  });

  async function sekisho(args: string[]) {
    const r = await runPeer(process.execPath, [MAIN, ...args], undefined, {
      PATH: process.env.PATH,
      LANG: 'C.UTF-8',
      SEKISHO_HOME: t.home,
      SEKISHO_PASSPHRASE: TEST_PASSPHRASE,
      SEKISHO_ACTOR: 'operator:test',
      SEKISHO_SQLITE_SYNC: 'NORMAL',
    });
    assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), `sekisho ${args.join(' ')} printed the password`);
    return r;
  }

  test('notice create prints the IDs once and writes the letter; the clinic enrolls with --ca; pdftoppm opens the PDF', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(tc, 'openssl') || !needCommand(tc, 'pdftoppm')) return;
    // Single-use (--max-downloads 1): the second enroll below is refused.
    const created = await sekisho(['notice', 'create', '--facility', TEST_FACILITY.number, '--max-downloads', '1', '--out-dir', dir, '--portal', t.url, '--json']);
    assert.equal(created.status, 0, created.stderr);
    const n = JSON.parse(created.stdout) as { id: string; requestId: string; referenceId: string; html: string; pdf: string; expiresAt: string };
    assert.match(n.requestId, /^[A-Z0-9]{4}(-[A-Z0-9]{4}){3}$/);
    const html = readFileSync(n.html, 'utf8').replace(/<[^>]+>/g, '');
    for (const s of [n.requestId, n.referenceId, TEST_FACILITY.name, fingerprint(t.ca.rootDer), fingerprint(t.ca.rootDer, 'sha1'), t.url]) assert.ok(html.includes(s), `letter shows ${s}`);
    assert.equal(statSync(n.html).mode & 0o777, 0o600);
    const ppm = await runPeer('pdftoppm', ['-png', '-r', '40', '-singlefile', n.pdf, join(dir, 'letter')]);
    assert.equal(ppm.status, 0, ppm.stderr);
    assert.ok(statSync(join(dir, 'letter.png')).size > 5000);
    // The IDs are never shown again.
    const list = await sekisho(['notice', 'list', '--json']);
    assert.ok(!list.stdout.includes(n.requestId) && !list.stdout.includes(n.referenceId));
    assert.equal((JSON.parse(list.stdout) as { id: string; state: string }[]).find((x) => x.id === n.id)?.state, 'active');

    const out = join(dir, 'clinic.p12');
    const e = await sekisho(['enroll', '--portal', t.url, '--request-id', n.requestId, '--reference-id', n.referenceId, '--password-file', join(dir, 'password.txt'), '--out', out, '--ca', t.rootFile, '--root-out', join(dir, 'root-ca.cer')]);
    assert.equal(e.status, 0, e.stderr);
    assert.match(e.stdout, /SHA-256: [0-9A-F:]+/);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const p = await runPeer('openssl', ['pkcs12', '-in', out, '-passin', `pass:${PASSWORD}`, '-nokeys', '-clcerts']);
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`CN = ${TEST_FACILITY.number}`));
    assert.ok(readFileSync(join(dir, 'root-ca.cer')).equals(t.ca.rootDer));
    const again = await sekisho(['enroll', '--portal', t.url, '--request-id', n.requestId, '--reference-id', n.referenceId, '--password-file', join(dir, 'password.txt'), '--out', join(dir, 'again.p12'), '--ca', t.rootFile]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /NOTICE_USED/);
    assert.ok(!existsSync(join(dir, 'again.p12')));
  });

  test('enroll trusts the portal by the thumbprint from the letter, and refuses a wrong one', async (tc) => {
    if (!needCommand(tc, 'openssl')) return;
    const n = await t.notice();
    const base = ['enroll', '--portal', t.url, '--request-id', n.requestId, '--reference-id', n.referenceId, '--password-file', join(dir, 'password.txt')];
    const wrong = await sekisho([...base, '--out', join(dir, 'w.p12'), '--root-fingerprint', '00'.repeat(32)]);
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /ROOT_FINGERPRINT_MISMATCH/);
    assert.equal((await t.ca.notices.list()).find((x) => x.id === n.id)?.state, 'active', 'nothing was sent before the root was trusted');
    const ok = await sekisho([...base, '--out', join(dir, 'fp.p12'), '--root-fingerprint', fingerprint(t.ca.rootDer, 'sha1').toLowerCase(), '--key', 'ecdsa-p256', '--json']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { facility: { number: string } }).facility.number, TEST_FACILITY.number);
  });

  test('list, revoke, unlock and EST codes; bad input exits 2 and changes nothing', async () => {
    const n = await t.notice();
    const wrongRef = (await t.notice()).referenceId;
    for (let i = 0; i < 5; i++) await t.ca.notices.claim({ requestId: n.requestId, referenceId: wrongRef }, { client: 'test', via: 'test' }).catch(() => undefined);
    const listed = await sekisho(['notice', 'list', '--facility', TEST_FACILITY.number]);
    assert.match(listed.stdout, new RegExp(`${n.id}\\s+letter\\s+${TEST_FACILITY.number}\\s+locked`));
    const unlocked = await sekisho(['notice', 'unlock', n.id]);
    assert.equal(unlocked.status, 0, unlocked.stderr);
    assert.match(unlocked.stdout, /unlocked .* active/);
    const revoked = await sekisho(['notice', 'revoke', n.id, '--json']);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.equal((JSON.parse(revoked.stdout) as { state: string }).state, 'revoked');
    const code = await sekisho(['est-code', 'create', '--facility', TEST_FACILITY.number, '--json']);
    assert.equal(code.status, 0, code.stderr);
    const c = JSON.parse(code.stdout) as { user: string; password: string; expiresAt: string };
    assert.ok(new Date(c.expiresAt).getTime() - Date.now() < 8 * 86_400_000);
    // A code made for a device says so, and stores what it yields.
    const dev = await sekisho(['est-code', 'create', '--facility', TEST_FACILITY.number, '--device', 'CT-1', '--json']);
    assert.equal(dev.status, 0, dev.stderr);
    assert.deepEqual(((d) => [d.profile, d.device])(JSON.parse(dev.stdout) as { profile: string; device: string }), ['device', 'CT-1']);
    assert.match((await sekisho(['notice', 'list'])).stdout, /est-code .* device CT-1/);
    const before = JSON.stringify(await t.ca.notices.list());
    const bad: [string[], string][] = [
      [['notice', 'create', '--facility', '1310000003', '--no-pdf', '--out-dir', dir], 'FACILITY_UNKNOWN'],
      [['notice', 'create', '--facility', '0110113718', '--no-pdf', '--out-dir', dir], 'FACILITY_NUMBER'],
      [['notice', 'create', '--facility', TEST_FACILITY.number, '--days', '0', '--no-pdf', '--out-dir', dir], 'NOTICE_DAYS_INVALID'],
      [['notice', 'create', '--facility', TEST_FACILITY.number, '--max-downloads', '0', '--no-pdf', '--out-dir', dir], 'NOTICE_DOWNLOADS_INVALID'],
      [['notice', 'create', '--facility', TEST_FACILITY.number, '--max-downloads', 'two', '--no-pdf', '--out-dir', dir], 'NOTICE_DOWNLOADS_INVALID'],
      [['notice', 'create', '--facility', TEST_FACILITY.number, '--no-pdf', '--out-dir', join(dir, 'missing')], 'OUTPUT_DIR_MISSING'],
      [['notice', 'create', '--facility', TEST_FACILITY.number, '--no-pdf', '--out-dir', dir, '--portal', 'http://insecure/'], 'PORTAL_URL_INVALID'],
      [['notice', 'revoke', n.id], 'NOTICE_NOT_ACTIVE'],
      [['est-code', 'create', '--facility', TEST_FACILITY.number, '--device', '../etc'], 'DEVICE_NAME_INVALID'],
      [['notice', 'unlock', 'N-AAAAAAAA'], 'NOTICE_UNKNOWN_HANDLE'],
      [['enroll', '--portal', t.url, '--request-id', 'x', '--reference-id', 'y', '--password-file', join(dir, 'password.txt'), '--out', join(dir, 'z.p12')], 'USAGE'],
      [['enroll', '--portal', 'http://x/', '--request-id', 'x', '--reference-id', 'y', '--password-file', join(dir, 'password.txt'), '--out', join(dir, 'z.p12'), '--ca', t.rootFile], 'PORTAL_URL_INVALID'],
      [['enroll', '--portal', t.url, '--request-id', 'x', '--reference-id', 'y', '--password-file', join(dir, 'password.txt'), '--out', join(dir, 'z.p12'), '--ca', t.rootFile], 'NOTICE_ID_MISTYPED'],
    ];
    for (const [args, expected] of bad) {
      const r = await sekisho(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(expected), args.join(' '));
    }
    assert.equal(JSON.stringify(await t.ca.notices.list()), before, 'no notice was created or changed');
  });
});
