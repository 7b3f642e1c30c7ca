import type { Socket } from 'node:net';
import { firstRecordLength, MAX_HELLO_BYTES } from './client-hello.js';

/**
 * Holds a fresh socket until the first record of its first flight has
 * arrived (or its first bytes show it is no TLS record), puts those bytes
 * back (`unshift`, so TLS reads them as if untouched: Node's TLSSocket takes
 * what a wrapped socket has buffered) and hands them to `done`. Only the
 * first record is ever held (at most MAX_HELLO_BYTES; one chunk is kept as
 * it arrived, without a copy); nothing after it is looked at. `done` gets
 * undefined when the client closed or failed before that record was
 * complete. Returns nothing: the caller's handshake timeout bounds the wait
 * (destroying the socket ends it).
 */
export function peekFirstRecord(raw: Socket, done: (bytes: Buffer | undefined) => void): void {
  let chunks: Buffer[] | undefined;
  let total = 0;
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
  const onData = (chunk: Buffer) => {
    let head = chunk;
    if (chunks || total) {
      (chunks ??= []).push(chunk);
      head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      chunks = [head];
    }
    total += chunk.length;
    const need = firstRecordLength(head);
    // Complete, over the bound, or not a record we read (a first byte that is neither a handshake record nor SSL 2.0, once 5 bytes are in).
    if ((need !== undefined && total >= need) || total >= MAX_HELLO_BYTES || (need === undefined && total >= 5)) return finish(head);
    if (!chunks) chunks = [chunk];
  };
  raw.on('data', onData);
  raw.once('end', onEnd);
  raw.once('close', onEnd);
  raw.once('error', onEnd);
}
