/**
 * The portal's bundled browser code (dist/src/web/assets/portal.js, built by
 * esbuild from src/web/browser/portal.ts) run in Debian's Chromium, once:
 * - its notice-ID check is the server's: for valid IDs and every kind of
 *   corruption (each one-character change, transpositions, the other kind's
 *   ID, full-width and lower-case forms, wrong lengths) the bundle in the
 *   browser and ca/notice-id.ts in Node give the same judgement;
 * - the CSR it builds (pki/csr-core.ts on WebCrypto) verifies in
 *   `openssl req` and the server issues for it; the PKCS#12 it builds
 *   (pki/pkcs12-core.ts on WebCrypto) opens in `openssl pkcs12` with the key
 *   matching the certificate, and its ZIP (web/zip.ts) passes `unzip -t`.
 * Defect guarded: the page's script re-implemented DER, CSR, PKCS#12, ZIP
 * and the check character beside the TypeScript ones and could drift.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Browser, Page } from 'playwright-core';
import { hasChromium, launchChromium } from '../testing/browser.js';
import { needCommand, needPeer } from '../testing/peers.js';
import { fetchTls, runPeer, startTestEnrollment, TEST_FACILITY, type TestEnrollment } from '../testing/enrollment-server.js';
import { generateNoticeId, NOTICE_ID_ALPHABET, noticeIdProblem, type NoticeIdKind } from '../ca/index.js';
import { readPkcs12 } from '../pki/index.js';

const PASSWORD = 'Bundle-Pass-ブラウザ-7';

/** Valid IDs and corruptions of them, for both kinds. */
function idCases(): { kind: NoticeIdKind; input: string }[] {
  const cases: { kind: NoticeIdKind; input: string }[] = [];
  for (const kind of ['request', 'reference'] as const) {
    for (let n = 0; n < 4; n++) {
      const id = generateNoticeId(kind);
      const compact = id.replace(/-/g, '');
      cases.push({ kind, input: id }, { kind, input: id.toLowerCase() }, { kind, input: compact.replace(/(.{4})/g, '$1 ') });
      // Full-width letters and digits and a Japanese long-vowel mark as separator: NFKC in both engines.
      cases.push({ kind, input: [...id].map((c) => (c === '-' ? 'ー' : String.fromCharCode(c.charCodeAt(0) + 0xfee0))).join('') });
      cases.push({ kind: kind === 'request' ? 'reference' : 'request', input: id });
      cases.push({ kind, input: compact.slice(0, -1) }, { kind, input: `${compact}A` }, { kind, input: '' }, { kind, input: compact.replace(/^./, '0') });
      for (let i = 0; i < compact.length; i++) {
        for (const c of NOTICE_ID_ALPHABET) if (c !== compact[i]) cases.push({ kind, input: compact.slice(0, i) + c + compact.slice(i + 1) });
        if (i + 1 < compact.length && compact[i] !== compact[i + 1]) cases.push({ kind, input: compact.slice(0, i) + compact[i + 1] + compact[i] + compact.slice(i + 2) });
      }
    }
  }
  return cases;
}

