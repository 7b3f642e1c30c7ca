/**
 * Plain TCP forwards (HL7 MLLP, DICOM, …): a local loopback port whose
 * connections are carried, byte for byte, to the center's TCP gateway over
 * mutual TLS with the facility's credential.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { HostPort } from './config.js';
import { listenOn } from './listen.js';
import type { AgentLog } from './log.js';
import type { AgentStats } from './agent-stats.js';
import { linkError, type CenterLink } from './center-link.js';
import { agentErrors } from './messages.js';

/** The start of an HTTP/1 request (RFC 9112 §3): what a browser sends to any port a page names, and no TCP forward's protocol begins with. */
const HTTP_REQUEST_LINE = /^(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|TRACE|CONNECT|PRI) /;

export async function startTcpForward(
  listen: HostPort,
  to: HostPort,
  o: { link: CenterLink; log: AgentLog; stats: AgentStats; users?: { uid: (s: Socket) => number | undefined; allowed: (uid: number | undefined) => boolean } },
): Promise<Server> {
  // Half-open: a sender that writes its message and then shuts its side (nc -N, one-shot HL7 and batch senders) still gets
  // the answer; its FIN goes on to the center, and the connection closes once both directions have ended.
  const server = createServer({ allowHalfOpen: true }, (local: Socket) => {
    if (o.users) {
      const uid = o.users.uid(local);
      if (!o.users.allowed(uid)) {
        const e = agentErrors.userRefused(uid);
        o.stats.refuse(e.code);
        o.log('warn', 'connection refused', { code: e.code, message: e.message, ja: e.ja, listen: `${listen.host}:${listen.port}` });
        local.destroy();
        return;
      }
    }
    o.stats.opened();
    const remote = o.link.connect(to);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      o.stats.closed();
    };
    local.pause();
    remote.once('secureConnect', () => {
      remote.pipe(local);
      // The first bytes decide: an HTTP request line is a browser's (a web page can make one reach a loopback port), never HL7 or
      // DICOM (they begin with a control byte). They are gathered until the method could be read: 8 bytes, a line end, or a first
      // byte that no method begins with, so a request split into small pieces is still seen.
      const first: Buffer[] = [];
      let size = 0;
      /** Decides on the bytes gathered (all there will be, when the client has ended); false when they are refused. */
      const decide = (): boolean => {
        local.off('data', onFirst);
        local.off('end', onEndFirst);
        const head = first.length === 1 ? first[0]! : Buffer.concat(first, size);
        if (HTTP_REQUEST_LINE.test(head.subarray(0, 8).toString('latin1'))) {
          const e = agentErrors.httpOnTcpForward();
          o.stats.refuse(e.code);
          o.log('warn', 'connection refused', { code: e.code, message: e.message, ja: e.ja, to: `${to.host}:${to.port}` });
          local.destroy();
          remote.destroy();
          return false;
        }
        if (size) remote.write(head);
        return true;
      };
      const onFirst = (chunk: Buffer) => {
        first.push(chunk);
        size += chunk.length;
        const head = first.length === 1 ? chunk : Buffer.concat(first, size);
        const c0 = head[0]!;
        if (size < 8 && c0 >= 0x41 && c0 <= 0x5a && !head.includes(0x0a)) return;
        if (decide()) local.pipe(remote);
      };
      // The client finished sending before its first bytes could be judged (or sent none): judged on what came, then its end goes on.
      const onEndFirst = () => {
        if (decide()) remote.end();
      };
      local.on('data', onFirst);
      local.once('end', onEndFirst);
      local.resume();
    });
    remote.on('error', (e) => {
      const err = linkError(e);
      if (!remote.authorized) {
        o.stats.refuse(err.code);
        o.log('error', 'the center could not be reached', { code: err.code, message: err.message, ja: err.ja, to: `${to.host}:${to.port}` });
      }
      local.destroy();
    });
    local.on('error', () => remote.destroy());
    local.on('close', () => {
      remote.destroy();
      finish();
    });
    remote.on('close', () => local.end());
  });
  await listenOn(server, listen);
  return server;
}
