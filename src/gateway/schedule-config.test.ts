import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadGatewayConfig, parseGatewayConfig } from './config.js';
import { SekishoError } from '../errors/index.js';
import { tempDir } from '../testing/stores.js';

const listener = { name: 'web', listen: '127.0.0.1:8443', routes: [{ path: '/', upstream: 'http://127.0.0.1:9000', allow: { anyone: true } }] };

test('a schedule in YAML: "until the date enforce exception, from the date enforce mhlw", exceptions network-wide and per facility with start and end days', () => {
  const dir = tempDir();
  const file = join(dir, 'gateway.yaml');
  writeFileSync(
    file,
    `home: /h
schedule:
  - profile: exception
  - from: 2027-04-01
    profile: high
  - from: 2027-10-01T06:00:00+09:00
    profile: mhlw
    facilitySubject: required
exceptions:
  - allow: SHA1_SIGNATURE
    until: 2027-06-30
    note: network-wide, until the last SHA-1 certificates are replaced
  - facility: "0110113719"
    allow: KEY_TOO_WEAK
    from: 2027-04-01
    until: 2027-09-30
  - allow: LEGACY_SUBJECT
    until: 2028-03-31
  - allow: RETIRING_CA
    anchor: old-root.pem
    until: 2027-12-31
listeners:
  - name: web
    listen: 127.0.0.1:8443
    routes: [{ path: /, upstream: "http://127.0.0.1:9000", allow: { anyone: true } }]
`,
  );
  const cfg = loadGatewayConfig(file);
  assert.equal(cfg.profile, 'exception');
  assert.deepEqual(
    cfg.schedule.map((p) => [p.profile, p.from?.toISOString(), p.facilitySubjectRequired]),
    [
      ['exception', undefined, undefined],
      ['high', '2027-03-31T15:00:00.000Z', undefined],
      ['mhlw', '2027-09-30T21:00:00.000Z', true],
    ],
    'a bare date is midnight in Japan time',
  );
  assert.deepEqual(cfg.exceptions[0], { allow: 'SHA1_SIGNATURE', until: '2027-06-30', note: 'network-wide, until the last SHA-1 certificates are replaced' });
  assert.deepEqual(cfg.exceptions[1], { facility: '0110113719', allow: 'KEY_TOO_WEAK', from: '2027-04-01', until: '2027-09-30' });
  assert.equal(cfg.exceptions[3]!.anchorFile, join(dir, 'old-root.pem'));
});

test('profile alone is a one-phase schedule; a from in the past is fine', () => {
  assert.deepEqual(parseGatewayConfig({ home: '/h', profile: 'recommended', listeners: [listener] }).schedule, [{ profile: 'recommended' }]);
  const cfg = parseGatewayConfig({ home: '/h', schedule: [{ profile: 'exception' }, { from: '2001-01-01', profile: 'high' }], listeners: [listener] });
  assert.equal(cfg.schedule[1]!.from?.toISOString(), '2000-12-31T15:00:00.000Z');
});

