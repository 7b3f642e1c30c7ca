/**
 * The console in Debian's Chromium (playwright-core, JavaScript off: every
 * action is a plain form), signed in by an admin operator's certificate from
 * an NSS database: register a facility whose name carries markup, create and
 * print a notice (the PDF opens with pdftoppm), revoke a facility's
 * certificate with a reason after the confirmation page, and see a running
 * gateway (following the same store) refuse that certificate. One browser
 * launch. Set SEKISHO_SCREENSHOTS=DIR to keep the screenshots (docs/screenshots).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { BrowserContext, Page } from 'playwright-core';
import { CHROMIUM, chromiumWithCertificates, hasChromium, saveScreenshot } from '../testing/browser.js';
import { hasCommand, needPeer, run, runAsync } from '../testing/peers.js';
import { echoUpstream, FACILITY_A, gatewayFixture, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from '../gateway/index.js';
import { certificateToPem } from '../pki/index.js';
import { startConsoleServer, type ConsoleServer } from './index.js';


const ready = hasChromium() && hasCommand('certutil') && hasCommand('pk12util') && hasCommand('curl') && hasCommand('pdftoppm');
const NEW_FACILITY = '1310000011';
const MARKUP_NAME = '<script>alert("x")</script> 青葉\'s "クリニック"';

let fx: GatewayFixture;
let gateway: GatewaySetup;
let consoleServer: ConsoleServer;
let context: BrowserContext;
let page: Page;
let origin = '';
let upstream: Awaited<ReturnType<typeof echoUpstream>> | undefined;
let adminP12 = '';

/** curl through the gateway with a client certificate: the HTTP status, or 0 when the handshake or connection was refused. */
async function throughGateway(client: { cert: string; key: string }): Promise<number> {
  const port = gateway.gateway.addresses()[0]!.port;
  const r = await runAsync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '--cacert', fx.caFile, '--cert', client.cert, '--key', client.key, `https://127.0.0.1:${port}/`], { timeoutMs: 30_000 });
  return Number(r.stdout.trim() || '0');
}

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  const up = (upstream = await echoUpstream());
  const cfg = parseGatewayConfig({ home: fx.home, listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${up.port}`, allow: { anyone: true } }] }] });
  gateway = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('error'), watch: false });
  const tls = await fx.ca.issueWithNewKey({ profile: 'server', hosts: ['localhost'], keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
  consoleServer = await startConsoleServer({
    authority: fx.ca,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { cert: certificateToPem(tls.der), key: tls.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chain: [certificateToPem(fx.ca.issuingDer)] },
    portalUrl: 'https://portal.example.jp/',
    chromium: CHROMIUM,
    log: { log: () => undefined },
  });
  origin = `https://localhost:${consoleServer.address.port}`;

  // The admin's browser: its operator PKCS#12 imported into NSS, picked for the console without a prompt.
  const admin = await fx.ca.addOperator({ name: 'sato', role: 'admin' }, 'import-pw-123456', 'test');
  adminP12 = join(mkdtempSync(join(tmpdir(), 'sekisho-operator-')), 'admin.p12');
  writeFileSync(adminP12, admin.pkcs12);
  context = await chromiumWithCertificates({ pkcs12: [{ file: adminP12, password: 'import-pw-123456' }], pick: { [origin]: undefined }, acceptDownloads: true });
  page = await context.newPage();
});

after(async () => {
  if (!ready) return;
  await context?.close();
  await consoleServer?.close();
  await gateway?.close(500);
  upstream?.server.close();
  await fx.close();
});

