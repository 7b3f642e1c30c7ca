/**
 * The access review against real connections: curl and openssl s_client as
 * clinics of two facilities through a gateway in HTTP and TCP mode, some
 * refused; then `sekisho report access` reads the audit trail and its rows
 * match what happened (login time, duration, bytes, operations, refusals).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from '../gateway/index.js';
import { echoUpstream, FACILITY_A, FACILITY_C, gatewayFixture, mllpUpstream, PASSPHRASE, type ClientFiles, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, needPeer, runAsync } from '../testing/peers.js';
import { hasChromium, launchChromium } from '../testing/browser.js';
import { runCli } from '../cli/run.js';
import { MAX_OPERATIONS } from '../gateway/session-record.js';
import { buildReview, parseAccessFilter, ReportZone, type AccessReview } from './index.js';
import type { AuditRow } from '../store/index.js';

let fx: GatewayFixture;
let setup: GatewaySetup | undefined;
let http: Awaited<ReturnType<typeof echoUpstream>>;
let mllp: Awaited<ReturnType<typeof mllpUpstream>>;
const ready = hasCommand('openssl') && hasCommand('curl');

async function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await runCli(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env: { ...process.env, SEKISHO_HOME: fx.home }, isTTY: false });
  return { status, stdout, stderr };
}

async function review(...args: string[]): Promise<AccessReview> {
  const r = await cli(['report', 'access', '--json', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as AccessReview;
}

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  http = await echoUpstream();
  mllp = await mllpUpstream();
  const cfg = parseGatewayConfig({
    home: fx.home,
    refusals: { intervalSeconds: 1 },
    listeners: [
      {
        name: 'web',
        mode: 'http',
        listen: '127.0.0.1:0',
        routes: [
          { path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } },
          { path: '/osaka-only/', upstream: `http://127.0.0.1:${http.port}`, allow: { facilities: [FACILITY_C] } },
        ],
      },
      { name: 'hl7', mode: 'tcp', listen: '127.0.0.1:0', upstream: `tcp://127.0.0.1:${mllp.port}`, proxyProtocol: true, allow: { profiles: ['facility', 'device'] } },
    ],
  });
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('error', () => undefined), watch: false });
  const web = setup.gateway.addresses().find((a) => a.name === 'web')!.port;
  const hl7 = setup.gateway.addresses().find((a) => a.name === 'hl7')!.port;
  const curl = (client: ClientFiles | undefined, paths: string[]) =>
    runAsync('curl', ['-sS', '--max-time', '10', '--cacert', fx.caFile, ...(client ? ['--cert', client.cert, '--key', client.key] : []), ...paths.flatMap((p) => ['-o', '/dev/null', `https://localhost:${web}${p}`])]);
  // Facility A: one connection (curl reuses it) with three requests, the second one's path normalized; then a refused route.
  await curl(fx.clients.good, ['/hello', '/a/./b/../c?x=1', '/%7Etilde']);
  await curl(fx.clients.good, ['/osaka-only/records']);
  // Facility C: a route only it may use, on a connection of its own.
  await curl(fx.clients.other, ['/osaka-only/records']);
  // More requests than a session lists: the rest are counted.
  await curl(fx.clients.other, Array.from({ length: MAX_OPERATIONS + 3 }, (_, i) => `/many/${i}`));
  // Refused: a revoked certificate of A (identified), and clients with no certificate (summed, no identity).
  await curl(fx.clients.revoked, ['/hello']);
  await curl(undefined, ['/hello']);
  await curl(undefined, ['/hello']);
  // TCP mode: facility A sends an HL7 message through openssl s_client.
  const msg = '\x0bMSH|^~\\&|CLINIC|A|CENTER|SEKISHO|20261207||ADT^A01|MSG0001|P|2.5\r\x1c\x0d';
  await runAsync('openssl', ['s_client', '-quiet', '-connect', `127.0.0.1:${hl7}`, '-CAfile', fx.caFile, '-cert', fx.clients.good.cert, '-key', fx.clients.good.key], { input: msg, timeoutMs: 15_000 });
  // Everything is written at the gateway's close (sessions) and by the refusal digest.
  await setup.close(2000);
  setup = undefined;
});

after(async () => {
  if (!ready) return;
  await setup?.close(500);
  http.server.close();
  mllp.server.close();
  await fx.close();
});

describe('report access: the access review from the audit trail', () => {
  test('connections of two facilities show login time, duration ≥ 0, bytes > 0 and the normalized paths operated', async (t) => {
    if (!needCommand(t, 'curl') || !needCommand(t, 'openssl')) return;
    const r = await review();
    assert.equal(r.schema, 'sekisho.access-review/1');
    assert.equal(r.filter.zone, 'Asia/Tokyo');
    const conns = r.rows.filter((x) => x.kind === 'connection');
    for (const c of conns) {
      assert.equal(c.outcome, 'accepted', JSON.stringify(c));
      assert.match(c.startUtc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.match(c.startLocal, /\+09:00$/);
      assert.ok(c.durationSeconds! >= 0);
      assert.ok(c.bytesIn! > 0 && c.bytesOut! > 0, JSON.stringify(c));
      assert.ok(Date.parse(c.endUtc!) >= Date.parse(c.startUtc));
    }
    const a = conns.filter((c) => c.facility === FACILITY_A);
    const first = a.find((c) => c.operations[0] === 'GET /hello 200');
    assert.ok(first, JSON.stringify(a));
    assert.deepEqual(first.operations, ['GET /hello 200', 'GET /a/c 200', 'GET /~tilde 200'], 'one connection, three requests, normalized paths without the query');
    assert.equal(first.serial, fx.clients.good.serial);
    assert.ok(a.some((c) => c.operations.join() === 'GET /osaka-only/records 403'), 'a request refused by a route shows as operated with 403');
    const tcp = a.find((c) => c.listener === 'hl7');
    assert.ok(tcp, 'the TCP connection is reviewed');
    assert.deepEqual(tcp.operations, [`→ 127.0.0.1:${mllp.port}`]);
    const c = conns.filter((x) => x.facility === FACILITY_C);
    assert.equal(c.length, 2);
    assert.ok(c.some((x) => x.operations.join() === 'GET /osaka-only/records 200'));
    const many = c.find((x) => x.operationsMore > 0)!;
    assert.equal(many.operations.length, MAX_OPERATIONS);
    assert.equal(many.operationsMore, 3, 'operations beyond the bound are counted');
    const sumA = r.summary.find((s) => s.facility === FACILITY_A)!;
    assert.equal(sumA.connections, a.length);
  });

  test('every audit event and every time in its details is UTC with milliseconds', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
    const events = await fx.ca.audit.list({ limit: 100_000 });
    assert.ok(events.some((e) => e.action === 'gateway.session') && events.some((e) => e.action === 'gateway.refused.unidentified'));
    for (const e of events) {
      assert.match(e.at, iso, `${e.seq} ${e.action}`);
      for (const [k, v] of Object.entries(e.details ?? {})) if (/At$/.test(k) && typeof v === 'string' && !/^\d{4}-\d\d-\d\d$/.test(v)) assert.match(v, iso, `${e.action} ${k}`);
    }
  });

  test('refusals carry their reasons: identified ones by facility, unidentified ones summed with their counts', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = await review('--outcome', 'refused');
    assert.ok(r.rows.every((x) => x.kind === 'refusal'));
    assert.ok(r.rows.some((x) => x.facility === FACILITY_A && x.reason === 'REVOKED' && x.serial === fx.clients.revoked.serial));
    assert.ok(r.rows.some((x) => x.facility === FACILITY_A && x.reason === 'ACCESS_DENIED'));
    const unidentified = r.rows.filter((x) => x.facility === null && x.actor === 'unknown');
    assert.equal(unidentified.reduce((n, x) => n + x.count, 0), 2, 'two clients without a certificate, summed');
    assert.ok(unidentified.every((x) => x.reason === 'NO_CLIENT_CERT' && x.client === '127.0.0.1'));
  });

  test('filters: facility, outcome and days; a facility review leaves out clients without an identity', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const onlyC = await review('--facility', FACILITY_C);
    assert.ok(onlyC.rows.length >= 2 && onlyC.rows.every((x) => x.facility === FACILITY_C));
    const accepted = await review('--outcome', 'accepted', '--facility', FACILITY_A);
    assert.ok(accepted.rows.length >= 3 && accepted.rows.every((x) => x.kind === 'connection' && x.facility === FACILITY_A));
    const tomorrow = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    assert.equal((await review('--from', tomorrow)).rows.length, 0);
    const utc = await review('--zone', 'UTC', '--from', '2026-01-01', '--to', new Date(Date.now() + 86_400_000).toISOString().slice(0, 10));
    assert.ok(utc.rows.length > 0);
    assert.ok(utc.rows.every((x) => x.startLocal.endsWith('+00:00')));
  });

  test('CSV opens in a spreadsheet: BOM, CRLF, quoted multi-line operations, the same rows as JSON', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = await cli(['report', 'access', '--format', 'csv', '--facility', FACILITY_A]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.startsWith('\uFEFFdate,facility,actor,kind,outcome,startUtc'));
    assert.ok(r.stdout.endsWith('\r\n'));
    assert.ok(!/[^\r]\n(?![^"]*"[,\r])/.test(r.stdout.replace(/"[^"]*"/g, '""')), 'every line outside quotes ends with CRLF');
    assert.match(r.stdout, /"GET \/hello 200\nGET \/a\/c 200\nGET \/~tilde 200"/);
    const json = await review('--facility', FACILITY_A);
    assert.equal(r.stdout.replace(/"[^"]*"/g, '""').split('\r\n').length - 2, json.rows.length);
  });

  test('bad filters are exit 2 with a message naming the flag, before the store is read', async () => {
    for (const [args, flag] of [
      [['--from', '2026-02-30'], '--from'],
      [['--to', '7 Dec'], '--to'],
      [['--from', '2026-12-07', '--to', '2026-12-01'], '--to'],
      [['--facility', '12345'], '--facility'],
      [['--facility', '0110113710'], '--facility'],
      [['--outcome', 'maybe'], '--outcome'],
      [['--zone', 'Mars/Olympus'], '--zone'],
      [['--format', 'xlsx'], '--format'],
      [['--from', '2020-01-01', '--to', '2026-01-01'], 'at most'],
    ] as const) {
      const r = await runCli(['report', 'access', '--home', '/nonexistent/home', ...args], { stdout: () => undefined, stderr: (s) => assert.ok(s.includes('REPORT_FILTER_INVALID') && s.includes(flag), `${args.join(' ')}: ${s}`), env: {}, isTTY: false });
      assert.equal(r, 2, args.join(' '));
    }
  });

  test('the HTML prints on A4 in Chromium: Japanese first with English beside, no script, escaped values; pdftoppm opens the PDF', async (t) => {
    if (!needCommand(t, 'curl') || !needPeer(t, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(t, 'pdftoppm')) return;
    const file = join(fx.dir, 'access.html');
    const r = await cli(['report', 'access', '--format', 'html', '--out', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const html = readFileSync(file, 'utf8');
    assert.doesNotMatch(html, /<script|src=|href=|@import|url\(/i, 'no script and no external asset');
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 1300 } });
      await page.goto(`file://${file}`);
      const text = await page.locator('body').innerText();
      for (const s of ['アクセス記録', 'Access review', FACILITY_A, FACILITY_C, 'GET /a/c 200', 'REVOKED', 'NO_CLIENT_CERT', '識別できない接続元']) assert.ok(text.includes(s), `the page shows ${s}`);
      assert.ok(text.indexOf('アクセス記録') < text.indexOf('Access review'), 'Japanese first');
      const pdf = await page.pdf({ format: 'A4', printBackground: true });
      const out = join(fx.dir, 'access.pdf');
      writeFileSync(out, pdf);
      const ppm = await runAsync('pdftoppm', ['-png', '-r', '60', out, join(fx.dir, 'access-page')]);
      assert.equal(ppm.status, 0, ppm.stderr);
      const pages = readdirSync(fx.dir).filter((f) => f.startsWith('access-page') && f.endsWith('.png'));
      assert.ok(pages.length >= 1);
      const png = readFileSync(join(fx.dir, pages[0]!));
      // A4 (210 × 297 mm) at 60 dpi is about 496 × 702 pixels (Chromium's A4 is 8.27 × 11.7 in).
      assert.ok(Math.abs(png.readUInt32BE(16) - 496) <= 1 && Math.abs(png.readUInt32BE(20) - 702) <= 1, `${png.readUInt32BE(16)} × ${png.readUInt32BE(20)}`);
      assert.ok(png.length > 20_000, 'the page has content');
      if (process.env.SEKISHO_KEEP_SCREENSHOTS) writeFileSync(join(process.env.SEKISHO_KEEP_SCREENSHOTS, 'access-review.png'), png);
    } finally {
      await browser.close();
    }
  });
});

test('regression: a summed refusal that began before midnight (its first attempt 23:59:55 JST, recorded at 00:00:03) is listed on the day it was recorded, with its start, not under a day the report does not cover', () => {
  const row = (seq: number, at: string, details: Record<string, unknown>): AuditRow => ({ seq, writer: 'gw', writer_seq: seq, at, actor: 'gateway', action: 'gateway.refused.unidentified', outcome: 'minorFailure', reason_code: 'NO_CLIENT_CERT', subject: null, details: JSON.stringify(details), prev_hash: '', hash: '' });
  const zone = new ReportZone('Asia/Tokyo');
  const f = parseAccessFilter({ from: '2026-04-02' }, new Date('2026-04-02T12:00:00Z'));
  // The day 2026-04-02 JST is 2026-04-01T15:00Z – 2026-04-02T15:00Z; the range is read by `at`.
  const range = { fromUtc: '2026-04-01T15:00:00.000Z', toUtc: '2026-04-02T15:00:00.000Z' };
  const r = buildReview([row(1, '2026-04-01T15:00:03.000Z', { firstAt: '2026-04-01T14:59:55.000Z', count: 7, address: '192.0.2.7' })], f, zone, range, new Date('2026-04-02T12:00:00Z'));
  assert.equal(r.rows.length, 1);
  assert.equal(r.rows[0]!.date, '2026-04-02', 'the day of the report that read it');
  assert.equal(r.rows[0]!.startLocal.slice(0, 19), '2026-04-01T23:59:55', 'its start stays its first attempt');
  assert.deepEqual(r.summary.map((s) => [s.date, s.refusals]), [['2026-04-02', 7]]);
});
