import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { newSerial } from './serial.js';

describe('serials', () => {
  test('serials drawn from the pooled CSPRNG are 9 bytes, positive, never zero-led, distinct, and not views of one buffer', () => {
    const seen = new Set<string>();
    const all: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      // 5000 × 9 bytes crosses the 4 KiB pool's refill many times
      const s = newSerial();
      assert.equal(s.length, 9);
      assert.ok(s[0]! >= 1 && s[0]! <= 0x7f, 'first byte 0x01..0x7f');
      seen.add(s.toString('hex'));
      all.push(s);
    }
    assert.equal(seen.size, 5000);
    // 64+ random bits: the last bytes of 100 serials are spread, not one value
    assert.ok(new Set(all.slice(0, 100).map((s) => s[8])).size > 10);
    const first = Buffer.from(all[0]!);
    for (const s of all.slice(1)) s.fill(0);
    assert.deepEqual(all[0], first, 'changing one serial changes no other');
  });

  test('an injected random source is still used as given (tests, deterministic runs)', () => {
    const s = newSerial((n) => Buffer.alloc(n, 0xff));
    assert.deepEqual([...s], [1 + (0xff % 0x7f), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });
});
