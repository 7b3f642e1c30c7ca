import type { Socket } from 'node:net';
import { firstRecordLength, MAX_HELLO_BYTES } from './client-hello.js';

/**
 * Holds a fresh socket until the first record of its first flight has
 * arrived (or its first bytes show it is no TLS record), puts those bytes
 * back (`unshift`, so TLS reads them as if untouched: Node's TLSSocket takes
 * what a wrapped socket has buffered) and hands them to `done`. Only the
 * first record is ever held (at most MAX_HELLO_BYTES; the chunks are kept as
 * they arrived and joined once, at the end); nothing after it is looked at. `done` gets
 * undefined when the client closed or failed before that record was
 * complete. Returns nothing: the caller's handshake timeout bounds the wait
 * (destroying the socket ends it).
 */
export function peekFirstRecord(raw: Socket, done: (bytes: Buffer | undefined) => void): void {
  const chunks: Buffer[] = [];
  let total = 0;
  /** The first few bytes (all firstRecordLength reads), copied once while fewer than 5 have arrived. */
  let header: Buffer | undefined;
  const finish = (bytes: Buffer | undefined) => {
    raw.removeListener('data', onData);
    raw.removeListener('end', onEnd);
    raw.removeListener('close', onEnd);
    raw.removeListener('error', onEnd);
    if (bytes) {
      raw.pause();
      raw.unshift(bytes);
    }
    done(bytes);
  };
  const onEnd = () => finish(undefined);
  // A client that dribbles its hello a byte at a time costs one copy at the end, not one of everything so far per byte.
  const whole = () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    total += chunk.length;
    if (!header || header.length < 5) header = chunks.length === 1 ? chunk : Buffer.concat(chunks, Math.min(total, 5));
    const need = firstRecordLength(header);
    // Complete, over the bound, or not a record we read (a first byte that is neither a handshake record nor SSL 2.0, once 5 bytes are in).
    if ((need !== undefined && total >= need) || total >= MAX_HELLO_BYTES || (need === undefined && total >= 5)) return finish(whole());
  };
  raw.on('data', onData);
  raw.once('end', onEnd);
  raw.once('close', onEnd);
  raw.once('error', onEnd);
}
