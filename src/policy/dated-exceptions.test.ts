/**
 * Dated certificate exceptions for a migration, judged as the gateway and the
 * connection verdict judge them: network-wide or per facility, with a first
 * and a last day (Japan time); legacy subjects (no facility number) once the
 * policy requires one; a retiring CA accepted until its date and refused after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeCertificate, certificatesFromPem, type CertificateView } from '../pki/index.js';
import { judgeClientChain, spkiSha256, checkDatedExceptions, type ClientCertificatePolicy } from './client-certificate-policy.js';
import { complianceProfile } from './tls-compliance.js';
import { judgeConnection } from './connection-verdict.js';
import { nextPolicyChange, policyAt, type PolicySchedule } from './policy-schedule.js';
import { needCommand, run } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';

const jst = (s: string) => new Date(`${s}+09:00`);

function openssl(args: string[]): void {
  const r = run('openssl', args);
  assert.equal(r.status, 0, r.stderr);
}

/** An old root CA and two leaves under it: one naming a facility number, one with a legacy subject; one SHA-1-signed leaf. */
function material(): { root: CertificateView; facility: CertificateView; legacy: CertificateView; sha1: CertificateView } {
  const dir = tempDir();
  const f = (n: string) => join(dir, n);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('root.key'), '-out', f('root.pem'), '-subj', '/C=JP/O=Old Network/CN=Old Root CA', '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const leaf = (name: string, subj: string, md: string) => {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subj]);
    openssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('root.pem'), '-CAkey', f('root.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '3650', `-${md}`]);
    return view(f(`${name}.pem`));
  };
  const view = (p: string) => describeCertificate(certificatesFromPem(readFileSync(p, 'utf8'))[0]!);
  return { root: view(f('root.pem')), facility: leaf('facility', '/C=JP/O=Clinic/CN=0110113719', 'sha256'), legacy: leaf('legacy', '/C=JP/O=Old Clinic/CN=reception-pc', 'sha256'), sha1: leaf('sha1', '/C=JP/O=Clinic/CN=1312345678', 'sha1') };
}

test('a retiring CA: chains ending at it pass through its last day and are refused (RETIRING_CA) the day after', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const m = material();
  const spki = spkiSha256(m.root);
  const policy: ClientCertificatePolicy = { retiringAnchors: [{ spki, name: 'Old Root CA' }], exceptions: [{ allow: 'RETIRING_CA', anchor: spki, until: '2027-03-31' }] };
  const chain = [m.facility, m.root];
  const before = judgeClientChain(chain, '0110113719', policy, jst('2027-03-31T23:59:00'));
  assert.equal(before.refusal, undefined);
  assert.deepEqual(before.exceptionsUsed.map((e) => e.allow), ['RETIRING_CA']);
  const afterDay = judgeClientChain(chain, '0110113719', policy, jst('2027-04-01T00:00:01'));
  assert.equal(afterDay.refusal?.rule, 'RETIRING_CA');
  // The exception of another anchor does not count.
  const other = judgeClientChain(chain, '0110113719', { ...policy, exceptions: [{ allow: 'RETIRING_CA', anchor: 'f'.repeat(64), until: '2099-01-01' }] }, jst('2027-01-01T00:00:00'));
  assert.equal(other.refusal?.rule, 'RETIRING_CA');
});

