import type { SqlExecutor } from './database.js';

/**
 * Notice attempts per client address in fixed windows, kept in the store so a
 * restart (or another CA node on the same PostgreSQL) does not forget them.
 * Each attempt is one statement (INSERT … ON CONFLICT DO UPDATE … RETURNING),
 * atomic in both dialects: concurrent attempts never lose an increment.
 */
export class NoticeAttemptRepository {
  constructor(private readonly x: SqlExecutor) {}

  /**
   * Counts one attempt for `address` at `nowMs`; a window older than
   * `windowMs` starts over. Returns the window's start and its count,
   * this attempt included.
   */
  async count(address: string, nowMs: number, windowMs: number): Promise<{ windowStart: number; count: number }> {
    const expired = nowMs - windowMs;
    const row = await this.x.get<{ window_start: number | string; attempts: number | string }>(
      `INSERT INTO notice_attempts (address, window_start, attempts) VALUES (?, ?, 1)
       ON CONFLICT (address) DO UPDATE SET
         attempts = CASE WHEN notice_attempts.window_start <= ? THEN 1 ELSE notice_attempts.attempts + 1 END,
         window_start = CASE WHEN notice_attempts.window_start <= ? THEN excluded.window_start ELSE notice_attempts.window_start END
       RETURNING window_start, attempts`,
      [address, nowMs, expired, expired],
    );
    return { windowStart: Number(row!.window_start), count: Number(row!.attempts) };
  }

  /** Drops the windows that ended before `nowMs - windowMs`; returns how many. */
  async expire(nowMs: number, windowMs: number): Promise<number> {
    return (await this.x.run('DELETE FROM notice_attempts WHERE window_start <= ?', [nowMs - windowMs])).changes;
  }
}
