import { createHash } from 'node:crypto';
import { CA_WRITER, type AuditRow } from '../store/index.js';

export const GENESIS_HASH = '0'.repeat(64);

type Hashed = Omit<AuditRow, 'hash' | 'seq'>;

/**
 * hash(n) = SHA-256(prev_hash ‖ "\n" ‖ JSON [writer_seq, at, actor, action,
 * outcome, reason_code, subject, details]) for the CA's chain (as before
 * there were several: its writer_seq is its old seq), and JSON [writer,
 * writer_seq, …] for every other writer, so an event cannot be moved from
 * one chain to another. details as the exact stored text, so the hash needs
 * no canonical JSON.
 */
export function eventHash(row: Hashed): string {
  const fields = [row.writer_seq, row.at, row.actor, row.action, row.outcome, row.reason_code, row.subject, row.details];
  const body = JSON.stringify(row.writer === CA_WRITER ? fields : [row.writer, ...fields]);
  return createHash('sha256').update(row.prev_hash).update('\n').update(body).digest('hex');
}

/** How an event is named in a message: its number, and its writer unless it is the CA's chain. */
export const eventName = (writer: string, seq: number): string => (writer === CA_WRITER ? `audit event ${seq}` : `audit event ${seq} of writer ${writer}`);

export interface ChainProblem {
  seq: number;
  kind: 'altered' | 'deleted' | 'broken-link' | 'head-mismatch' | 'inserted';
  message: string;
}

/** Problems named one by one per chain; beyond this they are counted (a trail altered row by row stays bounded in memory and output). */
export const CHAIN_PROBLEMS_NAMED = 1000;

/**
 * Checks rows in seq order against each other and the recorded head. Collects
 * every problem (a tampered row does not hide the ones after it): the first
 * CHAIN_PROBLEMS_NAMED by name, the rest counted in one last problem.
 */
export class ChainVerifier {
  constructor(readonly writer = CA_WRITER) {}
  #expectedSeq = 1;
  #prevHash = GENESIS_HASH;
  readonly problems: ChainProblem[] = [];
  count = 0;
  /** Problems beyond those named, by kind. */
  readonly #omitted = new Map<ChainProblem['kind'], number>();
  /** The highest event place any problem concerns (0: none). */
  lastProblemSeq = 0;

  #problem(p: ChainProblem): void {
    this.lastProblemSeq = Math.max(this.lastProblemSeq, p.seq);
    if (this.problems.length < CHAIN_PROBLEMS_NAMED) this.problems.push(p);
    else this.#omitted.set(p.kind, (this.#omitted.get(p.kind) ?? 0) + 1);
  }

  /** False for a row that has no place after the rows before it: a second row for a place, or a place that is no whole number ≥ 1. */
  inPlace(row: AuditRow): boolean {
    return Number.isInteger(row.writer_seq) && row.writer_seq >= this.#expectedSeq;
  }

  add(full: AuditRow): void {
    // Within a chain an event's number is its place in the chain.
    const row = { ...full, seq: full.writer_seq };
    const name = (n: number) => eventName(this.writer, n);
    const w = this.writer === CA_WRITER ? '' : ` of writer ${this.writer}`;
    if (!this.inPlace(full)) {
      // Read, never taken into the chain: the rows around it are judged as if it were not there.
      const what = `(store seq ${full.seq}, ${String(full.action).slice(0, 60)} at ${String(full.at).slice(0, 40)})`;
      this.#problem({
        seq: Number.isInteger(row.seq) && row.seq > 0 ? row.seq : 0,
        kind: 'inserted',
        message: Number.isInteger(row.seq) && row.seq >= 1 ? `a second row for ${name(row.seq)} ${what} was inserted: a chain holds one event per place` : `a row numbered ${String(full.writer_seq).slice(0, 40)}${w} ${what} has no place in the chain: it was inserted`,
      });
      return;
    }
    this.count++;
    if (row.seq !== this.#expectedSeq) {
      const from = this.#expectedSeq;
      const to = row.seq - 1;
      this.#problem({
        seq: from,
        kind: 'deleted',
        message: from === to ? `${name(from)} was deleted` : `audit events ${from}–${to}${w} were deleted`,
      });
    } else if (row.prev_hash !== this.#prevHash) {
      this.#problem({ seq: row.seq, kind: 'broken-link', message: `${name(row.seq)} does not link to the event before it` });
    }
    if (eventHash(row) !== row.hash) {
      this.#problem({ seq: row.seq, kind: 'altered', message: `${name(row.seq)} (${row.action} at ${row.at}) was altered after it was written` });
    }
    this.#expectedSeq = row.seq + 1;
    this.#prevHash = row.hash;
  }

  finish(head: { seq: number; hash: string }): ChainProblem[] {
    const w = this.writer === CA_WRITER ? '' : ` of writer ${this.writer}`;
    if (head.seq !== this.#expectedSeq - 1 || head.hash !== this.#prevHash) {
      const lastSeen = this.#expectedSeq - 1;
      // Always named, beyond the bound too.
      this.problems.push(
        head.seq > lastSeen
          ? { seq: lastSeen + 1, kind: 'deleted', message: `audit events ${lastSeen + 1}–${head.seq}${w} at the end of the trail were deleted` }
          : { seq: head.seq, kind: 'head-mismatch', message: `the audit trail's recorded head${w} (event ${head.seq}) does not match its last event ${lastSeen}` },
      );
    }
    if (this.#omitted.size) {
      const n = [...this.#omitted.values()].reduce((a, b) => a + b, 0);
      const kinds = [...this.#omitted].map(([k, c]) => `${c} ${k}`).join(', ');
      this.problems.push({ seq: this.lastProblemSeq, kind: [...this.#omitted.keys()][0]!, message: `and ${n} more problems in the audit chain${w} (${kinds}), not named one by one: the first ${CHAIN_PROBLEMS_NAMED} are` });
    }
    return this.problems;
  }
}
