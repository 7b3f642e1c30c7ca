/**
 * Issuance on every core: a small pool of worker threads (issuance-worker.ts)
 * that parse CSRs, lint, build and sign for ONE issuing CA, while the main
 * thread keeps what must stay in one place: the registry, the serial
 * reservations, the audit chain and the group commit (CertificateIssuer).
 *
 * The lint token never crosses the thread boundary as something signable:
 * the worker keeps the linted TBS and hands out a random token; `sign()`
 * sends only that token back to the same worker, which signs it once. A
 * token from another pool (another issuer) is refused here, and a worker
 * knows only its own tokens.
 *
 * A worker that dies (crash, out of memory, terminated) fails the requests it
 * held with ISSUANCE_WORKER_FAILED and is replaced; its tokens die with it.
 * `close()` waits for what is in flight, then stops the workers.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { badRequest, SekishoError, unavailable } from '../errors/index.js';
import { spkiDer, type SignatureAlgorithm } from '../pki/index.js';
import type { IssuerFacts, DraftRequest, SubjectKeySource } from './certificate-draft.js';
import type { FromWorker, ToWorker, WireRequest, WorkerSetup } from './issuance-protocol.js';
import type { RevocationUrls } from './revocation-pointers.js';

export interface IssuancePoolOptions {
  /** The issuing private key (software key; a token's key cannot leave its token). */
  key: KeyObject;
  issuer: IssuerFacts;
  urls?: RevocationUrls;
  /** Worker threads; default: the cores Node may use (availableParallelism). */
  workers?: number;
  /** Called as a request is handed to a worker, just before it is posted (diagnostics; tests use it to kill a worker mid-request). */
  onDispatch?: (op: 'prepare' | 'sign', worker: Worker) => void;
}

/** A certificate linted in a worker, waiting to be signed there: the single-use lint token as the main thread sees it. */
export interface PooledDraft {
  readonly token: string;
  readonly serial: string;
  readonly tbsSha256: string;
  readonly spkiSha256: string;
}

interface Slot {
  worker: Worker;
  /** Requests for this worker not yet posted: sent together once per turn of the event loop (one wake-up, one message). */
  outbox: ToWorker[];
  /** Requests posted to this worker and not yet answered. */
  pending: Map<number, { resolve: (m: FromWorker) => void; reject: (e: unknown) => void }>;
  ready: Promise<void>;
  /** It loaded once: only such a worker is replaced when it dies (no crash loop at start). */
  started: boolean;
  alive: boolean;
}

const drafts = new WeakMap<PooledDraft, { pool: IssuancePool; slot: Slot }>();

const workerFailed = () =>
  unavailable('ISSUANCE_WORKER_FAILED', 'the issuance worker handling this request stopped; nothing was issued for it (a reserved serial stays unused); try again', {
    ja: '証明書の発行処理が中断されました。発行はされていません。もう一度お試しください。',
  });

export class IssuancePool {
  readonly #setup: WorkerSetup;
  readonly #slots: Slot[] = [];
  /** Called as a request is handed to a worker, just before it is posted (diagnostics; tests use it to kill a worker mid-request). */
  onDispatch: IssuancePoolOptions['onDispatch'];
  #nextId = 1;
  #closing = false;
  #closed: Promise<void> | undefined;
  readonly algorithm: SignatureAlgorithm;

