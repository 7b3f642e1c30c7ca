/**
 * A gateway on the embedded store (SQLite) shares its database file with the
 * CA's processes: `sekisho serve`, a `cert bulk` run, an operator's CLI.
 * SQLite lets one writer at a time; better-sqlite3 waits for the lock on the
 * calling thread. Regression: the gateway waited synchronously (busy_timeout,
 * up to 10 s) when its audit writer found the write lock held by another
 * process, so for as long as that process held it no handshake was answered
 * and no request relayed, by any listener. The gateway must keep serving; its
 * audit events wait in the spool and reach the store once the lock is free.
 *
 * The other writer is a real second process holding `BEGIN IMMEDIATE`; the
 * clinic is Node's TLS client.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { CertificateAuthority, initAuthority } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { askGateway, FACILITY_A as FACILITY, homeGateway, issueClient, type Client } from '../testing/gateway-fixture.js';
import { tempDir } from '../testing/stores.js';

const PASSPHRASE = 'store-lock-passphrase';

/** A second process that takes the store's write lock and holds it for `ms`; resolves once the lock is held. */
async function holdWriteLock(file: string, ms: number): Promise<{ child: ChildProcess; released: Promise<void> }> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const script = `const D = require(${JSON.stringify(sqlite)}); const db = new D(${JSON.stringify(file)}); db.exec('BEGIN IMMEDIATE'); process.stdout.write('held\\n'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${ms});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const released = new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the lock holder exited with ${code}`)))));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the lock holder exited with ${code} before taking the lock`)));
  });
  return { child, released };
}

describe('a gateway on SQLite keeps serving while another process holds the store write lock', () => {
  let home: string;
  let ca: CertificateAuthority;
  let gateway: Awaited<ReturnType<typeof homeGateway>>;
  let port = 0;
  let caPem = '';
  let client: Client;

  before(async () => {
    home = join(tempDir('sekisho-lock-'), 'home');
    await initAuthority({ home, passphrase: PASSPHRASE });
    ca = await CertificateAuthority.open({ home });
    await ca.unlock(PASSPHRASE);
    await ca.addFacility({ number: FACILITY, name: 'はこだて内科クリニック' }, 'test');
    client = await issueClient(ca, FACILITY);
    caPem = ca.chain().map(certificateToPem).join('');
    await ca.close();
    gateway = await homeGateway(home, PASSPHRASE);
    port = gateway.port;
  });

  after(async () => {
    await gateway?.close();
  });

  /** One request on a new connection (a full handshake): its status and how long it took. */
  const ask = () => askGateway({ port, caPem, client, timeoutMs: 20_000 });

  const auditedConnections = async (): Promise<number> => {
    const reader = await CertificateAuthority.open({ home });
    try {
      return (await reader.audit.search({ action: 'gateway.authenticated', limit: 10_000 })).filter((e) => e.outcome === 'success').length;
    } finally {
      await reader.close();
    }
  };

  test('connections during a 4 s write lock held by another process are answered while it is held, and their audit events are stored after it', async (t) => {
    assert.equal((await ask()).status, 200);
    const before = await auditedConnections();
    const holder = await holdWriteLock(join(home, 'sekisho.db'), 4000);
    let lockHeld = true;
    void holder.released.finally(() => (lockHeld = false));
    // While the lock is held: connections one after another, each a full handshake and a relayed request; each one's
    // authentication event is spooled and the audit writer tries the store (every 200 ms here) meanwhile.
    const during: number[] = [];
    const until = performance.now() + 3000;
    while (performance.now() < until && lockHeld) {
      const r = await ask();
      assert.equal(r.status, 200);
      during.push(r.ms);
    }
    t.diagnostic(`${during.length} connections while the lock was held; slowest ${Math.round(Math.max(...during))} ms`);
    // A loaded machine answers a handshake in well under a second; a gateway waiting on the lock answers once it is released.
    assert.ok(Math.max(...during) < 1500, `a request took ${Math.round(Math.max(...during))} ms while another process held the write lock`);
    assert.ok(during.length >= 5, `only ${during.length} requests were answered in 3 s while the lock was held`);
    assert.ok(lockHeld, 'the lock was released before the requests ended (the test would prove nothing)');
    await holder.released;
    // Every connection's authentication event reaches the trail once the lock is free.
    const expected = before + during.length;
    const deadline = Date.now() + 20_000;
    let stored = await auditedConnections();
    while (stored < expected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      stored = await auditedConnections();
    }
    assert.ok(stored >= expected, `${stored - before} of the ${during.length} connections made while the lock was held were audited in the store`);
  });
});
