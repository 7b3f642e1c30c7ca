/**
 * The ATNA message format: every audit action sekisho records becomes a DICOM
 * audit message (PS3.15 A.5) that validates under the DICOM Audit Message
 * Schema (A.5.1.1, fixtures/dicom-audit-message.rnc, checked with jing) and is
 * well-formed XML (xmllint); hostile details (markup, control characters, lone
 * surrogates, Japanese, huge values) never break either.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomInt } from 'node:crypto';
import { atnaMessage, ATNA_MAX_MESSAGE_BYTES, type AtnaSource } from './atna.js';
import { ATNA_ACTIONS, ATNA_ACTION_FAMILIES, atnaMapping, genericMapping } from './atna-mappings.js';
import { atnaSyslogFormatter } from './atna-format.js';
import type { AuditOutcome, RecordedAuditEvent } from './event.js';
import { isSekishoError } from '../errors/index.js';
import { needCommand, run } from '../testing/peers.js';

const SCHEMA = fileURLToPath(new URL('../../../src/audit/fixtures/dicom-audit-message.rnc', import.meta.url));
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
const SOURCE: AtnaSource = { auditSourceId: 'sekisho-gateway@center-1', enterpriseSiteId: '地域医療ネットワーク', hostname: 'gw1.example.jp' };
const HASH = 'ab'.repeat(32);

let seq = 0;
function ev(action: string, outcome: AuditOutcome, rest: Partial<RecordedAuditEvent> = {}): RecordedAuditEvent {
  seq += 1;
  return { seq, at: '2026-12-07T01:02:03.456Z', hash: HASH, actor: 'operator', action, outcome, ...rest };
}

/** One event per recorded action, shaped as the code that records it shapes it. */
const EXAMPLES: Array<[string, RecordedAuditEvent]> = [
  ['node login', ev('gateway.authenticated', 'success', { actor: '1312345678', subject: '7f3a01', details: { listener: 'mllp', client: '192.0.2.10:50412', protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', fingerprint: 'aa:bb' } })],
  ['node refused with an identity', ev('gateway.refused', 'minorFailure', { actor: '1312345678', reasonCode: 'REVOKED', subject: '7f3a01', details: { listener: 'mllp', client: '[2001:db8::1]:443', detail: 'certificate 7f3a01 is revoked' } })],
  ['node refused, summed without identity', ev('gateway.refused.unidentified', 'minorFailure', { actor: 'unknown', reasonCode: 'NO_CLIENT_CERT', details: { listener: 'portal', address: '198.51.100.7', count: 42, firstAt: '2026-12-07T01:00:00.000Z', lastAt: '2026-12-07T01:02:03.456Z', detail: 'no client certificate' } })],
  ['refusals summed over other addresses', ev('gateway.refused.unidentified', 'minorFailure', { actor: 'unknown', reasonCode: 'HANDSHAKE_TIMEOUT', details: { listener: 'portal', address: '*', count: 9001 } })],
  ['request refused', ev('gateway.request-refused', 'minorFailure', { actor: '1312345678', reasonCode: 'BAD_TARGET', subject: '7f3a01', details: { listener: 'web', client: '::ffff:192.0.2.10:50412', detail: 'bad target' } })],
  ['connection cut', ev('gateway.connection-cut', 'minorFailure', { actor: '1312345678', reasonCode: 'REVOKED', subject: '7f3a01', details: { listener: 'mllp', client: '192.0.2.10:50412' } })],
  ['certificate signing', ev('certificate.signing', 'success', { subject: '7f3a01', details: { profile: 'facility', subject: 'CN=さくら診療所', via: 'portal', tbsSha256: 'cd'.repeat(32), facility: '1312345678' } })],
  ['certificate sign failed', ev('certificate.sign-failed', 'majorFailure', { reasonCode: 'TOKEN_REMOVED', subject: '7f3a01', details: { profile: 'facility' } })],
  ['certificate issued', ev('certificate.issued', 'success', { subject: '7f3a01', details: { profile: 'facility', fingerprintSha256: 'ef'.repeat(32), notAfter: '2028-12-07T00:00:00.000Z', facility: '1312345678' } })],
  ['certificate renewed', ev('certificate.renewed', 'success', { subject: '7f3a01', details: { successor: '7f3a02', revokeDueAt: '2026-12-21T00:00:00.000Z', facility: '1312345678' } })],
  ['re-enrolment refused', ev('certificate.reenroll', 'minorFailure', { reasonCode: 'CLIENT_CERT_INVALID', subject: '7f3a01', details: { via: 'est' } })],
  ['certificate revoked', ev('certificate.revoked', 'success', { subject: '7f3a01', details: { reason: 'keyCompromise', facility: '1312345678' } })],
  ['CRL signed', ev('crl.signed', 'success', { actor: 'ca', details: { number: '12', entries: 3, nextUpdate: '2026-12-08T00:00:00.000Z' } })],
  ['CA initialised', ev('ca.init', 'success', { details: { keyType: 'ecdsa-p256', organization: '関所ネットワーク', root: '01', issuing: '02', issuingKey: 'pkcs11:token=ca' } })],
  ['facility added (Japanese name)', ev('facility.add', 'success', { subject: '1312345678', details: { name: '医療法人社団 さくら会 さくら診療所 <本院> & "分院"' } })],
  ['facility suspended', ev('facility.suspend', 'success', { subject: '1312345678' })],
  ['facility resumed', ev('facility.resume', 'success', { subject: '1312345678' })],
  ['notice created', ev('notice.created', 'success', { subject: 'N-0001', details: { facility: '1312345678', kind: 'issue', expiresAt: '2027-06-05T00:00:00.000Z', profile: 'device', device: '受付端末1' } })],
  ['notice revoked', ev('notice.revoked', 'success', { subject: 'N-0001', details: { facility: '1312345678' } })],
  ['notice unlocked', ev('notice.unlocked', 'success', { subject: 'N-0001', details: { facility: '1312345678', failures: 5 } })],
  ['notice attempt, mistyped', ev('notice.attempt', 'minorFailure', { actor: 'client:203.0.113.5', reasonCode: 'NOTICE_NOT_RECOGNIZED', details: { via: 'portal' } })],
  ['notice attempt, locked', ev('notice.attempt', 'minorFailure', { actor: 'client:203.0.113.5', reasonCode: 'NOTICE_LOCKED', subject: 'N-0001', details: { via: 'portal' } })],
  ['notice claimed', ev('notice.claimed', 'success', { actor: 'client:203.0.113.5', subject: 'N-0001', details: { via: 'portal', facility: '1312345678' } })],
  ['notice redeemed', ev('notice.redeemed', 'success', { actor: 'client:203.0.113.5', subject: 'N-0001', details: { via: 'portal', facility: '1312345678', serial: '7f3a01' } })],
  ['notice released', ev('notice.released', 'minorFailure', { actor: 'client:203.0.113.5', reasonCode: 'CSR_REFUSED', subject: 'N-0001', details: { via: 'portal' } })],
  ['audit verified (family)', ev('audit.verify', 'success', { details: { events: 1200, problems: 0 } })],
  ['token work (family)', ev('token.pin-changed', 'success', { details: { token: 'ca' } })],
  ['unknown action, success', ev('scan.finished', 'success', { details: { target: 'example.jp:443' } })],
  ['unknown action, failure', ev('something.new', 'seriousFailure', { reasonCode: 'X', details: { detail: 'odd' } })],
];

function validate(t: TestContext, docs: Array<[string, string]>): void {
  if (!needCommand(t, 'jing') || !needCommand(t, 'xmllint')) return;
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-atna-'));
  try {
    const files = docs.map(([name, xml], i) => {
      const f = join(dir, `${String(i).padStart(4, '0')}.xml`);
      writeFileSync(f, xml);
      return [name, f] as const;
    });
    const paths = files.map(([, f]) => f);
    const wf = run('xmllint', ['--noout', ...paths]);
    assert.equal(wf.status, 0, `not well-formed:\n${wf.stderr}`);
    const v = run('jing', ['-c', SCHEMA, ...paths]);
    const failed = files.filter(([, f]) => v.stdout.includes(f)).map(([n]) => n);
    assert.equal(v.status, 0, `not valid under the DICOM audit message schema: ${failed.join(', ')}\n${v.stdout}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function xpath(t: TestContext, xml: string, expr: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-atna-'));
  try {
    writeFileSync(join(dir, 'm.xml'), xml);
    const r = run('xmllint', ['--xpath', expr, join(dir, 'm.xml')]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.replace(/\n$/, ''); // xmllint ends its answer with a newline
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function detail(t: TestContext, xml: string, type: string): string {
  return Buffer.from(xpath(t, xml, `string(//ParticipantObjectDetail[@type='${type}']/@value)`), 'base64').toString('utf8');
}

describe('ATNA audit message', () => {
  test('every mapping yields a message valid under the DICOM audit message schema (PS3.15 A.5.1.1)', (t) => {
    const docs = EXAMPLES.map(([name, e]) => [name, atnaMessage(e, SOURCE)] as [string, string]);
    // …and one per table row, even those without a hand-written example.
    for (const action of Object.keys(ATNA_ACTIONS)) docs.push([`table row ${action}`, atnaMessage(ev(action, 'success', { subject: 'x' }), SOURCE)]);
    for (const [prefix] of ATNA_ACTION_FAMILIES) docs.push([`family ${prefix}`, atnaMessage(ev(`${prefix}other`, 'minorFailure'), { auditSourceId: 'ca', hostname: '192.0.2.1' })]);
    validate(t, docs);
  });

  test('the schema check is not vacuous: a message with an outcome, order or missing source DICOM does not allow is rejected', (t) => {
    if (!needCommand(t, 'jing')) return;
    const good = atnaMessage(EXAMPLES[0]![1], SOURCE);
    const broken = [
      good.replace('EventOutcomeIndicator="0"', 'EventOutcomeIndicator="5"'),
      good.replace(/<AuditSourceIdentification[^]*?<\/AuditSourceIdentification>/, ''),
      good.replace(/(<ActiveParticipant[^]*?<\/ActiveParticipant>)(<ActiveParticipant[^]*?<\/ActiveParticipant>)(<AuditSourceIdentification[^]*?<\/AuditSourceIdentification>)/, '$3$1$2'),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-atna-'));
    try {
      broken.forEach((xml, i) => {
        assert.notEqual(xml, good, `mutation ${i} applies`);
        writeFileSync(join(dir, `${i}.xml`), xml);
        assert.notEqual(run('jing', ['-c', SCHEMA, join(dir, `${i}.xml`)]).status, 0, `mutation ${i} is rejected`);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every action the code records has a mapping of its own, none falls to the generic one', () => {
    const recorded = new Set<string>();
    const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : d.name.endsWith('.ts') && !d.name.endsWith('.test.ts') ? [join(dir, d.name)] : []));
    for (const file of walk(SRC)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (!/\baction: /.test(line)) continue;
        for (const m of line.matchAll(/'([a-z]+\.[a-z.-]+)'/g)) recorded.add(m[1]!);
      }
    }
    assert.ok(recorded.has('gateway.authenticated') && recorded.has('facility.suspend'), `the scan found the recorded actions: ${[...recorded].join(', ')}`);
    for (const action of recorded) {
      const m = atnaMapping(action, 'success');
      assert.notEqual(m, genericMapping('success'), `${action} has no ATNA mapping`);
      assert.ok(Object.hasOwn(ATNA_ACTIONS, action) || ATNA_ACTION_FAMILIES.some(([p]) => action.startsWith(p)), `${action} has no ATNA mapping`);
    }
  });

  const codes: Array<[string, RecordedAuditEvent, { eventId: string; type?: string; action: string; outcome: string }]> = [
    ['node login is User Authentication / Login', EXAMPLES[0]![1], { eventId: '110114', type: '110122', action: 'E', outcome: '0' }],
    ['node refusal is Security Alert / Node Authentication', EXAMPLES[1]![1], { eventId: '110113', type: '110126', action: 'E', outcome: '4' }],
    ['connection cut is User Authentication / Logout', EXAMPLES[5]![1], { eventId: '110114', type: '110123', action: 'E', outcome: '4' }],
    ['signing failure is Use of Restricted Function, major failure', EXAMPLES[7]![1], { eventId: '110113', type: '110132', action: 'E', outcome: '12' }],
    ['issuance is User Security Attributes Changed', EXAMPLES[8]![1], { eventId: '110113', type: '110137', action: 'E', outcome: '0' }],
    ['revocation is User Security Attributes Changed', EXAMPLES[11]![1], { eventId: '110113', type: '110137', action: 'E', outcome: '0' }],
    ['CA set-up is Security Configuration', EXAMPLES[13]![1], { eventId: '110113', type: '110129', action: 'E', outcome: '0' }],
    ['notice attempt is a failed Login', EXAMPLES[20]![1], { eventId: '110114', type: '110122', action: 'E', outcome: '4' }],
    ['audit verification is Audit Log Used', EXAMPLES[25]![1], { eventId: '110101', action: 'R', outcome: '0' }],
    ['unknown success is Application Activity', EXAMPLES[27]![1], { eventId: '110100', action: 'E', outcome: '0' }],
    ['unknown failure is a Security Alert', EXAMPLES[28]![1], { eventId: '110113', action: 'E', outcome: '8' }],
  ];
  test('regression: every Security Alert (110113) carries EventActionCode E, as PS3.15 A.5.3.11 enumerates it (issuance, revocation, notices, facilities and CA set-up were sent as C, U or D)', () => {
    const alerts = [...Object.entries(ATNA_ACTIONS), ...ATNA_ACTION_FAMILIES, ['(failure)', genericMapping('majorFailure')] as const].filter(([, m]) => m.eventId.code === '110113');
    assert.ok(alerts.length > 20, `${alerts.length} security alerts mapped`);
    assert.deepEqual(alerts.filter(([, m]) => m.actionCode !== 'E').map(([a]) => a), []);
  });
  for (const [name, e, want] of codes) {
    test(name, () => {
      const xml = atnaMessage(e, SOURCE);
      assert.match(xml, new RegExp(`<EventID csd-code="${want.eventId}" codeSystemName="DCM" originalText="[^"]+"/>`));
      if (want.type) assert.match(xml, new RegExp(`<EventTypeCode csd-code="${want.type}" codeSystemName="DCM"`));
      assert.match(xml, new RegExp(`EventActionCode="${want.action}"`));
      assert.match(xml, new RegExp(`EventOutcomeIndicator="${want.outcome}"`));
      assert.match(xml, new RegExp(`<EventTypeCode csd-code="${e.action.replace(/\./g, '\\.')}" codeSystemName="SEKISHO"`), 'the sekisho action travels with the message');
      assert.match(xml, /EventDateTime="2026-12-07T01:02:03\.456Z"/);
    });
  }

  test('node authentication failure names the node (110182 Node ID) with an Alert Description, and the client address as a type 2 access point', (t) => {
    if (!needCommand(t, 'xmllint')) return;
    const xml = atnaMessage(EXAMPLES[1]![1], SOURCE);
    assert.equal(xpath(t, xml, "string(//ParticipantObjectIdentification[ParticipantObjectIDTypeCode/@csd-code='110182']/@ParticipantObjectID)"), '2001:db8::1');
    assert.equal(detail(t, xml, 'Alert Description'), 'REVOKED: certificate 7f3a01 is revoked');
    assert.equal(xpath(t, xml, "string(//ActiveParticipant[@UserIsRequestor='true']/@NetworkAccessPointID)"), '2001:db8::1');
    assert.equal(xpath(t, xml, "string(//ActiveParticipant[@UserIsRequestor='true']/@NetworkAccessPointTypeCode)"), '2');
    assert.equal(xpath(t, xml, "string(//ActiveParticipant[@UserIsRequestor='false']/@NetworkAccessPointID)"), 'gw1.example.jp');
    assert.equal(xpath(t, xml, "string(//ActiveParticipant[@UserIsRequestor='false']/@NetworkAccessPointTypeCode)"), '1');
    assert.equal(xpath(t, xml, "string(//ParticipantObjectIdentification[ParticipantObjectIDTypeCode/@csd-code='certificate-serial']/@ParticipantObjectID)"), '7f3a01');
    assert.equal(xpath(t, xml, "string(//ParticipantObjectIdentification[ParticipantObjectIDTypeCode/@csd-code='facility-number']/@ParticipantObjectID)"), '1312345678');
  });

  test('summed refusals carry their count and address', (t) => {
    if (!needCommand(t, 'xmllint')) return;
    const xml = atnaMessage(EXAMPLES[2]![1], SOURCE);
    assert.equal(detail(t, xml, 'detail.count'), '42');
    assert.equal(xpath(t, xml, 'string(//EventOutcomeDescription)'), 'NO_CLIENT_CERT: no client certificate: 42 refusal(s)');
    assert.equal(xpath(t, xml, "string(//ParticipantObjectIdentification[ParticipantObjectIDTypeCode/@csd-code='110182']/@ParticipantObjectID)"), '198.51.100.7');
  });

  test('a Japanese facility name with markup survives escaping exactly', (t) => {
    if (!needCommand(t, 'xmllint')) return;
    const xml = atnaMessage(EXAMPLES[14]![1], SOURCE);
    const name = '医療法人社団 さくら会 さくら診療所 <本院> & "分院"';
    assert.equal(xpath(t, xml, "string(//ParticipantObjectIdentification[ParticipantObjectIDTypeCode/@csd-code='facility-number']/ParticipantObjectName)"), name);
    assert.equal(detail(t, xml, 'detail.name'), name);
    assert.equal(xpath(t, xml, 'string(//AuditSourceIdentification/@AuditEnterpriseSiteID)'), '地域医療ネットワーク');
  });

  test('the audit record object ties the message to the hash chain', (t) => {
    if (!needCommand(t, 'xmllint')) return;
    const e = EXAMPLES[8]![1];
    const xml = atnaMessage(e, SOURCE);
    assert.equal(detail(t, xml, 'seq'), String(e.seq));
    assert.equal(detail(t, xml, 'hash'), HASH);
    assert.equal(xpath(t, xml, "string(//ParticipantObjectIdentification[ParticipantObjectIDTypeCode/@csd-code='audit-record']/@ParticipantObjectID)"), String(e.seq));
  });

  test('control characters and lone surrogates are written visibly in text and kept exactly in base64 details (regression: raw C0 makes XML ill-formed)', (t) => {
    if (!needCommand(t, 'xmllint')) return;
    const hostile = 'a\u0000b\u0007c\u001b[31m\uD800d\uFFFEe\r\nf\u0085]]></AuditMessage><x y="';
    const xml = atnaMessage(ev('gateway.refused', 'minorFailure', { actor: hostile, reasonCode: hostile, subject: hostile, details: { detail: hostile, [hostile]: hostile } }), SOURCE);
    assert.doesNotMatch(xml, /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/, 'no raw control character');
    assert.match(xml, /a\\u\{0000\}b\\u\{0007\}c\\u\{001B\}\[31m\\u\{D800\}d\\u\{FFFE\}e/);
    assert.equal(detail(t, xml, 'detail.detail'), hostile.replace('\uD800', '\uFFFD'), 'the detail keeps every byte (a lone surrogate has no UTF-8 form)');
    validate(t, [['hostile', xml]]);
  });

  test('an event without a valid time is refused with a stable code, not sent with a made-up time', () => {
    assert.throws(() => atnaMessage(ev('ca.init', 'success', { at: 'yesterday' }), SOURCE), (e) => isSekishoError(e) && e.code === 'ATNA_EVENT_TIME_INVALID');
  });

  const badSources: Array<[string, AtnaSource]> = [
    ['empty source ID', { auditSourceId: '', hostname: 'h' }],
    ['blank source ID', { auditSourceId: '  ', hostname: 'h' }],
    ['control character in source ID', { auditSourceId: 'a\nb', hostname: 'h' }],
    ['over-long source ID', { auditSourceId: 'a'.repeat(257), hostname: 'h' }],
    ['empty hostname', { auditSourceId: 'a', hostname: '' }],
    ['space in hostname', { auditSourceId: 'a', hostname: 'gw 1' }],
    ['empty site ID', { auditSourceId: 'a', hostname: 'h', enterpriseSiteId: '' }],
  ];
  for (const [name, source] of badSources) {
    test(`bad audit source refused: ${name}`, () => {
      assert.throws(() => atnaMessage(EXAMPLES[0]![1], source), (e) => isSekishoError(e) && e.code === 'ATNA_SOURCE_INVALID');
      assert.throws(() => atnaSyslogFormatter({ source, appName: 'sekisho' }), (e) => isSekishoError(e) && e.code === 'ATNA_SOURCE_INVALID');
    });
  }

  test('the syslog formatter frames each event for ITI-20 and refuses a bad APP-NAME at construction', () => {
    const format = atnaSyslogFormatter({ source: SOURCE, appName: 'sekisho', procId: '4242' });
    const b = format(EXAMPLES[0]![1]);
    const bom = b.indexOf(Buffer.from([0xef, 0xbb, 0xbf]));
    assert.equal(b.subarray(0, bom).toString('ascii'), '<85>1 2026-12-07T01:02:03.456Z gw1.example.jp sekisho 4242 IHE+RFC-3881 - ');
    assert.match(b.subarray(bom + 3).toString('utf8'), /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<AuditMessage>/);
    assert.throws(() => atnaSyslogFormatter({ source: SOURCE, appName: 'seki sho' }), (e) => isSekishoError(e) && e.code === 'SYSLOG_HEADER_INVALID');
  });
});

describe('ATNA audit message fuzz', () => {
  const pools = ['abcXYZ019', '<>&"\'', '\u0000\u0001\u0008\u000b\u000c\u001b\u007f\u0085\u009f', '\t\r\n ', '医療機関さくら診療所関所', '😀🏥', '\uD800\uDFFF\uDC00', '\uFFFE\uFFFF\uFFFD', ']]>', '-.:_/'];
  const randomString = (max: number): string => {
    const n = randomInt(0, max + 1);
    let s = '';
    for (let i = 0; i < n; i++) {
      const pool = pools[randomInt(pools.length)]!;
      s += pool[randomInt(pool.length)];
    }
    return s;
  };
  const randomValue = (depth = 0): unknown => {
    switch (randomInt(depth > 1 ? 5 : 7)) {
      case 0: return randomString(40);
      case 1: return randomInt(-1e6, 1e6);
      case 2: return randomInt(2) === 0;
      case 3: return null;
      case 4: return randomString(randomInt(2) ? 10 : 5000);
      case 5: return [randomValue(depth + 1), randomValue(depth + 1)];
      default: return { [randomString(8)]: randomValue(depth + 1) };
    }
  };
  const actions = [...Object.keys(ATNA_ACTIONS), 'audit.x', 'token.y', 'unknown.z', ''];
  const outcomes: AuditOutcome[] = ['success', 'minorFailure', 'seriousFailure', 'majorFailure'];

  test('regression: an event with every field at its bound (characters written visibly as \\u{…}, four-byte characters, 40 details of 3,000 characters) stays within 64 KiB and validates; the details that do not fit are counted in detailsOmitted', (t) => {
    const docs: Array<[string, string]> = [];
    for (const fill of ['\u0001', '😀', '<']) {
      const long = fill.repeat(3000);
      const details: Record<string, unknown> = { client: '192.0.2.10:50412', detail: long, facility: long, name: long, serial: long };
      for (let k = 0; k < 40; k++) details[`${fill.repeat(300)}${k}`] = long;
      for (const action of ['gateway.refused', 'facility.add', 'certificate.issued', 'notice.created', 'audit.x', long]) {
        const xml = atnaMessage(ev(action, 'majorFailure', { actor: long, subject: long, reasonCode: long, hash: long, details }), SOURCE);
        assert.ok(Buffer.byteLength(xml) <= ATNA_MAX_MESSAGE_BYTES, `${action.slice(0, 20)}: a message of ${Buffer.byteLength(xml)} bytes`);
        const omitted = /type="detailsOmitted" value="([^"]+)"/.exec(xml);
        assert.ok(omitted && Number(Buffer.from(omitted[1]!, 'base64').toString()) > 0, 'what did not fit is counted');
        docs.push([`bounds ${JSON.stringify(fill)} ${action.slice(0, 20)}`, xml]);
      }
    }
    validate(t, docs);
  });

  test('random details never throw, stay bounded, and always validate', (t) => {
    const docs: Array<[string, string]> = [];
    for (let i = 0; i < 150; i++) {
      const details: Record<string, unknown> = {};
      for (let k = randomInt(0, 50); k > 0; k--) details[randomInt(4) ? randomString(12) : ['client', 'address', 'detail', 'count', 'facility', 'serial', 'name'][randomInt(7)]!] = randomInt(3) ? randomValue() : randomString(30);
      if (randomInt(3) === 0) details.client = `${randomInt(256)}.${randomInt(256)}.0.1:${randomInt(65536)}`;
      const e = ev(actions[randomInt(actions.length)]!, outcomes[randomInt(outcomes.length)]!, {
        actor: randomString(300),
        ...(randomInt(2) ? { subject: randomString(300) } : {}),
        ...(randomInt(2) ? { reasonCode: randomString(30) } : {}),
        details,
      });
      let xml = '';
      assert.doesNotThrow(() => (xml = atnaMessage(e, SOURCE)), `event ${JSON.stringify(e)}`);
      assert.ok(Buffer.byteLength(xml) <= ATNA_MAX_MESSAGE_BYTES, `message of ${Buffer.byteLength(xml)} bytes`);
      docs.push([`fuzz ${i}: ${JSON.stringify(e).slice(0, 200)}`, xml]);
    }
    validate(t, docs);
  });
});
