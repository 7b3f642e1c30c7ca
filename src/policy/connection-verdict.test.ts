import { test } from 'node:test';
import assert from 'node:assert/strict';
import { complianceProfile } from './tls-compliance.js';
import { fixedSchedule, nextPolicyChange, policyAt, policyOutlook, type PolicySchedule } from './policy-schedule.js';
import { judgeConnection } from './connection-verdict.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificatesFromPem, describeCertificate } from '../pki/index.js';
import { needCommand, run } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';

const high = complianceProfile('high');
const mhlw = complianceProfile('mhlw');
const exception = complianceProfile('exception');

test('a TLS 1.1 client is judged PROTOCOL_TOO_OLD under high, with a fix in Japanese and English', () => {
  const v = judgeConnection({ offered: { protocols: ['TLSv1.0', 'TLSv1.1'], suites: ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'] } }, policyAt(fixedSchedule(high), new Date()), new Date());
  assert.equal(v.accepted, false);
  assert.deepEqual(v.problems.map((p) => p.code), ['PROTOCOL_TOO_OLD']);
  assert.match(v.problems[0]!.ja, /TLS 1\.1/);
  assert.match(v.problems[0]!.fixJa, /security\.tls\.version\.max/);
});

test('a negotiated TLS 1.3 connection with a listed suite passes high; CBC on TLS 1.2 does not', () => {
  const state = policyAt(fixedSchedule(high), new Date());
  assert.equal(judgeConnection({ protocol: 'TLSv1.3', suite: 'TLS_AES_256_GCM_SHA384' }, state, new Date()).accepted, true);
  const cbc = judgeConnection({ protocol: 'TLSv1.2', suite: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256' }, state, new Date());
  assert.deepEqual(cbc.problems.map((p) => p.code), ['SUITE_NOT_ALLOWED']);
});

test('offered suites count only with a version that may use them', () => {
  const state = policyAt(fixedSchedule(high), new Date());
  // Offers TLS 1.2 with CBC only, plus TLS 1.3 suites it cannot use (TLS 1.3 not offered).
  const v = judgeConnection({ offered: { protocols: ['TLSv1.2'], suites: ['TLS_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'] } }, state, new Date());
  assert.deepEqual(v.problems.map((p) => p.code), ['SUITE_NOT_ALLOWED']);
});

test('mhlw requires a client certificate; every problem is listed, not only the first', () => {
  const v = judgeConnection({ protocol: 'TLSv1.1', suite: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' }, policyAt(fixedSchedule(mhlw), new Date()), new Date());
  assert.deepEqual(v.problems.map((p) => p.code), ['PROTOCOL_TOO_OLD', 'CLIENT_CERT_MISSING']);
});

test('the exception profile accepts TLS 1.0 where high refuses it', () => {
  const facts = { protocol: 'TLSv1.0' as const };
  assert.equal(judgeConnection(facts, policyAt(fixedSchedule(exception), new Date()), new Date()).accepted, true);
  assert.equal(judgeConnection(facts, policyAt(fixedSchedule(high), new Date()), new Date()).accepted, false);
});

test('a schedule: the phase and the exceptions in force at each instant, and what comes next', () => {
  const cut = new Date('2027-04-01T00:00:00+09:00');
  const schedule: PolicySchedule = {
    phases: [{ profile: exception }, { from: cut, profile: high }],
    clientPolicy: { exceptions: [{ facility: '1312345678', allow: 'SHA1_SIGNATURE', until: '2027-06-30' }] },
  };
  const before = new Date('2027-03-31T23:59:59+09:00');
  const o = policyOutlook(schedule, before);
  assert.equal(o.inForce.profile.name, 'exception');
  assert.equal(o.coming?.profile.name, 'high');
  assert.equal(o.coming?.since.getTime(), cut.getTime());
  assert.equal(o.coming?.clientPolicy.exceptions.length, 1, 'the exception outlives the switch');
  assert.equal(nextPolicyChange(schedule, cut)?.toISOString(), new Date('2027-07-01T00:00:00+09:00').toISOString(), 'next: the exception ends after its last day, Japan time');
  const after = policyOutlook(schedule, new Date('2027-07-01T00:00:00+09:00'));
  assert.equal(after.inForce.profile.name, 'high');
  assert.equal(after.inForce.clientPolicy.exceptions.length, 0);
  assert.equal(after.coming, undefined);
});

test('a client certificate that can sign the handshake only with SHA-1 is SIGNATURE_ALGORITHM_NOT_ALLOWED under high, not under exception', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const dir = tempDir();
  const r = run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=1312345678', '-days', '30', '-sha256', '-addext', 'extendedKeyUsage=clientAuth']);
  assert.equal(r.status, 0, r.stderr);
  const view = describeCertificate(certificatesFromPem(readFileSync(join(dir, 'c.pem'), 'utf8'))[0]!);
  const facts = { protocol: 'TLSv1.2' as const, suite: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', signatureAlgorithms: ['ECDSA+SHA1', 'RSA+SHA1'], clientChain: [view] };
  const now = new Date();
  assert.deepEqual(judgeConnection(facts, policyAt(fixedSchedule(high), now), now).problems.map((p) => p.code), ['SIGNATURE_ALGORITHM_NOT_ALLOWED']);
  assert.equal(judgeConnection({ ...facts, signatureAlgorithms: ['ECDSA+SHA256', 'ECDSA+SHA1'] }, policyAt(fixedSchedule(high), now), now).accepted, true, 'one SHA-2 algorithm shared is enough');
  assert.equal(judgeConnection({ ...facts, suite: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA' }, policyAt(fixedSchedule(exception), now), now).problems.some((p) => p.code === 'SIGNATURE_ALGORITHM_NOT_ALLOWED'), false, 'the exception profile takes SHA-1 handshake signatures');
  assert.deepEqual(judgeConnection({ ...facts, clientChain: [] }, policyAt(fixedSchedule(high), now), now).problems.map((p) => p.code), [], 'without a certificate nothing is signed');
});
