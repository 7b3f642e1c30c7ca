import type { KeyObject } from 'node:crypto';
import { CA_WRITER, type AuditRow, type ChainHead } from '../store/index.js';
import { ChainVerifier, eventHash, eventName, GENESIS_HASH } from './chain.js';
import { auditKeyId, CHECKPOINT_GENESIS_HASH, checkpointHash, checkpointSignatureValid, type AuditCheckpoint } from './checkpoint.js';

export type TrailProblemKind =
  /** An event's content does not match its own hash, or the signed head of a checkpoint. */
  | 'altered'
  /** Events missing: a gap in the sequence, or events a checkpoint signed that are gone. */
  | 'removed'
  | 'broken-link'
  | 'head-mismatch'
  /** A row that is no event of its chain: a second row for a place, a place that is no number ≥ 1, a row beyond its writer's head or of no writer. */
  | 'inserted'
  /** A checkpoint number is missing from the store. */
  | 'checkpoint-removed'
  /** A checkpoint whose signature does not verify under the audit key (altered or forged). */
  | 'checkpoint-invalid'
  /** A checkpoint that does not name the checkpoint before it. */
  | 'checkpoint-broken-link';

export interface TrailProblem {
  kind: TrailProblemKind;
  /** The chain concerned, when it is not the CA's own ("ca"). */
  writer?: string;
  /** The first event concerned (for event problems). */
  seq?: number;
  /** The last event concerned, when it is a range. */
  toSeq?: number;
  /** The checkpoint concerned (its number). */
  checkpoint?: number;
  message: string;
}

export type TrailStatus = 'intact' | 'tampered' | 'unverifiable';

export interface TrailReport {
  status: TrailStatus;
  /** Events read (up to the head read at the start). */
  events: number;
  head: ChainHead;
  auditKeyId: string;
  checkpoints: number;
  /** The newest checkpoint with a valid signature, or null. */
  signedThrough: { checkpoint: number; seq: number; at: string } | null;
  /** Events appended after the last signed checkpoint: not yet covered by a signature (not tampering). */
  uncovered: { fromSeq: number; toSeq: number } | null;
  problems: TrailProblem[];
  /** Why the trail cannot be verified (status unverifiable). */
  reason?: string;
  /** Every writer's chain (the CA's first), when the whole trail was verified. */
  chains?: ChainReport[];
}

/** One writer's chain in a trail report. */
export interface ChainReport {
  writer: string;
  events: number;
  head: ChainHead;
  uncovered: { fromSeq: number; toSeq: number } | null;
}

export interface TrailVerifierOptions {
  /** The audit key's public half, from the home (never from the store). */
  publicKey: KeyObject;
  /** Every checkpoint in the store, in id order. */
  checkpoints: AuditCheckpoint[];
  /** The newest checkpoint this host made, as recorded in the home: it must still be in the store. */
  knownLatest?: { id: number; hash: string };
  /**
   * The chain checked: "ca" (default) or a gateway's writer id. Problems of
   * the checkpoints themselves are reported by the CA chain's verifier only.
   */
  writer?: string;
}

/**
 * Each checkpoint's signature is verified once for the whole trail, not once
 * per writer's chain (a trail of many gateways and a year of checkpoints).
 */
const verified = new WeakMap<AuditCheckpoint, { key: KeyObject; valid: boolean }>();
function signatureValid(c: AuditCheckpoint, key: KeyObject): boolean {
  const known = verified.get(c);
  if (known && known.key === key) return known.valid;
  const valid = checkpointSignatureValid(c, key);
  verified.set(c, { key, valid });
  return valid;
}

/** A checkpoint as one chain sees it: the head it signed for that chain. */
interface ChainCheckpoint {
  id: number;
  seq: number;
  headHash: string;
  at: string;
}

/**
 * Checks the audit trail against its signed checkpoints. Feed every event in
 * seq order with add(), then finish() with the head read before the walk.
 *
 * The events' own hashes are recomputed from their content (ChainVerifier:
 * edits by someone who did not recompute the chain, named per event). Beside
 * that the chain is recomputed from genesis ignoring the stored hashes, and
 * at each checkpoint's seq compared with the head it signed: a rewrite that
 * recomputed every later hash and the head shows there, named as the events
 * between the previous checkpoint and this one (one event when a command
 * checkpointed right after it). After each comparison the walk continues
 * from the signed head, so one alteration is reported once.
 */