  private constructor(o: IssuancePoolOptions) {
    if (o.key.type !== 'private') throw badRequest('KEY_NOT_PRIVATE', 'the issuance pool needs the issuing private key');
    this.algorithm = o.issuer.algorithm;
    this.#setup = {
      key: o.key,
      issuer: { algorithm: o.issuer.algorithm, subjectDer: o.issuer.subjectDer, keyId: o.issuer.keyId, ...(o.issuer.notAfter ? { notAfter: o.issuer.notAfter } : {}) },
      urls: o.urls ?? {},
      maxTokens: 4096,
    };
    this.onDispatch = o.onDispatch;
  }

  /** Starts the workers and waits until each has loaded (a worker that cannot start fails here, not at the first request). */
  static async start(o: IssuancePoolOptions): Promise<IssuancePool> {
    const n = o.workers ?? availableParallelism();
    if (!Number.isInteger(n) || n < 1 || n > 64) throw badRequest('ISSUANCE_WORKERS_INVALID', `issuance workers must be 1–64 (got ${n})`);
    const pool = new IssuancePool(o);
    for (let i = 0; i < n; i++) pool.#slots.push(pool.#spawn());
    try {
      await Promise.all(pool.#slots.map((s) => s.ready));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.#slots.length;
  }

  /** The worker threads now serving (replaced ones excluded): for operations and tests. */
  get workers(): readonly Worker[] {
    return this.#slots.map((s) => s.worker);
  }

  #spawn(): Slot {
    const worker = new Worker(new URL('./issuance-worker.js', import.meta.url), { workerData: this.#setup, stdout: false, stderr: false });
    worker.unref(); // referenced only while it holds a request (see #post)
    const slot: Slot = { worker, outbox: [], pending: new Map(), alive: true, started: false, ready: undefined as unknown as Promise<void> };
    slot.ready = new Promise<void>((resolve, reject) => {
      const onReady = (m: FromWorker) => {
        if (m.op === 'ready') {
          worker.off('message', onReady);
          slot.started = true;
          resolve();
        }
      };
      worker.on('message', onReady);
      worker.once('error', reject);
      worker.once('exit', () => reject(workerFailed()));
    });
    slot.ready.catch(() => undefined);
    worker.on('message', (batch: FromWorker | FromWorker[]) => {
      for (const m of Array.isArray(batch) ? batch : [batch]) {
        if (m.op === 'ready') continue;
        const p = slot.pending.get(m.id);
        if (!p) continue;
        slot.pending.delete(m.id);
        p.resolve(m);
      }
      if (slot.pending.size === 0) worker.unref();
    });
    worker.on('error', () => undefined); // 'exit' follows and does the work
    worker.on('exit', () => {
      slot.alive = false;
      const failed = [...slot.pending.values()];
      slot.pending.clear();
      for (const p of failed) p.reject(workerFailed());
      const i = this.#slots.indexOf(slot);
      if (i >= 0 && !this.#closing && slot.started) this.#slots[i] = this.#spawn();
    });
    return slot;
  }

  #post(slot: Slot, message: ToWorker & { id: number }, op: 'prepare' | 'sign'): Promise<FromWorker> {
    if (!slot.alive) return Promise.reject(workerFailed());
    return new Promise<FromWorker>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(message.id, { resolve, reject });
      this.onDispatch?.(op, slot.worker);
      this.#send(slot, message);
    });
  }

  /**
   * Queues a message for the worker; what the callers whose commit just
   * finished queue goes as one. Flushed on the next tick (after the promise
   * jobs now queued, before any immediate): so the messages are posted
   * before the group commit's next transaction can block this thread in
   * COMMIT, and the workers sign while the disk syncs.
   */
  #send(slot: Slot, message: ToWorker): void {
    slot.outbox.push(message);
    if (slot.outbox.length > 1) return;
    process.nextTick(() => {
      const batch = slot.outbox;
      slot.outbox = [];
      if (slot.alive) slot.worker.postMessage(batch);
    });
  }

  /** The live worker with the fewest requests in hand. */
  #leastBusy(): Slot {
    let best: Slot | undefined;
    for (const s of this.#slots) if (s.alive && (!best || s.pending.size < best.pending.size)) best = s;
    if (!best) throw workerFailed();
    return best;
  }

  /** Reads the key (parsing and checking a CSR), builds and lints in a worker; the token is good for one `sign()` on this pool. */
  async prepare(req: DraftRequest, key: SubjectKeySource): Promise<PooledDraft> {
    if (this.#closing) throw unavailable('ISSUANCE_POOL_CLOSED', 'the CA is shutting down; try again when it is back');
    const slot = this.#leastBusy();
    await slot.ready;
    const request: WireRequest = {
      profile: req.profile.name,
      subject: req.subject,
      notBefore: req.notBefore,
      notAfter: req.notAfter,
      ...(req.subjectAltName ? { subjectAltName: req.subjectAltName } : {}),
      // Exact copies: a small Buffer is a view into a shared 8 KiB slab, which structured clone would copy whole.
      ...(key.csr !== undefined ? { csr: new Uint8Array(key.csr) } : { spki: new Uint8Array(key.spki ?? spkiDer(key.publicKey)) }),
    };
    const m = await this.#post(slot, { op: 'prepare', id: this.#nextId++, request }, 'prepare');
    if (m.op === 'failed') throw rebuild(m.error);
    if (m.op !== 'prepared') throw unexpected(m.op);
    const draft: PooledDraft = Object.freeze({ token: m.token, serial: m.serial, tbsSha256: m.tbsSha256, spkiSha256: m.spkiSha256 });
    drafts.set(draft, { pool: this, slot });
    return draft;
  }

  /** Signs a draft this pool prepared, in the worker that linted it, once. */
  async sign(draft: PooledDraft): Promise<{ der: Buffer; fingerprint: string }> {
    const owner = drafts.get(draft);
    // Spent on first use, here as in the worker; a draft of another pool (issuer) or a copy is refused.
    if (!owner || owner.pool !== this || !drafts.delete(draft)) throw new SekishoError('internal', 'LINT_TOKEN_REUSED', 'a certificate may only be signed once, from a fresh lint by the same issuer');
    const m = await this.#post(owner.slot, { op: 'sign', id: this.#nextId++, token: draft.token }, 'sign');
    if (m.op === 'failed') throw rebuild(m.error);
    if (m.op !== 'signed') throw unexpected(m.op);
    return { der: Buffer.from(m.der.buffer, m.der.byteOffset, m.der.byteLength), fingerprint: m.fingerprint };
  }

  /** Forgets a draft that will not be signed (its serial could not be reserved). */
  discard(draft: PooledDraft): void {
    const owner = drafts.get(draft);
    if (!owner || owner.pool !== this || !drafts.delete(draft)) return;
    if (owner.slot.alive) this.#send(owner.slot, { op: 'discard', token: draft.token });
  }

  /**
   * Stops taking requests, waits for the ones the workers hold, then stops
   * the workers. (The issuer waits for whole issuances before calling this.)
   */
  close(): Promise<void> {
    this.#closing = true;
    this.#closed ??= (async () => {
      const waits = this.#slots.flatMap((s) => [...s.pending.values()].map((p) => new Promise<void>((r) => {
        const { resolve, reject } = p;
        p.resolve = (m) => (resolve(m), r());
        p.reject = (e) => (reject(e), r());
      })));
      await Promise.all(waits);
      await Promise.all(this.#slots.map((s) => s.worker.terminate().catch(() => undefined)));
    })();
    return this.#closed;
  }
}

function rebuild(e: { kind: SekishoError['kind']; code: string; message: string; ja?: string }): SekishoError {
  return new SekishoError(e.kind, e.code, e.message, e.ja ? { ja: e.ja } : {});
}

const unexpected = (op: string) => new SekishoError('internal', 'ISSUANCE_WORKER_PROTOCOL', `the issuance worker answered "${op}" out of turn`);
