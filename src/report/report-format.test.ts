/** The report's pure parts: days in a zone, CSV cells, HTML escaping, and rows built from crafted audit events. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { accessReviewHtml, buildReview, csvCell, csvDocument, parseAccessFilter, ReportZone } from './index.js';
import type { AuditRow } from '../store/index.js';

describe('report zone', () => {
  const cases = [
    { zone: 'Asia/Tokyo', day: '2026-12-07', start: '2026-12-06T15:00:00.000Z' },
    { zone: 'UTC', day: '2026-12-07', start: '2026-12-07T00:00:00.000Z' },
    { zone: 'America/New_York', day: '2026-03-08', start: '2026-03-08T05:00:00.000Z' }, // the day summer time starts
    { zone: 'America/New_York', day: '2026-03-09', start: '2026-03-09T04:00:00.000Z' },
  ];
  for (const c of cases) {
    test(`${c.zone}: ${c.day} starts at ${c.start}`, () => {
      const z = new ReportZone(c.zone);
      assert.equal(new Date(z.startOf(c.day)).toISOString(), c.start);
      assert.equal(z.day(Date.parse(c.start)), c.day);
      assert.notEqual(z.day(Date.parse(c.start) - 1), c.day, 'a millisecond before is the day before');
    });
  }
  test('local time keeps the milliseconds and names the offset', () => {
    assert.equal(new ReportZone('Asia/Tokyo').local(Date.parse('2026-12-06T15:00:00.007Z')), '2026-12-07T00:00:00.007+09:00');
  });
  test('the default day is today in Tokyo (09:00 JST = 00:00 UTC boundary)', () => {
    assert.deepEqual(parseAccessFilter({}, new Date('2026-12-06T15:30:00Z')), { from: '2026-12-07', to: '2026-12-07', zone: 'Asia/Tokyo', outcome: 'all' });
    assert.equal(parseAccessFilter({ zone: 'UTC' }, new Date('2026-12-06T15:30:00Z')).from, '2026-12-06');
  });
});

describe('CSV cells (RFC 4180, formula injection neutralized)', () => {
  const cases: [string | number | null, string][] = [
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['=HYPERLINK("http://evil")', `"'=HYPERLINK(""http://evil"")"`],
    ['+1+1', "'+1+1"],
    ['-2+3', "'-2+3"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=1', "'\t=1"],
    [-5, '-5'],
    [null, ''],
    ['医療機関', '医療機関'],
  ];
  for (const [v, want] of cases) test(`${JSON.stringify(v)} → ${JSON.stringify(want)}`, () => assert.equal(csvCell(v), want));
  test('a document has a BOM and CRLF line ends', () => {
    assert.equal(csvDocument(['a', 'b'], [['1', '2']]), '\uFEFFa,b\r\n1,2\r\n');
  });
});

describe('review rows from crafted events', () => {
  const row = (seq: number, action: string, actor: string, details: Record<string, unknown>, reason: string | null = null, at = '2026-12-07T01:00:00.000Z'): AuditRow => ({ seq, writer: 'ca', writer_seq: seq, at, actor, action, outcome: 'success', reason_code: reason, subject: 'ABCD', details: JSON.stringify(details), prev_hash: '', hash: '' });
  const f = parseAccessFilter({ from: '2026-12-07' }, new Date());
  const zone = new ReportZone('Asia/Tokyo');
  const range = { fromUtc: '2026-12-06T15:00:00.000Z', toUtc: '2026-12-07T15:00:00.000Z' };
  test('a session without its end is an open row; a cut one names its reason; a hostile path is text in HTML and neutralized in CSV', () => {
    const r = buildReview(
      [
        row(1, 'gateway.authenticated', '0110113717', { connection: 'c1', listener: 'web', client: '127.0.0.1:5' }),
        row(2, 'gateway.authenticated', '0110113717', { connection: 'c2', listener: 'web', client: '127.0.0.1:6' }),
        row(3, 'gateway.connection-cut', '0110113717', { connection: 'c2' }, 'REVOKED'),
        row(4, 'gateway.authenticated', '=cmd|calc', { connection: 'c3' }),
        row(5, 'gateway.session', '=cmd|calc', { connection: 'c3', startedAt: '2026-12-07T01:00:00.000Z', endedAt: '2026-12-07T01:00:01.500Z', durationMs: 1500, bytesIn: 10, bytesOut: 20, operations: [{ method: 'GET', path: '/<script>alert(1)</script>', status: 200 }], end: 'closed' }),
      ],
      f,
      zone,
      range,
      new Date('2026-12-07T02:00:00Z'),
    );
    assert.deepEqual(r.rows.map((x) => x.outcome), ['open', 'cut', 'accepted']);
    assert.equal(r.rows[1]!.reason, 'REVOKED');
    assert.equal(r.rows[2]!.durationSeconds, 1.5);
    assert.equal(r.rows[2]!.facility, null);
    const html = accessReviewHtml(r);
    assert.ok(!html.includes('<script>alert'), 'escaped');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.equal(csvCell(r.rows[2]!.actor), "'=cmd|calc");
  });
});
