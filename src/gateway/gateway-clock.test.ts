/**
 * The clock check in a running `sekisho gateway` process against
 * PostgreSQL's clock and an SNTP server: under faketime (the host clock 5 s
 * ahead) the alarm is raised (error log, metric, audit events
 * time.offset-exceeded in the store); with the true clock there is none.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { initAuthority, CertificateAuthority } from '../ca/index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { needCommand, needPeer } from '../testing/peers.js';
import { startSekisho } from '../testing/cli-process.js';
import { testSntpServer, type TestSntpServer } from '../testing/sntp-server.js';
import type { RecordedAuditEvent } from '../audit/index.js';

const PASSPHRASE = 'clock-check-passphrase';
/**
 * libfaketime, preloaded into the sekisho process itself (the `faketime`
 * wrapper forks, so a signal to it would not reach the gateway). Only the
 * wall clock is shifted: timers keep the monotonic clock.
 */
const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1'].find((f) => existsSync(f));
const postgres = STORE_TARGETS.find((t) => t.name === 'postgres')!;
let sntp: TestSntpServer;

before(async () => {
  sntp = await testSntpServer(0);
});
after(() => sntp.close());

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

async function clockEvents(home: string): Promise<RecordedAuditEvent[]> {
  const ca = await CertificateAuthority.open({ home });
  try {
    return (await ca.audit.list({ limit: 100_000 })).filter((e) => e.action.startsWith('time.'));
  } finally {
    await ca.close();
  }
}

async function gatewayHome(): Promise<{ home: string; config: string }> {
  const url = await postgres.fresh();
  const dir = tempDir('sekisho-clock-');
  const home = join(dir, 'home');
  await initAuthority({ home, passphrase: PASSPHRASE, db: url! });
  const config = join(dir, 'gateway.yaml');
  writeFileSync(
    config,
    [
      `home: ${home}`,
      'admin: 127.0.0.1:0',
      'time:',
      `  ntp: 127.0.0.1:${sntp.port}`,
      '  database: true',
      '  maxOffsetMs: 1000',
      '  checkSeconds: 1',
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:0',
      '    routes: [{ path: /, upstream: "http://127.0.0.1:9", allow: { anyone: true } }]',
      '',
    ].join('\n'),
  );
  return { home, config };
}

type Summary = { admin: { port: number } };

describe('gateway clock check (PostgreSQL clock_timestamp(), SNTP)', () => {
  test('under faketime +5 s: time.offset-exceeded for the database and the NTP server, the metric at 1, an error logged', async (t) => {
    if (!needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)') || !needCommand(t, 'faketime') || !needPeer(t, LIBFAKETIME !== undefined, 'libfaketime')) return;
    const { home, config } = await gatewayHome();
    const p = startSekisho<Summary>(['gateway', '--config', config, '--json'], { env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE, LD_PRELOAD: LIBFAKETIME!, FAKETIME: '+5s', FAKETIME_DONT_FAKE_MONOTONIC: '1' } });
    try {
      const summary = await p.summary;
      let events: RecordedAuditEvent[] = [];
      for (let i = 0; i < 100 && events.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 200));
        events = await clockEvents(home);
      }
      const exceeded = events.filter((e) => e.action === 'time.offset-exceeded');
      assert.deepEqual(exceeded.map((e) => e.details!.source).sort(), ['database', `ntp 127.0.0.1:${sntp.port}`], JSON.stringify(events));
      for (const e of exceeded) {
        assert.equal(e.reasonCode, 'CLOCK_OFFSET_EXCEEDED');
        assert.equal(e.actor, 'gateway');
        const off = e.details!.offsetMs as number;
        assert.ok(off < -3500 && off > -6500, `the reference is about 5 s behind this host: ${off}`);
      }
      const m = await metrics(summary.admin.port);
      assert.match(m, /sekisho_clock_alarm\{source="database"\} 1/);
      assert.match(m, /sekisho_clock_offset_seconds\{source="database"\} -[45](\.\d+)?\n/);
      assert.match(p.stderr(), /CLOCK OFFSET EXCEEDS THE LIMIT/);
    } finally {
      assert.equal(await p.stop('SIGTERM'), 0, p.stderr());
    }
  });

  test('with the true clock: readings within the limit, no alarm and no time.* audit event', async (t) => {
    if (!needPeer(t, postgres.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
    const { home, config } = await gatewayHome();
    const p = startSekisho<Summary>(['gateway', '--config', config, '--json'], { env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE } });
    try {
      const summary = await p.summary;
      await new Promise((r) => setTimeout(r, 2500));
      const m = await metrics(summary.admin.port);
      assert.match(m, /sekisho_clock_alarm\{source="database"\} 0/);
      assert.match(m, new RegExp(`sekisho_clock_alarm\\{source="ntp 127.0.0.1:${sntp.port}"\\} 0`));
      assert.deepEqual(await clockEvents(home), []);
      assert.doesNotMatch(p.stderr(), /CLOCK OFFSET/);
    } finally {
      assert.equal(await p.stop('SIGTERM'), 0, p.stderr());
    }
  });

  test('time.database on a SQLite store refuses to start, naming the setting', async () => {
    const dir = tempDir('sekisho-clock-');
    const home = join(dir, 'home');
    await initAuthority({ home, passphrase: PASSPHRASE });
    const config = join(dir, 'gateway.yaml');
    writeFileSync(config, `home: ${home}\ntime: { database: true }\nlisteners:\n  - { name: web, listen: "127.0.0.1:0", routes: [{ path: /, upstream: "http://127.0.0.1:9", allow: { anyone: true } }] }\n`);
    const p = startSekisho(['gateway', '--config', config, '--json'], { env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE } });
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /GATEWAY_CONFIG_INVALID: time\.database: true needs the CA store in PostgreSQL/);
  });
});
