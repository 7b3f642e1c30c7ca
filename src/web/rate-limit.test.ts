/**
 * The notice rate limit lives in the store (SQLite and PostgreSQL). Defect
 * guarded: the limiter counted in memory, so a restart of `sekisho serve`
 * (or a second CA node) reset every address's count; and a read-then-write
 * count could lose increments under concurrent requests.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, repositories } from '../store/index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { startSekisho } from '../testing/cli-process.js';
import { runAsync } from '../testing/peers.js';
import { fetchTls } from '../testing/enrollment-server.js';
import { SEKISHO_MAIN } from '../testing/cli-process.js';
import { AttemptLimiter, type AttemptCounter } from './rate-limit.js';

const WINDOW = 600_000;

for (const target of STORE_TARGETS) {
  describe(`notice attempts in the store (${target.name})`, { skip: target.available ? false : `${target.name} is not available here` }, () => {
    /** Two handles on one store: two processes (or CA nodes) sharing it. */
    async function twoHandles() {
      const home = tempDir('sekisho-attempts-');
      const url = await target.fresh();
      const a = await openStore({ home, ...(url ? { url } : {}) });
      const b = await openStore({ home, ...(url ? { url } : {}), create: false });
      const counter = (db: typeof a): AttemptCounter => ({
        countAttempt: (addr, now, w) => repositories(db).noticeAttempts.count(addr, now, w),
        expireAttempts: (now, w) => repositories(db).noticeAttempts.expire(now, w),
      });
      return { a, b, counter, close: async () => void (await Promise.all([a.close(), b.close()])) };
    }

    test('concurrent attempts through two connections lose no increment', async () => {
      const s = await twoHandles();
      try {
        const now = Date.now();
        const counts = await Promise.all(Array.from({ length: 60 }, (_, i) => repositories(i % 2 ? s.a : s.b).noticeAttempts.count('192.0.2.7', now, WINDOW)));
        assert.deepEqual(counts.map((c) => c.count).sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i + 1));
        assert.ok(counts.every((c) => c.windowStart === now));
      } finally {
        await s.close();
      }
    });

    test('the limit holds under concurrent requests from two limiters: exactly `attempts` go ahead, the rest get a wait', async () => {
      const s = await twoHandles();
      try {
        const now = new Date();
        const one = new AttemptLimiter(s.counter(s.a), { attempts: 5, now: () => now });
        const two = new AttemptLimiter(s.counter(s.b), { attempts: 5, now: () => now });
        const waits = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? one : two).take('198.51.100.1')));
        assert.equal(waits.filter((w) => w === 0).length, 5);
        assert.ok(waits.filter((w) => w > 0).every((w) => w === 600));
        assert.equal(await one.take('198.51.100.2'), 0, 'another address has its own count');
      } finally {
        await s.close();
      }
    });

    test('a window that has ended starts over, and ended windows are deleted', async () => {
      const s = await twoHandles();
      try {
        let clock = Date.now();
        const limiter = new AttemptLimiter(s.counter(s.a), { attempts: 2, windowSeconds: 600, now: () => new Date(clock) });
        assert.deepEqual([await limiter.take('a'), await limiter.take('a'), await limiter.take('a')], [0, 0, 600]);
        clock += 300_000;
        assert.equal(await limiter.take('a'), 300);
        clock += 300_000;
        assert.equal(await limiter.take('a'), 0, 'a new window');
        await limiter.take('b');
        clock += WINDOW + 1;
        assert.equal(await repositories(s.a).noticeAttempts.expire(clock, WINDOW), 2);
        assert.equal((await s.a.all('SELECT address FROM notice_attempts')).length, 0);
      } finally {
        await s.close();
      }
    });

    test('the limit holds across a restart of sekisho serve', { timeout: 240_000 }, async () => {
      const dir = tempDir('sekisho-serve-limit-');
      const home = join(dir, 'home');
      const url = await target.fresh();
      const env: NodeJS.ProcessEnv = { ...process.env, SEKISHO_HOME: home, SEKISHO_PASSPHRASE: 'rate-limit-passphrase' };
      delete env.SEKISHO_DB;
      if (url) env.SEKISHO_DB = url;
      const init = await runAsync(process.execPath, [SEKISHO_MAIN, 'init'], { env, timeoutMs: 120_000 });
      assert.equal(init.status, 0, init.stderr);
      const rootPem = readFileSync(join(home, 'ca', 'root.pem'), 'utf8');
      const attempt = (portal: string) =>
        fetchTls(new URL('/api/enroll', portal).href, {
          ca: rootPem,
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ requestId: 'ABCD-EFGH-JKLM', referenceId: 'ABCD-EFGH-JKLM', password: 'long-enough-password' }),
        });
      const serve = () => startSekisho<{ portal: { url: string } }>(['serve', '--json', '--listen', '127.0.0.1:0', '--portal', '127.0.0.1:0', '--console-listen', 'off', '--upstream', 'http://127.0.0.1:9/'], { env });

      const first = serve();
      const statuses: number[] = [];
      try {
        const { portal } = await first.summary;
        // The default limit is 20 attempts per address in 10 minutes.
        for (let i = 0; i < 20; i++) statuses.push((await attempt(portal.url)).status);
      } finally {
        assert.equal(await first.stop('SIGTERM'), 0, first.stderr());
      }
      assert.ok(statuses.every((s) => s !== 429), `the first 20 attempts are not limited: ${statuses.join(',')}`);

      const second = serve();
      try {
        const { portal } = await second.summary;
        const r = await attempt(portal.url);
        assert.equal(r.status, 429, r.text);
        assert.equal((JSON.parse(r.text) as { error: { code: string } }).error.code, 'RATE_LIMITED');
        assert.ok(Number(r.headers['retry-after']) > 0);
      } finally {
        await second.stop('SIGTERM');
      }
    });
  });
}
