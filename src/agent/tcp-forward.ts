/**
 * Plain TCP forwards (HL7 MLLP, DICOM, …): a local loopback port whose
 * connections are carried, byte for byte, to the center's TCP gateway over
 * mutual TLS with the facility's credential.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { HostPort } from './config.js';
import type { AgentLog } from './log.js';
import type { AgentStats } from './agent-stats.js';
import { linkError, type CenterLink } from './center-link.js';

export async function startTcpForward(listen: HostPort, to: HostPort, o: { link: CenterLink; log: AgentLog; stats: AgentStats }): Promise<Server> {
  const server = createServer((local: Socket) => {
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
      local.pipe(remote);
      remote.pipe(local);
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
