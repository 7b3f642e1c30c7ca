/**
 * The expiring, campaign, refusal, audit and migration views and their API
 * over real TLS (Node's https client with operator PKCS#12 credentials):
 * what each role may do (the roles table), the campaign's letters held for
 * the operator who ran it only, escaping of values from the trail.
 * campaign-browser.test.ts does the campaign in Chromium against a real gateway.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestConsole, type TestClient, type TestConsole } from '../testing/console-fixture.js';
import { TEST_FACILITY } from '../testing/enrollment-server.js';
import { facilityNumber } from '../testing/gateway-fixture.js';

const CSRF = /name="_csrf" value="([^"]+)"/;
const OTHER = { number: facilityNumber('131234567'), name: '東京<b>薬局</b>' };

describe('console: expiring, renewal campaign, refusals, audit trail, migration', () => {
  let t: TestConsole;
  let admin: TestClient;
  let clerk: TestClient;
  let auditor: TestClient;
  const origin = () => t.url.replace(/\/$/, '');
  const formHeaders = () => ({ 'Content-Type': 'application/x-www-form-urlencoded', Origin: origin(), 'Sec-Fetch-Site': 'same-origin' });
  const jsonHeaders = () => ({ 'Content-Type': 'application/json', Origin: origin() });

  before(async () => {
    t = await startTestConsole();
    const ca = t.enrollment.ca;
    await ca.addFacility(OTHER, 'test');
    for (const [number, days] of [[TEST_FACILITY.number, 20], [OTHER.number, 50]] as const) await ca.issueWithNewKey({ profile: 'facility', facilityNumber: number, validityDays: days, keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
    admin = await t.operator('admin1', 'admin');
    clerk = await t.operator('clerk1', 'clerk');
    auditor = await t.operator('auditor1', 'auditor');
  });
  after(() => t?.close());

  test('expiring soon: 30/60/90 tabs, soonest first, a checkbox per facility with nothing under way; the auditor has no such view', async () => {
    const r30 = await t.request('/expiring?days=30', { client: clerk });
    assert.equal(r30.status, 200, r30.text);
    assert.match(r30.text, /href="\/expiring\?days=30" aria-current="page"/);
    assert.match(r30.text, new RegExp(`name="facility-${TEST_FACILITY.number}"`));
    assert.doesNotMatch(r30.text, new RegExp(OTHER.number));
    const r60 = await t.request('/expiring?days=60', { client: clerk });
    assert.ok(r60.text.indexOf(TEST_FACILITY.number) < r60.text.indexOf(OTHER.number), 'soonest first');
    assert.match(r60.text, /東京&lt;b&gt;薬局&lt;\/b&gt;/, 'names escaped');
    assert.equal((await t.request('/expiring?days=6x', { client: clerk })).status, 400);
    assert.equal((await t.request('/expiring', { client: auditor })).status, 403);
    assert.equal((await t.request('/api/v1/expiring?days=90', { client: auditor })).status, 403);
    const api = JSON.parse((await t.request('/api/v1/expiring?days=90', { client: clerk })).text) as { facilityNumber: string; renewal: string }[];
    assert.deepEqual(api.map((x) => [x.facilityNumber, x.renewal]), [[TEST_FACILITY.number, 'none'], [OTHER.number, 'none']]);
  });

  test('a clerk runs a campaign by form (CSRF checked): the result page links letters and CSV, held for that clerk only; a second run skips', async () => {
    const page = await t.request('/expiring?days=60', { client: clerk });
    const token = CSRF.exec(page.text)![1]!;
    const none = await t.request('/expiring/campaign', { client: clerk, method: 'POST', headers: formHeaders(), body: new URLSearchParams({ _csrf: token, days: '60' }).toString() });
    assert.equal(none.status, 400);
    assert.match(none.text, /CAMPAIGN_NOTHING_SELECTED/);
    const noToken = await t.request('/expiring/campaign', { client: clerk, method: 'POST', headers: formHeaders(), body: new URLSearchParams({ days: '60', [`facility-${TEST_FACILITY.number}`]: '1' }).toString() });
    assert.equal(noToken.status, 403);
    assert.equal(await t.request('/expiring/campaign', { client: auditor, method: 'POST', headers: formHeaders(), body: new URLSearchParams({ _csrf: token, days: '60' }).toString() }).then((x) => x.status), 403);

    // Only the first facility is ticked: only it gets a notice.
    const run = await t.request('/expiring/campaign', { client: clerk, method: 'POST', headers: formHeaders(), body: new URLSearchParams({ _csrf: token, days: '60', [`facility-${TEST_FACILITY.number}`]: '1' }).toString() });
    assert.equal(run.status, 303, run.text);
    const where = String(run.headers.location);
    assert.match(where, /^\/campaigns\/C-[A-Z0-9]{8}$/);
    const result = await t.request(where, { client: clerk });
    assert.equal(result.status, 200);
    assert.match(result.text, new RegExp(`href="${where}/letters"`));
    assert.match(result.text, new RegExp(`href="${where}/mail-merge.csv"`));
    const csv = await t.request(`${where}/mail-merge.csv`, { client: clerk });
    assert.equal(csv.status, 200);
    assert.match(String(csv.headers['content-disposition']), /attachment; filename="renewal-C-[A-Z0-9]{8}-mail-merge.csv"/);
    assert.equal(String(csv.headers['cache-control']), 'no-store');
    const lines = csv.text.trim().split('\r\n');
    assert.equal(lines.length, 2);
    assert.ok(lines[1]!.startsWith(TEST_FACILITY.number));
    const letters = await t.request(`${where}/letters`, { client: clerk });
    assert.equal(letters.status, 200);
    assert.equal((letters.text.match(/<main>/g) ?? []).length, 1);
    // Another operator (even an admin) cannot fetch them: they hold reference IDs.
    for (const path of [where, `${where}/letters`, `${where}/mail-merge.csv`]) assert.equal((await t.request(path, { client: admin })).status, 404, path);

    const again = await t.request('/api/v1/campaigns', { client: clerk, method: 'POST', headers: jsonHeaders(), body: JSON.stringify({ days: 60 }) });
    assert.equal(again.status, 201, again.text);
    const j = JSON.parse(again.text) as { notices: { facility: { number: string } }[]; skipped: { facilityNumber: string; reason: string }[]; csv: string | null };
    assert.deepEqual(j.notices.map((n) => n.facility.number), [OTHER.number]);
    assert.deepEqual(j.skipped.map((s) => [s.facilityNumber, s.reason]), [[TEST_FACILITY.number, 'open-notice']]);
    assert.ok(j.csv);
    assert.equal((await t.request('/api/v1/campaigns', { client: auditor, method: 'POST', headers: jsonHeaders(), body: '{"days":60}' })).status, 403);
    assert.equal((await t.request('/api/v1/campaigns', { client: clerk, method: 'POST', headers: jsonHeaders(), body: '{"facilities":"x"}' })).status, 400);
  });

  test('refusals of the last day by reason and facility, each facility linking to its view; detail from the trail escaped', async () => {
    await t.enrollment.ca.audit.append({ actor: TEST_FACILITY.number, action: 'gateway.refused', outcome: 'minorFailure', reasonCode: 'REVOKED', subject: '0A1B', details: { listener: 'web', client: '127.0.0.1', detail: '<script>alert(1)</script>' } });
    await t.enrollment.ca.audit.append({ actor: 'unknown', action: 'gateway.refused.unidentified', outcome: 'minorFailure', reasonCode: 'NO_CLIENT_CERT', details: { count: 7, address: '127.0.0.1', lastAt: new Date().toISOString() } });
    for (const who of [clerk, auditor, admin]) {
      const r = await t.request('/refusals', { client: who });
      assert.equal(r.status, 200);
      assert.match(r.text, new RegExp(`<a href="/facilities/${TEST_FACILITY.number}">`));
      assert.match(r.text, /&lt;script&gt;alert\(1\)/);
      assert.doesNotMatch(r.text, /<script>/);
    }
    const j = JSON.parse((await t.request('/api/v1/refusals', { client: auditor })).text) as { total: number; byReason: { reason: string; count: number }[] };
    assert.equal(j.total, 8);
    assert.deepEqual(j.byReason.map((x) => [x.reason, x.count]), [['NO_CLIENT_CERT', 7], ['REVOKED', 1]]);
  });

  test('the audit trail: auditor and admin search it and see its verification; a clerk may not; bad terms are 400', async () => {
    assert.equal((await t.request('/audit', { client: clerk })).status, 403);
    assert.equal((await t.request('/api/v1/audit', { client: clerk })).status, 403);
    const r = await t.request('/audit?action=notice.campaign', { client: auditor });
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /監査証跡/);
    assert.match(r.text, /intact|cannot be verified/);
    assert.match(r.text, /operator:clerk1\//);
    assert.equal((r.text.match(/<td class="mono">notice\.campaign<\/td>/g) ?? []).length, 2);
    const byFacility = JSON.parse((await t.request(`/api/v1/audit?facility=${OTHER.number}&action=notice.*`, { client: admin })).text) as { action: string }[];
    assert.deepEqual(byFacility.map((e) => e.action), ['notice.created']);
    for (const bad of ['facility=123', 'from=2026-13-01', 'action=%3Cx%3E', 'limit=0']) {
      const b = await t.request(`/api/v1/audit?${bad}`, { client: auditor });
      assert.equal(b.status, 400, bad);
      assert.equal(JSON.parse(b.text).code, 'AUDIT_SEARCH_INVALID', bad);
    }
    const v = JSON.parse((await t.request('/api/v1/audit/verify', { client: auditor })).text) as { status: string };
    assert.ok(['intact', 'unverifiable'].includes(v.status), v.status);
  });

  test('migration readiness for every role with reports.read', async () => {
    const r = await t.request('/migration?to=high', { client: auditor });
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /移行準備状況/);
    assert.equal((await t.request('/migration?to=nonsense', { client: auditor })).status, 400);
    assert.equal(JSON.parse((await t.request('/api/v1/migration?to=recommended', { client: clerk })).text).schema, 'sekisho.migration-readiness/1');
  });
});
