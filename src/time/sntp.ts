import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { unavailable } from '../errors/index.js';

/**
 * A minimal SNTP client (RFC 4330, the client side of RFC 5905): one mode-3
 * request over UDP, the server's receive (T2) and transmit (T3) times against
 * our send (T1) and receive (T4) times:
 *
 *   offset = ((T2 − T1) + (T3 − T4)) / 2     delay = (T4 − T1) − (T3 − T2)
 *
 * A reply must be mode 4 (server), echo our transmit timestamp as its
 * originate timestamp (so an off-path answer is not believed; our low
 * fraction bits are random, RFC 5905 §9.1 / RFC 4330 §5), come from a
 * synchronized server (stratum 1–15, leap indicator not 3) and carry a
 * non-zero transmit time; anything else is an error, never an offset.
 */
export interface SntpReading {
  /** How far the server's clock is ahead of ours, in milliseconds (negative: ours is ahead). */
  offsetMs: number;
  /** Round trip less the server's processing time, in milliseconds. */
  delayMs: number;
  stratum: number;
}

/** Seconds between 1900-01-01 (NTP era 0) and 1970-01-01. */
const NTP_UNIX = 2_208_988_800;
const TWO32 = 2 ** 32;

/** Milliseconds since 1970 → 64-bit NTP timestamp (era 0 until 2036, then era 1: the seconds wrap). */
export function toNtp(ms: number, buf: Buffer, at: number): void {
  const seconds = Math.floor(ms / 1000) + NTP_UNIX;
  buf.writeUInt32BE(seconds % TWO32, at);
  buf.writeUInt32BE(Math.floor(((ms % 1000) / 1000) * TWO32) >>> 0, at + 4);
}

/** 64-bit NTP timestamp → milliseconds since 1970; seconds with the top bit clear are read as era 1 (from 2036-02-07), RFC 4330 §3. */
export function fromNtp(buf: Buffer, at: number): number {
  const s = buf.readUInt32BE(at);
  const f = buf.readUInt32BE(at + 4);
  const seconds = s >= 0x80000000 ? s : s + TWO32;
  return (seconds - NTP_UNIX) * 1000 + (f / TWO32) * 1000;
}

const fail = (where: string, what: string) => unavailable('CLOCK_CHECK_FAILED', `SNTP ${where}: ${what}`);

export function sntpQuery(host: string, port: number, o: { timeoutMs?: number; now?: () => number } = {}): Promise<SntpReading> {
  const now = o.now ?? (() => Date.now());
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const request = Buffer.alloc(48);
    request[0] = (0 << 6) | (4 << 3) | 3; // LI 0, version 4, mode 3 (client)
    const t1 = now();
    toNtp(t1, request, 40);
    // A random fraction in our transmit timestamp (our own t1 is kept apart): the reply must echo all 32 bits.
    randomBytes(4).copy(request, 44);
    const sent = Buffer.from(request.subarray(40, 48));
    // Settled once: a late DNS failure after the timeout must not close the socket a second time (that throws).
    let settled = false;
    const done = (e: Error | undefined, r?: SntpReading) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // already closed
      }
      if (e) reject(e);
      else resolve(r!);
    };
    const timer = setTimeout(() => done(fail(where, `no answer within ${o.timeoutMs ?? 2000} ms`)), o.timeoutMs ?? 2000);
    socket.on('error', (e) => done(fail(where, e.message)));
    socket.on('message', (m, rinfo) => {
      const t4 = now();
      if (m.length < 48) return; // not an NTP packet; keep waiting for one
      if (rinfo.port !== port || !m.subarray(24, 32).equals(sent)) return; // not the answer to our request (stale, or not from the server: the socket is connected to it)
      const li = m[0]! >> 6;
      const mode = m[0]! & 7;
      const stratum = m[1]!;
      if (mode !== 4) return done(fail(where, `answered in mode ${mode}, not 4 (server)`));
      if (stratum === 0) return done(fail(where, `sent a kiss-o'-death (${m.subarray(12, 16).toString('latin1').replace(/[^\x20-\x7e]/g, '?')})`));
      if (stratum > 15) return done(fail(where, `stratum ${stratum}: the server is not synchronized`));
      if (li === 3) return done(fail(where, 'the server says its clock is not synchronized (leap indicator 3)'));
      if (m.readUInt32BE(40) === 0 && m.readUInt32BE(44) === 0) return done(fail(where, 'the answer carries no transmit time'));
      const t2 = fromNtp(m, 32);
      const t3 = fromNtp(m, 40);
      done(undefined, { offsetMs: (t2 - t1 + (t3 - t4)) / 2, delayMs: Math.max(0, t4 - t1 - (t3 - t2)), stratum });
    });
    // Connected: the kernel passes on datagrams from the server's address and port only.
    socket.connect(port, host, (e?: Error) => {
      if (e) return done(fail(where, e.message));
      if (settled) return;
      socket.send(request, (err) => {
        if (err) done(fail(where, err.message));
      });
    });
  });
}