describe('the console in Chromium, signed in by an operator certificate', () => {
  test('sign in and register a facility by form; its markup-laden name comes out as text', async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util, curl and pdftoppm')) return;
    await page.goto(`${origin}/`, { timeout: 30_000 });
    assert.match((await page.textContent('header')) ?? '', /sato[\s\S]*管理者/);
    saveScreenshot('console-home.png', await page.screenshot({ fullPage: true }));
    await page.goto(`${origin}/facilities`);
    await page.fill('input[name="number"]', NEW_FACILITY);
    await page.fill('input[name="name"]', MARKUP_NAME);
    await page.fill('input[name="address"]', '宮城県仙台市青葉区1-2-3');
    await page.click('form[action="/facilities"][method="post"] button');
    await page.waitForURL(`${origin}/facilities/${NEW_FACILITY}?done=facility-added`);
    assert.equal(await page.textContent('dl.facts dd'), MARKUP_NAME, 'the name is shown as text, not markup');
    assert.equal(await page.locator('script').count(), 0);
    saveScreenshot('console-facility.png', await page.screenshot({ fullPage: true }));
    // On paper: no menu, forms or buttons.
    await page.emulateMedia({ media: 'print' });
    assert.equal(await page.locator('nav.main').isVisible(), false);
    assert.equal(await page.locator('form button').first().isVisible(), false);
    assert.equal(await page.locator('dl.facts').isVisible(), true);
    await page.emulateMedia({ media: 'screen' });
    await page.goto(`${origin}/facilities?q=${encodeURIComponent('青葉')}`);
    assert.equal(await page.locator('tbody tr').count(), 1);
    saveScreenshot('console-facilities.png', await page.screenshot({ fullPage: true }));
    await page.goto(`${origin}/operators`);
    assert.match((await page.textContent('tbody')) ?? '', /sato/);
    saveScreenshot('console-operators.png', await page.screenshot({ fullPage: true }));
  });

  test('create a notice and print its letter: a PDF that pdftoppm opens', async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util, curl and pdftoppm')) return;
    await page.goto(`${origin}/notices?facility=${FACILITY_A}`);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('form[action="/notices"][method="post"] button', { noWaitAfter: true, timeout: 120_000 })]);
    assert.match(download.suggestedFilename(), new RegExp(`^notice-${FACILITY_A}-.+\\.pdf$`));
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-letter-'));
    const pdf = join(dir, download.suggestedFilename());
    await download.saveAs(pdf);
    assert.equal(readFileSync(pdf).subarray(0, 5).toString(), '%PDF-');
    const r = await runAsync('pdftoppm', ['-png', '-r', '40', pdf, join(dir, 'page')], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readdirSync(dir).some((f) => f.endsWith('.png')), 'pdftoppm rendered a page');
    const notices = await fx.ca.notices.list({ facilityNumber: FACILITY_A });
    assert.equal(notices.filter((n) => n.state === 'active').length, 1);
    const created = (await fx.ca.audit.list()).find((e) => e.action.startsWith('notice.') && e.actor.startsWith('operator:sato/'));
    assert.ok(created, 'the notice is audited with the operator as actor');
    await page.goto(`${origin}/notices?facility=${FACILITY_A}`);
    assert.match((await page.textContent('tbody')) ?? '', /有効/);
    saveScreenshot('console-notices.png', await page.screenshot({ fullPage: true }));
  });

  test('revoke a certificate with a reason after the confirmation page; the gateway then refuses it', async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util, curl and pdftoppm')) return;
    const victim = fx.clients.victim;
    assert.equal(await throughGateway(victim), 200, 'the certificate works before');
    await page.goto(`${origin}/certificates?status=issued&profile=facility`);
    saveScreenshot('console-certificates.png', await page.screenshot({ fullPage: true }));
    await page.click(`a[href="/certificates/${victim.serial}/revoke"]`);
    await page.selectOption('select[name="reason"]', 'keyCompromise');
    await page.check('input[name="confirm"]');
    saveScreenshot('console-revoke.png', await page.screenshot({ fullPage: true }));
    await page.click('form[method="post"] button.danger');
    await page.waitForURL(/done=certificate-revoked/);
    assert.match((await page.textContent('.flash')) ?? '', /失効させました/);
    assert.equal((await fx.ca.certificate(victim.serial!))?.status, 'revoked');
    let status = 200;
    for (let i = 0; i < 40 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 500));
      status = await throughGateway(victim);
    }
    assert.notEqual(status, 200, 'the gateway refuses the revoked certificate');
    assert.equal(await throughGateway(fx.clients.good), 200, 'and still admits the others');
  });

  test("regression: an operator's console certificate is no node credential: the gateway refuses it even on a route open to anyone", async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util, curl and pdftoppm')) return;
    const pem = join(mkdtempSync(join(tmpdir(), 'sekisho-operator-')), 'sato.pem');
    const converted = run('openssl', ['pkcs12', '-in', adminP12, '-passin', 'pass:import-pw-123456', '-noenc', '-out', pem]);
    assert.equal(converted.status, 0, converted.stderr);
    const port = gateway.gateway.addresses()[0]!.port;
    const r = await runAsync('curl', ['-s', '-w', '\n%{http_code}', '--max-time', '10', '--cacert', fx.caFile, '--cert', pem, `https://127.0.0.1:${port}/`], { timeoutMs: 30_000 });
    assert.equal(r.stdout.trim().split('\n').pop(), '403', r.stdout.slice(0, 300));
    assert.match(r.stdout, /OPERATOR_CERTIFICATE/);
    assert.equal(await throughGateway(fx.clients.good), 200, 'a facility still gets in on the same route');
  });
});