export class TrailVerifier {
  readonly #chain: ChainVerifier;
  readonly #problems: TrailProblem[] = [];
  /** Checkpoints with a valid signature and linkage, as this chain sees them, by seq. */
  readonly #trusted: ChainCheckpoint[] = [];
  readonly #writer: string;
  #next = 0;
  #computed = GENESIS_HASH;
  #lastSeq = 0;
  #lastRow: AuditRow | undefined;
  /** The seq of the checkpoint compared last (its range starts after it). */
  #anchorSeq = 0;
  readonly #keyId: string;
  readonly #count: number;

  constructor(o: TrailVerifierOptions) {
    this.#writer = o.writer ?? CA_WRITER;
    this.#chain = new ChainVerifier(this.#writer);
    this.#keyId = auditKeyId(o.publicKey);
    this.#count = o.checkpoints.length;
    let expectedId = 1;
    let prevHash = CHECKPOINT_GENESIS_HASH;
    let prevSeq = 0;
    // An altered checkpoint also breaks the link of the one after it: named once, as altered.
    let prevInvalid = false;
    for (const c of o.checkpoints) {
      if (c.id !== expectedId) {
        this.#problems.push({
          kind: 'checkpoint-removed',
          checkpoint: expectedId,
          message: c.id - 1 === expectedId ? `signed checkpoint ${expectedId} was removed` : `signed checkpoints ${expectedId}–${c.id - 1} were removed`,
        });
      } else if (c.prevHash !== prevHash && !prevInvalid) {
        this.#problems.push({ kind: 'checkpoint-broken-link', checkpoint: c.id, message: `signed checkpoint ${c.id} does not name the checkpoint before it` });
      }
      expectedId = c.id + 1;
      prevHash = checkpointHash(c);
      prevInvalid = true;
      if (!signatureValid(c, o.publicKey)) {
        const why = c.keyId !== this.#keyId ? `claims key ${c.keyId.slice(0, 16)}…, not the audit key` : 'its signature does not verify under the audit key';
        this.#problems.push({ kind: 'checkpoint-invalid', checkpoint: c.id, seq: c.seq, message: `signed checkpoint ${c.id} (event ${c.seq}) was altered or forged: ${why}` });
        continue;
      }
      if (c.seq < prevSeq) {
        this.#problems.push({ kind: 'checkpoint-invalid', checkpoint: c.id, seq: c.seq, message: `signed checkpoint ${c.id} signs event ${c.seq}, before its predecessor's event ${prevSeq}` });
        continue;
      }
      prevSeq = c.seq;
      prevInvalid = false;
      if (this.#writer === CA_WRITER) this.#trusted.push(c);
      else {
        // A checkpoint made before this writer's first event does not name it.
        const mine = c.chains?.find(([w]) => w === this.#writer);
        if (mine && (this.#trusted.length === 0 || mine[1] >= this.#trusted[this.#trusted.length - 1]!.seq)) this.#trusted.push({ id: c.id, seq: mine[1], headHash: mine[2], at: c.at });
      }
    }
    if (o.knownLatest) {
      const k = o.knownLatest;
      const found = o.checkpoints.find((c) => c.id === k.id);
      if (!found) this.#problems.push({ kind: 'checkpoint-removed', checkpoint: k.id, message: `signed checkpoint ${k.id}, recorded in the CA home when it was made, is missing from the store` });
      else if (checkpointHash(found) !== k.hash && !this.#problems.some((p) => p.kind === 'checkpoint-invalid' && p.checkpoint === k.id)) this.#problems.push({ kind: 'checkpoint-invalid', checkpoint: k.id, message: `signed checkpoint ${k.id} differs from the one recorded in the CA home when it was made` });
    }
    // The checkpoints' own problems are the whole trail's: the CA chain's report names them once.
    if (this.#writer !== CA_WRITER) this.#problems.length = 0;
    // A checkpoint of the empty trail (seq 0) is compared before the first event.
    this.#compareThrough(0);
  }

  /** The next event of this verifier's chain, in chain order (writer_seq). */
  add(row: AuditRow): void {
    const n = row.writer_seq;
    if (!this.#chain.inPlace(row)) {
      this.#chain.add(row); // named there, never hashed into the chain
      return;
    }
    this.#compareThrough(n - 1);
    this.#chain.add(row);
    this.#computed = eventHash({ ...row, prev_hash: this.#computed });
    this.#lastSeq = n;
    this.#lastRow = row;
    this.#compareThrough(n);
  }

  /** Compares every checkpoint that signs an event at or before `seq` with the chain walked so far. */
  #compareThrough(seq: number): void {
    while (this.#next < this.#trusted.length && this.#trusted[this.#next]!.seq <= seq) {
      const c = this.#trusted[this.#next++]!;
      const from = this.#anchorSeq + 1;
      if (c.seq === this.#anchorSeq) {
        if (this.#computed !== c.headHash) this.#problems.push({ kind: 'altered', checkpoint: c.id, seq: c.seq, message: `signed checkpoint ${c.id} disagrees with checkpoint before it about ${eventName(this.#writer, c.seq)}` });
      } else if (this.#lastSeq !== c.seq) {
        this.#problems.push({ kind: 'removed', checkpoint: c.id, seq: c.seq, message: `${eventName(this.#writer, c.seq)}, signed by checkpoint ${c.id}, was removed` });
      } else if (this.#computed !== c.headHash && !this.#hasEventProblemIn(from)) {
        const what =
          from === c.seq && this.#lastRow
            ? `${eventName(this.#writer, c.seq)} (${this.#lastRow.action} at ${this.#lastRow.at}) does not match signed checkpoint ${c.id}: its content was altered after it was signed`
            : `${this.#range(from, c.seq)} do not match signed checkpoint ${c.id}: one or more of them was altered, removed or inserted after they were signed`;
        this.#problems.push({ kind: 'altered', checkpoint: c.id, seq: from, ...(from !== c.seq ? { toSeq: c.seq } : {}), message: `${what} (the hash chain was recomputed to hide it)` });
      }
      // Continue from what was signed, so one alteration is reported once.
      this.#computed = c.headHash;
      this.#anchorSeq = c.seq;
    }
  }

  #range(from: number, to: number): string {
    return from === to ? eventName(this.#writer, from) : `audit events ${from}–${to}${this.#writer === CA_WRITER ? '' : ` of writer ${this.#writer}`}`;
  }

  /** Whether an event problem was named from place `from` through the place just read (every problem so far is at or before it): O(1), so a trail altered row by row is not quadratic. */
  #hasEventProblemIn(from: number): boolean {
    return this.#chain.lastProblemSeq >= from;
  }

  finish(head: ChainHead): TrailReport {
    const chainProblems = this.#chain.finish(head);
    // Checkpoints beyond the last event read: the trail was cut back.
    while (this.#next < this.#trusted.length) {
      const c = this.#trusted[this.#next++]!;
      if (c.seq > head.seq || c.seq > this.#lastSeq) {
        const from = Math.max(this.#lastSeq, this.#anchorSeq) + 1;
        this.#problems.push({
          kind: 'removed',
          checkpoint: c.id,
          seq: from,
          ...(from !== c.seq ? { toSeq: c.seq } : {}),
          message: `${this.#range(from, c.seq)} ${from === c.seq ? 'was' : 'were'} removed: signed checkpoint ${c.id} covers the trail through event ${c.seq}, the trail now ends at event ${head.seq}`,
        });
        this.#anchorSeq = c.seq;
      }
    }
    const problems: TrailProblem[] = [
      ...chainProblems.map((p): TrailProblem => ({ kind: p.kind === 'deleted' ? 'removed' : p.kind, seq: p.seq, message: p.message })),
      ...this.#problems,
    ]
      .map((p) => (this.#writer === CA_WRITER ? p : { ...p, writer: this.#writer }))
      .sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    const last = this.#trusted[this.#trusted.length - 1];
    const coveredTo = last?.seq ?? 0;
    const base = {
      events: this.#chain.count,
      head,
      auditKeyId: this.#keyId,
      checkpoints: this.#count,
      signedThrough: last ? { checkpoint: last.id, seq: last.seq, at: last.at } : null,
      uncovered: head.seq > coveredTo ? { fromSeq: coveredTo + 1, toSeq: head.seq } : null,
      problems,
    };
    if (problems.length) return { status: 'tampered', ...base };
    if (!last && head.seq > 0) return { status: 'unverifiable', ...base, reason: 'the store holds no signed checkpoint; make one with "sekisho audit checkpoint"' };
    return { status: 'intact', ...base };
  }
}
