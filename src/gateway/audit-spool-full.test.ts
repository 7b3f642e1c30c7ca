/**
 * A gateway whose audit spool is full fails closed: a connection whose
 * authentication cannot be recorded never reaches the upstream; the client
 * is told why (AUDIT_SPOOL_FULL) and the refusals are counted in the metrics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { echoUpstream, gatewayFixture, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';
import { placeholderSyslogLine } from '../testing/rsyslog.js';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';

let fx: GatewayFixture;
let http: Awaited<ReturnType<typeof echoUpstream>>;
let setup: GatewaySetup;
let port: number;
const logs: Record<string, unknown>[] = [];
const refusing = createServer((s) => s.destroy()); // a collector that refuses everything

before(async () => {
  fx = await gatewayFixture();
  http = await echoUpstream();
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
  const collector = `tls://127.0.0.1:${(refusing.address() as { port: number }).port}`;
  const cfg = parseGatewayConfig({
    home: fx.home,
    audit: { collectors: [{ url: collector, cert: fx.clients.device.cert, key: fx.clients.device.key, ca: fx.caFile }], spool: { maxBytes: 65_536, segmentBytes: 8192, highWater: 0.5 } },
    listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } }] }],
  });
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('info', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)), watch: false, auditFormat: placeholderSyslogLine });
  port = setup.gateway.addresses().find((a) => a.name === 'web')!.port;
});

after(async () => {
  await setup.close(1000);
  refusing.close();
  http.server.close();
  await fx.close();
});

function get(path: string): Promise<{ status: number; refusal: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, servername: 'localhost', ca: readFileSync(fx.caFile), cert: readFileSync(fx.clients.good.cert), key: readFileSync(fx.clients.good.key), agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, refusal: res.headers['x-sekisho-refusal'] as string | undefined }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('a full audit spool: connections are refused with AUDIT_SPOOL_FULL before the upstream, after the high-water alarm, and counted', async () => {
  const seenBefore = http.seen.length;
  let answered = 0;
  let refusal: { status: number; refusal: string | undefined } | undefined;
  for (let i = 0; i < 2000 && !refusal; i++) {
    const r = await get(`/fill/${i}`);
    if (r.status === 200) answered++;
    else refusal = r;
  }
  assert.ok(refusal, 'the spool filled up');
  assert.equal(refusal.refusal, 'AUDIT_SPOOL_FULL');
  assert.equal(http.seen.length - seenBefore, answered, 'the refused connection never reached the upstream');
  assert.ok(logs.some((l) => /high-water/.test(String(l.msg))), 'the high-water alarm was logged before');
  const status = setup.gateway.status() as { audit: { refused: number; alarm: { refused: number } } };
  assert.ok(status.audit.refused >= 1 && status.audit.alarm.refused >= 1, 'the refusal is counted, not silent');
});
