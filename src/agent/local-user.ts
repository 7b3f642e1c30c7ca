/**
 * Which local user opened a loopback connection (Linux: the uid the kernel
 * lists for the client's socket in /proc/net/tcp and tcp6). A loopback
 * listener is open to every account on the machine; on a shared terminal
 * server, `listen.allowUsers` keeps the facility's credential to the accounts
 * named there.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { badRequest } from '../errors/index.js';

import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';

const hexPort = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
const LITTLE_ENDIAN = endianness() === 'LE';
/** TCP_ESTABLISHED in the `st` column. */
const ESTABLISHED = '01';

/** The 16 bytes of an IPv6 address (IPv4-mapped too), or the 4 of an IPv4 one. */
function addressBytes(address: string): number[] | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (isIPv4(address) || mapped) return (mapped ? mapped[1]! : address).split('.').map(Number);
  if (!isIPv6(address)) return undefined;
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const words = (x: string | undefined) => (x ? x.split(':').map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

/** How /proc/net/tcp{,6} spells an address: 32-bit words in host byte order, uppercase hex. */
function procAddress(bytes: readonly number[]): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const word = bytes.slice(i, i + 4);
    for (const b of LITTLE_ENDIAN ? word.reverse() : word) out += b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The spellings of `address:port` in each table: an IPv4 address is in tcp as itself and in tcp6 as ::ffff:a.b.c.d. */
function procEndpoints(address: string, port: number): { tcp?: string; tcp6: string } | undefined {
  const b = addressBytes(address);
  if (!b) return undefined;
  if (b.length === 4) return { tcp: `${procAddress(b)}:${hexPort(port)}`, tcp6: `${procAddress([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...b])}:${hexPort(port)}` };
  return { tcp6: `${procAddress(b)}:${hexPort(port)}` };
}

/**
 * The uid owning the client end of `socket` (a loopback TCP connection to
 * this process), or undefined when it cannot be told. The client's socket is
 * found by its whole 4-tuple (its address and port, ours), established, and
 * only when exactly one socket has it: by the ports alone, another account
 * could bind an allowed user's port on another loopback address (127.0.0.2)
 * and be taken for that user.
 */
export function peerUid(socket: Socket, procNet = '/proc/net'): number | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (!remoteAddress || remotePort === undefined || !localAddress || localPort === undefined) return undefined;
  const client = procEndpoints(remoteAddress, remotePort);
  const server = procEndpoints(localAddress, localPort);
  if (!client || !server) return undefined;
  const uids: number[] = [];
  for (const table of ['tcp', 'tcp6'] as const) {
    const local = client[table];
    const remote = server[table];
    if (!local || !remote) continue;
    let text: string;
    try {
      text = readFileSync(`${procNet}/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 8) continue;
      // The client's own socket: local = its address and port, remote = ours.
      if (f[1] === local && f[2] === remote && f[3] === ESTABLISHED) uids.push(Number(f[7]));
    }
  }
  return uids.length === 1 ? uids[0] : undefined;
}

/** uids for the names or numbers in `listen.allowUsers` (names from /etc/passwd); refused at start when one is unknown or the platform cannot tell. */
export function resolveUsers(users: readonly (string | number)[], passwd = '/etc/passwd'): Set<number> {
  if (process.platform !== 'linux') throw badRequest('AGENT_ALLOW_USERS_UNSUPPORTED', 'listen.allowUsers needs Linux (/proc/net/tcp tells which user opened a connection); remove it on this platform');
  let table: string[] = [];
  try {
    table = readFileSync(passwd, 'utf8').split('\n');
  } catch {
    /* numbers only */
  }
  const out = new Set<number>();
  for (const u of users) {
    if (typeof u === 'number') {
      out.add(u);
      continue;
    }
    const row = table.find((l) => l.split(':')[0] === u);
    if (!row) throw badRequest('AGENT_CONFIG_INVALID', `listen.allowUsers: there is no user "${u}" on this machine`, { ja: `listen.allowUsers: ユーザー "${u}" はこのコンピューターにありません。` });
    out.add(Number(row.split(':')[2]));
  }
  return out;
}
