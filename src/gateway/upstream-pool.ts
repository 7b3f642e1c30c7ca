import { connect, type Socket } from 'node:net';

/**
 * Kept-alive plain-TCP connections to HTTP upstreams, by host:port: a
 * connection goes back to the pool only after a complete exchange (the whole
 * request written, the whole response read, neither side asking to close),
 * so a reused connection never starts in the middle of a message. At most
 * `maxIdle` idle connections per upstream (the rest are closed); an idle one
 * is closed after `idleMs` or when the upstream closes it.
 */
export class UpstreamPool {
  readonly #idle = new Map<string, Socket[]>();
  readonly #all = new Set<Socket>();
  readonly #drops = new WeakMap<Socket, () => void>();

  constructor(private readonly o: { maxIdle: number; idleMs: number }) {}

  /** An idle connection to host:port (reused: true), or a new one. */
  take(host: string, port: number, key: string): { socket: Socket; reused: boolean } {
    const idle = this.#idle.get(key);
    while (idle?.length) {
      const socket = idle.pop()!;
      if (socket.destroyed || !socket.writable) continue;
      const drop = this.#drops.get(socket)!;
      this.#drops.delete(socket);
      socket.off('data', drop).off('end', drop).off('error', drop).off('close', drop).off('timeout', drop);
      socket.setTimeout(0);
      return { socket, reused: true };
    }
    const socket = connect({ host, port, noDelay: true });
    this.#all.add(socket);
    socket.once('close', () => this.#all.delete(socket));
    return { socket, reused: false };
  }

  /** Back to the pool, idle: the caller has detached its listeners and seen the exchange complete. */
  give(key: string, socket: Socket): void {
    let idle = this.#idle.get(key);
    if (!idle) this.#idle.set(key, (idle = []));
    if (idle.length >= this.o.maxIdle || socket.destroyed) {
      socket.destroy();
      return;
    }
    const drop = () => {
      const i = idle.indexOf(socket);
      if (i >= 0) idle.splice(i, 1);
      socket.destroy();
    };
    // Anything the upstream sends while idle is out of protocol: the connection goes.
    socket.on('data', drop).on('end', drop).on('error', drop).on('close', drop);
    socket.setTimeout(this.o.idleMs, drop);
    this.#drops.set(socket, drop);
    idle.push(socket);
  }

  /** Closes every connection, idle or in use. */
  destroy(): void {
    for (const s of this.#all) s.destroy();
    this.#idle.clear();
  }
}
