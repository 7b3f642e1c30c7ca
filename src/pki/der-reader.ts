import { malformed } from '../errors/index.js';

/** One DER TLV inside a buffer: where it starts, where its content starts and ends. */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/**
 * Reads the TLV at `offset` (definite lengths only, as DER requires). Throws a
 * `malformed` error with `code` when the bytes do not hold one.
 */
export function readTlv(buf: Uint8Array, offset: number, code = 'DER_MALFORMED'): Tlv {
  const fail = () => malformed(code, 'the data is not valid DER (truncated or corrupt)');
  if (offset + 2 > buf.length) throw fail();
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw fail(); // multi-byte tags are never used in X.509
  let len = buf[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > buf.length) throw fail();
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > buf.length) throw fail();
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** The TLVs directly inside a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv, code = 'DER_MALFORMED'): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.contentStart;
  while (p < parent.end) {
    const t = readTlv(buf, p, code);
    if (t.end > parent.end) throw malformed(code, 'the data is not valid DER (an element overruns its parent)');
    out.push(t);
    p = t.end;
  }
  return out;
}

export function slice(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.start, t.end);
}
