/**
 * The portal over real HTTPS: each way a notice can be refused gives its own
 * status and message (Japanese and English), changes nothing it should not,
 * never echoes a secret; a good notice yields a PKCS#12 that openssl opens.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { needCommand } from '../testing/peers.js';
import { fetchTls, runPeer, startTestEnrollment, TEST_FACILITY, withTypo, type TestEnrollment } from '../testing/enrollment-server.js';

const PASSWORD = 'Kinkyu-Pass-8812';
const DAY = 86_400_000;

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

describe('enrollment portal over HTTPS', () => {
  let t: TestEnrollment;
  let clock = Date.now();
  before(async () => {
    t = await startTestEnrollment({ rateLimit: { attempts: 1000 }, now: () => new Date(clock) });
  });
  after(async () => {
    await t.close();
  });

  const post = (path: string, body: string, type = 'application/x-www-form-urlencoded') => fetchTls(new URL(path, t.url).href, { ca: t.rootPem, method: 'POST', headers: { 'Content-Type': type }, body });
  const enroll = (n: { requestId: string; referenceId: string }, extra: Record<string, string> = {}) =>
    post('/enroll', form({ request_id: n.requestId, reference_id: n.referenceId, password: PASSWORD, password_confirm: PASSWORD, ...extra }));
  const codeOf = (html: string) => /data-code="([A-Z_]+)"/.exec(html)?.[1];

  test('the page serves with its script, style and security headers', async () => {
    const r = await fetchTls(t.url, { ca: t.rootPem });
    assert.equal(r.status, 200);
    assert.match(r.text, /証明書ダウンロード/);
    assert.match(r.headers['content-security-policy'] as string, /script-src 'self'/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    for (const a of ['/assets/portal.js', '/assets/portal.css', '/root.cer', '/root.pem', '/ca-chain.pem', '/crl', '/healthz']) {
      assert.equal((await fetchTls(new URL(a, t.url).href, { ca: t.rootPem })).status, 200, a);
    }
    assert.equal((await fetchTls(new URL('/nothing', t.url).href, { ca: t.rootPem })).status, 404);
    assert.equal((await fetchTls(new URL('/enroll', t.url).href, { ca: t.rootPem })).status, 405);
  });

  test('TLS 1.2 and 1.3 only; a client certificate is asked for (naming only this CA) but not required', async (tc) => {
    if (!needCommand(tc, 'openssl')) return;
    const { port } = t.server.address;
    const sClient = (args: string[]) => runPeer('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', t.rootFile, ...args], 'Q\n');
    const old = await sClient(['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
    assert.match(old.stdout, /Cipher is \(NONE\)/, 'no TLS 1.1 session');
    assert.notEqual(old.status, 0);
    const tls12 = await sClient(['-tls1_2']);
    assert.match(tls12.stdout, /Protocol\s*:\s*TLSv1\.2/);
    assert.match(tls12.stdout, /Verify return code: 0 \(ok\)/);
    assert.match(tls12.stdout, /Acceptable client certificate CA names\n(.*\n)*.*sekisho (Issuing|Root) CA/);
    const tls13 = await sClient(['-tls1_3']);
    assert.match(tls13.stdout, /TLSv1\.3/);
  });

  test('each refusal has its status and message, spends no attempt it should not, echoes no secret', async () => {
    const n = await t.notice();
    const other = await t.notice();
    const typo = withTypo('request', n.requestId);
    const cases: { name: string; body: string; status: number; code: string; ja: RegExp }[] = [
      { name: 'mistyped request ID', body: form({ request_id: typo, reference_id: n.referenceId, password: PASSWORD, password_confirm: PASSWORD }), status: 400, code: 'NOTICE_ID_MISTYPED', ja: /入力ミス/ },
      { name: 'character never used in IDs', body: form({ request_id: n.requestId.replace(/^./, '0'), reference_id: n.referenceId, password: PASSWORD, password_confirm: PASSWORD }), status: 400, code: 'NOTICE_ID_MISTYPED', ja: /使われない文字/ },
      { name: 'swapped IDs', body: form({ request_id: n.referenceId, reference_id: n.requestId, password: PASSWORD, password_confirm: PASSWORD }), status: 400, code: 'NOTICE_IDS_SWAPPED', ja: /入れ替えて/ },
      { name: 'short password', body: form({ request_id: n.requestId, reference_id: n.referenceId, password: 'short7!', password_confirm: 'short7!' }), status: 400, code: 'PASSWORD_TOO_SHORT', ja: /8文字以上/ },
      { name: 'passwords differ', body: form({ request_id: n.requestId, reference_id: n.referenceId, password: PASSWORD, password_confirm: `${PASSWORD}x` }), status: 400, code: 'PASSWORD_MISMATCH', ja: /一致しません/ },
      { name: 'unknown field', body: form({ request_id: n.requestId, reference_id: n.referenceId, password: PASSWORD, password_confirm: PASSWORD, subject: 'CN=evil' }), status: 400, code: 'FORM_FIELD_UNKNOWN', ja: /サーバーで処理|./ },
      { name: 'IDs of no notice', body: form({ request_id: other.requestId, reference_id: n.referenceId, password: PASSWORD, password_confirm: PASSWORD }), status: 401, code: 'NOTICE_REFERENCE_WRONG', ja: /あと4回/ },
    ];
    for (const c of cases) {
      const r = await post('/enroll', c.body);
      assert.equal(r.status, c.status, `${c.name}: ${r.text.slice(0, 300)}`);
      assert.equal(codeOf(r.text), c.code, c.name);
      assert.match(r.text, c.ja, c.name);
      assert.ok(!r.text.includes(PASSWORD) && !r.text.includes(n.referenceId), `${c.name}: a secret was echoed`);
    }
    const listed = await t.ca.notices.list();
    assert.equal(listed.find((x) => x.id === n.id)?.failures, 0, 'no attempt spent on the notice by typos or policy');
    assert.equal(listed.find((x) => x.id === other.id)?.failures, 1, "the wrong reference ID counted against the request ID's notice");
    assert.equal((await t.ca.listCertificates({ facilityNumber: TEST_FACILITY.number })).length, 0);
  });

  test('five wrong reference IDs lock the notice; the operator unlocks; then it downloads once; openssl opens the PKCS#12', async (tc) => {
    const n = await t.notice({ maxDownloads: 1 });
    const wrong = (await t.notice()).referenceId;
    for (let i = 1; i <= 5; i++) {
      const r = await enroll({ requestId: n.requestId, referenceId: wrong });
      if (i < 5) {
        assert.equal(r.status, 401);
        assert.match(r.text, new RegExp(`あと${5 - i}回`));
      } else {
        assert.equal(r.status, 423);
        assert.equal(codeOf(r.text), 'NOTICE_LOCKED');
      }
    }
    const locked = await enroll(n);
    assert.equal(locked.status, 423, 'the right IDs do not open a locked notice');
    assert.match(locked.text, /ロック/);
    await t.ca.notices.unlock(n.id, 'operator:test');
    const ok = await enroll(n);
    assert.equal(ok.status, 200, ok.text.slice(0, 500));
    assert.match(ok.text, /証明書の発行が完了しました/);
    assert.equal(ok.headers['cache-control'], 'no-store');
    const links = [...ok.text.matchAll(/download="([^"]+)" href="data:([^;]+(?:; charset=utf-8)?);base64,([^"]+)"/g)].map((m) => ({ name: m[1]!, data: Buffer.from(m[3]!, 'base64') }));
    assert.deepEqual(links.map((l) => l.name.replace(/^.*\./, '')), ['zip', 'p12', 'cer', 'txt']);
    const p12 = links[1]!.data;
    const zip = links[0]!.data;
    assert.equal(zip.readUInt32LE(0), 0x04034b50);
    assert.ok(zip.includes(p12), 'the ZIP holds the same PKCS#12');
    assert.match(links[3]!.data.toString('utf8'), /SHA-256: [0-9A-F:]{95}/);
    assert.ok(!links[3]!.data.toString('utf8').includes(PASSWORD));
    const again = await enroll(n);
    assert.equal(again.status, 410);
    assert.equal(codeOf(again.text), 'NOTICE_USED');
    assert.match(again.text, /使用済み/);
    if (!needCommand(tc, 'openssl')) return;
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-portal-'));
    writeFileSync(join(dir, 'f.p12'), p12);
    const info = await runPeer('openssl', ['pkcs12', '-in', join(dir, 'f.p12'), '-passin', `pass:${PASSWORD}`, '-nokeys', '-clcerts']);
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, new RegExp(`subject=C = JP, O = .*, CN = ${TEST_FACILITY.number}`));
    const wrongPass = await runPeer('openssl', ['pkcs12', '-in', join(dir, 'f.p12'), '-passin', 'pass:not-the-password', '-nokeys']);
    assert.notEqual(wrongPass.status, 0);
  });

  test('an expired notice and a revoked notice each say so', async () => {
    const expiring = await t.notice({ validityDays: 1 });
    const revoked = await t.notice();
    await t.ca.notices.revoke(revoked.id, 'operator:test');
    const r1 = await enroll(revoked);
    assert.equal(r1.status, 410);
    assert.equal(codeOf(r1.text), 'NOTICE_REVOKED');
    assert.match(r1.text, /無効化/);
    clock += 2 * DAY;
    try {
      const r2 = await enroll(expiring);
      assert.equal(r2.status, 410);
      assert.equal(codeOf(r2.text), 'NOTICE_EXPIRED');
      assert.match(r2.text, /有効期限/);
    } finally {
      clock -= 2 * DAY;
    }
  });

  test('the JSON API: legacy PKCS#12, the subject from the notice only, and bad bodies', async (tc) => {
    const n = await t.notice();
    const bad: { name: string; body: string; type?: string; status: number; code: string }[] = [
      { name: 'not JSON', body: '{', status: 400, code: 'JSON_INVALID' },
      { name: 'array', body: '[]', status: 400, code: 'JSON_INVALID' },
      { name: 'subject smuggled in', body: JSON.stringify({ requestId: n.requestId, referenceId: n.referenceId, password: PASSWORD, subject: 'CN=evil' }), status: 400, code: 'FORM_FIELD_UNKNOWN' },
      { name: 'number password', body: JSON.stringify({ requestId: n.requestId, referenceId: n.referenceId, password: 12345678 }), status: 400, code: 'FORM_FIELD_INVALID' },
      { name: 'form type', body: 'a=b', type: 'application/x-www-form-urlencoded', status: 415, code: 'CONTENT_TYPE_UNSUPPORTED' },
      { name: 'too large', body: JSON.stringify({ password: 'x'.repeat(70_000) }), status: 413, code: 'BODY_TOO_LARGE' },
    ];
    for (const c of bad) {
      const r = await post('/api/enroll', c.body, c.type ?? 'application/json');
      assert.equal(r.status, c.status, `${c.name}: ${r.text}`);
      assert.equal((JSON.parse(r.text) as { error: { code: string } }).error.code, c.code, c.name);
    }
    const r = await post('/api/enroll', JSON.stringify({ requestId: n.requestId.toLowerCase().replace(/-/g, ' '), referenceId: n.referenceId, password: PASSWORD, legacy: true, keyType: 'ecdsa-p256' }), 'application/json');
    assert.equal(r.status, 200, r.text);
    const j = JSON.parse(r.text) as { pkcs12: string; facility: { number: string } };
    assert.equal(j.facility.number, TEST_FACILITY.number);
    if (!needCommand(tc, 'openssl')) return;
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-portal-'));
    writeFileSync(join(dir, 'l.p12'), Buffer.from(j.pkcs12, 'base64'));
    const legacy = await runPeer('openssl', ['pkcs12', '-info', '-in', join(dir, 'l.p12'), '-passin', `pass:${PASSWORD}`, '-nokeys', '-clcerts']);
    assert.match(legacy.stderr, /MAC: sha1/);
    assert.match(legacy.stderr, /pbeWithSHA1And3-KeyTripleDES-CBC/);
    assert.equal(legacy.status, 0, legacy.stderr);
    assert.match(legacy.stdout, new RegExp(`CN = ${TEST_FACILITY.number}`));
    assert.deepEqual((await t.ca.audit.verify()).problems, []);
  });

  test('regression: a password the PKCS#12 cannot encode (NUL, unpaired surrogate) is refused before anything is signed; a build that fails after signing revokes the certificate', async () => {
    const n = await t.notice();
    const live = async () => (await t.ca.listCertificates({ facilityNumber: TEST_FACILITY.number })).filter((c) => c.status !== 'revoked').map((c) => c.serial);
    const before = await live();
    // Before: the policy counted only the length, the certificate was signed, then the PKCS#12 build refused the
    // password: the claim was released, and a valid certificate whose key nobody holds stayed in the store.
    const json = (password: string) => post('/api/enroll', JSON.stringify({ requestId: n.requestId, referenceId: n.referenceId, password }), 'application/json');
    const cases = [
      { name: 'NUL (JSON)', send: () => json(`${PASSWORD}\u0000x`) },
      { name: 'unpaired high surrogate (JSON escape)', send: () => json(`${PASSWORD}\ud800`) },
      { name: 'unpaired low surrogate (JSON escape)', send: () => json(`\udc00${PASSWORD}`) },
      { name: 'NUL (form, %00)', send: () => post('/enroll', `request_id=${n.requestId}&reference_id=${n.referenceId}&password=${PASSWORD}%00&password_confirm=${PASSWORD}%00`) },
    ];
    for (const c of cases) {
      const r = await c.send();
      assert.equal(r.status, 400, `${c.name}: ${r.text}`);
      assert.match(r.text, /PKCS12_PASSWORD_INVALID/, c.name);
      assert.match(r.text, /パスワードに使えない文字/, `${c.name}: the clinic reads why in Japanese`);
    }
    assert.deepEqual(await live(), before, 'no certificate was signed for a refused password');
    const summary = (await t.ca.notices.list()).find((x) => x.id === n.id)!;
    assert.deepEqual([summary.state, summary.downloads, summary.failures], ['active', 0, 0], 'the notice is untouched');
    // The class: whatever makes the build fail after the signature, the certificate does not stay valid.
    const ca = t.ca as unknown as { pkcs12For: unknown };
    ca.pkcs12For = () => Promise.reject(new Error('build failed'));
    try {
      const r = await json(PASSWORD);
      assert.equal(r.status, 500, r.text);
    } finally {
      delete ca.pkcs12For;
    }
    assert.deepEqual(await live(), before, 'the certificate whose PKCS#12 failed is revoked');
    const after = (await t.ca.notices.list()).find((x) => x.id === n.id)!;
    assert.deepEqual([after.state, after.downloads], ['active', 0], 'and the notice is released, not spent');
    const ok = await json(PASSWORD);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual((await t.ca.audit.verify()).problems, []);
  });
});

describe('rate limit per client address', () => {
  test('attempts beyond the limit get 429 with Retry-After, are audited, and touch no notice', async () => {
    const t = await startTestEnrollment({ rateLimit: { attempts: 3, windowSeconds: 600 } });
    try {
      const n = await t.notice();
      const wrong = (await t.notice()).referenceId;
      const statuses: number[] = [];
      let last;
      for (let i = 0; i < 5; i++) {
        last = await fetchTls(new URL('/api/enroll', t.url).href, { ca: t.rootPem, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ requestId: n.requestId, referenceId: wrong, password: PASSWORD }) });
        statuses.push(last.status);
      }
      assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
      assert.ok(Number(last!.headers['retry-after']) > 0);
      assert.equal((JSON.parse(last!.text) as { error: { code: string; ja: string } }).error.code, 'RATE_LIMITED');
      assert.equal((await t.ca.notices.list()).find((x) => x.id === n.id)?.failures, 3);
      const events = await t.ca.audit.list();
      assert.deepEqual(
        events.filter((e) => e.action === 'notice.attempt' && e.reasonCode === 'RATE_LIMITED').map((e) => e.details?.refusedInWindow),
        [1, 2],
        'the first and second refusals of the window are audited, numbered',
      );
      assert.equal(events.filter((e) => e.action === 'notice.attempt' && e.reasonCode === 'NOTICE_REFERENCE_WRONG').length, 3);
    } finally {
      await t.close();
    }
  });

  test('regression: a flood of refused attempts (form, JSON API, EST) is audited at its 1st, 2nd, 4th … refusal of a window, not once per request', async () => {
    // Before: every refused request appended a hash-chained audit row (about 100 a second from one client,
    // unbounded), though it touched no notice. Now log2 of the refusals, each with its number.
    let clock = Date.parse('2026-04-01T00:00:00Z');
    const t = await startTestEnrollment({ rateLimit: { attempts: 3, windowSeconds: 600 }, now: () => new Date(clock) });
    try {
      const n = await t.notice();
      const wrong = (await t.notice()).referenceId;
      const at = (path: string) => new URL(path, t.url).href;
      const json = { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ requestId: n.requestId, referenceId: wrong, password: PASSWORD }) };
      const ways = [
        () => fetchTls(at('/enroll'), { ca: t.rootPem, method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form({ request_id: n.requestId, reference_id: wrong, password: PASSWORD, password_confirm: PASSWORD }) }),
        () => fetchTls(at('/api/enroll'), { ca: t.rootPem, ...json }),
        () => fetchTls(at('/api/enroll-csr'), { ca: t.rootPem, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ requestId: n.requestId, referenceId: wrong, csr: 'x' }) }),
        () => fetchTls(at('/.well-known/est/simpleenroll'), { ca: t.rootPem, method: 'POST', headers: { 'Content-Type': 'application/pkcs10', Authorization: `Basic ${Buffer.from(`${n.requestId}:${wrong}`).toString('base64')}` }, body: 'MAA=' }),
      ];
      const rateLimited = async () => (await t.ca.audit.list()).filter((e) => e.action === 'notice.attempt' && e.reasonCode === 'RATE_LIMITED');
      const flood = async (count: number) => {
        const statuses: number[] = [];
        for (let i = 0; i < count; i += 8) statuses.push(...(await Promise.all(Array.from({ length: 8 }, (_, k) => ways[(i + k) % ways.length]!()))).map((r) => r.status));
        return statuses;
      };
      for (let i = 0; i < 3; i++) assert.equal((await ways[1]!()).status, 401, 'within the limit');
      const first = await flood(160);
      assert.ok(first.every((st) => st === 429), `every one refused: ${[...new Set(first)].join(',')}`);
      const rows = await rateLimited();
      assert.deepEqual(
        rows.map((r) => r.details?.refusedInWindow).sort((a, b) => Number(a) - Number(b)),
        [1, 2, 4, 8, 16, 32, 64, 128],
        'eight audit rows for 160 refusals (concurrent, over four paths), each numbered once',
      );
      assert.deepEqual([rows[0]!.details?.limit, rows[0]!.details?.windowSeconds], [3, 600]);
      assert.equal(rows[0]!.details?.windowEnds, new Date(Date.parse('2026-04-01T00:10:00Z')).toISOString());
      assert.equal((await t.ca.notices.list()).find((x) => x.id === n.id)?.failures, 3, 'refused attempts touch no notice');
      // The next window: its allowance, then its own numbering (40 refusals: 1, 2, 4, 8, 16, 32).
      clock += 601_000;
      for (let i = 0; i < 3; i++) assert.notEqual((await ways[3]!()).status, 429, 'a new window');
      assert.ok((await flood(40)).every((st) => st === 429));
      assert.equal((await rateLimited()).length, 8 + 6);
      assert.deepEqual((await t.ca.audit.verify()).problems, []);
    } finally {
      await t.close();
    }
  });
});
