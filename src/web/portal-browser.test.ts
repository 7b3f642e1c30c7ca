/**
 * The portal in Debian's Chromium (playwright-core): the clinic fills the
 * form and downloads; openssl opens what it got. Both key modes: made in the
 * browser (WebCrypto, only a CSR reaches the server) and made on the server.
 * Also the notice letter: rendered in Chromium, printed to PDF, and the PDF
 * opened with pdftoppm. Set SEKISHO_SCREENSHOTS=DIR to keep the screenshots.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import type { Browser, Page } from 'playwright-core';
import { hasChromium, launchChromium, saveScreenshot } from '../testing/browser.js';
import { needCommand, needPeer } from '../testing/peers.js';
import { runPeer, startTestEnrollment, TEST_FACILITY, withTypo, type TestEnrollment } from '../testing/enrollment-server.js';
import { findChromium, printToPdf, renderNoticeLetter } from '../ca/index.js';
import { certificateToPem, readPkcs12 } from '../pki/index.js';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const PASSWORD = 'Shinryo-Pass-2041';

describe('the portal in Chromium', () => {
  let t: TestEnrollment;
  let browser: Browser | undefined;
  before(async () => {
    t = await startTestEnrollment({ rateLimit: { attempts: 1000 } });
    if (hasChromium()) browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await t.close();
  });

  async function openPortal(): Promise<Page> {
    // The test trusts the CA's root the way a clinic would after checking its thumbprint.
    const context = await browser!.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, locale: 'ja-JP', viewport: { width: 900, height: 1100 } });
    const page = await context.newPage();
    await page.goto(t.url);
    return page;
  }

  async function fill(page: Page, n: { requestId: string; referenceId: string }) {
    await page.fill('#request_id', n.requestId.toLowerCase());
    await page.fill('#reference_id', n.referenceId);
    await page.fill('#password', PASSWORD);
    await page.fill('#password_confirm', PASSWORD);
  }

  async function download(page: Page, suffix: string): Promise<Buffer> {
    const [d] = await Promise.all([page.waitForEvent('download'), page.click(`a.download[download$="${suffix}"]`)]);
    const path = join(mkdtempSync(join(tmpdir(), 'sekisho-dl-')), d.suggestedFilename());
    await d.saveAs(path);
    return readFileSync(path);
  }

  async function opensslOpens(p12: Buffer): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-p12-'));
    writeFileSync(join(dir, 'c.p12'), p12);
    const r = await runPeer('openssl', ['pkcs12', '-in', join(dir, 'c.p12'), '-passin', `pass:${PASSWORD}`, '-nodes']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /BEGIN PRIVATE KEY/);
    const leaf = await runPeer('openssl', ['pkcs12', '-in', join(dir, 'c.p12'), '-passin', `pass:${PASSWORD}`, '-nokeys', '-clcerts']);
    return leaf.stdout;
  }

  /** Connects with the PKCS#12 to a mutual-TLS server that requires a client certificate of this CA; returns the CN it saw. */
  async function authenticates(p12: Buffer): Promise<string> {
    const tlsKey = await t.ca.issueWithNewKey({ profile: 'server', hosts: ['127.0.0.1'], keyType: 'ecdsa-p256', via: 'test', actor: 'operator:test' });
    const server = createTlsServer({ cert: [certificateToPem(tlsKey.der), certificateToPem(t.ca.issuingDer)].join(''), key: tlsKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), ca: t.rootPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (s) => {
      s.end(`${(s.getPeerCertificate().subject as unknown as Record<string, string>).CN}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      return await new Promise<string>((resolve, reject) => {
        const c = tlsConnect({ host: '127.0.0.1', port, ca: t.rootPem, pfx: p12, passphrase: PASSWORD }, () => undefined);
        let got = '';
        c.on('data', (d: Buffer) => (got += d.toString()));
        c.on('end', () => resolve(got));
        c.on('error', reject);
      });
    } finally {
      server.close();
    }
  }

  test('a typo is caught in the page before anything is sent', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)')) return;
    const n = await t.notice();
    const page = await openPortal();
    saveScreenshot('portal.png', await page.screenshot({ fullPage: true }));
    const before = (await t.ca.audit.list()).length;
    const typo = withTypo('request', n.requestId);
    await fill(page, { ...n, requestId: typo });
    assert.match(await page.textContent('#request_id_hint') ?? '', /入力ミス|入れ替/);
    await page.click('#submit');
    await page.waitForSelector('#error:not([hidden])');
    assert.equal(await page.getAttribute('#error', 'data-code'), 'NOTICE_ID_MISTYPED');
    assert.equal((await t.ca.audit.list()).length, before, 'the server saw no attempt');
    saveScreenshot('portal-error.png', await page.screenshot({ fullPage: true }));
    await page.context().close();
  });

  test('key made in the browser: only a CSR reaches the server; openssl opens the PKCS#12 built by WebCrypto', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(tc, 'openssl')) return;
    const n = await t.notice();
    const page = await openPortal();
    assert.equal(await page.isVisible('#keymode'), true, 'WebCrypto mode offered');
    await fill(page, n);
    await page.selectOption('#key_type', 'ecdsa-p256');
    await page.click('#submit');
    await page.waitForSelector('#issued', { timeout: 30_000 });
    saveScreenshot('portal-result.png', await page.screenshot({ fullPage: true }));
    const p12 = await download(page, '.p12');
    const leaf = await opensslOpens(p12);
    assert.match(leaf, new RegExp(`CN = ${TEST_FACILITY.number}`));
    // openssl prints a BMPString friendlyName byte-wise; read it back with sekisho's own reader.
    const contents = readPkcs12(p12, PASSWORD);
    assert.equal(contents.friendlyName, TEST_FACILITY.name);
    assert.equal(contents.chain.length, 2);
    const zip = await download(page, '.zip');
    assert.ok(zip.includes(p12));
    if (needCommand(tc, 'unzip')) {
      const zdir = mkdtempSync(join(tmpdir(), 'sekisho-zip-'));
      writeFileSync(join(zdir, 'c.zip'), zip);
      const listed = await runPeer('unzip', ['-t', join(zdir, 'c.zip')]);
      assert.equal(listed.status, 0, listed.stdout + listed.stderr);
      assert.match(listed.stdout, /root-ca\.cer[\s\S]*thumbprints\.txt[\s\S]*No errors detected/);
    }
    // The browser-built PKCS#12 authenticates as a TLS client to a server that requires this CA's certificates.
    assert.equal(await authenticates(p12), `${TEST_FACILITY.number}`);
    const events = await t.ca.audit.list();
    const signing = events.filter((e) => e.action === 'certificate.signing' && e.details?.facility === TEST_FACILITY.number).pop();
    assert.equal(signing?.details?.via, 'portal-csr', 'issued for a CSR: the server never made or saw the key');
    assert.equal((await t.ca.notices.list()).find((x) => x.id === n.id)?.downloads, 1);
    await page.context().close();
  });

  test('regression: with the key made in the browser, what the page cannot build (the legacy format, a password the PKCS#12 cannot encode) is refused before the CSR is sent; the legacy file comes with the key made on the server and NSS imports it', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(tc, 'openssl')) return;
    // Before: the page ignored "legacy" in its default (browser) mode, spent a download and handed over an AES file
    // an old Windows cannot import; a password its build refused failed only after the server had issued.
    const n = await t.notice();
    const page = await openPortal();
    const before = (await t.ca.audit.list()).length;
    const refusedBeforeSending = async (code: RegExp) => {
      await page.click('#submit');
      await page.waitForSelector('#error:not([hidden])');
      assert.match((await page.getAttribute('#error', 'data-code')) ?? '', code);
      assert.equal((await t.ca.audit.list()).length, before, 'the server saw no attempt');
      await page.evaluate("document.getElementById('error').hidden = true");
    };
    await fill(page, n);
    for (const keyType of ['rsa-2048', 'ecdsa-p256']) {
      await page.selectOption('#key_type', keyType);
      await page.check('#legacy');
      await refusedBeforeSending(/^PKCS12_LEGACY_UNAVAILABLE$/);
      assert.match((await page.textContent('#error')) ?? '', /サーバーで鍵を作成[\s\S]*Make the key on the server/);
    }
    await page.uncheck('#legacy');
    for (const bad of [`${PASSWORD}\ud800`, `\udc00${PASSWORD}`]) {
      // Set by script: a lone surrogate cannot be typed (JSON.stringify writes it as an escape the page decodes).
      await page.evaluate(`for (const id of ['password', 'password_confirm']) document.getElementById(id).value = ${JSON.stringify(bad)}`);
      await refusedBeforeSending(/^PKCS12_PASSWORD_INVALID$/);
    }
    const summary = (await t.ca.notices.list()).find((x) => x.id === n.id)!;
    assert.deepEqual([summary.state, summary.downloads], ['active', 0], 'no download was spent');
    // The legacy file, as the message says: the key made on the server.
    await page.fill('#password', PASSWORD);
    await page.fill('#password_confirm', PASSWORD);
    await page.selectOption('#key_type', 'rsa-2048');
    await page.check('#legacy');
    await page.check('input[name=key_mode][value=server]');
    await Promise.all([page.waitForNavigation(), page.click('#submit')]);
    await page.waitForSelector('#issued');
    const p12 = await download(page, '.p12');
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-legacy-'));
    writeFileSync(join(dir, 'l.p12'), p12);
    const info = await runPeer('openssl', ['pkcs12', '-info', '-noout', '-in', join(dir, 'l.p12'), '-passin', `pass:${PASSWORD}`]);
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stderr, /MAC: sha1/);
    assert.match(info.stderr, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC/);
    assert.doesNotMatch(info.stderr, /AES/);
    if (needCommand(tc, 'pk12util') && needCommand(tc, 'certutil')) {
      const db = join(dir, 'nss');
      writeFileSync(join(dir, 'pw'), PASSWORD);
      mkdirSync(db);
      assert.equal((await runPeer('certutil', ['-N', '-d', `sql:${db}`, '--empty-password'])).status, 0);
      const imported = await runPeer('pk12util', ['-i', join(dir, 'l.p12'), '-d', `sql:${db}`, '-w', join(dir, 'pw')]);
      assert.equal(imported.status, 0, imported.stdout + imported.stderr);
      assert.match((await runPeer('certutil', ['-K', '-d', `sql:${db}`])).stdout, /rsa/);
    }
    assert.equal((await t.ca.notices.list()).find((x) => x.id === n.id)?.downloads, 1);
    await page.context().close();
  });

  test('regression: a hostile page cannot make its visitors\' browsers post to the portal (a form, a form into a frame, a no-cors fetch): refused before an attempt is counted', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)')) return;
    // Before: nothing told the portal's POSTs from another site's, so any page a clinic's staff opened could spend
    // the clinic address's allowance (and a notice's wrong-reference count), or spread guesses over its visitors' addresses.
    const n = await t.notice();
    const wrong = (await t.notice()).referenceId;
    const fields = { request_id: n.requestId, reference_id: wrong, password: PASSWORD, password_confirm: PASSWORD };
    const inputs = Object.entries(fields).map(([k, v]) => `<input name="${k}" value="${v}">`).join('');
    const evil = createHttpServer((req, res) => {
      const target = req.url === '/frame' ? ' target="sink"' : '';
      const body = req.url === '/fetch'
        ? `<script>fetch(${JSON.stringify(new URL('/enroll', t.url).href)}, { method: 'POST', mode: 'no-cors', body: new URLSearchParams(${JSON.stringify(fields)}) }).finally(() => { document.title = 'sent'; });</script>`
        : `<iframe name="sink"></iframe><form id="f" method="post" action="${new URL('/enroll', t.url).href}"${target}>${inputs}</form><script>document.getElementById('f').submit(); setTimeout(() => { document.title = 'sent'; }, 1500);</script>`;
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(`<!DOCTYPE html><html><head><title>lure</title></head><body>${body}</body></html>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    try {
      const before = await t.ca.audit.list();
      const context = await browser!.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      // A top-level form post: the portal answers its own page with the refusal, in Japanese and English.
      await Promise.all([page.waitForURL(new URL('/enroll', t.url).href), page.goto(`${evilUrl}/top`)]);
      assert.equal(await page.getAttribute('#error', 'data-code'), 'CROSS_SITE_REQUEST');
      assert.match((await page.textContent('#error')) ?? '', /他のサイト[\s\S]*another site/);
      for (const path of ['/frame', '/fetch']) {
        await page.goto(`${evilUrl}${path}`);
        await page.waitForFunction("document.title === 'sent'", undefined, { timeout: 10_000 });
      }
      const after = await t.ca.audit.list();
      assert.deepEqual(after.slice(before.length).filter((e) => e.action.startsWith('notice.')), [], 'no notice attempt reached the notices');
      assert.equal((await t.ca.notices.list()).find((x) => x.id === n.id)?.failures, 0, 'the notice counted no wrong reference ID');
      await context.close();
      // The portal's own page still posts (form) and fetches (browser key) as before.
      const own = await openPortal();
      await fill(own, { ...n, referenceId: wrong });
      await own.check('input[name=key_mode][value=server]');
      await Promise.all([own.waitForNavigation(), own.click('#submit')]);
      assert.equal(await own.getAttribute('#error', 'data-code'), 'NOTICE_REFERENCE_WRONG');
      const mine = await openPortal();
      await fill(mine, { ...n, referenceId: wrong });
      await mine.click('#submit');
      await mine.waitForSelector('#error:not([hidden])');
      assert.equal(await mine.getAttribute('#error', 'data-code'), 'NOTICE_REFERENCE_WRONG');
      await own.context().close();
      await mine.context().close();
    } finally {
      evil.close();
    }
  });

  test('key made on the server (no WebCrypto needed): the form posts and the files download', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(tc, 'openssl')) return;
    const n = await t.notice({ maxDownloads: 1 });
    const page = await openPortal();
    await fill(page, n);
    await page.check('input[name=key_mode][value=server]');
    await Promise.all([page.waitForNavigation(), page.click('#submit')]);
    await page.waitForSelector('#issued');
    const leaf = await opensslOpens(await download(page, '.p12'));
    assert.match(leaf, new RegExp(`CN = ${TEST_FACILITY.number}`));
    const cer = await download(page, '.cer');
    assert.ok(cer.equals(t.ca.rootDer));
    // Used now: the same IDs again say so, in Japanese and English.
    const again = await openPortal();
    await fill(again, n);
    await again.check('input[name=key_mode][value=server]');
    await Promise.all([again.waitForNavigation(), again.click('#submit')]);
    assert.equal(await again.getAttribute('#error', 'data-code'), 'NOTICE_USED');
    assert.match((await again.textContent('#error')) ?? '', /使用済み[\s\S]*already used/);
    await page.context().close();
    await again.context().close();
  });

  test('the notice letter: A4, Japanese, both IDs and thumbprints; its PDF opens with pdftoppm', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(tc, 'pdftoppm')) return;
    const notice = await t.notice();
    const html = renderNoticeLetter({ notice, organization: 'はこだて地域医療ネットワーク', portalUrl: t.url, rootDer: t.ca.rootDer });
    const context = await browser!.newContext({ viewport: { width: 900, height: 1300 } });
    const page = await context.newPage();
    await page.setContent(html);
    const text = (await page.textContent('body')) ?? '';
    for (const s of [notice.requestId, notice.referenceId, TEST_FACILITY.name, TEST_FACILITY.number, '秘密キーの保護を強力にする', 'SHA-256', 'SHA-1', t.url]) assert.ok(text.includes(s), `the letter shows ${s}`);
    saveScreenshot('letter.png', await page.screenshot({ fullPage: true }));
    await context.close();
    const pdf = await printToPdf(html, findChromium()!);
    assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-pdf-'));
    writeFileSync(join(dir, 'letter.pdf'), pdf);
    const r = await runPeer('pdftoppm', ['-png', '-r', '60', join(dir, 'letter.pdf'), join(dir, 'page')]);
    assert.equal(r.status, 0, r.stderr);
    const pages = readdirSync(dir).filter((f) => f.startsWith('page') && f.endsWith('.png'));
    assert.equal(pages.length, 1, 'the letter fits on one A4 page');
    const png = readFileSync(join(dir, pages[0]!));
    // A4 at 60 dpi is 496 × 702 pixels.
    assert.equal(png.readUInt32BE(16), 496);
    assert.equal(png.readUInt32BE(20), 702);
    assert.ok(statSync(join(dir, pages[0]!)).size > 20_000, 'the page has content');
    saveScreenshot('letter-pdf.png', png);
    const info = await runPeer('pdfinfo', [join(dir, 'letter.pdf')]);
    if (info.status === 0) assert.match(info.stdout, /Page size:\s+59[45]\.\d* x 841\.\d* pts \(A4\)/);
  });
});