const BAD: [string, unknown, RegExp][] = [
  ['S1 profile and schedule both', { home: '/h', profile: 'high', schedule: [{ profile: 'high' }], listeners: [listener] }, /either profile .* or schedule/],
  ['S2 unknown key in a phase', { home: '/h', schedule: [{ profile: 'high', until: '2027-01-01' }], listeners: [listener] }, /schedule\[0\]: unknown key "until"/],
  ['S3 first phase with from', { home: '/h', schedule: [{ from: '2027-01-01', profile: 'high' }], listeners: [listener] }, /schedule\[0\]\.from: the first phase has no "from"/],
  ['S4 later phase without from', { home: '/h', schedule: [{ profile: 'exception' }, { profile: 'high' }], listeners: [listener] }, /schedule\[1\]: every phase after the first needs "from"/],
  ['S5 phases out of order', { home: '/h', schedule: [{ profile: 'exception' }, { from: '2027-04-01', profile: 'high' }, { from: '2027-01-01', profile: 'mhlw' }], listeners: [listener] }, /schedule\[2\]\.from: .* is not after schedule\[1\]\.from/],
  ['S6 two phases at one instant (overlap)', { home: '/h', schedule: [{ profile: 'exception' }, { from: '2027-04-01', profile: 'high' }, { from: '2027-04-01T00:00:00+09:00', profile: 'mhlw' }], listeners: [listener] }, /without overlap/],
  ['S7 an unknown profile in a phase', { home: '/h', schedule: [{ profile: 'exception' }, { from: '2027-04-01', profile: 'strict' }], listeners: [listener] }, /schedule\[1\]\.profile: unknown profile "strict"/],
  ['S8 a date that does not exist', { home: '/h', schedule: [{ profile: 'exception' }, { from: '2027-02-30', profile: 'high' }], listeners: [listener] }, /schedule\[1\]\.from: "2027-02-30" is not a date/],
  ['S9 a time without an offset', { home: '/h', schedule: [{ profile: 'exception' }, { from: '2027-04-01T06:00:00', profile: 'high' }], listeners: [listener] }, /ISO 8601 time with an offset/],
  ['S10 an empty schedule', { home: '/h', schedule: [], listeners: [listener] }, /schedule: must be a list of phases/],
  ['S11 facilitySubject misspelt', { home: '/h', facilitySubject: 'yes', listeners: [listener] }, /facilitySubject: must be "required"/],
  ['S12 exception without an end', { home: '/h', exceptions: [{ allow: 'SHA1_SIGNATURE' }], listeners: [listener] }, /exceptions\[0\]\.until: every exception ends/],
  ['S13 exception starting after its end', { home: '/h', exceptions: [{ allow: 'SHA1_SIGNATURE', from: '2027-05-01', until: '2027-04-30' }], listeners: [listener] }, /from \(2027-05-01\) is after until/],
  ['S14 a legacy-subject exception for one facility', { home: '/h', exceptions: [{ facility: '0110113719', allow: 'LEGACY_SUBJECT', until: '2027-04-30' }], listeners: [listener] }, /LEGACY_SUBJECT exception is network-wide/],
  ['S15 a retiring CA without its anchor', { home: '/h', exceptions: [{ allow: 'RETIRING_CA', until: '2027-04-30' }], listeners: [listener] }, /names the anchor/],
  ['S16 an anchor on another rule', { home: '/h', exceptions: [{ allow: 'SHA1_SIGNATURE', anchor: 'old.pem', until: '2027-04-30' }], listeners: [listener] }, /anchor goes only with RETIRING_CA/],
  ['S17 an unknown key in an exception', { home: '/h', exceptions: [{ allow: 'SHA1_SIGNATURE', until: '2027-04-30', untill: '2027-05-01' }], listeners: [listener] }, /exceptions\[0\]: unknown key "untill"/],
  ['S18 tls.extra with a token key', { tls: { cert: 'c.pem', key: 'pkcs11:token=x', module: 'm.so', extra: [{ cert: 'r.pem', key: 'r.key' }] }, clientCa: ['ca.pem'], listeners: [listener] }, /tls\.extra: extra certificates go with a key file/],
  ['S19 tls.extra entry with an unknown key', { tls: { cert: 'c.pem', key: 'k.pem', extra: [{ cert: 'r.pem', key: 'r.key', chain: 'x' }] }, clientCa: ['ca.pem'], listeners: [listener] }, /tls\.extra\[0\]: unknown key "chain"/],
];

for (const [name, raw, message] of BAD) {
  test(`bad schedule configuration ${name}: GATEWAY_CONFIG_INVALID naming the place`, () => {
    assert.throws(
      () => parseGatewayConfig(raw),
      (e: unknown) => e instanceof SekishoError && e.code === 'GATEWAY_CONFIG_INVALID' && message.test(e.message),
      `expected ${message}`,
    );
  });
}
