/**
 * RFC 5424 framing of audit messages: the header exactly as the ABNF of §6
 * (PRI <85> and MSGID IHE+RFC-3881 for ITI-20), the UTF-8 BOM before the MSG
 * (§6.4), and header fields that could split or forge a message refused.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ATNA_SYSLOG_MSGID, syslogFrame, type SyslogFrameOptions } from './syslog-frame.js';
import { isSekishoError } from '../errors/index.js';

const BOM = '\uFEFF';
const base: SyslogFrameOptions = { msg: '<AuditMessage/>', time: new Date('2026-12-07T01:02:03.456Z'), hostname: 'gw1.example.jp', appName: 'sekisho', procId: '4242', msgId: ATNA_SYSLOG_MSGID };

describe('syslogFrame', () => {
  const good: Array<[string, Partial<SyslogFrameOptions>, string]> = [
    ['ITI-20 defaults: PRI 85, version 1, milliseconds and Z', {}, `<85>1 2026-12-07T01:02:03.456Z gw1.example.jp sekisho 4242 IHE+RFC-3881 - ${BOM}<AuditMessage/>`],
    ['no PROCID is the NILVALUE', { procId: undefined }, `<85>1 2026-12-07T01:02:03.456Z gw1.example.jp sekisho - IHE+RFC-3881 - ${BOM}<AuditMessage/>`],
    ['explicit PRI 0', { pri: 0 }, `<0>1 2026-12-07T01:02:03.456Z gw1.example.jp sekisho 4242 IHE+RFC-3881 - ${BOM}<AuditMessage/>`],
    ['largest PRI 191', { pri: 191 }, `<191>1 2026-12-07T01:02:03.456Z gw1.example.jp sekisho 4242 IHE+RFC-3881 - ${BOM}<AuditMessage/>`],
    ['time in another zone is written in UTC', { time: new Date('2026-12-07T10:02:03.4+09:00') }, `<85>1 2026-12-07T01:02:03.400Z gw1.example.jp sekisho 4242 IHE+RFC-3881 - ${BOM}<AuditMessage/>`],
    ['IP address as HOSTNAME', { hostname: '2001:db8::1' }, `<85>1 2026-12-07T01:02:03.456Z 2001:db8::1 sekisho 4242 IHE+RFC-3881 - ${BOM}<AuditMessage/>`],
    ['NILVALUE HOSTNAME', { hostname: '-' }, `<85>1 2026-12-07T01:02:03.456Z - sekisho 4242 IHE+RFC-3881 - ${BOM}<AuditMessage/>`],
    ['longest fields', { hostname: 'h'.repeat(255), appName: 'a'.repeat(48), procId: 'p'.repeat(128), msgId: 'm'.repeat(32) }, `<85>1 2026-12-07T01:02:03.456Z ${'h'.repeat(255)} ${'a'.repeat(48)} ${'p'.repeat(128)} ${'m'.repeat(32)} - ${BOM}<AuditMessage/>`],
    ['Japanese MSG in UTF-8', { msg: '関所 <x/>' }, `<85>1 2026-12-07T01:02:03.456Z gw1.example.jp sekisho 4242 IHE+RFC-3881 - ${BOM}関所 <x/>`],
    ['empty MSG keeps the BOM', { msg: '' }, `<85>1 2026-12-07T01:02:03.456Z gw1.example.jp sekisho 4242 IHE+RFC-3881 - ${BOM}`],
  ];
  for (const [name, o, want] of good) {
    test(name, () => {
      const b = syslogFrame({ ...base, ...o });
      assert.equal(b.toString('utf8'), want);
    });
  }

  test('the BOM is the three bytes EF BB BF right after the header (RFC 5424 §6.4)', () => {
    const b = syslogFrame(base);
    const header = '<85>1 2026-12-07T01:02:03.456Z gw1.example.jp sekisho 4242 IHE+RFC-3881 - ';
    assert.equal(b.subarray(0, header.length).toString('ascii'), header);
    assert.deepEqual([...b.subarray(header.length, header.length + 3)], [0xef, 0xbb, 0xbf]);
  });

  const bad: Array<[string, Partial<SyslogFrameOptions>]> = [
    ['PRI above 191', { pri: 192 }],
    ['negative PRI', { pri: -1 }],
    ['fractional PRI', { pri: 85.5 }],
    ['NaN PRI', { pri: Number.NaN }],
    ['invalid time', { time: new Date('nope') }],
    ['five-digit year', { time: new Date('+010000-01-01T00:00:00.000Z') }],
    ['year before 0', { time: new Date('-000001-01-01T00:00:00.000Z') }],
    ['empty HOSTNAME', { hostname: '' }],
    ['space in HOSTNAME', { hostname: 'gw 1' }],
    ['newline in HOSTNAME (would start a second message)', { hostname: 'gw1\n<0>1' }],
    ['non-ASCII HOSTNAME', { hostname: '関所.jp' }],
    ['DEL in APP-NAME', { appName: 'seki\u007fsho' }],
    ['HOSTNAME over 255', { hostname: 'h'.repeat(256) }],
    ['APP-NAME over 48', { appName: 'a'.repeat(49) }],
    ['PROCID over 128', { procId: 'p'.repeat(129) }],
    ['empty PROCID', { procId: '' }],
    ['MSGID over 32', { msgId: 'm'.repeat(33) }],
    ['tab in MSGID', { msgId: 'IHE\t' }],
  ];
  for (const [name, o] of bad) {
    test(`refused: ${name}`, () => {
      assert.throws(() => syslogFrame({ ...base, ...o }), (e) => isSekishoError(e) && e.kind === 'malformed' && e.code === 'SYSLOG_HEADER_INVALID');
    });
  }
});
