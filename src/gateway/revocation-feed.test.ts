/**
 * Revocations and facility status reach a running gateway through the store's
 * change sequence, whatever the clocks say. Regression: a `cert revoke` or
 * `facility suspend` run on a host whose clock was 60 s behind the gateway's
 * was never applied (the gateway polled rows time-stamped within 30 s of its
 * own clock), while the store and OCSP already said revoked; a second revoke
 * was refused, so the operator could not even retry.
 *
 * The revoking host is a real `sekisho` CLI process under faketime against
 * the same home, on SQLite and on PostgreSQL; the gateway is a real one with
 * Node's TLS client as the clinic.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { CertificateAuthority, initAuthority } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { StatusFeedRepository, type StatusFeedReader } from '../store/index.js';
import { askGateway, FACILITY_A, FACILITY_B, FACILITY_C, homeGateway, issueClient, type Client } from '../testing/gateway-fixture.js';
import { SEKISHO_MAIN } from '../testing/cli-process.js';
import { needCommand, runAsync } from '../testing/peers.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { serialKey, StoreFacilityDirectory, StoreRevocationSource, StoreStatusFeed } from './index.js';

const PASSPHRASE = 'revocation-feed-passphrase';

/** Polls until `check` holds (the machine is loaded: no assertion on elapsed time, only a generous limit). */
async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const end = Date.now() + limitMs;
  for (;;) {
    // A request in flight when the gateway cuts the facility's connections ends with a reset: not yet the answer, ask again.
    let last: unknown;
    const ok = await Promise.resolve()
      .then(check)
      .catch((e: unknown) => ((last = e), false));
    if (ok) return;
    if (Date.now() > end) assert.fail(`not within ${limitMs / 1000} s: ${what}${last ? ` (last: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const target of STORE_TARGETS) {
  describe(`the gateway follows revocations and facility status on ${target.name}, whatever the clocks say`, { skip: !target.available && 'no PostgreSQL (set SEKISHO_TEST_POSTGRES_URL)' }, () => {
    let home: string;
    let ca: CertificateAuthority;
    let gateway: Awaited<ReturnType<typeof homeGateway>>;
    let port = 0;
    let caPem = '';

    before(async () => {
      home = join(tempDir('sekisho-feed-'), 'home');
      const db = await target.fresh();
      await initAuthority({ home, passphrase: PASSPHRASE, ...(db ? { db } : {}) });
      ca = await CertificateAuthority.open({ home });
      await ca.unlock(PASSPHRASE);
      for (const [n, name] of [[FACILITY_A, 'はこだて内科クリニック'], [FACILITY_B, '東京薬局'], [FACILITY_C, '大阪病院']] as const) await ca.addFacility({ number: n, name }, 'test');
      caPem = ca.chain().map(certificateToPem).join('');
      gateway = await homeGateway(home, PASSPHRASE);
      port = gateway.port;
    });

    after(async () => {
      await gateway?.close();
      await ca?.close();
    });

    /** One request as the clinic: the status, and the gateway's refusal reason if it refused. */
    const ask = (c: Client) => askGateway({ port, caPem, client: c, timeoutMs: 10_000 });

    /** A live TLS connection of the client, resolving `closed` when the gateway cuts it. */
    async function live(c: Client): Promise<{ socket: TLSSocket; closed: Promise<void> }> {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem, cert: c.cert, key: c.key });
      socket.on('error', () => undefined);
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      await new Promise((r) => socket.once('secureConnect', r));
      socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      assert.match(await new Promise<string>((r) => socket.once('data', (d: Buffer) => r(d.toString()))), /^HTTP\/1.1 200/);
      return { socket, closed };
    }

    /** `sekisho …` on the same home, as an operator runs it on a host whose clock is `skew` off (faketime). */
    async function sekishoSkewed(skew: string, args: string[]): Promise<unknown> {
      const r = await runAsync('faketime', ['-f', skew, process.execPath, SEKISHO_MAIN, ...args, '--home', home, '--json'], { timeoutMs: 60_000 });
      assert.equal(r.status, 0, `sekisho ${args.join(' ')} under faketime ${skew}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    }

    for (const skew of ['-60s', '+60s']) {
      test(`a cert revoke run on a host ${skew.slice(1)} ${skew.startsWith('-') ? 'behind' : 'ahead of'} the gateway is refused within seconds, and its live connection is cut (regression: a revocation from a host 60 s behind was never applied)`, async (t) => {
        if (!needCommand(t, 'faketime')) return;
        const client = await issueClient(ca, FACILITY_A);
        // Twice in CI runs (never locally, nor in loops beside other gateway tests under load) the first request of the
        // second of these tests got no answer within 10 s; the cause is not found. It is reported with the gateway's
        // state, and the fresh certificate is then asked for again: this test is about the revocation that follows.
        const first = await ask(client).catch((e: unknown) => e as Error);
        if (first instanceof Error) {
          t.diagnostic(`the first request with a fresh certificate failed (${first.message}); gateway status: ${JSON.stringify(gateway.setup.gateway.status())}`);
          await until('the fresh certificate is let in', async () => (await ask(client)).status === 200);
        } else assert.equal(first.status, 200);
        const { closed } = await live(client);
        const rec = (await sekishoSkewed(skew, ['cert', 'revoke', client.serial, '--reason', 'keyCompromise'])) as { revokedAt: string };
        // The revoking host's clock really was off: the store holds its time.
        const off = Date.parse(rec.revokedAt) - Date.now();
        assert.ok(skew.startsWith('-') ? off < -45_000 : off > 45_000, `revokedAt ${rec.revokedAt} shows the skewed clock`);
        await until('the gateway refuses the revoked certificate', async () => (await ask(client)).refusal === 'REVOKED');
        await closed;
      });
    }

    test('facility suspend and resume from hosts 60 s behind and ahead reach the gateway: suspended is refused and cut, resumed is let in again', async (t) => {
      if (!needCommand(t, 'faketime')) return;
      const client = await issueClient(ca, FACILITY_B);
      assert.equal((await ask(client)).status, 200);
      const { closed } = await live(client);
      await sekishoSkewed('-60s', ['facility', 'suspend', FACILITY_B]);
      assert.ok(Date.parse((await ca.facility(FACILITY_B))!.updatedAt) < Date.now() - 45_000, 'the suspension carries the skewed clock');
      await until('the gateway refuses the suspended facility', async () => (await ask(client)).refusal === 'FACILITY_SUSPENDED');
      await closed;
      await sekishoSkewed('+60s', ['facility', 'resume', FACILITY_B]);
      await until('the gateway lets the resumed facility in', async () => (await ask(client)).status === 200);
      // And back behind again: the newest change wins, not the newest time stamp.
      await sekishoSkewed('-60s', ['facility', 'suspend', FACILITY_B]);
      await until('the gateway refuses the facility suspended again', async () => (await ask(client)).refusal === 'FACILITY_SUSPENDED');
    });

    test('after the feed could not be read for a while, it catches up on every revocation and suspension in between, and alarms meanwhile', async () => {
      const real = new StatusFeedRepository(ca.db);
      let down = false;
      const flaky: StatusFeedReader = {
        snapshot: () => (down ? Promise.reject(new Error('database away')) : real.snapshot()),
        changesAfter: (seq) => (down ? Promise.reject(new Error('database away')) : real.changesAfter(seq)),
      };
      const issuer = new X509Certificate(ca.issuingDer).fingerprint256;
      const feed = new StoreStatusFeed(flaky, { intervalMs: 50, resyncMs: 3_600_000 });
      const source = new StoreRevocationSource(feed, issuer, 500);
      const facilities = new StoreFacilityDirectory(feed);
      const cut: string[] = [];
      source.onRevoked((_issuer, serials) => cut.push(...serials));
      facilities.onSuspended((numbers) => cut.push(...numbers));
      await source.start();
      await facilities.start();
      try {
        const a = await issueClient(ca, FACILITY_C);
        const b = await issueClient(ca, FACILITY_C);
        await until('the feed is past the issuance', () => feed.cursor >= 0 && source.status(new Date()).stale === false);
        down = true;
        // A read already in flight when the store went away may still succeed: wait until one has failed.
        await until('a read has failed', () => feed.lastError !== undefined);
        await ca.revoke(a.serial, 'keyCompromise', 'test');
        await ca.revoke(b.serial, 'superseded', 'test');
        await ca.setFacilityStatus(FACILITY_C, 'suspended', 'test');
        await until('the feed is stale while the store cannot be read', () => source.status(new Date()).stale);
        assert.match(source.status(new Date()).lastError ?? '', /database away/);
        assert.equal(source.isRevoked(issuer, serialKey(a.serial)), false);
        down = false;
        await until('the feed has caught up', () => source.isRevoked(issuer, serialKey(b.serial)) && facilities.lookup(FACILITY_C)?.status === 'suspended');
        assert.ok(source.isRevoked(issuer, serialKey(a.serial)));
        assert.deepEqual(cut.sort(), [serialKey(a.serial), serialKey(b.serial), FACILITY_C].sort(), 'each missed change is reported once, so live connections are cut');
        assert.equal(source.status(new Date()).stale, false);
        assert.equal(source.status(new Date()).lastError, undefined);
      } finally {
        source.close();
        facilities.close();
        await ca.setFacilityStatus(FACILITY_C, 'active', 'test');
      }
    });

    test('revocations committed concurrently are never skipped by a feed reading all the while', async () => {
      const clients = await Promise.all(Array.from({ length: 12 }, () => issueClient(ca, FACILITY_A)));
      const issuer = new X509Certificate(ca.issuingDer).fingerprint256;
      const feed = new StoreStatusFeed(new StatusFeedRepository(ca.db), { intervalMs: 5, resyncMs: 3_600_000 });
      const source = new StoreRevocationSource(feed, issuer);
      await source.start();
      try {
        await Promise.all(clients.map((c) => ca.revoke(c.serial, 'keyCompromise', 'test')));
        await until('every revocation is followed', () => clients.every((c) => source.isRevoked(issuer, serialKey(c.serial))), 10_000);
      } finally {
        source.close();
      }
    });

    test('a full resync corrects what following missed', async () => {
      const real = new StatusFeedRepository(ca.db);
      // A follow that loses everything it should report (the worst case); only the resync can bring it.
      const lossy: StatusFeedReader = { snapshot: () => real.snapshot(), changesAfter: async (seq) => ({ ...(await real.changesAfter(seq)), revoked: [], due: [], facilities: [] }) };
      const issuer = new X509Certificate(ca.issuingDer).fingerprint256;
      const feed = new StoreStatusFeed(lossy, { intervalMs: 50, resyncMs: 1000 });
      const source = new StoreRevocationSource(feed, issuer);
      const reported: string[] = [];
      source.onRevoked((_i, serials) => reported.push(...serials));
      await source.start();
      try {
        const c = await issueClient(ca, FACILITY_A);
        await ca.revoke(c.serial, 'keyCompromise', 'test');
        await until('the resync applied the revocation', () => source.isRevoked(issuer, serialKey(c.serial)));
        assert.deepEqual(reported, [serialKey(c.serial)], 'a revocation found by the resync is reported, so live connections are cut');
      } finally {
        source.close();
      }
    });
  });
}
