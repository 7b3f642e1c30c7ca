import { test } from 'node:test';
import assert from 'node:assert/strict';
import { complianceProfile, type PolicyOutlook, type PolicySchedule } from '../policy/index.js';
import { ActivePolicy } from './active-policy.js';

test('the active policy switches at the scheduled instant without a restart, and re-arms for the next change', async () => {
  const start = Date.now();
  const schedule: PolicySchedule = {
    phases: [{ profile: complianceProfile('exception') }, { from: new Date(start + 300), profile: complianceProfile('high') }],
    clientPolicy: { exceptions: [] },
  };
  const active = new ActivePolicy(schedule);
  try {
    assert.equal(active.outlook().inForce.profile.name, 'exception');
    assert.equal(active.outlook().coming?.profile.name, 'high');
    const changed = await new Promise<[PolicyOutlook, PolicyOutlook]>((resolve) => active.on('change', (now, before) => resolve([now, before])));
    assert.equal(changed[0].inForce.profile.name, 'high');
    assert.equal(changed[1].inForce.profile.name, 'exception');
    assert.equal(changed[0].coming, undefined);
  } finally {
    active.close();
  }
});

test('an injected clock that jumps past a boundary is met by check()', () => {
  let now = new Date('2027-03-31T12:00:00+09:00');
  const schedule: PolicySchedule = {
    phases: [{ profile: complianceProfile('recommended') }, { from: new Date('2027-04-01T00:00:00+09:00'), profile: complianceProfile('mhlw') }],
    clientPolicy: { exceptions: [{ facility: '1312345678', allow: 'SHA1_SIGNATURE', until: '2027-04-30' }] },
  };
  const active = new ActivePolicy(schedule, () => now);
  const seen: string[] = [];
  active.on('change', (o) => seen.push(`${o.inForce.profile.name}/${o.inForce.clientPolicy.exceptions.length}`));
  try {
    assert.equal(active.check(), false, 'nothing changed yet');
    now = new Date('2027-04-01T00:00:01+09:00');
    assert.equal(active.check(), true);
    now = new Date('2027-05-01T00:00:01+09:00');
    assert.equal(active.check(), true, 'the exception ended');
    assert.deepEqual(seen, ['mhlw/1', 'mhlw/0']);
  } finally {
    active.close();
  }
});
