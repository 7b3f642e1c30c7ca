import type { Database, SqlExecutor } from './database.js';

interface Pending<T> {
  work: (tx: SqlExecutor) => Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/** Marks which unit of a shared transaction threw, so the others can be retried. */
class UnitFailed {
  constructor(readonly index: number, readonly error: unknown) {}
}

/**
 * Group commit: units of work that arrive while a commit is under way share
 * the next transaction, so N concurrent callers pay for one fsync instead of
 * N. Each caller's promise settles only after its transaction has committed.
 * When a unit throws, that unit alone is rejected and the others run again in
 * a new shared transaction; when the transaction itself fails (BEGIN or
 * COMMIT), every unit in it is rejected with that error, never retried.
 * A unit may therefore run more than once: it must have no effect outside
 * the transaction it is given.
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
      let batch = this.#queue.splice(0, this.#maxBatch);
      while (batch.length) {
        try {
          const results = await this.#db.transaction(async (tx) => {
            const out: unknown[] = [];
            for (let i = 0; i < batch.length; i++) {
              try {
                out.push(await batch[i]!.work(tx));
              } catch (e) {
                throw new UnitFailed(i, e);
              }
            }
            return out;
          });
          batch.forEach((p, i) => p.resolve(results[i]));
          batch = [];
        } catch (e) {
          if (e instanceof UnitFailed) {
            batch[e.index]!.reject(e.error);
            batch = batch.filter((_, i) => i !== e.index);
          } else {
            for (const p of batch) p.reject(e);
            batch = [];
          }
        }
      }
      // let callers whose commit just finished run their next step, so they join the next batch
      await new Promise((r) => setImmediate(r));
    }
    this.#scheduled = false;
  }
}
