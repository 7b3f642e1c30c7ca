import { randomFillSync } from 'node:crypto';

/**
 * CSPRNG bytes drawn 4 KiB at a time and handed out once each (one call into
 * OpenSSL per ~450 serials instead of one per serial); each caller gets a
 * fresh copy, never a view of the pool.
 */
const pool = Buffer.alloc(4096);
let used = pool.length;
function pooledRandom(n: number): Buffer {
  if (n > pool.length) return randomFillSync(Buffer.alloc(n));
  if (used + n > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const out = Buffer.from(pool.subarray(used, used + n));
  pool.fill(0, used, used + n);
  used += n;
  return out;
}

/**
 * A certificate serial: 9 bytes, the first in 0x01..0x7f (positive, no
 * padding byte, never zero-led), the other 8 from the CSPRNG: ≥ 64 random
 * bits as CA/B BR 7.1 asks, and the shortest DER INTEGER that does so (CRLs
 * of a million entries stay small).
 */
export function newSerial(random: (n: number) => Buffer = pooledRandom): Buffer {
  const b = random(9);
  b[0] = 1 + (b[0]! % 0x7f);
  return b;
}

export const serialHex = (serial: Buffer) => serial.toString('hex');

/** Parses an operator-typed serial: hex, optionally with colons or 0x. */
export function parseSerialHex(s: string): string | undefined {
  const hex = s.trim().toLowerCase().replace(/^0x/, '').replace(/:/g, '');
  return /^[0-9a-f]{2,40}$/.test(hex) && hex.length % 2 === 0 ? hex : undefined;
}
