/**
 * The clerk's desk in Debian's Chromium (playwright-core), JavaScript off,
 * signed in by operator certificates held in an NSS database (certutil,
 * pk12util) and picked by Chromium's auto-select preference: a clerk runs a
 * renewal campaign from "expiring soon" and downloads one PDF of letters
 * (pdftoppm counts a page per notice); the refusal view shows a refusal a
 * real gateway connection produced (curl with a revoked certificate) and
 * links to the facility. An admin on a second console of the same CA reads
 * the audit trail and migration readiness. One browser launch for the file.
 * Set SEKISHO_SCREENSHOTS=DIR to keep the screenshots.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { findChromium } from '../ca/index.js';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from '../gateway/index.js';
import { certificateToPem } from '../pki/index.js';
import { chromiumWithCertificates, hasChromium, saveScreenshot } from '../testing/browser.js';
import { facilityNumber, FACILITY_A, FACILITY_C, gatewayFixture, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needPeer, runAsync } from '../testing/peers.js';
import { startConsoleServer, type ConsoleServer } from './index.js';

const ready = hasChromium() && hasCommand('certutil') && hasCommand('pk12util') && hasCommand('curl') && hasCommand('pdftoppm');
const FACILITY_D = facilityNumber('401234567');
const FACILITY_E = facilityNumber('231234567');
const P12 = 'operator-p12-pw';
async function shot(page: Page, name: string): Promise<void> {
  saveScreenshot(name, await page.screenshot({ fullPage: true }));
}

let fx: GatewayFixture;
let gw: GatewaySetup | undefined;
let clerkConsole: ConsoleServer;
let adminConsole: ConsoleServer;
let browser: BrowserContext;

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  const ca = fx.ca;
  // Certificates ending within 30 days: D's and E's (nothing under way), one of A's and C's (each holds a newer one: skipped).
  await ca.addFacility({ number: FACILITY_D, name: '福岡<歯科>' }, 'test');
  await ca.addFacility({ number: FACILITY_E, name: '名古屋眼科' }, 'test');
  for (const [n, days] of [[FACILITY_E, 12], [FACILITY_D, 20], [FACILITY_A, 25], [FACILITY_C, 28]] as const) await ca.issueWithNewKey({ profile: 'facility', facilityNumber: n, validityDays: days, keyType: 'ecdsa-p256', via: 'test', actor: 'test' });

  // A real gateway refuses facility A's revoked certificate; its audit events are in the store once it closes.
  const cfg = parseGatewayConfig({ home: fx.home, listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: 'http://127.0.0.1:9', allow: { anyone: true } }] }] });
  gw = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('error', () => undefined), watch: false });
  const port = gw.gateway.addresses().find((a) => a.name === 'web')!.port;
  await runAsync('curl', ['-sS', '--max-time', '10', '--cacert', fx.caFile, '--cert', fx.clients.revoked.cert, '--key', fx.clients.revoked.key, '-o', '/dev/null', `https://localhost:${port}/records`]);
  await gw.close(2000);
  gw = undefined;

  const tls = await ca.issueWithNewKey({ profile: 'server', hosts: ['127.0.0.1', 'localhost'], keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
  const start = () =>
    startConsoleServer({
      authority: ca,
      listen: { host: '127.0.0.1', port: 0 },
      tls: { cert: certificateToPem(tls.der), key: tls.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chain: [certificateToPem(ca.issuingDer)] },
      portalUrl: 'https://portal.example.jp/',
      chromium: findChromium()!,
      log: { log: () => undefined },
    });
  clerkConsole = await start();
  adminConsole = await start();

  // Chromium's NSS database holds both operators' certificates; each console's origin auto-selects one.
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-operators-'));
  const pkcs12: { file: string; password: string }[] = [];
  for (const [name, role] of [['clerk1', 'clerk'], ['admin1', 'admin']] as const) {
    const op = await ca.addOperator({ name, role }, P12, 'test');
    const file = join(dir, `${name}.p12`);
    writeFileSync(file, op.pkcs12);
    pkcs12.push({ file, password: P12 });
  }
  const origin = (s: ConsoleServer) => `https://127.0.0.1:${s.address.port}`;
  browser = await chromiumWithCertificates({ pkcs12, pick: { [origin(clerkConsole)]: 'clerk1', [origin(adminConsole)]: 'admin1' }, acceptDownloads: true, viewport: { width: 1200, height: 900 } });
});

after(async () => {
  if (!ready) return;
  await browser?.close();
  await clerkConsole?.close();
  await adminConsole?.close();
  await gw?.close(500);
  await fx?.close();
});

describe('the clerk and the admin at the console, in Chromium', () => {
  test('a clerk runs a renewal campaign from "expiring soon" without JavaScript and downloads one PDF: a page per notice', async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util, curl and pdftoppm')) return;
    const page = await browser.newPage();
    // Printing the letters (Chromium on the server) takes a while on a loaded machine.
    page.setDefaultTimeout(180_000);
    await page.goto(`https://127.0.0.1:${clerkConsole.address.port}/expiring?days=30`, { timeout: 60_000 });
    assert.match((await page.textContent('header.top')) ?? '', /clerk1/);
    for (const n of [FACILITY_E, FACILITY_D]) assert.equal(await page.isChecked(`input[name="facility-${n}"]`), true, n);
    for (const n of [FACILITY_A, FACILITY_C]) assert.equal(await page.locator(`input[name="facility-${n}"]`).count(), 0, `${n} holds a newer certificate: nothing to tick`);
    assert.match((await page.textContent('main')) ?? '', /新しい証明書あり/);
    await shot(page, 'console-expiring.png');
    await Promise.all([page.waitForNavigation(), page.click('button[name="run"]')]);
    assert.match(page.url(), /\/campaigns\/C-[A-Z0-9]{8}$/, await page.content());
    const body = (await page.textContent('main')) ?? '';
    assert.match(body, new RegExp(`${FACILITY_E}[\\s\\S]*${FACILITY_D}`));
    await shot(page, 'console-campaign.png');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a[href$="/letters"]')]);
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-letters-'));
    const pdf = join(dir, download.suggestedFilename());
    assert.match(pdf, /renewal-C-[A-Z0-9]{8}-letters\.pdf$/);
    await download.saveAs(pdf);
    const ppm = await runAsync('pdftoppm', ['-png', '-r', '20', pdf, join(dir, 'page')]);
    assert.equal(ppm.status, 0, ppm.stderr);
    assert.equal(readdirSync(dir).filter((f) => /^page-\d+\.png$/.test(f)).length, 2, 'one page per notice');
    const created = await fx.ca.audit.search({ action: 'notice.campaign', limit: 1 });
    assert.match(created[0]!.actor, /^operator:clerk1\//);
    await page.close();
  });

  test("the refusal view shows the gateway's refusal of a revoked certificate and links to the facility", async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util, curl and pdftoppm')) return;
    const page = await browser.newPage();
    await page.goto(`https://127.0.0.1:${clerkConsole.address.port}/refusals`, { timeout: 60_000 });
    const text = (await page.textContent('main')) ?? '';
    assert.match(text, /REVOKED/);
    assert.match(text, /はこだて内科クリニック/);
    await shot(page, 'console-refusals.png');
    await Promise.all([page.waitForURL(new RegExp(`/facilities/${FACILITY_A}$`)), page.click(`a[href="/facilities/${FACILITY_A}"]`)]);
    assert.match((await page.textContent('main')) ?? '', new RegExp(FACILITY_A));
    await page.close();
  });

  test('an admin searches the audit trail (with its verification status) and reads migration readiness', async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util, curl and pdftoppm')) return;
    const page = await browser.newPage();
    const base = `https://127.0.0.1:${adminConsole.address.port}`;
    await page.goto(`${base}/audit`, { timeout: 60_000 });
    assert.match((await page.textContent('header.top')) ?? '', /admin1/);
    await page.fill('input[name="action"]', 'notice.*');
    await Promise.all([page.waitForURL(/\/audit\?action=notice\.\*/), page.click('form.panel button[type="submit"]')]);
    const text = (await page.textContent('main')) ?? '';
    assert.match(text, /notice\.campaign/);
    assert.match(text, /監査証跡(は改ざんされていません|を検証できません)/);
    await shot(page, 'console-audit.png');
    await page.goto(`${base}/migration?to=high`);
    assert.match((await page.textContent('main')) ?? '', /移行準備状況/);
    await shot(page, 'console-migration.png');
    await page.close();
  });
});