test('legacy subjects: refused once facility subjects are required, accepted inside a network-wide exception window (from and until, Japan time)', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const m = material();
  const policy: ClientCertificatePolicy = { facilitySubjectRequired: true, exceptions: [{ allow: 'LEGACY_SUBJECT', from: '2027-01-01', until: '2027-06-30' }] };
  const chain = [m.legacy, m.root];
  assert.equal(judgeClientChain(chain, undefined, policy, jst('2026-12-31T23:59:00')).refusal?.rule, 'LEGACY_SUBJECT', 'not yet in force');
  assert.equal(judgeClientChain(chain, undefined, policy, jst('2027-01-01T00:00:00')).refusal, undefined);
  assert.equal(judgeClientChain(chain, undefined, policy, jst('2027-07-01T00:00:00')).refusal?.rule, 'LEGACY_SUBJECT', 'ended');
  assert.equal(judgeClientChain([m.facility, m.root], '0110113719', policy, jst('2028-01-01T00:00:00')).refusal, undefined, 'a facility subject needs no exception');
  assert.equal(judgeClientChain([m.legacy], undefined, policy, jst('2028-01-01T00:00:00')).refusal, undefined, 'a pinned certificate (no chain) is exempt');
  assert.equal(judgeClientChain(chain, undefined, { exceptions: [] }, jst('2028-01-01T00:00:00')).refusal, undefined, 'not required: accepted as before');
});

test('SHA-1: a network-wide exception covers every facility; a facility exception only its own', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const m = material();
  const at = jst('2027-02-01T12:00:00');
  const chain = [m.sha1, m.root];
  assert.equal(judgeClientChain(chain, '1312345678', { exceptions: [] }, at).refusal?.rule, 'SHA1_SIGNATURE');
  assert.equal(judgeClientChain(chain, '1312345678', { exceptions: [{ allow: 'SHA1_SIGNATURE', until: '2027-03-31' }] }, at).refusal, undefined);
  assert.equal(judgeClientChain(chain, '1312345678', { exceptions: [{ facility: '0110113719', allow: 'SHA1_SIGNATURE', until: '2027-03-31' }] }, at).refusal?.rule, 'SHA1_SIGNATURE');
});

test('the schedule: an exception with a start day is in the state only from that day, and its start is a change', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const m = material();
  const schedule: PolicySchedule = {
    phases: [{ profile: complianceProfile('exception') }, { from: jst('2027-04-01T00:00:00'), profile: complianceProfile('mhlw'), facilitySubjectRequired: true }],
    clientPolicy: { exceptions: [{ allow: 'LEGACY_SUBJECT', from: '2027-04-01', until: '2027-09-30' }] },
  };
  assert.equal(nextPolicyChange(schedule, jst('2027-01-01T00:00:00'))?.toISOString(), jst('2027-04-01T00:00:00').toISOString());
  assert.equal(policyAt(schedule, jst('2027-03-31T12:00:00')).clientPolicy.exceptions.length, 0);
  const after = policyAt(schedule, jst('2027-04-01T00:00:00'));
  assert.equal(after.clientPolicy.facilitySubjectRequired, true);
  assert.equal(after.clientPolicy.exceptions.length, 1);
  const facts = { protocol: 'TLSv1.3' as const, suite: 'TLS_AES_128_GCM_SHA256', clientChain: [m.legacy, m.root] };
  assert.equal(judgeConnection(facts, after, jst('2027-04-01T00:00:00')).accepted, true);
  const later = policyAt(schedule, jst('2027-10-01T00:00:00'));
  const v = judgeConnection(facts, later, jst('2027-10-01T00:00:00'));
  assert.deepEqual(v.problems.map((p) => p.code), ['LEGACY_SUBJECT']);
  assert.match(v.problems[0]!.ja, /医療機関コード/);
});

test('bad exceptions are named: a facility on a legacy-subject exception, a start after the end, an impossible date', () => {
  assert.match(checkDatedExceptions([{ facility: '0110113719', allow: 'LEGACY_SUBJECT', until: '2027-01-01' }]) ?? '', /network-wide/);
  assert.match(checkDatedExceptions([{ allow: 'SHA1_SIGNATURE', from: '2027-02-01', until: '2027-01-01' }]) ?? '', /after until/);
  assert.match(checkDatedExceptions([{ allow: 'SHA1_SIGNATURE', until: '2027-02-30' }]) ?? '', /until must be a date/);
  assert.equal(checkDatedExceptions([{ allow: 'SHA1_SIGNATURE', until: '2027-02-28' }]), undefined);
});
