import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, statSync, unlinkSync, writeSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SekishoError, badRequest, internal } from '../errors/index.js';
import { ensurePrivateDir, PRIVATE_FILE_MODE, writeFileAtomic } from '../files/index.js';
import type { AuditEvent } from './event.js';

/**
 * The local audit spool: every event is appended here before it counts as
 * done, then written to the store and sent to each collector from here.
 *
 * - A record is one line of JSON (`SpooledEvent`), appended with a single
 *   `write` to a descriptor opened with O_APPEND: once `append()` returns, the
 *   bytes are in the kernel and survive SIGKILL of the process. Power loss is
 *   covered by fsync: `always` (each append, slowest), `interval` (default:
 *   one fsync for all appends of the last `fsyncMs`, so at most that window
 *   is lost when the machine loses power) or `never` (the kernel's writeback).
 * - Segments `seg-<n>.log` of at most `segmentBytes`; the total is bounded by
 *   `maxBytes`. Past `highWater` of it an alarm is raised (log + state for the
 *   metrics); when it clears an audit event `audit.spool-high-water` records
 *   it. A full spool refuses the append (`AUDIT_SPOOL_FULL`): nothing is
 *   dropped silently, the producer fails closed.
 * - Each consumer (the store, each collector) has a cursor, persisted in
 *   `cursor-<name>.json`; a segment is deleted once every cursor is past it.
 * - One process writes a spool directory at a time (`lock` holds its pid).
 */
export interface SpooledEvent {
  /** Unique per event: replay into the store and resends to collectors are recognised by it. */
  id: string;
  /** When it happened (ISO 8601). */
  at: string;
  event: AuditEvent;
  /** Already in the store (a CA action followed from it): its place in the chain; the store writer skips it. */
  stored?: { seq: number; hash: string };
}

export interface SpoolPosition {
  segment: number;
  offset: number;
}

