import { internal } from '../errors/index.js';
import { CA_WRITER, detailsOf, repositories, type AuditChainAppender, type AuditRow, type AuditSearch, type Database, type SqlExecutor } from '../store/index.js';
import type { KeyObject } from 'node:crypto';
import type { Signer } from '../pki/index.js';
import { ChainVerifier, eventHash, GENESIS_HASH, type ChainProblem } from './chain.js';
import { CHECKPOINT_GENESIS_HASH, checkpointFromRow, checkpointToRow, signCheckpoint, type AuditCheckpoint } from './checkpoint.js';
import type { AuditEvent, RecordedAuditEvent } from './event.js';
import { TrailVerifier, type ChainReport, type TrailReport } from './trail-verifier.js';

export interface AuditLogOptions {
  now?: () => Date;
}

/**
 * Appends events to `writer`'s chain inside the caller's transaction: locks
 * that writer's head row only (PostgreSQL FOR UPDATE), so writers append side
 * by side and one writer's events never fork. The head is read once; a
 * gateway's writer row is made on its first append.
 */
export async function appendToChain(repo: AuditChainAppender, writer: string, events: readonly { event: AuditEvent; at: Date }[]): Promise<RecordedAuditEvent[]> {
  if (writer !== CA_WRITER) await repo.register(writer);
  let head = await repo.head(writer);
  const out: RecordedAuditEvent[] = [];
  for (const { event, at } of events) {
    const base = {
      writer,
      writer_seq: head.seq + 1,
      at: at.toISOString(),
      actor: event.actor,
      action: event.action,
      outcome: event.outcome,
      reason_code: event.reasonCode ?? null,
      subject: event.subject ?? null,
      details: JSON.stringify(event.details ?? {}),
      prev_hash: head.hash,
    };
    const row = { ...base, hash: eventHash(base) };
    const seq = await repo.append(row);
    head = { seq: row.writer_seq, hash: row.hash };
    out.push({ ...event, seq, writer, writerSeq: row.writer_seq, at: row.at, hash: row.hash });
  }
  return out;
}

/** The hash-chained audit trail in the store. */
export class AuditLog {
  readonly #now: () => Date;

  constructor(private readonly db: Database, options: AuditLogOptions = {}) {
    this.#now = options.now ?? (() => new Date());
  }

