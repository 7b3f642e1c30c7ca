/**
 * `sekisho gateway --workers N` as an operator runs it: a separate process
 * (the CLI), curl as the clinic, a real HTTP upstream; SIGHUP and SIGTERM
 * sent to the primary.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { echoUpstream, FACILITY_A, gatewayFixture, PASSPHRASE, type ClientFiles, type GatewayFixture } from '../testing/gateway-fixture.js';
import { hasCommand, needCommand, run, runAsync } from '../testing/peers.js';
import { freePort, portIsFree } from '../testing/tls-servers.js';
import { SEKISHO_MAIN, startSekisho } from '../testing/cli-process.js';

const CLI = SEKISHO_MAIN;
const ready = hasCommand('openssl') && hasCommand('curl');

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

function curl(port: number, client: ClientFiles) {
  return runAsync('curl', ['-sS', '--max-time', '10', '--cacert', fx.caFile, '--cert', client.cert, '--key', client.key, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/hello`]);
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


/** Inodes of the TCP sockets listening on `port` (IPv4 and IPv6), from /proc/net. */
function listeningInodes(port: number): Set<string> {
  const out = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      // local_address is HEXADDR:HEXPORT, st 0A is LISTEN, inode is column 10.
      if (c[3] === '0A' && Number.parseInt(c[1]?.split(':')[1] ?? '', 16) === port && c[9]) out.add(c[9]);
    }
  }
  return out;
}

