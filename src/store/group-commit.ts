import type { Database, SqlExecutor } from './database.js';

interface Pending<T> {
  work: (tx: SqlExecutor) => Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: units of work that arrive while a commit is under way share
 * the next transaction, so N concurrent callers pay for one fsync instead of
 * N. Each caller's promise settles only after its transaction has committed.
 * When a shared transaction fails, its units are retried one transaction
 * each, so a failing unit never fails its neighbours.
 */
export class GroupCommit {
  readonly #db: Database;
  readonly #maxBatch: number;
  #queue: Pending<unknown>[] = [];
  #scheduled = false;

  constructor(db: Database, maxBatch = 128) {
    this.#db = db;
    this.#maxBatch = maxBatch;
  }

  run<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve, reject } as Pending<unknown>);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      let results: unknown[] | undefined;
      try {
        results = await this.#db.transaction(async (tx) => {
          const out: unknown[] = [];
          for (const p of batch) out.push(await p.work(tx));
          return out;
        });
      } catch {
        results = undefined;
      }
      if (results) batch.forEach((p, i) => p.resolve(results![i]));
      else {
        for (const p of batch) {
          try {
            p.resolve(await this.#db.transaction(p.work));
          } catch (e) {
            p.reject(e);
          }
        }
      }
      // let callers whose commit just finished run their next step, so they join the next batch
      await new Promise((r) => setImmediate(r));
    }
    this.#scheduled = false;
  }
}
