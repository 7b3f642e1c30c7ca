import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HelloSampler } from './hello-sampler.js';

const holds = (s: HelloSampler, address: string, n: number) => Array.from({ length: n }, () => {
  const held = s.hold(address);
  s.completed(address);
  return held ? 'H' : '.';
}).join('');

describe('hello sampling: which connections hold their ClientHello', () => {
  test('a new address is held until its streak of completed handshakes, then one connection in `every`', () => {
    const s = new HelloSampler({ streak: 3, every: 4 });
    assert.equal(holds(s, '192.0.2.1', 12), 'HHHH...H...H');
    assert.deepEqual(s.counts, { held: 6, passed: 6 });
    // Another address has a streak of its own.
    assert.equal(holds(s, '192.0.2.2', 4), 'HHHH');
  });

  test('a handshake refused or failed from an address makes its next connections held again, every one, until the streak is back', () => {
    const s = new HelloSampler({ streak: 2, every: 100 });
    assert.equal(holds(s, '2001:db8::1', 4), 'HH' + 'H.');
    assert.equal(s.hold('2001:db8::1'), false);
    s.failed('2001:db8::1');
    assert.equal(holds(s, '2001:db8::1', 4), 'HH' + 'H.');
    // A failure of an address never seen changes nothing.
    s.failed('203.0.113.9');
    assert.equal(s.hold('203.0.113.9'), true);
  });

  test('concurrent connections of an address that has not completed yet are all held', () => {
    const s = new HelloSampler({ streak: 1, every: 10 });
    assert.deepEqual([s.hold('a'), s.hold('a'), s.hold('a')], [true, true, true]);
  });

  test('past maxAddresses every address is forgotten at once: a flood of addresses costs holding, never observation', () => {
    const s = new HelloSampler({ streak: 1, every: 1000, maxAddresses: 3 });
    for (const a of ['a', 'b', 'c']) holds(s, a, 2);
    assert.equal(s.hold('a'), false);
    holds(s, 'd', 2); // the fourth address: all are forgotten
    assert.equal(s.hold('a'), true);
    assert.equal(s.hold('d'), false, 'the newcomer was remembered after the clearing');
  });

  test('settings must be positive integers', () => {
    for (const o of [{ streak: 0 }, { every: -1 }, { maxAddresses: 1.5 }, { streak: Number.NaN }]) assert.throws(() => new HelloSampler(o), RangeError);
  });
});
