/**
 * A set of certificate serial numbers, held compactly: each serial's bytes
 * (the positive value, leading zero bytes dropped, so `00 8f` and `8f` are one
 * serial) are stored once, length-prefixed, in one growing byte arena, and
 * found through an open-addressing hash table (FNV-1a, linear probing) of
 * arena offsets. No string or object per serial: 1,000,000 nine-byte serials
 * take 18 MiB of array buffers once loaded and trimmed (arena 10 MB, table
 * 8 MB), against about 60 MB of V8 heap for a Set of hex strings, and a
 * CRL's serials go in straight from its DER.
 *
 * The gateway's revocation sets (CRL and store feed) are SerialSets. Serials
 * are only added: a revoked certificate stays revoked; a set is replaced whole
 * when a CRL or the store's full snapshot is read again.
 */
const EMPTY = 0xffffffff;
/** Serial bytes at most (RFC 5280 allows 20; a longer one from a CA's CRL is still kept, up to a length byte). */
export const MAX_SERIAL_BYTES = 255;

export class SerialSet {
  #arena: Uint8Array;
  #used = 0;
  #table: Uint32Array;
  #mask: number;
  #size = 0;
  /** Decoded hex of the serial asked about (has/add by hex), reused. */
  readonly #scratch = new Uint8Array(MAX_SERIAL_BYTES + 1);

  constructor(expected = 0) {
    let slots = 16;
    while (slots < expected * 2) slots *= 2;
    this.#table = new Uint32Array(slots).fill(EMPTY);
    this.#mask = slots - 1;
    this.#arena = new Uint8Array(Math.max(256, expected * 12));
  }

  get size(): number {
    return this.#size;
  }

  /** Whether the serial (hex of the positive value, any case, leading zeros allowed) is in the set; a string that is no hex number is not. */
  has(serialHex: string): boolean {
    const n = this.#decode(serialHex);
    return n >= 0 && this.#find(this.#scratch, 0, n) !== EMPTY;
  }

  /** Adds a serial given as hex; returns whether it was new. Throws on a string that is no hex number. */
  add(serialHex: string): boolean {
    const n = this.#decode(serialHex);
    if (n < 0) throw new RangeError(`not a certificate serial number in hex: ${JSON.stringify(serialHex.slice(0, 80))}`);
    return this.addBytes(this.#scratch, 0, n);
  }

  /** Whether the serial in bytes[start, end) (big-endian, positive) is in the set. */
  hasBytes(bytes: Uint8Array, start: number, end: number): boolean {
    while (start < end - 1 && bytes[start] === 0) start++;
    return this.#find(bytes, start, end) !== EMPTY;
  }

  /** Adds the serial in bytes[start, end) (big-endian, positive; e.g. an INTEGER's content in a CRL); returns whether it was new. */
  addBytes(bytes: Uint8Array, start: number, end: number): boolean {
    while (start < end - 1 && bytes[start] === 0) start++;
    const len = end - start;
    if (len <= 0 || len > MAX_SERIAL_BYTES) throw new RangeError(`a certificate serial number of ${len} bytes cannot be held (1–${MAX_SERIAL_BYTES})`);
    const slot = this.#slot(bytes, start, end);
    if (this.#table[slot] !== EMPTY) return false;
    if (this.#used + 1 + len > this.#arena.length) this.#growArena(1 + len);
    const at = this.#used;
    this.#arena[at] = len;
    this.#arena.set(bytes.subarray(start, end), at + 1);
    this.#used += 1 + len;
    this.#table[slot] = at;
    this.#size++;
    // Load factor at most one half: short probe runs.
    if (this.#size * 2 > this.#table.length) this.#growTable();
    return true;
  }

  /** The serials of this set that `other` lacks, as lowercase hex (what a refresh reports as newly revoked). */
  missingFrom(other: SerialSet | undefined): string[] {
    const out: string[] = [];
    const a = this.#arena;
    for (let at = 0; at < this.#used; at += 1 + a[at]!) {
      if (!other || !other.hasBytes(a, at + 1, at + 1 + a[at]!)) out.push(toHex(a, at + 1, at + 1 + a[at]!));
    }
    return out;
  }

  /** Every serial as lowercase hex, in the order added. */
  *[Symbol.iterator](): IterableIterator<string> {
    const a = this.#arena;
    for (let at = 0; at < this.#used; at += 1 + a[at]!) yield toHex(a, at + 1, at + 1 + a[at]!);
  }

  /** Gives back the arena's unused tail (after a whole set is loaded: a CRL, a full snapshot). */
  trim(): void {
    if (this.#arena.length - this.#used > 4096) this.#arena = this.#arena.slice(0, Math.max(256, this.#used));
  }

  /** Bytes held (arena and table), for reports. */
  get byteLength(): number {
    return this.#arena.byteLength + this.#table.byteLength;
  }

  #find(bytes: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (len <= 0 || len > MAX_SERIAL_BYTES) return EMPTY;
    return this.#table[this.#slot(bytes, start, end)]!;
  }

  /** The table slot that holds this serial, or the empty slot where it would go. */
  #slot(bytes: Uint8Array, start: number, end: number): number {
    const len = end - start;
    let slot = hash(bytes, start, end) & this.#mask;
    for (;;) {
      const at = this.#table[slot]!;
      if (at === EMPTY || this.#equals(at, bytes, start, len)) return slot;
      slot = (slot + 1) & this.#mask;
    }
  }

  #equals(at: number, bytes: Uint8Array, start: number, len: number): boolean {
    const a = this.#arena;
    if (a[at] !== len) return false;
    for (let i = 0; i < len; i++) if (a[at + 1 + i] !== bytes[start + i]) return false;
    return true;
  }

  #growArena(need: number): void {
    let size = this.#arena.length * 2;
    while (size < this.#used + need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#arena.subarray(0, this.#used));
    this.#arena = next;
  }

  #growTable(): void {
    const slots = this.#table.length * 2;
    const table = new Uint32Array(slots).fill(EMPTY);
    const mask = slots - 1;
    const a = this.#arena;
    for (let at = 0; at < this.#used; at += 1 + a[at]!) {
      let slot = hash(a, at + 1, at + 1 + a[at]!) & mask;
      while (table[slot] !== EMPTY) slot = (slot + 1) & mask;
      table[slot] = at;
    }
    this.#table = table;
    this.#mask = mask;
  }

  /** Decodes hex into the scratch buffer (an odd digit count gets a leading zero; leading zero bytes dropped); returns the byte count, or -1 when it is no hex number. */
  #decode(hex: string): number {
    const digits = hex.length;
    if (digits === 0 || digits > 2 * MAX_SERIAL_BYTES) return -1;
    const s = this.#scratch;
    let n = 0;
    let i = 0;
    if (digits % 2 === 1) {
      const lo = nibble(hex.charCodeAt(0));
      if (lo < 0) return -1;
      s[n++] = lo;
      i = 1;
    }
    for (; i < digits; i += 2) {
      const hi = nibble(hex.charCodeAt(i));
      const lo = nibble(hex.charCodeAt(i + 1));
      if (hi < 0 || lo < 0) return -1;
      s[n++] = (hi << 4) | lo;
    }
    let skip = 0;
    while (skip < n - 1 && s[skip] === 0) skip++;
    if (skip) s.copyWithin(0, skip, n);
    return n - skip;
  }
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** FNV-1a, 32 bits. */
function hash(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function toHex(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += HEX[bytes[i]!];
  return s;
}