describe('the bundled portal script in Chromium', () => {
  let t: TestEnrollment;
  let browser: Browser | undefined;
  let page: Page | undefined;
  before(async () => {
    t = await startTestEnrollment({ rateLimit: { attempts: 1000 } });
    if (!hasChromium()) return;
    browser = await launchChromium();
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await context.newPage();
    await page.goto(t.url);
  });
  after(async () => {
    await browser?.close();
    await t.close();
  });

  test("the bundle's notice-ID check agrees with the server's on valid and corrupted IDs", async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)')) return;
    const cases = idCases();
    assert.ok(cases.length > 2000, `${cases.length} cases`);
    const inBrowser = await page!.evaluate(async (list) => {
      const m = (await import('/assets/portal.js' as string)) as { noticeIdProblem(kind: string, input: string): string | undefined };
      return list.map((c) => m.noticeIdProblem(c.kind, c.input) ?? 'ok');
    }, cases);
    const onServer: string[] = cases.map((c) => noticeIdProblem(c.kind, c.input) ?? 'ok');
    const differ = cases.filter((_, i) => inBrowser[i] !== onServer[i]).map((c, i) => `${c.kind} ${JSON.stringify(c.input)}: browser ${inBrowser[i]}, server ${onServer[i]}`);
    assert.deepEqual(differ, []);
    for (const p of ['ok', 'check', 'swapped', 'length', 'characters', 'empty']) assert.ok(onServer.includes(p), `the cases include ${p}`);
  });

  test('the CSR and PKCS#12 the bundle builds with WebCrypto are accepted by OpenSSL, and its ZIP by unzip', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(tc, 'openssl') || !needCommand(tc, 'unzip')) return;
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-bundle-'));
    for (const keyType of ['ecdsa-p256', 'rsa-2048'] as const) {
      const made = await page!.evaluate(async (kt) => {
        const m = (await import('/assets/portal.js' as string)) as { makeKeyAndCsr(kt: string): Promise<{ csr: Uint8Array; pkcs8: Uint8Array }>; csrPem(der: Uint8Array): string };
        const { csr, pkcs8 } = await m.makeKeyAndCsr(kt);
        return { csrPem: m.csrPem(csr), pkcs8: Array.from(pkcs8) };
      }, keyType);
      writeFileSync(join(dir, `${keyType}.csr`), made.csrPem);
      const verified = await runPeer('openssl', ['req', '-in', join(dir, `${keyType}.csr`), '-verify', '-noout', '-text']);
      assert.equal(verified.status, 0, verified.stderr);
      assert.match(`${verified.stdout}${verified.stderr}`, /verify OK|Certificate request self-signature verify OK/);
      assert.match(verified.stdout, keyType === 'rsa-2048' ? /sha256WithRSAEncryption/ : /ecdsa-with-SHA256/);

      const n = await t.notice();
      const r = await fetchTls(new URL('/api/enroll-csr', t.url).href, { ca: t.rootPem, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ requestId: n.requestId, referenceId: n.referenceId, csr: made.csrPem }) });
      assert.equal(r.status, 200, r.text);
      const issued = JSON.parse(r.text) as { certificate: string; chain: string[]; friendlyName: string };

      const built = await page!.evaluate(
        async (x) => {
          const m = (await import('/assets/portal.js' as string)) as {
            pemToDer(pem: string): Uint8Array;
            buildBrowserPkcs12(i: { pkcs8: Uint8Array; certificate: Uint8Array; chain: Uint8Array[]; password: string; friendlyName: string }): Promise<Uint8Array>;
            zipStore(files: { name: string; data: Uint8Array }[]): Uint8Array;
          };
          const p12 = await m.buildBrowserPkcs12({ pkcs8: new Uint8Array(x.pkcs8), certificate: m.pemToDer(x.certificate), chain: x.chain.map(m.pemToDer), password: x.password, friendlyName: x.friendlyName });
          const zip = m.zipStore([{ name: 'はこだて.p12', data: p12 }, { name: 'thumbprints.txt', data: new TextEncoder().encode('拇印\r\n') }]);
          return { p12: Array.from(p12), zip: Array.from(zip) };
        },
        { pkcs8: made.pkcs8, certificate: issued.certificate, chain: issued.chain, password: PASSWORD, friendlyName: issued.friendlyName },
      );
      const p12 = Buffer.from(built.p12);
      writeFileSync(join(dir, `${keyType}.p12`), p12);
      const opened = await runPeer('openssl', ['pkcs12', '-in', join(dir, `${keyType}.p12`), '-passin', `pass:${PASSWORD}`, '-nodes', '-info']);
      assert.equal(opened.status, 0, opened.stderr);
      assert.match(opened.stdout, /BEGIN PRIVATE KEY/);
      assert.match(opened.stderr, /MAC: sha256/);
      assert.match(opened.stderr, /PBES2, PBKDF2, AES-256-CBC/);
      assert.match(opened.stdout, new RegExp(`CN = ${TEST_FACILITY.number}`));
      // The key in the file is the certificate's (readPkcs12 refuses a mismatch), and the labels survive.
      const contents = readPkcs12(p12, PASSWORD);
      assert.equal(contents.friendlyName, TEST_FACILITY.name);
      assert.equal(contents.chain.length, 2);

      writeFileSync(join(dir, `${keyType}.zip`), Buffer.from(built.zip));
      const tested = await runPeer('unzip', ['-t', join(dir, `${keyType}.zip`)]);
      assert.equal(tested.status, 0, tested.stdout + tested.stderr);
      assert.match(tested.stdout, /No errors detected/);
      const inner = await runPeer('unzip', ['-p', join(dir, `${keyType}.zip`), 'thumbprints.txt']);
      assert.equal(inner.stdout, '拇印\r\n');
    }
  });
});
