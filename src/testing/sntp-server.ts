/**
 * A tiny SNTP server for tests (UDP on 127.0.0.1): answers each client
 * request with its clock `offsetMs` ahead of ours, or with a chosen defect.
 */
import { createSocket, type Socket } from 'node:dgram';
import { toNtp } from '../time/index.js';

export type SntpFault = 'none' | 'wrong-originate' | 'client-mode' | 'kiss-of-death' | 'unsynchronized' | 'silent';

export interface TestSntpServer {
  port: number;
  offsetMs: number;
  fault: SntpFault;
  requests: number;
  close(): Promise<void>;
}

export async function testSntpServer(offsetMs: number): Promise<TestSntpServer> {
  const socket: Socket = createSocket('udp4');
  const s: TestSntpServer = {
    port: 0,
    offsetMs,
    fault: 'none',
    requests: 0,
    close: () => new Promise((r) => socket.close(() => r())),
  };
  socket.on('message', (m, rinfo) => {
    s.requests++;
    if (m.length < 48 || (m[0]! & 7) !== 3 || s.fault === 'silent') return;
    const received = Date.now() + s.offsetMs;
    const a = Buffer.alloc(48);
    a[0] = ((s.fault === 'unsynchronized' ? 3 : 0) << 6) | (4 << 3) | (s.fault === 'client-mode' ? 3 : 4);
    a[1] = s.fault === 'kiss-of-death' ? 0 : 2; // stratum
    a[2] = 6; // poll
    a[3] = 0xec; // precision
    if (s.fault === 'kiss-of-death') a.write('RATE', 12, 'latin1');
    else a.write('GPS\0', 12, 'latin1');
    m.copy(a, 24, 40, 48); // originate = the client's transmit
    if (s.fault === 'wrong-originate') a[31] = a[31]! ^ 0xff;
    toNtp(received, a, 16); // reference
    toNtp(received, a, 32); // receive
    toNtp(Date.now() + s.offsetMs, a, 40); // transmit
    socket.send(a, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  s.port = socket.address().port;
  return s;
}
