/**
 * The facility agent end to end with a software token: curl with no
 * certificate -> agent -> the real gateway -> an upstream that sees the
 * facility's identity; an HL7 MLLP link through the TCP gateway; renewal over
 * EST with a connection held open across it; a revoked certificate and a
 * locked token each said plainly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { FacilityAgent, parseAgentConfig, type AgentConfig } from './index.js';
import { isSekishoError } from '../errors/index.js';
import { certificatesFromPem } from '../pki/index.js';
import { listCredentials, openSoftwareToken } from '../token/index.js';
import { FACILITY_A, type ClientFiles } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, runAsync } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';
import { connectLocal, loadCredential, mllpExchange, startAgentCenter, type AgentCenter } from '../testing/agent-center.js';

const PIN = 'clinic-PIN-2468';
const SO_PIN = 'clinic-SO-13579';
const ready = hasCommand('curl') && hasCommand('openssl');
let center: AgentCenter;

before(async () => {
  if (!ready) return;
  center = await startAgentCenter();
});
after(async () => {
  if (ready) await center.close();
});

/** A software token in a fresh file holding `client`'s key and certificate under the label "facility". */
async function softwareToken(client: ClientFiles): Promise<string> {
  const file = join(tempDir('sekisho-agent-token-'), 'token.json');
  const m = openSoftwareToken(file);
  await m.initToken(0, { label: 'clinic', soPin: SO_PIN, userPin: PIN });
  const s = await m.openSession(0);
  await s.login('user', PIN);
  await loadCredential(s, client, 'facility', center.fx.ca.issuingDer);
  await m.close();
  return file;
}

function config(tokenFile: string, extra: Record<string, unknown> = {}): AgentConfig {
  return parseAgentConfig({
    center: { gateway: `127.0.0.1:${center.gatewayPort}`, tcp: `127.0.0.1:${center.tcpPort}`, serverName: 'localhost', rootThumbprint: center.thumbprint, root: center.rootFile, est: center.est.url },
    credential: { token: `software:${tokenFile}`, pin: { env: 'AGENT_TEST_PIN' } },
    listen: { httpProxy: '127.0.0.1:0', tcp: [{ listen: '127.0.0.1:0' }] },
    status: '127.0.0.1:0',
    ...extra,
  });
}

async function startAgent(cfg: AgentConfig, logs: Record<string, unknown>[] = [], pin = PIN) {
  return FacilityAgent.start(cfg, { env: { AGENT_TEST_PIN: pin }, log: (level, msg, fields) => logs.push({ level, msg, ...fields }), autoRenew: false });
}

/** curl with no client certificate of its own, through the agent's proxy. */
function viaProxy(agent: FacilityAgent, url: string, extra: string[] = []) {
  return runAsync('curl', ['-sS', '--max-time', '20', '-x', `http://127.0.0.1:${agent.port('listen.httpProxy')}`, '-D', '-', ...extra, url]);
}

const statusOf = (headersAndBody: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(headersAndBody)?.[1] ?? 0);

