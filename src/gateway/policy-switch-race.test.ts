/**
 * A handshake that straddles a policy switch: its ClientHello reaches the
 * gateway under the exception profile (TLS 1.1 allowed, so TLS 1.1 is
 * negotiated), the switch to `high` comes while the client's second flight
 * is held back, then the handshake completes. The switch's sweep of open
 * connections cannot see it (it is not open yet) and the verifier judges
 * only the certificate, so without a check at the decision the connection
 * would run on TLS 1.1 under `high` for as long as it liked. Defect: a
 * client could slip in during a switch with the old profile's context.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';
import { gatewayFixture, mllpUpstream, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';

const SWITCH = new Date('2030-01-01T00:00:00+09:00');
let fx: GatewayFixture;
let setup: GatewaySetup;
let mllp: Awaited<ReturnType<typeof mllpUpstream>>;
const logs: Record<string, unknown>[] = [];
let offsetMs = 0;
let tcpPort = 0;

before(async () => {
  fx = await gatewayFixture();
  mllp = await mllpUpstream();
  const cfg = parseGatewayConfig({
    home: fx.home,
    schedule: [{ profile: 'exception' }, { from: '2030-01-01', profile: 'high' }],
    listeners: [{ name: 'hl7', mode: 'tcp', listen: '127.0.0.1:0', upstream: `tcp://127.0.0.1:${mllp.port}`, proxyProtocol: true, allow: { anyone: true } }],
  });
  setup = await openGateway(cfg, {
    passphrase: async () => PASSPHRASE,
    log: jsonLogger('info', (l) => logs.push(JSON.parse(l) as Record<string, unknown>)),
    watch: false,
    policyClock: () => new Date(Date.now() + offsetMs),
  });
  tcpPort = setup.gateway.addresses().find((a) => a.name === 'hl7')!.port;
});

after(async () => {
  await setup?.close(1000);
  mllp?.server.close();
  await fx?.close();
});

/** A relay that passes the client's first chunk (its ClientHello) and holds everything after it until released. */
async function holdingRelay(): Promise<{ server: Server; port: number; held: () => number; release: () => void }> {
  const held: Buffer[] = [];
  let released = false;
  let up: Socket | undefined;
  const server = createServer((down) => {
    up = netConnect({ host: '127.0.0.1', port: tcpPort });
    up.on('data', (d) => down.write(d));
    up.on('close', () => down.destroy());
    up.on('error', () => down.destroy());
    down.on('error', () => up?.destroy());
    down.on('close', () => up?.destroy());
    let first = true;
    down.on('data', (d) => {
      if (first || released) up!.write(d);
      else held.push(d);
      first = false;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    held: () => held.length,
    release: () => {
      released = true;
      for (const d of held.splice(0)) up!.write(d);
    },
  };
}

test('a TLS 1.1 handshake begun before the switch to high and finished after it is refused (POLICY_CHANGED), not let in', async () => {
  const relay = await holdingRelay();
  const socket = tlsConnect({ host: '127.0.0.1', port: relay.port, servername: 'localhost', ca: readFileSync(fx.caFile), cert: readFileSync(fx.clients.good.cert), key: readFileSync(fx.clients.good.key), minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  let acked = '';
  const ack = new Promise<void>((r) =>
    socket.on('data', (d: Buffer) => {
      acked += d.toString();
      if (acked.includes('\x1c\x0d')) r();
    }),
  );
  // The client has the gateway's flight (negotiated under the exception profile) and its answer is held.
  for (let i = 0; i < 600 && relay.held() === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(relay.held() > 0, 'the client answered the server flight');

  offsetMs = SWITCH.getTime() - Date.now() + 1000;
  assert.equal(setup.policy.check(), true, 'the schedule moved');
  relay.release();
  socket.once('secureConnect', () => socket.write(`\x0bMSH|^~\\&|CLINIC|A|CENTER|S|20300101000000||ADT^A01|LATE|P|2.5\x1c\x0d`));
  await Promise.race([closed, ack]);
  socket.destroy();
  relay.server.close();
  assert.doesNotMatch(acked, /MSA\|AA\|LATE/, 'the late TLS 1.1 connection reached the upstream');
  const refused = logs.find((l) => (l.msg ?? l.message) === 'client refused' && l.reason === 'POLICY_CHANGED');
  assert.ok(refused, JSON.stringify(logs.slice(-5)));
  assert.match(String(refused.detail), /PROTOCOL_TOO_OLD/);
});
