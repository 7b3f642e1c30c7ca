/**
 * The letter tells the clinic how many downloads it has and how to keep its
 * certificate (back it up apart from the terminal, delete the download,
 * reinstall on a replacement PC), and still prints on one A4 page with the
 * longest names (Chromium prints it, pdftoppm counts the pages).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { findChromium, printToPdf, renderNoticeLetter, renderNoticeLetters, type CreatedNotice } from './index.js';
import { deliveryText } from './delivery.js';
import { needCommand, needPeer, runAsync } from '../testing/peers.js';

const ROOT = Buffer.from('308201', 'hex');
const notice = (o: Partial<CreatedNotice> = {}): CreatedNotice => ({
  id: 'N-ACDEFGHJ',
  kind: 'letter',
  facility: { number: '0110113719', name: 'はこだてクリニック', status: 'active', createdAt: '2026-12-01T00:00:00Z', updatedAt: '2026-12-01T00:00:00Z' } as CreatedNotice['facility'],
  requestId: 'ACDE-FGHJ-KLMN-PQRT',
  referenceId: 'UVWX-Y346-79AC-DEFG',
  createdAt: '2026-12-07T00:00:00.000Z',
  expiresAt: '2027-06-05T00:00:00.000Z',
  maxDownloads: 3,
  ...o,
});
const text = (html: string) => html.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ');

test('the letter says how many downloads it allows (each revoking the one before) and how to back the certificate up', () => {
  const three = text(renderNoticeLetter({ notice: notice(), organization: 'はこだて地域医療ネットワーク', portalUrl: 'https://portal.example.jp/', rootDer: ROOT }));
  assert.match(three, /3回までダウンロードできます/);
  assert.match(three, /ダウンロード回数\s*Downloads\s*3回まで（前の証明書は失効します） \(up to 3; each revokes the certificate before it\)/);
  assert.ok(!three.includes('一度だけ'), 'a re-downloadable letter does not say the IDs work once');
  for (const s of ['外部媒体にバックアップ', '端末とは別の', '削除し', '新しい端末にバックアップの .p12 をインポート', 'もう一度ダウンロードできます', 'Back the certificate file (.p12) up to external media', 'On a replacement PC, import the backup .p12']) assert.ok(three.includes(s), s);
  const once = text(renderNoticeLetter({ notice: notice({ maxDownloads: 1 }), organization: 'x', portalUrl: 'https://portal.example.jp/', rootDer: ROOT }));
  assert.match(once, /IDは一度だけ使用できます/);
  assert.match(once, /Downloads\s*1回まで \(once\)/);
});

test('the bulk delivery text carries the backup advice (ask the operator when the backup is lost: there is no notice)', () => {
  const t = deliveryText({ facilityNumber: '0110113719', facilityName: 'はこだてクリニック', password: 'k7Mx-Pq3r-Tz9w', p12FileName: 'a.p12', serial: '01', notAfter: new Date('2028-01-01'), rootDer: ROOT });
  assert.ok(t.indexOf('外部媒体') < t.indexOf('external media'), 'Japanese first');
  for (const s of ['USBメモリ', '端末とは別', 'ダウンロードファイル', '新しい端末', '運営主体に新しい証明書をご依頼ください', 'delete the downloaded files', 'On a replacement PC, import the backup .p12']) assert.ok(t.includes(s), s);
});

test('the letter prints on one A4 page with the longest names and the most downloads', async (tc) => {
  const chromium = findChromium();
  if (!needPeer(tc, chromium !== undefined, 'Chromium') || !needCommand(tc, 'pdftoppm')) return;
  const long = notice({ maxDownloads: 10, facility: { ...notice().facility, name: '医療法人社団はこだて地域包括ケア連携会 はこだて湾岸総合リハビリテーション病院' } });
  const html = renderNoticeLetter({ notice: long, organization: '一般社団法人 北海道道南地域医療情報連携ネットワーク協議会', portalUrl: 'https://enrollment-portal.dounan-medical-network.example.jp/', rootDer: ROOT });
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-letter-'));
  writeFileSync(join(dir, 'letter.pdf'), await printToPdf(html, chromium!));
  const r = await runAsync('pdftoppm', ['-png', '-r', '50', join(dir, 'letter.pdf'), join(dir, 'page')], { timeoutMs: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('page')).length, 1, 'one A4 page');
});

test('regression: a campaign of letters for names up to the 64-character limit is one page per letter (a 50-character name took two, and every later letter went into the next clinic\'s envelope)', async (tc) => {
  const chromium = findChromium();
  if (!needPeer(tc, chromium !== undefined, 'Chromium') || !needCommand(tc, 'pdftoppm')) return;
  const names = [
    '医療法人社団はこだて地域包括ケア連携会はこだて湾岸総合リハビリテーション病院附属在宅医療支援センター診療所分院',
    '医'.repeat(64),
    '医'.repeat(50),
    'Hakodate Bay General Rehabilitation Hospital Home Care Center 01',
    'はこだて内科',
  ];
  const letters = names.map((name, i) => notice({ maxDownloads: 10, id: `N-ACDEFGH${'JKLMN'[i]}`, facility: { ...notice().facility, name } }));
  const html = renderNoticeLetters(letters, { organization: '一般社団法人 北海道道南地域医療情報連携ネットワーク協議会', portalUrl: 'https://enrollment-portal.dounan-medical-network.example.jp/', rootDer: ROOT });
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-letters-'));
  writeFileSync(join(dir, 'letters.pdf'), await printToPdf(html, chromium!));
  const r = await runAsync('pdftoppm', ['-png', '-r', '30', join(dir, 'letters.pdf'), join(dir, 'page')], { timeoutMs: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readdirSync(dir).filter((f) => f.startsWith('page')).length, names.length, 'one page per letter');
});