/** Socket inodes a process holds open. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

describe('sekisho gateway --workers', () => {
  test('--workers 2: two worker processes serve one port, SIGHUP reloads without stopping, SIGTERM stops all cleanly', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl')) return;
    const port = await freePort();
    const gw = startSekisho<{ pid: number; workers: number[]; listeners: { port: number }[] }>(
      ['gateway', '--home', fx.home, '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${http.port}`, '--workers', '2', '--log-level', 'warn', '--json'],
      { env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE } },
    );
    const { child } = gw;
    try {
      const summary = await gw.summary;
      assert.equal(summary.pid, child.pid);
      assert.equal(summary.listeners[0]?.port, port);
      assert.equal(new Set(summary.workers).size, 2, 'two distinct worker processes');
      for (const w of summary.workers) assert.equal(parentOf(w), child.pid, `worker ${w} is a child of the primary`);

      const codes = await Promise.all(Array.from({ length: 12 }, () => curl(port, fx.clients.good)));
      assert.deepEqual(codes.map((c) => c.stdout), Array(12).fill('200'), codes.map((c) => c.stderr).join(''));
      assert.ok(http.seen.some((h) => Object.values(h).includes(FACILITY_A)), 'the upstream saw the identity headers');
      // Every worker reads revocations from the store on its own.
      const revoked = await Promise.all(Array.from({ length: 4 }, () => curl(port, fx.clients.revoked)));
      for (const r of revoked) assert.notEqual(r.stdout, '200');

      child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await curl(port, fx.clients.good)).stdout, '200', 'still serving after SIGHUP');
      for (const w of summary.workers) assert.ok(alive(w), `worker ${w} survived SIGHUP`);

      child.kill('SIGTERM');
      const exit = await Promise.race([gw.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
      assert.equal(exit, 0, gw.stderr());
      for (const w of summary.workers) assert.ok(!alive(w), `worker ${w} has stopped`);
      assert.ok(await portIsFree(port), 'the port is released');
    } finally {
      await Promise.race([gw.stop('SIGKILL'), new Promise((r) => setTimeout(r, 5000))]);
    }
  });

  test('regression: /metrics of --workers 2 counts both workers (the primary merges them), whichever worker answers the scrape', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl')) return;
    const port = await freePort();
    const admin = await freePort();
    // Round-robin: the primary hands connections to the workers in turn, so both serve some.
    const gw = startSekisho<{ workers: number[] }>(
      ['gateway', '--home', fx.home, '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${http.port}`, '--admin', `127.0.0.1:${admin}`, '--workers', '2', '--log-level', 'warn', '--json'],
      { env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE, NODE_CLUSTER_SCHED_POLICY: 'rr' } },
    );
    try {
      await gw.summary;
      const n = 10;
      for (let i = 0; i < n; i++) assert.equal((await curl(port, fx.clients.good)).stdout, '200');
      const accepted = /^sekisho_gateway_handshakes_total\{host="[^"]+",instance="127\.0\.0\.1:\d+",listener="http",outcome="accepted",reason=""\} (\d+)$/m;
      // Several scrapes: each lands on either worker and reports the group.
      for (let i = 0; i < 4; i++) {
        const m = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
        assert.equal(Number(accepted.exec(m)?.[1]), n, m);
        assert.match(m, /sekisho_gateway_workers\{host="[^"]+",instance="[^"]+",state="reporting"\} 2/);
        assert.match(m, /sekisho_gateway_revocation_entries\{host="[^"]+",instance="[^"]+",source="store"\} 1\n/, 'what every worker knows is not multiplied');
      }
    } finally {
      await Promise.race([gw.stop('SIGTERM'), new Promise((r) => setTimeout(r, 15_000))]);
      await Promise.race([gw.stop('SIGKILL'), new Promise((r) => setTimeout(r, 5000))]);
    }
  });

  test('defect guarded (two workers cost more than one process): on Linux each worker accepts on a listening socket of its own (SO_REUSEPORT), none passes through the primary; with NODE_CLUSTER_SCHED_POLICY the socket is shared as before', async (t) => {
    if (!needCommand(t, 'openssl') || !needCommand(t, 'curl')) return;
    if (process.platform !== 'linux') return t.skip('SO_REUSEPORT spreading is Linux only');
    for (const shared of [false, true]) {
      const port = await freePort();
      const gw = startSekisho<{ pid: number; workers: number[] }>(
        ['gateway', '--home', fx.home, '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${http.port}`, '--workers', '2', '--log-level', 'warn', '--json'],
        { env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE, ...(shared ? { NODE_CLUSTER_SCHED_POLICY: 'none' } : {}) } },
      );
      try {
        const summary = await gw.summary;
        const listening = listeningInodes(port);
        const held = summary.workers.map((w) => [...socketInodes(w)].filter((i) => listening.has(i)));
        const primary = [...socketInodes(summary.pid)].filter((i) => listening.has(i));
        if (!shared) {
          assert.equal(listening.size, 2, 'two listening sockets on the port, one per worker');
          for (const h of held) assert.equal(h.length, 1, 'each worker holds one of them');
          assert.notEqual(held[0]![0], held[1]![0], 'and not the same one');
          assert.deepEqual(primary, [], 'the primary holds none: no connection passes through it');
        } else {
          assert.equal(listening.size, 1, 'one listening socket, shared');
          for (const h of held) assert.deepEqual(h, [...listening]);
        }
        const codes = await Promise.all(Array.from({ length: 8 }, () => curl(port, fx.clients.good)));
        assert.deepEqual(codes.map((c) => c.stdout), Array(8).fill('200'), codes.map((c) => c.stderr).join(''));
        const revoked = await curl(port, fx.clients.revoked);
        assert.notEqual(revoked.stdout, '200', 'the same checks in every worker');
      } finally {
        await Promise.race([gw.stop('SIGTERM'), new Promise((r) => setTimeout(r, 15_000))]);
        await Promise.race([gw.stop('SIGKILL'), new Promise((r) => setTimeout(r, 5000))]);
      }
      assert.ok(await portIsFree(port), 'the port is released');
    }
  });

  test('a --workers that is not a small positive number is refused as bad input', (t) => {
    if (!needCommand(t, 'openssl')) return;
    for (const bad of ['0', '-1', 'two', '65']) {
      const r = run(process.execPath, [CLI, 'gateway', '--home', fx.home, '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:1', `--workers=${bad}`]);
      assert.equal(r.status, 2, `--workers ${bad}: ${r.stderr}`);
      assert.match(r.stderr, /--workers is a number of processes from 1 to 64/);
    }
  });
});
