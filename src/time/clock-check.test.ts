/**
 * The clock check against a real SNTP exchange: a tiny server on 127.0.0.1
 * answering with a deliberate offset (and with each defect a client must not
 * believe), and the alarm it raises (log, reading, audit event) and clears.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClockCheck, fromNtp, sntpQuery, toNtp, type ClockReading } from './index.js';
import { testSntpServer, type TestSntpServer } from '../testing/sntp-server.js';
import type { AuditEvent } from '../audit/index.js';
import { SekishoError } from '../errors/index.js';

let server: TestSntpServer;
before(async () => {
  server = await testSntpServer(0);
});
after(() => server.close());

describe('SNTP client (RFC 4330)', () => {
  test('timestamps: 1970 and after the 2036 era rollover round-trip to the millisecond', () => {
    for (const ms of [0, Date.parse('2026-12-07T00:00:00.123Z'), Date.parse('2036-02-07T06:28:16.000Z'), Date.parse('2040-01-01T00:00:00.999Z')]) {
      const b = Buffer.alloc(8);
      toNtp(ms, b, 0);
      assert.ok(Math.abs(fromNtp(b, 0) - ms) < 1, new Date(ms).toISOString());
    }
  });

  for (const offset of [3000, -2500, 0]) {
    test(`a server ${offset} ms ahead reads as an offset of ${offset} ms`, async () => {
      server.fault = 'none';
      server.offsetMs = offset;
      const r = await sntpQuery('127.0.0.1', server.port);
      assert.ok(Math.abs(r.offsetMs - offset) < 250, `${r.offsetMs}`);
      assert.ok(r.delayMs >= 0 && r.stratum === 2);
    });
  }

  const defects: [TestSntpServer['fault'], RegExp][] = [
    ['wrong-originate', /no answer within/],
    ['silent', /no answer within/],
    ['client-mode', /mode 3, not 4/],
    ['kiss-of-death', /kiss-o'-death \(RATE\)/],
    ['unsynchronized', /not synchronized/],
  ];
  for (const [fault, message] of defects) {
    test(`an answer that is ${fault} is not believed: CLOCK_CHECK_FAILED`, async () => {
      server.fault = fault;
      server.offsetMs = 0;
      await assert.rejects(sntpQuery('127.0.0.1', server.port, { timeoutMs: 500 }), (e: unknown) => e instanceof SekishoError && e.code === 'CLOCK_CHECK_FAILED' && message.test(e.message));
      server.fault = 'none';
    });
  }

  test('a name lookup that fails after the timeout does not crash the process (regression: the socket was closed twice)', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      // The 1 ms timeout settles first; the lookup of a name under .invalid (RFC 6761) fails later.
      await assert.rejects(sntpQuery('no-such-ntp-server.invalid', 123, { timeoutMs: 1 }), (e: unknown) => e instanceof SekishoError && e.code === 'CLOCK_CHECK_FAILED');
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});

describe('clock check', () => {
  function check(maxOffsetMs: number) {
    const audits: AuditEvent[] = [];
    const logs: { level: string; msg: string }[] = [];
    const readings: ClockReading[] = [];
    const c = new ClockCheck({
      sources: [{ name: `ntp 127.0.0.1:${server.port}`, offsetMs: async () => (await sntpQuery('127.0.0.1', server.port, { timeoutMs: 500 })).offsetMs }],
      maxOffsetMs,
      checkSeconds: 3600,
      log: (level, msg) => logs.push({ level, msg }),
      audit: (e) => audits.push(e),
      onReading: (r) => readings.push(r),
    });
    return { c, audits, logs, readings };
  }

  test('past the limit: an alarm once (error log, audit time.offset-exceeded), then time.offset-recovered when it is back', async () => {
    server.fault = 'none';
    server.offsetMs = 4000;
    const { c, audits, logs, readings } = check(1000);
    await c.start();
    c.stop();
    await c.check();
    assert.deepEqual(audits.map((a) => [a.action, a.outcome, a.reasonCode]), [['time.offset-exceeded', 'seriousFailure', 'CLOCK_OFFSET_EXCEEDED']], 'one alarm while it lasts');
    assert.ok(Math.abs((audits[0]!.details!.offsetMs as number) - 4000) < 250);
    assert.equal(audits[0]!.details!.maxOffsetMs, 1000);
    assert.equal(logs.filter((l) => l.level === 'error').length, 1);
    assert.ok(readings.every((r) => r.state === 'exceeded'));
    server.offsetMs = 200;
    await c.check();
    assert.deepEqual(audits.map((a) => a.action), ['time.offset-exceeded', 'time.offset-recovered']);
    assert.equal(c.states()[`ntp 127.0.0.1:${server.port}`], 'ok');
  });

  test('within the limit: no alarm and no audit event', async () => {
    server.fault = 'none';
    server.offsetMs = 300;
    const { c, audits, logs, readings } = check(1000);
    await c.start();
    c.stop();
    await c.check();
    assert.equal(audits.length, 0);
    assert.equal(logs.filter((l) => l.level !== 'info').length, 0);
    assert.ok(readings.length === 2 && readings.every((r) => r.state === 'ok'));
  });

  test('a reference that stops answering is audited as time.check-failed, and recovered after', async () => {
    server.offsetMs = 0;
    server.fault = 'silent';
    const { c, audits } = check(1000);
    await c.start();
    c.stop();
    server.fault = 'none';
    await c.check();
    assert.deepEqual(audits.map((a) => a.action), ['time.check-failed', 'time.offset-recovered']);
  });
});
