import type { Server } from 'node:net';
import type { HostPort } from './config.js';

/** Binds a local listener (the config has checked the address is loopback); rejects with the bind error (EADDRINUSE, EACCES). */
export function listenOn(server: Server, at: HostPort): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
