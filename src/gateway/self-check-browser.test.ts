/**
 * The self-check page in Debian's Chromium (playwright-core), without and
 * with a client certificate. Chromium on Linux takes client certificates
 * from the NSS database in $HOME/.pki/nssdb: each run gets a HOME of its own
 * with a database made by certutil and the certificate imported by pk12util,
 * and a persistent profile whose Preferences carry the
 * `auto_select_certificate` content setting for the self-check's origin (the
 * AutoSelectCertificateForUrls policy, per profile), so headless Chromium
 * picks the certificate without a dialog. JavaScript is off: the page must
 * work without it. Set SEKISHO_SCREENSHOTS=DIR to keep the screenshots.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { BrowserContext } from 'playwright-core';
import { chromiumWithCertificates, hasChromium, saveScreenshot } from '../testing/browser.js';
import { hasCommand, needPeer, run } from '../testing/peers.js';
import { FACILITY_A, gatewayFixture, PASSPHRASE, type ClientFiles, type GatewayFixture } from '../testing/gateway-fixture.js';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';
import { complianceProfile, policyOutlook, type PolicySchedule } from '../policy/index.js';


const ready = hasChromium() && hasCommand('certutil') && hasCommand('pk12util') && hasCommand('openssl');
/** The switch to the high profile: 1 April of next year, Japan time. */
const CUT = new Date(`${new Date().getUTCFullYear() + 1}-04-01T00:00:00+09:00`);
const schedule: PolicySchedule = { phases: [{ profile: complianceProfile('exception') }, { from: CUT, profile: complianceProfile('high') }], clientPolicy: { exceptions: [] } };

let fx: GatewayFixture;
let setup: GatewaySetup;
let origin = '';

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  const cfg = parseGatewayConfig({
    home: fx.home,
    selfCheck: { listen: '127.0.0.1:0', contact: { name: 'はこだて地域医療ネットワーク事務局', phone: '0138-00-0000', email: 'help@example.jp', hours: '平日 9:00-17:00' } },
    listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: 'http://127.0.0.1:9', allow: { anyone: true } }] }],
  });
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('error'), watch: false, outlook: () => policyOutlook(schedule, new Date()) });
  origin = `https://127.0.0.1:${setup.selfCheck!.address.port}`;
});

after(async () => {
  if (!ready) return;
  await setup.close(500);
  await fx.close();
});

/** Chromium whose NSS database holds `client`, if given, picked for the self-check without a prompt. */
async function browserWith(client?: ClientFiles): Promise<BrowserContext> {
  const pkcs12: { file: string; password: string }[] = [];
  if (client) {
    const file = join(mkdtempSync(join(tmpdir(), 'sekisho-client-')), 'client.p12');
    const r = run('openssl', ['pkcs12', '-export', '-in', client.cert, '-inkey', client.key, '-out', file, '-passout', 'pass:import-pw']);
    assert.equal(r.status, 0, r.stderr);
    pkcs12.push({ file, password: 'import-pw' });
  }
  return chromiumWithCertificates({ pkcs12, pick: { [origin]: undefined }, viewport: { width: 960, height: 1200 } });
}

async function open(client: ClientFiles | undefined, shot: string): Promise<{ text: string; html: string; cspErrors: string[] }> {
  const context = await browserWith(client);
  try {
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    await page.goto(`${origin}/`, { timeout: 30_000 });
    const text = (await page.textContent('body')) ?? '';
    // The inline style applied (its hash is in the CSP): the heading's rule is drawn.
    assert.equal(await page.evaluate("getComputedStyle(document.querySelector('h1')).borderBottomStyle"), 'solid');
    saveScreenshot(shot, await page.screenshot({ fullPage: true }));
    return { text, html: await page.content(), cspErrors };
  } finally {
    await context.close();
  }
}

describe('the self-check page in Chromium', () => {
  test('without a client certificate: TLS 1.3, "none offered", refused under both policies for it, in Japanese and English', async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util and openssl')) return;
    const { text, html, cspErrors } = await open(undefined, 'self-check-no-cert.png');
    for (const s of ['接続診断', 'Connection self-check', 'TLS 1.3', '提示されていません', 'None was offered', 'クライアント証明書が提示されませんでした', '接続できません', 'This connection would be refused', 'security.tls.version.min', 'TLS 1.2 を使用する', 'はこだて地域医療ネットワーク事務局']) {
      assert.ok(text.includes(s), `the page shows ${s}`);
    }
    assert.match(html, /id="in-force" class="verdict refused"/);
    assert.match(html, /id="coming" class="verdict refused"/);
    assert.match(html, /<h3 class="this-browser">Microsoft Edge \/ Google Chrome/, 'Chromium is recognized');
    assert.deepEqual(cspErrors, []);
  });

  test('with the facility certificate in its NSS database: whose it is, until when, not revoked, accepted now and after the switch', async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util and openssl')) return;
    const { text, html, cspErrors } = await open(fx.clients.good, 'self-check.png');
    for (const s of ['提示されました', 'Offered', 'はこだて内科クリニック', FACILITY_A, '有効期限', '失効していません', 'Not revoked', '本ネットワークの認証局につながります', '接続できます', 'This connection would be accepted', '高セキュリティ型']) {
      assert.ok(text.includes(s), `the page shows ${s}`);
    }
    assert.match(html, /id="in-force" class="verdict accepted"/);
    assert.match(html, /id="coming" class="verdict accepted"/);
    assert.ok(text.includes(fx.clients.good.serial!), 'the serial');
    assert.deepEqual(cspErrors, []);
  });

  test('with a revoked certificate: shown as revoked, refused under both policies, with what to do', async (t) => {
    if (!needPeer(t, ready, 'Chromium, certutil, pk12util and openssl')) return;
    const { text, html } = await open(fx.clients.revoked, 'self-check-revoked.png');
    for (const s of ['失効しています', 'Revoked', 'この証明書（またはその発行元）は失効しています', '運営主体に連絡し、証明書の再発行を受けてください']) assert.ok(text.includes(s), `the page shows ${s}`);
    assert.match(html, /id="in-force" class="verdict refused"/);
    assert.match(html, /data-code="REVOKED"/);
  });
});
