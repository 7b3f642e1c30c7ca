/**
 * The TCP front's listening socket: shared or a process's own.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { GuardedListener } from './guarded-listener.js';
import { ListenerLedger } from './ledger.js';
import { resolveLimits } from './limits.js';
import { freePort } from '../testing/tls-servers.js';

const quiet = { log: () => undefined };

function front(port: number, reusePort: boolean, seen: string[], name: string): GuardedListener {
  return new GuardedListener({
    name,
    host: '127.0.0.1',
    port,
    limits: resolveLimits({}, 1).gateway,
    ledger: new ListenerLedger(),
    log: quiet,
    setting: '--listen',
    reusePort,
    onConnection: (raw) => {
      seen.push(name);
      raw.destroy();
    },
  });
}

const knock = (port: number) =>
  new Promise<void>((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });

describe('GuardedListener: the listening socket', () => {
  test('with reusePort two fronts bind one port, each its own socket, and both accept (the kernel spreads connections: what each --workers process does)', async () => {
    const port = await freePort();
    const seen: string[] = [];
    const a = front(port, true, seen, 'a');
    const b = front(port, true, seen, 'b');
    try {
      await a.listen();
      await b.listen();
      for (let i = 0; i < 64 && !(seen.includes('a') && seen.includes('b')); i++) await knock(port);
      assert.ok(seen.includes('a') && seen.includes('b'), `both sockets accepted connections: ${seen.join(',')}`);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('without reusePort a second front on a taken port is refused with PORT_IN_USE (no silent sharing)', async () => {
    const port = await freePort();
    const a = front(port, false, [], 'a');
    const b = front(port, false, [], 'b');
    try {
      await a.listen();
      await assert.rejects(b.listen(), (e: { code?: string }) => e.code === 'PORT_IN_USE');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('a port taken without SO_REUSEPORT is refused to a reusePort front too (another server is not joined)', async () => {
    const port = await freePort();
    const a = front(port, false, [], 'a');
    const b = front(port, true, [], 'b');
    try {
      await a.listen();
      await assert.rejects(b.listen(), (e: { code?: string }) => e.code === 'PORT_IN_USE');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('reusePort with port 0 binds an ordinary socket (each process would get a different port)', async () => {
    const a = front(0, true, [], 'a');
    try {
      const { port } = await a.listen();
      assert.ok(port > 0);
      const b = front(port, true, [], 'b');
      await assert.rejects(b.listen(), (e: { code?: string }) => e.code === 'PORT_IN_USE', 'the port-0 socket was bound without SO_REUSEPORT');
      await b.stop();
    } finally {
      await a.stop();
    }
  });
});
