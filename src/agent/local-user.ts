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

const hexPort = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');

/** The uid owning the client end of `socket` (a loopback TCP connection to this process), or undefined when it cannot be told. */
export function peerUid(socket: Socket, procNet = '/proc/net'): number | undefined {
  const client = socket.remotePort;
  const server = socket.localPort;
  if (client === undefined || server === undefined) return undefined;
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`${procNet}/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 8) continue;
      // The client's own socket: local = its port, remote = our listening port.
      if (f[1]!.endsWith(`:${hexPort(client)}`) && f[2]!.endsWith(`:${hexPort(server)}`)) return Number(f[7]);
    }
  }
  return undefined;
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
