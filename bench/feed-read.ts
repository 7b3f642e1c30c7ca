/**
 * How long a gateway's full read of the status feed (at start, and every
 * resync) holds its thread, on a national-size SQLite store. Make the store
 * once with `SEKISHO_PASSPHRASE=… node dist/bench/national-data.js --home DIR`
 * (230,000 facilities, 1,000,000 certificates, 163,000 of them revoked), then
 * `node dist/bench/feed-read.js DIR` after a build. Prints JSON.
 *
 * The feed (StoreStatusFeed over the store's StatusFeedRepository, as the
 * gateway runs it) starts, then resyncs once; a 2 ms timer runs meanwhile,
 * and the longest gap between two of its ticks is how long a connection's
 * handshake or request could have waited on the feed (garbage collection
 * included). Rounds: FEED_READ_ROUNDS (default 3); the report gives medians.
 */
import { openStore, StatusFeedRepository } from '../src/store/index.js';
import { StoreStatusFeed } from '../src/gateway/index.js';
import { envNumber, invokedDirectly, median, round, runDirectly } from './support.js';

async function once(home: string): Promise<{ startSeconds: number; longestGapAtStartMs: number; longestGapDuringResyncMs: number; revoked: number }> {
  const store = await openStore({ home, create: false });
  const feed = new StoreStatusFeed(new StatusFeedRepository(store), { intervalMs: 3_600_000, resyncMs: 1 });
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 2);
  try {
    const t = performance.now();
    await feed.start();
    const startSeconds = (performance.now() - t) / 1000;
    await new Promise((r) => setTimeout(r, 20));
    const atStart = longest;
    longest = 0;
    await feed.refresh(); // resyncMs 1: a full read
    await new Promise((r) => setTimeout(r, 20));
    return { startSeconds: round(startSeconds), longestGapAtStartMs: round(atStart, 1), longestGapDuringResyncMs: round(longest, 1), revoked: feed.revokedCount() };
  } finally {
    clearInterval(tick);
    feed.close();
    await store.close();
  }
}

export async function main(home = process.argv[2]): Promise<unknown> {
  if (!home) throw new Error('usage: node dist/bench/feed-read.js <home of a national-size store> (made by dist/bench/national-data.js)');
  const runs = [];
  for (let i = 0; i < envNumber('FEED_READ_ROUNDS', 3); i++) runs.push(await once(home));
  return {
    store: home,
    revoked: runs[0]!.revoked,
    medians: {
      startSeconds: median(runs.map((r) => r.startSeconds)),
      longestGapAtStartMs: median(runs.map((r) => r.longestGapAtStartMs)),
      longestGapDuringResyncMs: median(runs.map((r) => r.longestGapDuringResyncMs)),
    },
    runs,
  };
}

if (invokedDirectly(import.meta.url)) runDirectly(main);
