import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, repositories } from './index.js';
import { GroupCommit } from './group-commit.js';
import { tempDir } from '../testing/stores.js';

const at = '2026-01-01T00:00:00.000Z';
const facility = (n: string) => ({ number: n, name: n, status: 'active' as const, createdAt: at, updatedAt: at });

test('group commit: concurrent units share transactions; a failing unit is rejected alone and the others commit', async () => {
  const db = await openStore({ home: tempDir() });
  try {
    const commits = new GroupCommit(db);
    const numbers = Array.from({ length: 20 }, (_, i) => `01100000${String(i).padStart(2, '0')}`);
    const outcomes = await Promise.allSettled(
      numbers.map((n, i) =>
        commits.run(async (tx) => {
          await repositories(tx).facilities.add(facility(n));
          if (i === 7) throw new Error('unit 7 fails');
          return n;
        }),
      ),
    );
    assert.equal(outcomes.filter((o) => o.status === 'rejected').length, 1);
    assert.match(String((outcomes[7] as PromiseRejectedResult).reason), /unit 7 fails/);
    const stored = (await repositories(db).facilities.list()).map((f) => f.number);
    assert.deepEqual(stored, numbers.filter((_, i) => i !== 7), 'everything but the failing unit is committed, once');
  } finally {
    await db.close();
  }
});