describe('the page\'s PKCS#12 and the operator\'s iteration count', () => {
  test('regression: the PKCS#12 the page builds uses pkcs12.iterations from the configuration, as the server\'s does; NSS and OpenSSL 3 open both', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(tc, 'openssl')) return;
    // Before: the page always wrote 2,048 iterations (the code's default), whatever the operator configured.
    const iterations = 50_000;
    const t = await startTestEnrollment({ rateLimit: { attempts: 1000 }, pkcs12: { iterations } });
    const browser = await launchChromium();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'sekisho-iter-'));
      writeFileSync(join(dir, 'pw'), PASSWORD);
      for (const mode of ['browser', 'server'] as const) {
        const n = await t.notice();
        const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
        const page = await context.newPage();
        await page.goto(t.url);
        await page.fill('#request_id', n.requestId);
        await page.fill('#reference_id', n.referenceId);
        await page.fill('#password', PASSWORD);
        await page.fill('#password_confirm', PASSWORD);
        await page.check(`input[name=key_mode][value=${mode}]`);
        await page.click('#submit');
        await page.waitForSelector('a.download[download$=".p12"]', { timeout: 60_000 });
        const [d] = await Promise.all([page.waitForEvent('download'), page.click('a.download[download$=".p12"]')]);
        const file = join(dir, `${mode}.p12`);
        await d.saveAs(file);
        await context.close();
        const info = await runPeer('openssl', ['pkcs12', '-info', '-noout', '-in', file, '-passin', `file:${join(dir, 'pw')}`]);
        assert.equal(info.status, 0, info.stderr);
        assert.match(info.stderr, new RegExp(`MAC: sha256, Iteration ${iterations}\\b`), `${mode}: ${info.stderr}`);
        assert.equal((info.stderr.match(new RegExp(`PBES2, PBKDF2, AES-256-CBC, Iteration ${iterations}, PRF hmacWithSHA256`, 'g')) ?? []).length, 2, `${mode}: ${info.stderr}`);
        if (needCommand(tc, 'pk12util') && needCommand(tc, 'certutil')) {
          const db = join(dir, `nss-${mode}`);
          mkdirSync(db);
          assert.equal((await runPeer('certutil', ['-N', '-d', `sql:${db}`, '--empty-password'])).status, 0);
          const imported = await runPeer('pk12util', ['-i', file, '-d', `sql:${db}`, '-w', join(dir, 'pw')]);
          assert.equal(imported.status, 0, `${mode}: ${imported.stdout}${imported.stderr}`);
        }
      }
    } finally {
      await browser.close();
      await t.close();
    }
  });
});
