import type { SqlExecutor } from './database.js';
import type { FacilityStatus } from './facilities.js';
import { setImmediate } from 'node:timers/promises';

/** A facility as a gateway needs it. */
export interface FeedFacility {
  number: string;
  name: string;
  status: FacilityStatus;
}

/**
 * What a gateway follows, as of store change sequence `seq`: revoked serials
 * (as stored: hex) and facility status. A snapshot holds everything; changes
 * hold the rows changed after a cursor, up to `seq`.
 */
export interface StatusFeedBatch {
  /** The cursor to ask from next time: every change numbered up to it is in this batch or an earlier one. */
  seq: number;
  revoked: string[];
  /** Superseded certificates not yet revoked, with the time their revocation is due (ISO 8601). */
  due: { serial: string; dueAt: string }[];
  facilities: FeedFacility[];
}

/**
 * The read-only face of the store a gateway is given (and nothing more): the
 * whole state, then the changes after a sequence number. See change-seq.ts for
 * why a reader of this feed never skips a change, whatever the clocks say.
 */
export interface StatusFeedReader {
  snapshot(): Promise<StatusFeedBatch>;
  changesAfter(seq: number): Promise<StatusFeedBatch>;
}

interface FacilityRow {
  number: string;
  name: string;
  status: FacilityStatus;
}

interface DueRow {
  serial: string;
  revoke_due_at: string;
}

const dueEntry = (r: DueRow) => ({ serial: r.serial, dueAt: r.revoke_due_at });

const facility = (r: FacilityRow): FeedFacility => ({ number: r.number, name: r.name, status: r.status });

/** Rows a snapshot reads per statement; between pages the thread serves others (a national store: 160,000 revoked serials, 230,000 facilities). */
const SNAPSHOT_PAGE_ROWS = 5000;

export class StatusFeedRepository implements StatusFeedReader {
  constructor(
    private readonly x: SqlExecutor,
    private readonly pageRows = SNAPSHOT_PAGE_ROWS,
  ) {}

  /** The sequence number of the latest committed change (0: none yet). */
  async head(): Promise<number> {
    const r = await this.x.get<{ seq: number | string }>('SELECT seq FROM change_counter WHERE id = 1');
    return Number(r?.seq ?? 0);
  }

  /**
   * Everything, read in pages in index order (keyset), yielding the thread
   * between pages: on SQLite each statement runs on the calling thread, and
   * the whole of a national store at once held a gateway's every connection
   * for over half a second. A row changed while the pages are read is read
   * with its old or its new state; either way its change is numbered after
   * the head read first, so the next changesAfter(seq) brings it.
   */
  async snapshot(): Promise<StatusFeedBatch> {
    // The head first: rows read after it include every change up to it (and maybe later ones, sent again next time).
    const seq = await this.head();
    const revoked = await this.#pages<{ serial: string; change_seq: number | string }>(
      "SELECT serial, change_seq FROM certificates WHERE status = 'revoked' AND (change_seq, serial) > (?, ?) ORDER BY change_seq, serial LIMIT ?",
      [-1, ''],
      (r) => [r.change_seq, r.serial],
    );
    const due = await this.#pages<DueRow>(
      "SELECT serial, revoke_due_at FROM certificates WHERE status = 'issued' AND revoke_due_at IS NOT NULL AND (revoke_due_at, serial) > (?, ?) ORDER BY revoke_due_at, serial LIMIT ?",
      ['', ''],
      (r) => [r.revoke_due_at, r.serial],
    );
    const facilities = await this.#pages<FacilityRow>('SELECT number, name, status FROM facilities WHERE number > ? ORDER BY number LIMIT ?', [''], (r) => [r.number]);
    return { seq, revoked: revoked.map((r) => r.serial), due: due.map(dueEntry), facilities: facilities.map(facility) };
  }

  /** Runs a keyset query page by page: `after` is the key to start after, `key` a row's key; the page size is the last parameter. */
  async #pages<T>(sql: string, after: unknown[], key: (row: T) => unknown[]): Promise<T[]> {
    const rows: T[] = [];
    for (let from = after; ; ) {
      const page = await this.x.all<T>(sql, [...from, this.pageRows]);
      for (const r of page) rows.push(r);
      if (page.length < this.pageRows) return rows;
      from = key(page[page.length - 1]!);
      await setImmediate(); // the event loop runs (I/O, timers) before the next page
    }
  }

  async changesAfter(after: number): Promise<StatusFeedBatch> {
    const seq = await this.head();
    if (seq <= after) return { seq, revoked: [], due: [], facilities: [] };
    const revoked = await this.x.all<{ serial: string }>("SELECT serial FROM certificates WHERE change_seq > ? AND change_seq <= ? AND status = 'revoked' ORDER BY change_seq", [after, seq]);
    const due = await this.x.all<DueRow>("SELECT serial, revoke_due_at FROM certificates WHERE change_seq > ? AND change_seq <= ? AND status = 'issued' AND revoke_due_at IS NOT NULL ORDER BY change_seq", [after, seq]);
    const facilities = await this.x.all<FacilityRow>('SELECT number, name, status FROM facilities WHERE change_seq > ? AND change_seq <= ? ORDER BY change_seq', [after, seq]);
    return { seq, revoked: revoked.map((r) => r.serial), due: due.map(dueEntry), facilities: facilities.map(facility) };
  }
}
