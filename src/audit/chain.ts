import { createHash } from 'node:crypto';
import type { AuditRow } from '../store/index.js';

export const GENESIS_HASH = '0'.repeat(64);

type Hashed = Omit<AuditRow, 'hash'>;

/**
 * hash(n) = SHA-256(prev_hash ‖ "\n" ‖ JSON [seq, at, actor, action, outcome,
 * reason_code, subject, details]) — details as the exact stored text, so the
 * hash needs no canonical JSON.
 */
export function eventHash(row: Hashed): string {
  const body = JSON.stringify([row.seq, row.at, row.actor, row.action, row.outcome, row.reason_code, row.subject, row.details]);
  return createHash('sha256').update(row.prev_hash).update('\n').update(body).digest('hex');
}

export interface ChainProblem {
  seq: number;
  kind: 'altered' | 'deleted' | 'broken-link' | 'head-mismatch';
  message: string;
}

/**
 * Checks rows in seq order against each other and the recorded head. Collects
 * every problem (a tampered row does not hide the ones after it).
 */
export class ChainVerifier {
  #expectedSeq = 1;
  #prevHash = GENESIS_HASH;
  readonly problems: ChainProblem[] = [];
  count = 0;

  add(row: AuditRow): void {
    this.count++;
    if (row.seq !== this.#expectedSeq) {
      const from = this.#expectedSeq;
      const to = row.seq - 1;
      this.problems.push({
        seq: from,
        kind: 'deleted',
        message: from === to ? `audit event ${from} was deleted` : `audit events ${from}–${to} were deleted`,
      });
    } else if (row.prev_hash !== this.#prevHash) {
      this.problems.push({ seq: row.seq, kind: 'broken-link', message: `audit event ${row.seq} does not link to the event before it` });
    }
    if (eventHash(row) !== row.hash) {
      this.problems.push({ seq: row.seq, kind: 'altered', message: `audit event ${row.seq} (${row.action} at ${row.at}) was altered after it was written` });
    }
    this.#expectedSeq = row.seq + 1;
    this.#prevHash = row.hash;
  }

  finish(head: { seq: number; hash: string }): ChainProblem[] {
    if (head.seq !== this.#expectedSeq - 1 || head.hash !== this.#prevHash) {
      const lastSeen = this.#expectedSeq - 1;
      this.problems.push(
        head.seq > lastSeen
          ? { seq: lastSeen + 1, kind: 'deleted', message: `audit events ${lastSeen + 1}–${head.seq} at the end of the trail were deleted` }
          : { seq: head.seq, kind: 'head-mismatch', message: `the audit trail's recorded head (event ${head.seq}) does not match its last event ${lastSeen}` },
      );
    }
    return this.problems;
  }
}
