/**
 * Regression for the lost tenth: gateway audit events waited in memory for
 * their batch, and about 10 % were lost when the process was killed. Now an
 * event is spooled (in the kernel, O_APPEND) before the connection reaches
 * the upstream: a real `sekisho gateway` process under load from curl with a
 * facility certificate is SIGKILLed, then started again, and every
 * connection the upstream answered has its authentication event in the store.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditLog } from '../audit/index.js';
import { echoUpstream, FACILITY_A, gatewayFixture, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, runAsync } from '../testing/peers.js';
import { freePort } from '../testing/tls-servers.js';
import { startSekisho } from '../testing/cli-process.js';

const ready = hasCommand('curl');
let fx: GatewayFixture;
let http: Awaited<ReturnType<typeof echoUpstream>>;

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  http = await echoUpstream();
});

after(async () => {
  if (!ready) return;
  http.server.close();
  await fx.close();
});

const startGateway = (port: number) =>
  startSekisho<{ listeners: { port: number }[] }>(['gateway', '--home', fx.home, '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${http.port}`, '--log-level', 'error', '--json'], {
    env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE },
  });

test('SIGKILL of a gateway under load loses no authentication event of a connection the upstream answered', async (t) => {
  if (!needCommand(t, 'curl')) return;
  const port = await freePort();
  const gw = startGateway(port);
  await gw.summary;
  const audit = new AuditLog(fx.ca.db);
  const before = (await audit.list({ limit: 100_000 })).filter((e) => e.action === 'gateway.authenticated').length;
  let answered = 0;
  let killed = false;
  const clients = Array.from({ length: 6 }, async (_, c) => {
    for (let i = 0; !killed; i++) {
      // A new connection per request; a 200 from the echo upstream is an answer the gateway let through.
      const r = await runAsync('curl', ['-sS', '--max-time', '10', '--cacert', fx.caFile, '--cert', fx.clients.good.cert, '--key', fx.clients.good.key, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/load/${c}/${i}`]);
      if (r.stdout === '200') answered++;
    }
  });
  const end = Date.now() + 60_000;
  while (answered < 150 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  // A burst, and the kill as soon as part of it is answered: within the store's batch interval.
  const burstStart = answered;
  const burst = Array.from({ length: 30 }, (_, i) =>
    runAsync('curl', ['-sS', '--max-time', '10', '--cacert', fx.caFile, '--cert', fx.clients.good.cert, '--key', fx.clients.good.key, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/burst/${i}`]).then((r) => {
      if (r.stdout === '200') answered++;
    }),
  );
  while (answered < burstStart + 10 && Date.now() < end) await new Promise((r) => setImmediate(r));
  gw.child.kill('SIGKILL');
  await Promise.all(burst);
  await gw.exited;
  killed = true;
  await Promise.all(clients);
  assert.ok(answered >= 150, `load ran (${answered} answered)`);
  const storedAtKill = (await audit.list({ limit: 100_000 })).filter((e) => e.action === 'gateway.authenticated').length - before;

  // Started again: what the killed process spooled reaches the store first.
  const again = startGateway(port);
  await again.summary;
  await again.stop('SIGTERM');
  const events = (await audit.list({ limit: 100_000 })).filter((e) => e.action === 'gateway.authenticated' && e.actor === FACILITY_A);
  const ids = events.map((e) => e.details?.eventId);
  assert.equal(new Set(ids).size, ids.length, 'replay stored no event twice');
  assert.ok(events.length - before >= answered, `every answered connection has its authentication event (${events.length - before} events for ${answered} answered connections)`);
  assert.deepEqual((await audit.verify()).problems, [], 'the chain is intact');
  // The events the old in-memory batch lost: spooled, not yet stored when the process died.
  t.diagnostic(`answered ${answered}; stored at the kill ${storedAtKill}; stored after the restart's replay ${events.length - before}`);
});
