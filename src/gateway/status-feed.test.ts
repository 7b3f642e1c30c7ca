/**
 * A full read of the feed (at start, and every resync) builds the new state
 * apart and lets the event loop run while it does; lookups meanwhile see the
 * old state whole, and the new one replaces it at once. Regression: the
 * state was rebuilt in place in one go, which at national size held the
 * gateway's thread for a third of a second after the read itself (the read is
 * paged in store/status-feed.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StatusFeedBatch, StatusFeedReader } from '../store/index.js';
import { serialKey } from './serial-key.js';
import { StoreStatusFeed } from './status-feed.js';

const N = 60_000;
const serial = (i: number) => (0x100000 + i).toString(16);
const facility = (i: number) => String(1_000_000_000 + i);

/** A store of N revoked serials and N facilities; `changed` revokes one more and suspends facility 7. */
function batch(seq: number, changed: boolean): StatusFeedBatch {
  const revoked = Array.from({ length: N }, (_, i) => serial(i));
  if (changed) revoked.push(serial(N));
  const facilities = Array.from({ length: N }, (_, i) => ({ number: facility(i), name: `clinic ${i}`, status: changed && i === 7 ? ('suspended' as const) : ('active' as const) }));
  return { seq, revoked, due: [], facilities };
}

test('a resync builds the new state while the event loop runs; lookups meanwhile see the old state whole, then the new one at once', async () => {
  let next = batch(1, false);
  const reader: StatusFeedReader = { snapshot: async () => next, changesAfter: async (seq) => ({ seq, revoked: [], due: [], facilities: [] }) };
  const feed = new StoreStatusFeed(reader, { intervalMs: 3_600_000, resyncMs: 1 });
  const revoked: string[] = [];
  const suspended: string[] = [];
  feed.onRevoked((s) => revoked.push(...s));
  feed.onSuspended((n) => suspended.push(...n));
  await feed.start();
  try {
    assert.equal(feed.revokedCount(), N);
    next = batch(2, true);
    // Every turn of the event loop during the resync: the old state, whole.
    const seen: { last: boolean; lastFacility: string | undefined; seventh: string | undefined; cursor: number }[] = [];
    let reading = true;
    const look = () => {
      seen.push({ last: feed.isRevoked(serialKey(serial(N - 1))), lastFacility: feed.facility(facility(N - 1))?.status, seventh: feed.facility(facility(7))?.status, cursor: feed.cursor });
      if (reading) setImmediate(look);
    };
    setImmediate(look);
    await feed.refresh();
    reading = false;
    const during = seen.filter((s) => s.cursor === 1);
    assert.ok(during.length >= 3, `the event loop turned ${during.length} times while 2 × ${N} entries were built`);
    for (const s of during) assert.deepEqual(s, { last: true, lastFacility: 'active', seventh: 'active', cursor: 1 }, 'a lookup during the build sees the old state whole');
    // The new state, in place at once, and what changed reported once.
    assert.equal(feed.cursor, 2);
    assert.equal(feed.revokedCount(), N + 1);
    assert.ok(feed.isRevoked(serialKey(serial(N))));
    assert.equal(feed.facility(facility(7))?.status, 'suspended');
    assert.equal(feed.facility(facility(N - 1))?.status, 'active');
    assert.deepEqual(revoked, [serialKey(serial(N))]);
    assert.deepEqual(suspended, [facility(7)]);
  } finally {
    feed.close();
  }
});
