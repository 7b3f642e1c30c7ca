/**
 * The console over real TLS (Node's https client with PKCS#12 credentials):
 * who gets in, what each role may do, CSRF and escaping. The browser test
 * (console-browser.test.ts) does the same flows in Chromium.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestConsole, type TestClient, type TestConsole } from '../testing/console-fixture.js';
import { STORE_TARGETS } from '../testing/stores.js';

const CSRF = /name="_csrf" value="([^"]+)"/;

describe('operator console', () => {
  let t: TestConsole;
  let admin: TestClient;
  let clerk: TestClient;
  let auditor: TestClient;
  const origin = () => t.url.replace(/\/$/, '');
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const formHeaders = () => ({ 'Content-Type': 'application/x-www-form-urlencoded', Origin: origin(), 'Sec-Fetch-Site': 'same-origin' });
  const tokenFor = async (client: TestClient) => CSRF.exec((await t.request('/facilities', { client })).text)![1]!;

  before(async () => {
    t = await startTestConsole();
    admin = await t.operator('admin1', 'admin');
    clerk = await t.operator('clerk1', 'clerk');
    auditor = await t.operator('auditor1', 'auditor');
  });
  after(() => t?.close());

  test('an operator certificate signs in; the menu shows what the role may open', async () => {
    const r = await t.request('/', { client: clerk });
    assert.equal(r.status, 200);
    assert.match(r.text, /clerk1/);
    assert.match(r.text, /href="\/facilities"/);
    assert.doesNotMatch(r.text, /<script/);
    assert.match(String(r.headers['content-security-policy']), /default-src 'none'.*frame-ancestors 'none'/);
    const a = await t.request('/', { client: auditor });
    assert.doesNotMatch(a.text, /href="\/facilities"/);
  });

  test('no certificate: the handshake fails; a facility certificate of the same CA is refused', async () => {
    await assert.rejects(t.request('/'));
    const f = await t.request('/api/v1/me', { client: await t.facilityClient() });
    assert.equal(f.status, 403);
    assert.equal(JSON.parse(f.text).code, 'OPERATOR_CERTIFICATE_REFUSED');
    assert.match(String(f.headers['content-security-policy']), /default-src 'none'/, 'refusals carry the headers too');
    assert.equal(f.headers['x-frame-options'], 'DENY');
    assert.equal(f.headers['set-cookie'], undefined, 'no cookie, ever');
  });

  test('a clerk registers a facility by form (POST-redirect-GET, audited as the operator); the name is escaped', async () => {
    const token = await tokenFor(clerk);
    const name = '<script>alert(1)</script>"\'><b onmouseover=x>';
    const r = await t.request('/facilities', { client: clerk, method: 'POST', headers: formHeaders(), body: form({ _csrf: token, number: '1310000011', name }) });
    assert.equal(r.status, 303, r.text);
    assert.equal(r.headers.location, '/facilities/1310000011?done=facility-added');
    const page = await t.request('/facilities/1310000011?done=facility-added', { client: clerk });
    assert.doesNotMatch(page.text, /<script>alert|<b onmouseover/);
    assert.match(page.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;&quot;&#39;&gt;&lt;b onmouseover=x&gt;/);
    const added = (await t.enrollment.ca.audit.list()).find((e) => e.action === 'facility.add' && e.subject === '1310000011');
    assert.equal(added?.actor, `operator:clerk1/${clerk.serial}`);
  });

  test('CSRF: a missing, foreign or other-certificate token and a cross-site origin are refused', async () => {
    const clerkToken = await tokenFor(clerk);
    const cases: [string, Record<string, string>, Record<string, string>][] = [
      ['no token', formHeaders(), { number: '1310000029' }],
      ['a forged token', formHeaders(), { _csrf: `${Date.now()}.${'A'.repeat(43)}`, number: '1310000029' }],
      ["another operator's token", formHeaders(), { _csrf: clerkToken, number: '1310000029' }],
      ['cross-site', { ...formHeaders(), Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' }, { _csrf: await tokenFor(admin), number: '1310000029' }],
    ];
    for (const [name, headers, fields] of cases) {
      const r = await t.request('/facilities/1310000011/suspend', { client: admin, method: 'POST', headers, body: form(fields) });
      assert.equal(r.status, 403, name);
    }
    const api = await t.request('/api/v1/facilities/1310000011/suspend', { client: admin, method: 'POST', headers: { 'Content-Type': 'text/plain', Origin: origin() }, body: '{}' });
    assert.equal(api.status, 415);
    const cross = await t.request('/api/v1/facilities/1310000011/suspend', { client: admin, method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'https://evil.example' }, body: '{}' });
    assert.equal(cross.status, 403);
    assert.equal((await t.enrollment.ca.facility('1310000011'))?.status, 'active');
  });

  test('an auditor is refused facilities (HTML and API); a search term with markup is echoed as text; notices by API', async () => {
    assert.equal((await t.request('/facilities', { client: auditor })).status, 403);
    assert.equal((await t.request('/api/v1/facilities', { client: auditor })).status, 403);
    const q = '"><script>alert(1)</script>';
    const r = await t.request(`/facilities?q=${encodeURIComponent(q)}`, { client: clerk });
    assert.equal(r.status, 200);
    assert.ok(!r.text.includes('<script>alert(1)'), 'the query is not reflected as markup');
    assert.ok(r.text.includes('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"'));
    const created = await t.request('/api/v1/notices', { client: clerk, method: 'POST', headers: { 'Content-Type': 'application/json', Origin: origin() }, body: JSON.stringify({ facility: '0110113719' }) });
    assert.equal(created.status, 201, created.text);
    const n = JSON.parse(created.text) as { id: string; requestId: string; referenceId: string };
    assert.match(n.requestId, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
    const listed = await t.request('/api/v1/notices?facility=0110113719', { client: clerk });
    assert.ok(!listed.text.includes(n.requestId) && !listed.text.includes(n.referenceId), 'the IDs are shown only once');
    const revoked = await t.request(`/api/v1/notices/${n.id}/revoke`, { client: clerk, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(JSON.parse(revoked.text).state, 'revoked');
    const big = await t.request('/api/v1/facilities', { client: clerk, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'x'.repeat(70_000) }) });
    assert.equal(big.status, 413);
  });

  test('a clerk may not revoke (HTML and API); an admin may; a revoked operator gets no console', async () => {
    const facility = await t.facilityClient();
    const html = await t.request(`/certificates/${facility.serial}/revoke`, { client: clerk });
    assert.equal(html.status, 403);
    assert.equal((await t.request('/operators', { client: clerk })).status, 403);
    assert.doesNotMatch((await t.request('/', { client: clerk })).text, /href="\/operators"/);
    const api = await t.request(`/api/v1/certificates/${facility.serial}/revoke`, { client: clerk, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ reason: 'keyCompromise' }) });
    assert.equal(api.status, 403);
    assert.equal(JSON.parse(api.text).code, 'OPERATOR_ROLE_FORBIDDEN');
    const ok = await t.request(`/api/v1/certificates/${facility.serial}/revoke`, { client: admin, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ reason: 'keyCompromise' }) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).status, 'revoked');
    const gone = await t.operator('leaver', 'clerk');
    assert.equal((await t.request('/api/v1/me', { client: gone })).status, 200);
    const rv = await t.request('/api/v1/operators/leaver/revoke', { client: admin, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(rv.status, 200, rv.text);
    assert.equal((await t.request('/api/v1/me', { client: gone })).status, 403);
  });
});

describe('operator console on PostgreSQL (migration 14)', () => {
  const pgTarget = STORE_TARGETS.find((s) => s.name === 'postgres')!;
  test('an operator signs in, an admin revokes them through the API, and they are signed out at the next request', async (tc) => {
    if (!pgTarget.available) return tc.skip('SEKISHO_TEST_POSTGRES_URL is not set');
    const db = await pgTarget.fresh();
    const t = await startTestConsole(db ? { db } : {});
    try {
      const admin = await t.operator('admin1', 'admin');
      const clerk = await t.operator('clerk1', 'clerk');
      const me = await t.request('/api/v1/me', { client: clerk });
      assert.equal(me.status, 200, me.text);
      assert.equal(JSON.parse(me.text).role, 'clerk');
      const list = await t.request('/api/v1/operators', { client: admin });
      assert.deepEqual((JSON.parse(list.text) as { name: string }[]).map((o) => o.name), ['admin1', 'clerk1']);
      const rv = await t.request('/api/v1/operators/clerk1/revoke', { client: admin, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      assert.equal(rv.status, 200, rv.text);
      assert.equal((await t.request('/api/v1/me', { client: clerk })).status, 403);
      const ev = (await t.enrollment.ca.audit.list()).find((e) => e.action === 'operator.revoke');
      assert.equal(ev?.actor, `operator:admin1/${admin.serial}`);
    } finally {
      await t.close();
    }
  });
});