export interface SpoolEntry {
  record: SpooledEvent;
  /** The position after this record: where a consumer that has it continues. */
  next: SpoolPosition;
}

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface SpoolOptions {
  dir: string;
  /** Names of the consumers that must each have an event before its segment is deleted (e.g. "store", "collector-…"). */
  consumers: string[];
  segmentBytes?: number;
  maxBytes?: number;
  /** Fraction of maxBytes that raises the alarm (default 0.8); it clears below 90 % of that. */
  highWater?: number;
  fsync?: FsyncPolicy;
  fsyncMs?: number;
  /** How often changed cursors are written to disk (default 500 ms). */
  cursorMs?: number;
  log?: (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;
  now?: () => Date;
}

export interface SpoolAlarm {
  since: string;
  peakBytes: number;
  refused: number;
}

export const SPOOL_DEFAULTS = { segmentBytes: 4 * 1024 * 1024, maxBytes: 256 * 1024 * 1024, highWater: 0.8, fsync: 'interval' as FsyncPolicy, fsyncMs: 200, cursorMs: 500 };

const SEGMENT = /^seg-(\d{12})\.log$/;
const segmentName = (n: number) => `seg-${String(n).padStart(12, '0')}.log`;
const CURSOR = /^cursor-([A-Za-z0-9._-]+)\.json$/;
const READ_CHUNK = 1024 * 1024;
const OPEN_IN_PROCESS = new Set<string>();

export const spoolFull = (bytes: number, max: number) =>
  new SekishoError('unavailable', 'AUDIT_SPOOL_FULL', `the audit spool is full (${bytes} of ${max} bytes): a store or collector is not taking events; nothing more is accepted until it does`);

export class AuditSpool {
  readonly #o: Required<Omit<SpoolOptions, 'log' | 'now'>> & Pick<SpoolOptions, 'log'>;
  readonly #now: () => Date;
  /** Segment number → size in bytes, ascending. */
  readonly #segments = new Map<number, number>();
  #active = 0;
  #fd = -1;
  #total = 0;
  readonly #cursors = new Map<string, SpoolPosition & { extra?: Record<string, unknown> }>();
  readonly #dirty = new Set<string>();
  #syncTimer: NodeJS.Timeout | undefined;
  #cursorTimer: NodeJS.Timeout | undefined;
  #unsynced = false;
  #alarm: SpoolAlarm | undefined;
  readonly #listeners = new Set<() => void>();
  #closed = false;
  appended = 0;
  refused = 0;

  private constructor(o: SpoolOptions) {
    this.#o = { ...SPOOL_DEFAULTS, ...o, ...(o.log ? { log: o.log } : {}) };
    this.#now = o.now ?? (() => new Date());
    if (!(this.#o.highWater > 0 && this.#o.highWater <= 1)) throw internal('AUDIT_SPOOL_OPTIONS', 'highWater must be a fraction in (0, 1]');
    if (this.#o.segmentBytes < 4096 || this.#o.maxBytes < 2 * this.#o.segmentBytes) throw internal('AUDIT_SPOOL_OPTIONS', 'segmentBytes must be ≥ 4096 and maxBytes at least two segments');
  }

  /** Opens (or creates) the spool, recovers a torn last record and loads the cursors. */
  static open(o: SpoolOptions): AuditSpool {
    const s = new AuditSpool(o);
    s.#openDir();
    return s;
  }

  #openDir(): void {
    const dir = this.#o.dir;
    ensurePrivateDir(dir);
    this.#lock();
    for (const f of readdirSync(dir)) {
      const m = SEGMENT.exec(f);
      if (m) this.#segments.set(Number(m[1]), statSync(join(dir, f)).size);
    }
    const numbers = [...this.#segments.keys()].sort((a, b) => a - b);
    this.#active = numbers.length ? numbers[numbers.length - 1]! : 1;
    this.#fd = openSync(join(dir, segmentName(this.#active)), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND, PRIVATE_FILE_MODE);
    this.#recoverTail();
    this.#segments.set(this.#active, fstatSync(this.#fd).size);
    this.#total = [...this.#segments.values()].reduce((a, b) => a + b, 0);
    const first = Math.min(...this.#segments.keys());
    for (const f of readdirSync(dir)) {
      const m = CURSOR.exec(f);
      if (!m) continue;
      if (!this.#o.consumers.includes(m[1]!)) {
        unlinkSync(join(dir, f)); // a collector removed from the configuration no longer holds segments back
        continue;
      }
      const c = JSON.parse(readFileSync(join(dir, f), 'utf8')) as SpoolPosition & { extra?: Record<string, unknown> };
      this.#cursors.set(m[1]!, c);
    }
    // A new consumer starts at the oldest event still spooled.
    for (const c of this.#o.consumers) if (!this.#cursors.has(c)) this.#setCursor(c, { segment: first, offset: 0 });
    this.#persistCursors();
    this.#collect();
  }

  #lock(): void {
    const path = join(this.#o.dir, 'lock');
    if (OPEN_IN_PROCESS.has(this.#o.dir)) throw new SekishoError('conflict', 'AUDIT_SPOOL_IN_USE', `the audit spool ${this.#o.dir} is already open in this process; give each gateway its own spool`);
    if (existsSync(path)) {
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (pid && pid !== process.pid && alive(pid)) {
        throw new SekishoError('conflict', 'AUDIT_SPOOL_IN_USE', `the audit spool ${this.#o.dir} is in use by process ${pid}; give each process its own spool`);
      }
    }
    writeFileAtomic(path, `${process.pid}\n`);
    OPEN_IN_PROCESS.add(this.#o.dir);
  }

  /** After a power loss the last record may be torn (or zeros): cut the active segment after its last whole record. */
  #recoverTail(): void {
    const path = join(this.#o.dir, segmentName(this.#active));
    const buf = readFileSync(path);
    let good = 0;
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      try {
        JSON.parse(buf.subarray(start, nl).toString('utf8'));
      } catch {
        break;
      }
      good = nl + 1;
      start = nl + 1;
    }
    if (good < buf.length) {
      ftruncateSync(this.#fd, good);
      fsyncSync(this.#fd);
      this.#o.log?.('warn', 'audit spool: a torn record at the end of the spool was cut (written when the machine stopped)', { segment: this.#active, bytes: buf.length - good });
    }
  }

  /**
   * Appends an event; when it returns, the event is in the kernel (and on
   * disk per the fsync policy). Throws AUDIT_SPOOL_FULL instead of dropping.
   */
  append(event: AuditEvent, at: Date = this.#now()): SpooledEvent {
    return this.#append({ id: randomUUID(), at: at.toISOString(), event });
  }

  /** Spools an event the store already holds (for the collectors only). */
  appendStored(event: AuditEvent, at: Date, stored: { seq: number; hash: string }): SpooledEvent {
    return this.#append({ id: randomUUID(), at: at.toISOString(), event, stored });
  }

  #append(record: SpooledEvent): SpooledEvent {
    if (this.#closed) throw internal('AUDIT_SPOOL_CLOSED', 'the audit spool is closed');
    const line = Buffer.from(JSON.stringify(record) + '\n');
    // The reader takes records in chunks: one longer than a chunk would stall every consumer behind it.
    if (line.length > READ_CHUNK) throw badRequest('AUDIT_EVENT_TOO_LARGE', `an audit event of ${line.length} bytes exceeds the spool's record limit of ${READ_CHUNK} bytes; its details must be bounded`);
    if (this.#total + line.length > this.#o.maxBytes) {
      this.flushCursors(); // cursors moved since their last write may free segments now
      if (this.#total + line.length > this.#o.maxBytes) {
        this.refused++;
        if (this.#alarm) this.#alarm.refused++;
        throw spoolFull(this.#total, this.#o.maxBytes);
      }
    }
    if (this.#segments.get(this.#active)! + line.length > this.#o.segmentBytes && this.#segments.get(this.#active)! > 0) this.#rotate();
    let off = 0;
    try {
      while (off < line.length) off += writeSync(this.#fd, line, off, line.length - off);
    } catch (e) {
      // A partial write (disk full) must not glue the next record to a torn one: cut it off.
      if (off > 0) ftruncateSync(this.#fd, this.#segments.get(this.#active)!);
      throw e;
    }
    this.#segments.set(this.#active, this.#segments.get(this.#active)! + line.length);
    this.#total += line.length;
    this.appended++;
    this.#afterWrite();
    this.#checkAlarm();
    // The event is spooled: a consumer that fails now is the consumer's problem, never the producer's
    // (an append that threw here would be retried, spooling the same event again and again).
    for (const l of this.#listeners) {
      try {
        l();
      } catch (e) {
        this.#o.log?.('error', 'an audit spool consumer failed after an append; the event is spooled', { error: e instanceof Error ? e.message : String(e) });
      }
    }
    return record;
  }

  #afterWrite(): void {
    if (this.#o.fsync === 'always') fsyncSync(this.#fd);
    else if (this.#o.fsync === 'interval') {
      this.#unsynced = true;
      this.#syncTimer ??= setTimeout(() => {
        this.#syncTimer = undefined;
        this.sync();
      }, this.#o.fsyncMs).unref();
    }
  }

  /** fsyncs the active segment if anything was appended since the last fsync. */
  sync(): void {
    if (this.#unsynced && this.#fd >= 0) {
      this.#unsynced = false;
      fsyncSync(this.#fd);
    }
  }

  #rotate(): void {
    fsyncSync(this.#fd);
    this.#unsynced = false;
    closeSync(this.#fd);
    this.#active++;
    this.#fd = openSync(join(this.#o.dir, segmentName(this.#active)), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND, PRIVATE_FILE_MODE);
    this.#segments.set(this.#active, 0);
  }

  #checkAlarm(): void {
    const high = this.#o.highWater * this.#o.maxBytes;
    if (!this.#alarm && this.#total >= high) {
      this.#alarm = { since: this.#now().toISOString(), peakBytes: this.#total, refused: 0 };
      this.#o.log?.('error', 'audit spool above its high-water mark: a store or collector is not taking events', { bytes: this.#total, maxBytes: this.#o.maxBytes, highWater: this.#o.highWater, behind: this.behind() });
    } else if (this.#alarm) {
      this.#alarm.peakBytes = Math.max(this.#alarm.peakBytes, this.#total);
      if (this.#total < 0.9 * high) {
        const a = this.#alarm;
        this.#alarm = undefined;
        this.#o.log?.('warn', 'audit spool back below its high-water mark', { bytes: this.#total, ...a });
        // Recorded in the trail itself once there is room again.
        this.append({ actor: 'audit-spool', action: 'audit.spool-high-water', outcome: a.refused ? 'seriousFailure' : 'minorFailure', ...(a.refused ? { reasonCode: 'AUDIT_SPOOL_FULL' } : {}), details: { since: a.since, until: this.#now().toISOString(), peakBytes: a.peakBytes, maxBytes: this.#o.maxBytes, refused: a.refused } });
      }
    }
  }

  /** The alarm, while the spool is above its high-water mark. */
  alarm(): SpoolAlarm | undefined {
    return this.#alarm ? { ...this.#alarm } : undefined;
  }

  bytes(): number {
    return this.#total;
  }

  get maxBytes(): number {
    return this.#o.maxBytes;
  }

  /** Calls `f` after every append (consumers wake up instead of polling). */
  onAppend(f: () => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }

  cursor(consumer: string): SpoolPosition & { extra?: Record<string, unknown> } {
    const c = this.#cursors.get(consumer);
    if (!c) throw internal('AUDIT_SPOOL_CONSUMER', `no audit spool consumer "${consumer}"`);
    return { ...c };
  }

  /** Up to `max` records after `from` (whole records only). */
  read(from: SpoolPosition, max: number): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    let pos = { ...from };
    while (out.length < max) {
      if (!this.#segments.has(pos.segment)) {
        const later = [...this.#segments.keys()].filter((n) => n > pos.segment).sort((a, b) => a - b)[0];
        if (later === undefined) break;
        pos = { segment: later, offset: 0 };
      }
      const size = this.#segments.get(pos.segment)!;
      if (pos.offset >= size) {
        if (pos.segment >= this.#active) break;
        pos = { segment: pos.segment + 1, offset: 0 };
        continue;
      }
      const len = Math.min(READ_CHUNK, size - pos.offset);
      const buf = Buffer.alloc(len);
      const fd = openSync(join(this.#o.dir, segmentName(pos.segment)), 'r');
      let got = 0;
      try {
        got = readSync(fd, buf, 0, len, pos.offset);
      } finally {
        closeSync(fd);
      }
      let start = 0;
      let progressed = false;
      while (out.length < max) {
        const nl = buf.indexOf(10, start);
        if (nl < 0 || nl >= got) break;
        const next = { segment: pos.segment, offset: pos.offset + nl + 1 };
        try {
          out.push({ record: JSON.parse(buf.subarray(start, nl).toString('utf8')) as SpooledEvent, next });
        } catch {
          // A record torn by a failed write (disk full) mid-spool: skipped, and said so.
          this.#o.log?.('error', 'audit spool: an unreadable record was skipped', { segment: pos.segment, offset: pos.offset + start });
        }
        start = nl + 1;
        progressed = true;
      }
      pos = { segment: pos.segment, offset: pos.offset + start };
      if (!progressed) break; // a record longer than a chunk cannot be: #append refuses them (AUDIT_EVENT_TOO_LARGE)
    }
    return out;
  }

  /** Moves a consumer's cursor (written to disk within cursorMs, or by flushCursors). */
  commit(consumer: string, pos: SpoolPosition, extra?: Record<string, unknown>): void {
    // Past the end of a finished segment is the start of the next: the finished one can go.
    if (pos.segment < this.#active && pos.offset >= (this.#segments.get(pos.segment) ?? 0)) pos = { segment: pos.segment + 1, offset: 0 };
    this.#setCursor(consumer, { ...pos, ...(extra ? { extra } : {}) });
    this.#cursorTimer ??= setTimeout(() => {
      this.#cursorTimer = undefined;
      this.#persistCursors();
      this.#collect();
    }, this.#o.cursorMs).unref();
  }

  #setCursor(consumer: string, pos: SpoolPosition & { extra?: Record<string, unknown> }): void {
    if (!this.#o.consumers.includes(consumer)) throw internal('AUDIT_SPOOL_CONSUMER', `no audit spool consumer "${consumer}"`);
    this.#cursors.set(consumer, pos);
    this.#dirty.add(consumer);
  }

  /** Writes changed cursors now and deletes segments every consumer is past. */
  flushCursors(): void {
    if (this.#cursorTimer) clearTimeout(this.#cursorTimer);
    this.#cursorTimer = undefined;
    this.#persistCursors();
    this.#collect();
  }

  #persistCursors(): void {
    for (const c of this.#dirty) writeFileAtomic(join(this.#o.dir, `cursor-${c}.json`), JSON.stringify(this.#cursors.get(c)));
    this.#dirty.clear();
  }

  /** Deletes segments below every persisted cursor (never the active one). */
  #collect(): void {
    if (this.#dirty.size) return; // only what persisted cursors allow
    const min = Math.min(...[...this.#cursors.values()].map((c) => c.segment), this.#active);
    for (const n of [...this.#segments.keys()]) {
      if (n >= min || n === this.#active) continue;
      unlinkSync(join(this.#o.dir, segmentName(n)));
      this.#total -= this.#segments.get(n)!;
      this.#segments.delete(n);
    }
    this.#checkAlarm();
  }

  /** Records each consumer has not yet taken (approximate: bytes behind the end). */
  behind(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, c] of this.#cursors) {
      let bytes = 0;
      for (const [n, size] of this.#segments) if (n > c.segment) bytes += size;
        else if (n === c.segment) bytes += Math.max(0, size - c.offset);
      out[name] = bytes;
    }
    return out;
  }

  /** The end of the spool (where the next record will start). */
  end(): SpoolPosition {
    return { segment: this.#active, offset: this.#segments.get(this.#active)! };
  }

  close(): void {
    if (this.#closed) return;
    if (this.#syncTimer) clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
    this.sync();
    this.flushCursors();
    this.#closed = true;
    closeSync(this.#fd);
    this.#fd = -1;
    OPEN_IN_PROCESS.delete(this.#o.dir);
    try {
      unlinkSync(join(this.#o.dir, 'lock'));
    } catch {
      /* already gone */
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