  /** Appends inside the caller's transaction, so the event commits with the action it records. */
  async appendIn(tx: SqlExecutor, event: AuditEvent, /** When it happened, if earlier than now (events recorded in batches). */ at?: Date): Promise<RecordedAuditEvent> {
    // Reading the head, inserting and moving the head must be one transaction, or concurrent appends fork the chain.
    if (!tx.inTransaction) throw internal('AUDIT_OUTSIDE_TRANSACTION', 'an audit event was appended outside a transaction; use append() or pass the transaction');
    return (await appendToChain(repositories(tx).audit, CA_WRITER, [{ event, at: at ?? this.#now() }]))[0]!;
  }

  /** Appends in a transaction of its own. */
  append(event: AuditEvent): Promise<RecordedAuditEvent> {
    return this.db.transaction((tx) => this.appendIn(tx, event));
  }

  /**
   * Signs a checkpoint of every chain's head with the audit key, when events
   * were appended since the last checkpoint (or always, with `force`). Runs
   * in one transaction that holds the CA chain's head (PostgreSQL: FOR
   * UPDATE; SQLite: the write lock), so concurrent checkpointers queue and
   * checkpoint numbers never fork; the other chains' heads are read in one
   * statement, without locking them, so gateways keep appending meanwhile
   * (each head read is one that committed). Returns undefined when there
   * was nothing new to sign.
   */
  async checkpoint(signer: Signer, options: { force?: boolean } = {}): Promise<AuditCheckpoint | undefined> {
    return this.db.transaction(async (tx) => {
      const repos = repositories(tx);
      const head = await repos.audit.head();
      const others = (await repos.audit.heads()).filter((h) => h.writer !== CA_WRITER);
      const last = await repos.checkpoints.last();
      const chains = others.map((h): [string, number, string] => [h.writer, h.seq, h.hash]);
      const unchanged = last && last.seq === head.seq && (last.chains ?? '') === (chains.length ? JSON.stringify(chains) : '');
      if (unchanged && !options.force) return undefined;
      const c = await signCheckpoint(signer, {
        id: (last?.id ?? 0) + 1,
        seq: head.seq,
        headHash: head.hash,
        at: this.#now().toISOString(),
        prevHash: last?.hash ?? CHECKPOINT_GENESIS_HASH,
        ...(chains.length ? { chains } : {}),
      });
      await repos.checkpoints.add(checkpointToRow(c));
      return c;
    });
  }

  /** Signed checkpoints that cover the trail beyond event `seq` (for export beside the events), in order. */
  async checkpointsAfter(seq: number): Promise<AuditCheckpoint[]> {
    return (await repositories(this.db).checkpoints.afterSeq(seq)).map(checkpointFromRow);
  }

  /** The place of the CA chain's newest event (0 for an empty trail). */
  async headSeq(): Promise<number> {
    return (await repositories(this.db).audit.head(CA_WRITER, { lock: false })).seq;
  }

  /** Signed checkpoints numbered after `id`, in order. */
  async checkpointsAfterId(id: number): Promise<AuditCheckpoint[]> {
    return (await repositories(this.db).checkpoints.afterId(id)).map(checkpointFromRow);
  }

  /** Every signed checkpoint, in order. */
  async checkpoints(): Promise<AuditCheckpoint[]> {
    return (await repositories(this.db).checkpoints.list()).map(checkpointFromRow);
  }

  /**
   * Verifies the trail against its signed checkpoints under the audit key's
   * public half (read from the CA home, never from the store): see
   * TrailVerifier. Events appended while it runs are not read.
   */
  async verifyTrail(options: { publicKey: KeyObject; knownLatest?: { id: number; hash: string } }): Promise<TrailReport> {
    const repo = repositories(this.db).audit;
    // Every head first (one snapshot), then each chain up to its head: events appended meanwhile are not read.
    const heads = await repo.heads();
    const checkpoints = await this.checkpoints();
    const writers = new Set<string>([CA_WRITER, ...heads.map((h) => h.writer), ...(await repo.writersWithEvents())]);
    for (const c of checkpoints) for (const [w] of c.chains ?? []) writers.add(w);
    const sorted = [CA_WRITER, ...[...writers].filter((w) => w !== CA_WRITER).sort()];
    const reports: TrailReport[] = [];
    const chains: ChainReport[] = [];
    for (const writer of sorted) {
      const recorded = heads.find((h) => h.writer === writer);
      const head = recorded ?? { seq: 0, hash: GENESIS_HASH };
      const v = new TrailVerifier({ publicKey: options.publicKey, checkpoints, writer, ...(options.knownLatest && writer === CA_WRITER ? { knownLatest: options.knownLatest } : {}) });
      // A writer whose head row is gone: every row it left is read (and named below).
      const read = await this.#walk(writer, recorded ? head.seq : Number.POSITIVE_INFINITY, (r) => v.add(r));
      const r = v.finish({ seq: recorded ? head.seq : read, hash: head.hash });
      if (!recorded) {
        // There is no head to compare with: the chain's end is what was read.
        r.problems = r.problems.filter((p) => p.kind !== 'head-mismatch');
        if (r.events > 0) r.problems.push({ kind: 'head-mismatch', ...(writer === CA_WRITER ? {} : { writer }), message: `the head row of audit writer ${writer} was removed (its ${r.events} events remain)` });
      }
      reports.push(r);
      chains.push({ writer, events: r.events, head: r.head, uncovered: r.uncovered });
    }
    // Rows no walk took: beyond their writer's head (read again now, after them: a row appended meanwhile has moved it), or of no chain.
    const beyond = await Promise.all(heads.map(async (h) => ({ h, rows: await repo.beyond(h.writer, h.seq, 100) })));
    const headsNow = await repo.heads();
    for (const { h, rows } of beyond) {
      const now = headsNow.find((x) => x.writer === h.writer)?.seq ?? h.seq;
      const out = rows.filter((row) => !Number.isInteger(row.writer_seq) || row.writer_seq > now);
      if (!out.length) continue;
      const w = h.writer === CA_WRITER ? '' : ` of writer ${h.writer}`;
      const r = reports[sorted.indexOf(h.writer)]!;
      r.problems.push({
        kind: 'inserted',
        ...(h.writer === CA_WRITER ? {} : { writer: h.writer }),
        seq: now + 1,
        message: `${out.length >= 100 ? 'at least 100 rows' : out.length === 1 ? 'a row' : `${out.length} rows`}${w} ${out.length === 1 ? 'lies' : 'lie'} beyond the chain's head (event ${now}), the highest numbered ${String(out[0]!.writer_seq).slice(0, 40)} (store seq ${out[0]!.seq}): inserted without moving the head`,
      });
    }
    const orphans = await repo.withoutChain();
    if (orphans > 0) reports[0]!.problems.push({ kind: 'inserted', message: `${orphans} row(s) of the audit trail name no writer or no place in a chain: they were inserted` });
    const ca = reports[0]!;
    const problems = reports.flatMap((r) => r.problems);
    const events = reports.reduce((n, r) => n + r.events, 0);
    const base = { ...ca, events, problems, chains };
    if (problems.length) return { ...base, status: 'tampered' };
    if (!ca.signedThrough && events > 0) return { ...base, status: 'unverifiable', reason: 'the store holds no signed checkpoint; make one with "sekisho audit checkpoint"' };
    const { reason: _reason, ...intact } = base;
    return { ...intact, status: 'intact' };
  }

  /**
   * Every row of one writer in chain order up to its place `toSeq`, in pages
   * (by the writer_seq index): a place of 0 or less, or a place held by more
   * than one row, is read too, even at a page's edge (verify does not trust
   * the unique index of the database it checks). Returns the highest place read.
   */
  async #walk(writer: string, toSeq: number, fn: (r: AuditRow) => void): Promise<number> {
    const repo = repositories(this.db).audit;
    const page = 10_000;
    let after = Number.MIN_SAFE_INTEGER;
    let highest = 0;
    for (;;) {
      const rows = await repo.listChain(writer, after, page);
      const last = rows[rows.length - 1];
      // The page's last place may go on in the next: it is read whole, on its own.
      const lastPlace = last && Number.isInteger(last.writer_seq) ? last.writer_seq : undefined;
      const taken = lastPlace === undefined ? rows : [...rows.filter((r) => r.writer_seq !== lastPlace), ...(await repo.atPlace(writer, lastPlace))];
      for (const r of taken) {
        if (Number.isInteger(r.writer_seq) && r.writer_seq > toSeq) return highest;
        fn(r);
        if (Number.isInteger(r.writer_seq)) highest = Math.max(highest, r.writer_seq);
      }
      // A place that is no whole number sorts last and cannot be paged past: the walk ends there.
      if (rows.length < page || lastPlace === undefined) return highest;
      after = lastPlace;
    }
  }

  async list(options: { afterSeq?: number; limit?: number } = {}): Promise<RecordedAuditEvent[]> {
    return (await repositories(this.db).audit.list(options)).map(recorded);
  }

  /** Newest first: the events matching a search (action or action prefix, actor, facility, time range), at most `limit`. */
  async search(q: AuditSearch): Promise<RecordedAuditEvent[]> {
    return (await repositories(this.db).audit.search(q)).map(recorded);
  }

  /** One writer's events after its place `after`, in chain order (what a follower of that chain has not seen). */
  async listChain(writer: string, after: number, limit?: number): Promise<RecordedAuditEvent[]> {
    return (await repositories(this.db).audit.listChain(writer, after, limit)).map(recorded);
  }

  /**
   * Walks the chain in pages up to the head read first, so events appended
   * while it runs (by this or another process) are neither missed nor
   * mistaken for tampering; returns how many events it read and every problem.
   */
  async verify(): Promise<{ events: number; problems: ChainProblem[] }> {
    const repo = repositories(this.db).audit;
    const heads = await repo.heads();
    let events = 0;
    const problems: ChainProblem[] = [];
    for (const head of heads) {
      const v = new ChainVerifier(head.writer);
      await this.#walk(head.writer, head.seq, (r) => v.add(r));
      events += v.count;
      problems.push(...v.finish(head));
    }
    return { events, problems };
  }
}

function recorded(r: AuditRow): RecordedAuditEvent {
  return {
    seq: r.seq,
    writer: r.writer,
    writerSeq: r.writer_seq,
    at: r.at,
    actor: r.actor,
    action: r.action,
    outcome: r.outcome as RecordedAuditEvent['outcome'],
    ...(r.reason_code ? { reasonCode: r.reason_code } : {}),
    ...(r.subject ? { subject: r.subject } : {}),
    // A row altered in the store is still listed, its text shown as it is (audit verify names it).
    details: detailsOf(r.details) ?? { detailsUnreadable: String(r.details).slice(0, 500) },
    hash: r.hash,
  };
}
