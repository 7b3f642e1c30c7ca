import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { FDS_PER_CONNECTION, GuardedListener, ListenerLedger, applyHttpLimits, limitsFromFlags, openFileLimit, parseLimitsSetting, resolveLimits } from './index.js';

describe('listener limits: sized from the file-descriptor budget', () => {
  test('the caps of every listener fit in the budget minus its reserve, and the gateway gets the largest share', () => {
    for (const fds of [256, 1024, 65_536]) {
      for (const listeners of [1, 3]) {
        const r = resolveLimits({}, listeners, { rlimit: fds });
        const used = r.gateway.maxConnections * FDS_PER_CONNECTION.gateway * listeners + r.portal.maxConnections + r.admin.maxConnections;
        assert.ok(used <= fds - r.reserve, `${fds}/${listeners}: ${used} of ${fds - r.reserve}`);
        assert.ok(r.gateway.maxConnections * 2 * listeners > r.portal.maxConnections, 'the gateway keeps more than the portal can take');
        assert.equal(r.source, 'rlimit');
      }
    }
  });

  test('with no readable limit, the default budget; a configured one wins over the process limit', () => {
    assert.equal(resolveLimits({}, 1, { rlimit: undefined }).fileDescriptors, 1024);
    assert.equal(resolveLimits({}, 1, { rlimit: undefined }).source, 'default');
    assert.equal(resolveLimits({ fileDescriptors: 4096 }, 1, { rlimit: 256 }).fileDescriptors, 4096);
  });

  test('settings override the defaults; the per-address cap never exceeds the total', () => {
    const r = resolveLimits({ portal: { maxConnections: 10, maxConnectionsPerAddress: 50, handshakeTimeoutSeconds: 2.5 } }, 1, { rlimit: 1024 });
    assert.equal(r.portal.maxConnections, 10);
    assert.equal(r.portal.maxConnectionsPerAddress, 10);
    assert.equal(r.portal.handshakeTimeoutMs, 2500);
  });

  test('caps that add up to more than the budget are refused at start-up, naming the numbers', () => {
    assert.throws(() => resolveLimits({ portal: { maxConnections: 900 } }, 1, { rlimit: 1024 }), (e: Error & { code?: string }) => e.code === 'LIMITS_INVALID' && /file descriptors/.test(e.message));
  });

  test('RLIMIT_NOFILE is read from /proc/self/limits (soft limit); unlimited or unreadable is unknown', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-limits-'));
    const f = join(dir, 'limits');
    writeFileSync(f, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            256                  4096                 files\n');
    assert.equal(openFileLimit(f), 256);
    writeFileSync(f, 'Max open files            unlimited            unlimited            files\n');
    assert.equal(openFileLimit(f), undefined);
    assert.equal(openFileLimit(join(dir, 'absent')), undefined);
  });

  const BAD: [string, unknown, RegExp][] = [
    ['an unknown kind', { web: {} }, /unknown key "web"/],
    ['an unknown key', { portal: { maxConns: 1 } }, /limits\.portal: unknown key "maxConns"/],
    ['a handshake timeout on the plain-HTTP admin listener', { admin: { handshakeTimeoutSeconds: 1 } }, /unknown key "handshakeTimeoutSeconds"/],
    ['a cap of zero', { gateway: { maxConnections: 0 } }, /limits\.gateway\.maxConnections: must be a whole number/],
    ['a fractional cap', { gateway: { maxConnectionsPerAddress: 1.5 } }, /whole number/],
    ['a timeout as text', { portal: { idleTimeoutSeconds: '30' } }, /limits\.portal\.idleTimeoutSeconds: must be a number of seconds/],
    ['a timeout too long', { portal: { handshakeTimeoutSeconds: 1000 } }, /from 0\.1 to 300/],
    ['a tiny budget', { fileDescriptors: 10 }, /fileDescriptors: must be a whole number from 64/],
  ];
  for (const [name, raw, message] of BAD) {
    test(`bad limits are refused with LIMITS_INVALID: ${name}`, () => {
      assert.throws(() => parseLimitsSetting(raw), (e: Error & { code?: string }) => e.code === 'LIMITS_INVALID' && message.test(e.message));
    });
  }

  test('--limit flags become the same mapping a file holds (and are checked by the same rules)', () => {
    assert.deepEqual(limitsFromFlags(['portal.maxConnections=200', 'gateway.handshakeTimeoutSeconds=2.5', 'fileDescriptors=4096']), { portal: { maxConnections: 200 }, gateway: { handshakeTimeoutSeconds: 2.5 }, fileDescriptors: 4096 });
    assert.throws(() => limitsFromFlags(['portal.maxConnections']), /KIND\.KEY=NUMBER/);
    assert.throws(() => parseLimitsSetting(limitsFromFlags(['portal.maxConnection=2'])), /unknown key "maxConnection"/);
  });
});

describe('listener limits: the TCP front and HTTP timeouts', () => {
  test('an HTTP server fed by the front closes a client that sends its headers too slowly (headers timeout), and is counted', async () => {
    const limits = { ...resolveLimits({}, 1, { rlimit: 1024 }).admin, headersTimeoutMs: 1000, requestTimeoutMs: 2000 };
    const server: Server = createServer((_req, res) => res.end('ok'));
    applyHttpLimits(server, limits);
    const ledger = new ListenerLedger();
    const front = new GuardedListener({ name: 'test', host: '127.0.0.1', port: 0, limits, ledger, log: { log: () => undefined }, setting: 'test', onConnection: (raw) => server.emit('connection', raw) });
    const { port } = await front.listen();
    try {
      const s = connect({ port, host: '127.0.0.1' });
      s.on('error', () => undefined);
      s.resume(); // read the 408, so the close is seen
      s.write('GET / HTTP/1.1\r\nHost: x\r\n');
      const closed = await Promise.race([new Promise((r) => s.once('close', () => r(true))), new Promise((r) => setTimeout(() => r(false), 8000))]);
      assert.equal(closed, true, 'closed after the headers timeout');
      assert.equal(ledger.get('test')!.accepted, 1);
      assert.match(ledger.render(), /sekisho_listener_open_connections\{listener="test"\} 0/);
    } finally {
      await front.stop();
      front.destroyAll();
      server.close();
    }
  });
});
