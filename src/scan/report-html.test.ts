import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { complianceProfile } from '../policy/index.js';
import { judge } from './verdict.js';
import { buildReport, htmlReport } from './report.js';
import type { Findings } from './findings.js';
import { hasChromium, launchChromium } from '../testing/browser.js';
import { needPeer } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';

const findings: Findings = {
  target: { host: '127.0.0.1', port: 8443 },
  scannedAt: '2026-11-22T00:00:00.000Z',
  durationMs: 412,
  protocols: [
    { protocol: 'TLSv1.1', supported: true, suites: ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA'] },
    { protocol: 'TLSv1.2', supported: true, suites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'], serverOrder: true },
    { protocol: 'TLSv1.3', supported: true, suites: ['TLS_AES_256_GCM_SHA384'] },
  ],
  groups: ['x25519'],
  secureRenegotiation: true,
  compression: false,
  fallbackScsv: 'supported',
  clientAuth: { requested: true, required: false, caNames: ['C=JP, O=<b>bold</b>'] },
  notes: [],
};

test('the HTML report renders in Chromium with the verdict, every check, escaped server data, and prints to A4 PDF', async (t) => {
  if (!needPeer(t, hasChromium(), 'Chromium (/usr/bin/chromium)')) return;
  const report = buildReport(findings, judge(findings, complianceProfile('mhlw'), { hostname: '127.0.0.1', trustAnchors: [], now: new Date('2026-11-22T00:00:00Z') }));
  const dir = tempDir();
  const file = join(dir, 'report.html');
  writeFileSync(file, htmlReport(report));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
    await page.goto(`file://${file}`);
    assert.equal((await page.locator('.verdict').innerText()).trim(), '不適合 / Not compliant');
    assert.equal(await page.locator('tbody').first().locator('tr').count(), report.checks.length);
    const failRow = page.locator('tr.fail', { hasText: 'Protocol versions' });
    assert.equal(await failRow.count(), 1);
    assert.match(await failRow.innerText(), /TLSv1\.1/);
    assert.equal(await page.locator('b', { hasText: 'bold' }).count(), 0, 'a CA name from the server is shown as text, not markup');
    await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
    const pdf = await page.pdf({ format: 'A4', printBackground: true });
    assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
    if (process.env.SEKISHO_KEEP_SCREENSHOTS) writeFileSync(join(process.env.SEKISHO_KEEP_SCREENSHOTS, 'scan-report.png'), await page.screenshot({ fullPage: true }));
  } finally {
    await browser.close();
  }
});
