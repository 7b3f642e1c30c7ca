/**
 * Many gateways, one truth: three gateway processes (the CLI, apart from the
 * CA: no CA home, no CA key; a server certificate, trust anchors and the
 * database URL of their own database role) and one CA on one PostgreSQL
 * database. A revocation reaches all three by NOTIFY; gateways cut from the
 * database catch up when it is back; the audit trail the three write at
 * once verifies as one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { CertificateAuthority, initAuthority, issueServerCredential } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { applyRole } from '../store/index.js';
import { echoUpstream, facilityNumber, type ClientFiles } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, needPeer, run, runAsync } from '../testing/peers.js';
import { SEKISHO_MAIN, startSekisho, type RunningSekisho } from '../testing/cli-process.js';
import { STORE_TARGETS, tempDir, testRole } from '../testing/stores.js';

const postgres = STORE_TARGETS.find((t) => t.name === 'postgres')!;
const ready = postgres.available && hasCommand('curl');
const PASSPHRASE = 'fleet-passphrase';
const FACILITY = facilityNumber('011011371');

interface Summary {
  listeners: { port: number }[];
  admin: { port: number };
}

interface Gw {
  run: RunningSekisho<Summary>;
  port: number;
  admin: number;
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function sql(url: string, text: string, params: unknown[] = []): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text, params);
  } finally {
    await c.end();
  }
}

describe('a fleet of gateways on one PostgreSQL database', () => {
  let dir: string;
  let url: string;
  let ca: CertificateAuthority;
  let role: Awaited<ReturnType<typeof testRole>>;
  let upstream: Awaited<ReturnType<typeof echoUpstream>>;
  let caFile: string;
  const clients: ClientFiles[] = [];
  const gateways: Gw[] = [];

  /** The gateway's view: the serials it knows revoked (from /status). */
  const revokedSeen = async (g: Gw): Promise<number> => {
    const s = (await (await fetch(`http://127.0.0.1:${g.admin}/status`)).json()) as { revocation: { entries: number }[] };
    return s.revocation[0]!.entries;
  };
  const curl = (g: Gw, c: ClientFiles) =>
    runAsync('curl', ['-sS', '--max-time', '10', '--cacert', caFile, '--cert', c.cert, '--key', c.key, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${g.port}/hello`]);

  before(async () => {
    if (!ready) return;
    dir = tempDir('sekisho-fleet-');
    url = (await postgres.fresh())!;
    // The CA host: home and keys, the database.
    const home = join(dir, 'ca-home');
    await initAuthority({ home, passphrase: PASSPHRASE, db: url });
    ca = await CertificateAuthority.open({ home, db: url });
    await ca.unlock(PASSPHRASE);
    await ca.addFacility({ number: FACILITY, name: 'はこだて内科クリニック' }, 'test');
    for (let i = 0; i < 3; i++) {
      const issued = await ca.issueWithNewKey({ via: 'test', actor: 'test', keyType: 'ecdsa-p256', profile: 'facility', facilityNumber: FACILITY });
      const cert = join(dir, `client-${i}.pem`);
      const key = join(dir, `client-${i}.key`);
      writeFileSync(cert, certificateToPem(issued.der) + certificateToPem(ca.chain()[0]!));
      writeFileSync(key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
      clients.push({ cert, key, serial: issued.serial });
    }
    caFile = join(dir, 'ca-chain.pem');
    writeFileSync(caFile, ca.chain().map(certificateToPem).join(''));
    // What a gateway host is given: its server certificate and key, the trust anchors, a database role.
    const server = await issueServerCredential(ca, ['localhost', '127.0.0.1'], 'test');
    const gwDir = join(dir, 'gateway-host');
    run('mkdir', ['-p', gwDir]);
    copyFileSync(server.cert, join(gwDir, 'server.pem'));
    copyFileSync(server.key, join(gwDir, 'server.key'));
    role = await testRole(url);
    await applyRole(ca.db, 'gateway', role.role);
    upstream = await echoUpstream();
    const env = { ...process.env };
    delete env.SEKISHO_PASSPHRASE;
    // The third fails closed after 2 s without the feed; the others keep the default 30 s.
    const started = [0, 1, 2].map((i) =>
      startSekisho<Summary>(
        ['gateway', '--cert', join(gwDir, 'server.pem'), '--key', join(gwDir, 'server.key'), '--client-ca', caFile, '--db', role.url, '--state-dir', join(dir, `gw-${i}`), '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${upstream.port}`, '--admin', '127.0.0.1:0', '--log-level', 'warn', '--json', ...(i === 2 ? ['--stale-after', '2'] : [])],
        { env },
      ),
    );
    for (const r of started) {
      const s = await r.summary;
      gateways.push({ run: r, port: s.listeners[0]!.port, admin: s.admin.port });
    }
  });

  after(async () => {
    if (!ready) return;
    await Promise.all(gateways.map((g) => Promise.race([g.run.stop('SIGKILL'), new Promise((r) => setTimeout(r, 5000))])));
    upstream?.server.close();
    await ca?.close();
    await role?.drop();
  });

  test('a revocation reaches all three gateways within 2 s (NOTIFY at commit, each reads from its cursor)', async (t) => {
    if (!needCommand(t, 'curl') || !needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    for (const g of gateways) assert.equal((await curl(g, clients[0]!)).stdout, '200', g.run.stderr());
    const before = await Promise.all(gateways.map(revokedSeen));
    await ca.revoke(clients[0]!.serial!, 'keyCompromise', 'test');
    await until('every gateway knows the revocation', async () => (await Promise.all(gateways.map(revokedSeen))).every((n, i) => n > before[i]!), 2000);
    for (const g of gateways) assert.notEqual((await curl(g, clients[0]!)).stdout, '200', 'the revoked certificate is refused');
    const status = (await (await fetch(`http://127.0.0.1:${gateways[0]!.admin}/status`)).json()) as { revocation: { feed: { mode: string } }[] };
    assert.equal(status.revocation[0]!.feed.mode, 'push');
  });

  test('regression: gateways cut from the database (pg_terminate_backend) keep their last set, then catch up on a revocation made while cut', async (t) => {
    if (!needCommand(t, 'curl') || !needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    const victim = clients[1]!;
    const before = await Promise.all(gateways.map(revokedSeen));
    await sql(url, `ALTER ROLE ${role.role} NOLOGIN`);
    try {
      await sql(url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role.role]);
      await ca.revoke(victim.serial!, 'keyCompromise', 'test');
      // Cut: still serving with the last known set (the one revoked before stays refused, the others let in)…
      assert.notEqual((await curl(gateways[0]!, clients[0]!)).stdout, '200');
      assert.equal((await curl(gateways[0]!, clients[2]!)).stdout, '200', gateways[0]!.run.stderr());
      // …until --stale-after: the fail-closed one (2 s) then refuses everyone, and says so on /healthz.
      const fc = gateways[2]!;
      await until('the fail-closed gateway alarms', async () => (await fetch(`http://127.0.0.1:${fc.admin}/healthz`)).status === 503, 30_000);
      const st = (await (await fetch(`http://127.0.0.1:${fc.admin}/status`)).json()) as { revocationUsable: boolean; revocation: { stale: boolean }[] };
      assert.deepEqual([st.revocationUsable, st.revocation[0]!.stale], [false, true]);
      assert.equal((await curl(fc, clients[2]!)).stdout, '403', 'a good certificate is refused (REVOCATION_UNAVAILABLE page)');
      assert.match(await (await fetch(`http://127.0.0.1:${fc.admin}/metrics`)).text(), /sekisho_gateway_revocation_stale\{source="store"\} 1/);
    } finally {
      await sql(url, `ALTER ROLE ${role.role} LOGIN`);
    }
    await until('every gateway catches up', async () => (await Promise.all(gateways.map(revokedSeen))).every((n, i) => n > before[i]!), 30_000);
    for (const g of gateways) assert.notEqual((await curl(g, victim)).stdout, '200', 'the certificate revoked while cut is refused');
    const fc = gateways[2]!;
    await until('the fail-closed gateway is usable again', async () => (await fetch(`http://127.0.0.1:${fc.admin}/healthz`)).status === 200, 30_000).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(await (await fetch(`http://127.0.0.1:${fc.admin}/status`)).json())}`);
    });
    assert.equal((await curl(fc, clients[2]!)).stdout, '200', 'and lets a good certificate in again');
  });

  test('the audit trail three gateways write at once verifies as a whole (sekisho audit verify)', async (t) => {
    if (!needCommand(t, 'curl') || !needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    const good = clients[2]!;
    const codes = await Promise.all(gateways.flatMap((g) => Array.from({ length: 4 }, () => curl(g, good))));
    assert.deepEqual(codes.map((c) => c.stdout), Array(12).fill('200'), gateways.map((g) => g.run.stderr().split('\n').filter((l) => /refused/.test(l)).slice(-3).join('\n')).join('\n'));
    // A stopped gateway has written what it spooled.
    for (const g of gateways) assert.equal(await g.run.stop('SIGTERM'), 0, g.run.stderr());
    await ca.checkpoint();
    const r = run(process.execPath, [SEKISHO_MAIN, 'audit', 'verify', '--home', join(dir, 'ca-home'), '--db', url, '--json']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { status: string; chains: { writer: string; events: number }[] };
    assert.equal(report.status, 'intact');
    const gw = report.chains.filter((c) => c.writer !== 'ca');
    assert.equal(gw.length, 3, 'a chain per gateway');
    for (const c of gw) assert.ok(c.events >= 4, `${c.writer}: its sessions are in its chain`);
    // The fail-closed refusal of the cut is in the trail, with its stable code.
    const refused = await ca.db.all<{ reason_code: string }>("SELECT reason_code FROM audit_events WHERE action = 'gateway.refused' AND reason_code = 'REVOCATION_UNAVAILABLE'");
    assert.ok(refused.length >= 1, 'REVOCATION_UNAVAILABLE refusal audited');
  });
});
