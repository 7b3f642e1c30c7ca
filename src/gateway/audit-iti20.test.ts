/**
 * IHE ITI-20 end to end: a gateway configured with an audit collector and no
 * format of its own sends each authentication, accepted or refused, as a
 * DICOM audit message (PS3.15 A.5) in an RFC 5424 frame over mutual TLS
 * (RFC 5425) to a real rsyslog, and every message rsyslog wrote validates
 * under the DICOM audit message schema.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { certificateToPem } from '../pki/index.js';
import { echoUpstream, FACILITY_A, gatewayFixture, PASSPHRASE, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, run } from '../testing/peers.js';
import { rsyslogCollector, type Rsyslog } from '../testing/rsyslog.js';
import { tempDir } from '../testing/stores.js';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from './index.js';

const SCHEMA = new URL('../../../src/audit/fixtures/dicom-audit-message.rnc', import.meta.url).pathname;
const ready = hasCommand('rsyslogd');
let fx: GatewayFixture;
let http: Awaited<ReturnType<typeof echoUpstream>>;
let rs: Rsyslog;
let setup: GatewaySetup;
let port: number;

before(async () => {
  if (!ready) return;
  fx = await gatewayFixture();
  http = await echoUpstream();
  const dir = tempDir('sekisho-iti20-');
  const issued = await fx.ca.issueWithNewKey({ via: 'test', actor: 'test', keyType: 'ecdsa-p256', profile: 'server', hosts: ['127.0.0.1', 'localhost'] });
  const cert = join(dir, 'rsyslog.pem');
  const key = join(dir, 'rsyslog.key');
  writeFileSync(cert, certificateToPem(issued.der) + certificateToPem(fx.ca.chain()[0]!));
  writeFileSync(key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  rs = await rsyslogCollector(dir, { cert, key, ca: fx.caFile });
  await rs.start();
  const cfg = parseGatewayConfig({
    home: fx.home,
    audit: { collectors: [{ url: `tls://127.0.0.1:${rs.tcpPort}`, cert: fx.clients.device.cert, key: fx.clients.device.key, ca: fx.caFile }] },
    listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } }] }],
  });
  setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('error', () => undefined), watch: false });
  port = setup.gateway.addresses().find((a) => a.name === 'web')!.port;
});

after(async () => {
  if (!ready) return;
  await setup.close(1000);
  await rs.stop();
  http.server.close();
  await fx.close();
});

function get(client: { cert: string; key: string }): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', servername: 'localhost', ca: readFileSync(fx.caFile), cert: readFileSync(client.cert), key: readFileSync(client.key), agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

test('a gateway with a collector sends ITI-20 messages (DICOM audit XML in RFC 5424 over mutual TLS) that rsyslog receives and the DICOM schema accepts', async (t) => {
  if (!needCommand(t, 'rsyslogd') || !needCommand(t, 'jing')) return;
  assert.equal(await get(fx.clients.good), 200);
  assert.equal(await get(fx.clients.revoked), 403);
  const frames = () => rs.lines().filter((l) => l.startsWith('imtcp ') && l.includes('IHE+RFC-3881'));
  const end = Date.now() + 60_000;
  while (!(frames().some((l) => l.includes('110122')) && frames().some((l) => l.includes('110126')))) {
    assert.ok(Date.now() < end, `rsyslog did not receive both messages: ${rs.lines().slice(-3).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const dir = tempDir('sekisho-iti20-xml-');
  const files = frames().map((line, i) => {
    // rsyslog's %rawmsg%: "<85>1 TIMESTAMP HOST sekisho PID IHE+RFC-3881 - " then the BOM and the XML.
    assert.match(line, /^imtcp <85>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ sekisho \d+ IHE\+RFC-3881 - /);
    // rsyslog stores control characters escaped as #ooo (octal): the XML's line breaks come back as #012.
    const xml = line.slice(line.indexOf('<?xml')).replace(/#([0-3][0-7]{2})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const file = join(dir, `${i}.xml`);
    writeFileSync(file, xml);
    return file;
  });
  const v = run('jing', ['-c', SCHEMA, ...files]);
  assert.equal(v.status, 0, `jing: ${v.stdout}${v.stderr}`);
  const all = frames().join('\n');
  assert.match(all, /<EventID csd-code="110114"[^>]*>|EventID[^>]*csd-code="110114"/, 'the accepted connection is a User Authentication (Login)');
  assert.match(all, /110113/, 'the refused one a Security Alert (Node Authentication)');
  assert.ok(all.includes(FACILITY_A), 'the facility is named');
  assert.ok(all.includes(fx.clients.good.serial!), 'and the certificate');
});
