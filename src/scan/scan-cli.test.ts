/** `sekisho scan` as an auditor runs it: exit status, JSON, HTML, profile files, against real servers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PANEL, startTlsServer } from '../testing/tls-servers.js';
import { needCommand } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';
import { freePort } from '../testing/tls-servers.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const scan = (args: string[]) => spawnSync(process.execPath, [CLI, 'scan', ...args], { encoding: 'utf8', timeout: 60_000 });

test('sekisho scan: exit 0 compliant, 1 not compliant, 2 could not scan; --json carries the verdict; --html writes the report', async (t) => {
  if (!needCommand(t, 'nginx')) return;
  const dir = tempDir();
  const good = await startTlsServer(PANEL['nginx-client-cert-handshake']);
  const open = await startTlsServer(PANEL['nginx-no-client-cert']);
  try {
    writeFileSync(join(dir, 'ca.pem'), good.caPem);
    const ok = scan([`127.0.0.1:${good.port}`, '--profile', 'mhlw', '--ca', join(dir, 'ca.pem'), '--cert', good.clientCertFile!, '--key', good.clientKeyFile!, '--json', '--html', join(dir, 'r.html')]);
    assert.equal(ok.status, 0, ok.stdout.slice(-2000));
    const report = JSON.parse(ok.stdout) as { verdict: string; compliant: boolean; checks: { check: string; status: string }[] };
    assert.equal(report.verdict, 'compliant');
    assert.equal(report.checks.find((c) => c.check === 'certificate-chain')?.status, 'pass', 'anchored at --ca');
    assert.match(readFileSync(join(dir, 'r.html'), 'utf8'), /適合 \/ Compliant/);

    const ng = scan([`127.0.0.1:${open.port}`, '--profile', 'mhlw']);
    assert.equal(ng.status, 1);
    assert.match(ng.stdout, /^FAIL {2}Client certificate required: not requested/m);
    assert.match(ng.stdout.trim().split('\n').at(-1)!, /^VERDICT: NOT compliant with mhlw/);
    assert.equal(scan([`127.0.0.1:${open.port}`, '--profile', 'high']).status, 0, 'the same server meets the high profile');

    const custom = join(dir, 'p.json');
    writeFileSync(custom, JSON.stringify({ extends: 'high', name: 'tls13-only', protocolsAllowed: ['TLSv1.3'] }));
    const strict = scan([`127.0.0.1:${open.port}`, '--profile', custom, '--json']);
    assert.equal(strict.status, 1);
    assert.equal((JSON.parse(strict.stdout) as { profile: string }).profile, 'tls13-only');
  } finally {
    await good.stop();
    await open.stop();
  }
  const closed = await freePort();
  const cases: [string[], RegExp][] = [
    [[`127.0.0.1:${closed}`], /^sekisho: SCAN_UNREACHABLE: /],
    [['127.0.0.1:99999'], /^sekisho: SCAN_TARGET_INVALID: /],
    [['127.0.0.1:443', '--profile', join(dir, 'missing.json')], /^sekisho: PROFILE_FILE_INVALID: /],
    [['127.0.0.1:443', '--cert', 'x.pem'], /^sekisho: USAGE: /],
  ];
  for (const [args, message] of cases) {
    const r = scan(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  assert.ok(!existsSync(join(dir, 'missing.json')));
});

test('a server that accepts and never answers cannot hold a scan past its deadline', async () => {
  const { createServer } = await import('node:net');
  const { scanServer } = await import('./scan.js');
  const { complianceProfile } = await import('../policy/index.js');
  const { SekishoError } = await import('../errors/index.js');
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  try {
    const started = Date.now();
    await assert.rejects(
      scanServer({ target: { host: '127.0.0.1', port }, profile: complianceProfile('high'), timeoutMs: 10_000, deadlineMs: 500 }),
      (e: unknown) => e instanceof SekishoError && e.code === 'SCAN_DEADLINE',
    );
    assert.ok(Date.now() - started < 5_000);
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});