describe('agent with a software token', () => {
  let agent: FacilityAgent;
  let token = '';
  const logs: Record<string, unknown>[] = [];

  before(async () => {
    if (!ready) return;
    token = await softwareToken(center.fx.clients.good);
    agent = await startAgent(config(token), logs);
  });
  after(async () => {
    if (ready) await agent.stop();
  });

  test('curl without a certificate reaches the upstream through the agent, which sees the facility identity', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const r = await viaProxy(agent, `http://localhost:${center.gatewayPort}/hello?x=1`);
    assert.equal(statusOf(r.stdout), 200, r.stdout + r.stderr);
    const seen = (JSON.parse(r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4)) as { path: string; headers: Record<string, string> });
    assert.equal(seen.path, '/hello?x=1');
    assert.equal(seen.headers['x-sekisho-facility-number'], FACILITY_A);
    const leaf = certificatesFromPem(readFileSync(center.fx.clients.good.cert, 'utf8'))[0]!;
    assert.equal(seen.headers['x-sekisho-cert-sha256'], new X509Certificate(leaf).fingerprint256.replace(/:/g, '').toLowerCase());
    assert.equal(seen.headers['proxy-connection'], undefined, 'hop-by-hop headers are not passed on');
  });

  test('regression: not an open proxy — other hosts, other ports, CONNECT and origin-form requests are refused with a stable code', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const reached = center.http.seen.length;
    const other = await viaProxy(agent, `http://127.0.0.1:${center.http.port}/`);
    assert.equal(statusOf(other.stdout), 403);
    assert.match(other.stdout, /x-sekisho-agent-error: AGENT_DESTINATION_REFUSED/i);
    assert.match(other.stdout, /運営主体への通信だけ/);
    const elsewhere = await viaProxy(agent, 'http://example.com/');
    assert.equal(statusOf(elsewhere.stdout), 403);
    const ftp = await viaProxy(agent, `http://localhost:${center.gatewayPort + 1}/`);
    assert.equal(statusOf(ftp.stdout), 403, 'the center host on another port is another destination');
    const tunnel = await viaProxy(agent, `https://localhost:${center.gatewayPort}/`, ['--proxytunnel']);
    assert.notEqual(statusOf(tunnel.stdout), 200);
    assert.match(tunnel.stdout + tunnel.stderr, /405|AGENT_CONNECT_REFUSED/);
    const direct = await runAsync('curl', ['-sS', '--max-time', '10', '-D', '-', `http://127.0.0.1:${agent.port('listen.httpProxy')}/`]);
    assert.equal(statusOf(direct.stdout), 400);
    assert.match(direct.stdout, /AGENT_NOT_PROXY_REQUEST/);
    const refusals = agent.status().refusals as Record<string, number>;
    assert.ok(refusals.AGENT_DESTINATION_REFUSED! >= 3);
    assert.equal(refusals.AGENT_CONNECT_REFUSED, 1);
    assert.equal(refusals.AGENT_NOT_PROXY_REQUEST, 1);
    assert.equal(center.http.seen.length, reached, 'no refused request reached the upstream, directly or through the gateway');
  });

  test('an HL7 MLLP link through the local TCP forward and the TCP gateway carries the facility identity', async () => {
    const s = await connectLocal(agent.port('listen.tcp[0]'));
    try {
      const ack = await mllpExchange(s, 'MSG-1');
      assert.match(ack, new RegExp(`MSA\\|AA\\|MSG-1\\|from ${FACILITY_A}`));
      assert.equal(center.mllp.identities.at(-1)!.facilityNumber, FACILITY_A);
    } finally {
      s.destroy();
    }
  });

  test('regression: a web page cannot use the TCP forward cross-protocol — an HTTP POST whose body is an HL7 frame (what any page can make a browser send to a loopback port) is not carried to the center', async () => {
    const s = await connectLocal(agent.port('listen.tcp[0]'));
    const frame = `\x0bMSH|^~\\&|EVIL|A|CENTER|B|20261207||ADT^A01|FROM-A-PAGE|P|2.5\rPID|1||666\x1c\x0d`;
    let got = '';
    s.on('error', () => undefined);
    const closed = new Promise<void>((r) => {
      s.once('close', () => r());
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\x1c\x0d')) r();
      });
    });
    s.write(`POST / HTTP/1.1\r\nHost: 127.0.0.1:${agent.port('listen.tcp[0]')}\r\nContent-Type: text/plain\r\nContent-Length: ${frame.length}\r\n\r\n${frame}`);
    await closed;
    s.destroy();
    assert.doesNotMatch(got, /FROM-A-PAGE/, 'the center acknowledged a message a web page sent');
    assert.equal((agent.status().refusals as Record<string, number>).AGENT_HTTP_ON_TCP_FORWARD, 1);
  });

  test('regression: the same request split into small pieces ("PO", "ST / …") is still seen as HTTP and not carried', async () => {
    const s = await connectLocal(agent.port('listen.tcp[0]'));
    s.setNoDelay(true);
    s.on('error', () => undefined);
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    const before = (agent.status().refusals as Record<string, number>).AGENT_HTTP_ON_TCP_FORWARD ?? 0;
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    for (const piece of ['PO', 'ST', ' / HTTP/1.1\r\n', `Host: x\r\nContent-Length: 5\r\n\r\n\x0bMSH|`]) {
      if (s.destroyed) break;
      s.write(piece);
      await new Promise((r) => setTimeout(r, 50));
    }
    await closed;
    assert.equal(got, '', 'nothing came back from the center');
    assert.equal((agent.status().refusals as Record<string, number>).AGENT_HTTP_ON_TCP_FORWARD, before + 1);
  });

  test('regression: DNS rebinding — /status asked for under another host name (a web page whose name now resolves to 127.0.0.1) is refused', async () => {
    const port = agent.port('status');
    const get = (host: string) =>
      new Promise<number>((resolve, reject) => {
        httpGet({ host: '127.0.0.1', port, path: '/status', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
    assert.equal(await get(`evil.example:${port}`), 421);
    assert.equal(await get(`127.0.0.1.nip.io:${port}`), 421);
    assert.equal(await get(`127.0.0.1:${port}`), 200);
    assert.equal(await get(`localhost:${port}`), 200);
    assert.equal(await get(`[::1]:${port}`), 200);
  });

  test('/status and /metrics on loopback: certificate, connections, refusals by reason', async () => {
    const port = agent.port('status');
    const st = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { certificate: { subject: string; notAfter: string }; connections: { total: number }; refusals: Record<string, number> };
    assert.match(st.certificate.subject, new RegExp(FACILITY_A));
    assert.ok(Date.parse(st.certificate.notAfter) > Date.now());
    assert.ok(st.connections.total >= 1);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /^sekisho_agent_certificate_not_after_seconds \d+$/m);
    assert.match(metrics, /^sekisho_agent_connections_total \d+$/m);
    assert.ok(logs.some((l) => l.msg === 'agent started'));
    assert.ok(!JSON.stringify(logs).includes(PIN), 'the PIN never reaches the log');
  });
});

describe('renewal with a software token', () => {
  test('renews over EST inside the token: an open HL7 link keeps working, new connections use the new certificate, the old key is removed', async () => {
    const short = await center.shortLived();
    const token = await softwareToken(short);
    const logs: Record<string, unknown>[] = [];
    const agent = await startAgent(config(token, { renewal: { before: '30d', checkEvery: '1h' } }), logs);
    try {
      assert.ok(agent.renewal!.dueAt() < new Date(), 'a short-lived certificate is due');
      const held = await connectLocal(agent.port('listen.tcp[0]'));
      assert.match(await mllpExchange(held, 'BEFORE'), /MSA\|AA\|BEFORE/);
      const oldSerial = center.mllp.identities.at(-1)!.serial as string;
      assert.equal(oldSerial, short.serial);
      const presented = async () => {
        const r = await viaProxy(agent, `http://localhost:${center.gatewayPort}/which`);
        return (JSON.parse(r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> }).headers['x-sekisho-cert-sha256'];
      };
      const sha = (der: Buffer) => new X509Certificate(der).fingerprint256.replace(/:/g, '').toLowerCase();
      assert.equal(await presented(), sha(certificatesFromPem(readFileSync(short.cert, 'utf8'))[0]!));

      await agent.renewal!.check();
      const st = agent.status() as { certificate: { serial: string }; renewal: { last: { serial: string } | null; lastError: unknown } };
      assert.equal(st.renewal.lastError, null, JSON.stringify(logs.filter((l) => l.level === 'error')));
      assert.notEqual(st.certificate.serial, oldSerial);
      assert.equal(st.renewal.last!.serial, st.certificate.serial);

      // The connection opened before the switch still works.
      assert.match(await mllpExchange(held, 'DURING'), /MSA\|AA\|DURING/);
      held.destroy();
      // A new connection presents the new certificate.
      const fresh = await connectLocal(agent.port('listen.tcp[0]'));
      assert.match(await mllpExchange(fresh, 'AFTER'), /MSA\|AA\|AFTER/);
      fresh.destroy();
      assert.equal(center.mllp.identities.at(-1)!.serial, st.certificate.serial);
      // The token holds the new credential only.
      const m = openSoftwareToken(token);
      const s = await m.openSession(0);
      await s.login('user', PIN);
      const creds = await listCredentials(s, 'facility');
      await m.close();
      assert.deepEqual(creds.map((c) => c.certificate?.serial), [st.certificate.serial]);
      // Proxied requests (kept-alive pool) present the new certificate too.
      assert.equal(await presented(), sha(creds[0]!.certificate!.der));
      assert.ok(logs.some((l) => l.msg === 'the renewed certificate works; the old key and certificate were removed from the token'));
    } finally {
      await agent.stop();
    }
  });
});

describe('what the agent says when it cannot work', () => {
  test('a revoked certificate: the center refuses it and the agent says CERT_REVOKED in Japanese and English', async (t) => {
    if (!needCommand(t, 'curl')) return;
    const token = await softwareToken(center.fx.clients.revoked);
    const logs: Record<string, unknown>[] = [];
    const agent = await startAgent(config(token), logs);
    try {
      const r = await viaProxy(agent, `http://localhost:${center.gatewayPort}/`);
      assert.equal(statusOf(r.stdout), 403);
      assert.match(r.stdout, /x-sekisho-refusal: REVOKED/i);
      const said = logs.find((l) => l.code === 'CERT_REVOKED');
      assert.ok(said, JSON.stringify(logs));
      assert.match(String(said.message), /revoked/);
      assert.match(String(said.ja), /失効/);
      assert.equal((agent.status().refusals as Record<string, number>).CERT_REVOKED, 1);
    } finally {
      await agent.stop();
    }
  });

  test('regression: a wrong PIN stops the agent after one try (no retry loop burning the counter); a locked token is not tried at all', async () => {
    const token = await softwareToken(center.fx.clients.good);
    const counter = async () => (await openSoftwareToken(token).tokenInfo(0)).userPinFailures;
    await assert.rejects(startAgent(config(token), [], 'wrong-PIN-000'), (e: unknown) => isSekishoError(e) && e.code === 'PIN_WRONG' && /2 tries left/.test(e.message) && Boolean(e.ja));
    assert.equal(await counter(), 1, 'one start, one try');
    await assert.rejects(startAgent(config(token), [], 'wrong-PIN-000'), (e: unknown) => isSekishoError(e) && e.code === 'PIN_WRONG');
    await assert.rejects(startAgent(config(token), [], 'wrong-PIN-000'), (e: unknown) => isSekishoError(e) && e.code === 'PIN_LOCKED');
    assert.equal(await counter(), 3);
    // Locked: even the right PIN is not tried, and the agent says so in both languages.
    await assert.rejects(startAgent(config(token), [], PIN), (e: unknown) => isSekishoError(e) && e.code === 'PIN_LOCKED' && /stops and will not try again/.test(e.message) && /ロック/.test(e.ja ?? ''));
    assert.equal(await counter(), 3, 'the locked token was not tried');
  });

  test('listen.allowUsers: a local account not named there is refused (AGENT_USER_REFUSED) on the proxy and the TCP forward; a named one is served', async (t) => {
    if (!needCommand(t, 'curl') || process.platform !== 'linux') return;
    const token = await softwareToken(center.fx.clients.good);
    const others = await startAgent(config(token, { listen: { httpProxy: '127.0.0.1:0', tcp: [{ listen: '127.0.0.1:0' }], allowUsers: [process.getuid!() === 65534 ? 65533 : 65534] } }));
    try {
      const r = await viaProxy(others, `http://localhost:${center.gatewayPort}/`);
      assert.equal(statusOf(r.stdout), 403);
      assert.match(r.stdout, /x-sekisho-agent-error: AGENT_USER_REFUSED/i);
      const s = await connectLocal(others.port('listen.tcp[0]'));
      await new Promise((resolve) => s.once('close', resolve));
      assert.equal((others.status().refusals as Record<string, number>).AGENT_USER_REFUSED, 2);
    } finally {
      await others.stop();
    }
    const me = await startAgent(config(token, { listen: { httpProxy: '127.0.0.1:0', allowUsers: [process.getuid!()] } }));
    try {
      assert.equal(statusOf((await viaProxy(me, `http://localhost:${center.gatewayPort}/`)).stdout), 200);
    } finally {
      await me.stop();
    }
  });

  const untrusted: [string, (cfg: AgentConfig) => void][] = [
    ['the center presents a certificate for another name', (cfg) => (cfg.center.serverName = 'gw.elsewhere.example')],
    [
      'the pinned root is another CA (the gateway does not chain to it)',
      (cfg) => {
        cfg.center.root = join(center.fx.dir, 'unknown-ca.pem');
        cfg.center.rootThumbprint = createHash('sha256').update(certificatesFromPem(readFileSync(cfg.center.root, 'utf8'))[0]!).digest('hex');
      },
    ],
  ];
  for (const [name, change] of untrusted) {
    test(`AGENT_CENTER_UNTRUSTED when ${name}: nothing is sent, the application is told in both languages`, async (t) => {
      if (!needCommand(t, 'curl')) return;
      const token = await softwareToken(center.fx.clients.good);
      const cfg = config(token);
      change(cfg);
      const reached = center.http.seen.length;
      const agent = await startAgent(cfg);
      try {
        const r = await viaProxy(agent, `http://127.0.0.1:${center.gatewayPort}/secret`);
        assert.equal(statusOf(r.stdout), 502, r.stdout);
        assert.match(r.stdout, /x-sekisho-agent-error: AGENT_CENTER_UNTRUSTED/i);
        assert.match(r.stdout, /信頼できません/);
        assert.equal(center.http.seen.length, reached);
      } finally {
        await agent.stop();
      }
    });
  }

  test('a root file whose thumbprint is not the one on the letter is refused at start', async () => {
    const token = await softwareToken(center.fx.clients.good);
    const cfg = config(token);
    cfg.center.rootThumbprint = '00'.repeat(32);
    await assert.rejects(startAgent(cfg), (e: unknown) => isSekishoError(e) && e.code === 'AGENT_ROOT_MISMATCH' && Boolean(e.ja));
  });
});
