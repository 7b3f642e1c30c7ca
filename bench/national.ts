/**
 * National-size benchmark (issue 13): a CA store of NATIONAL_FACILITIES
 * (default 230,000) facilities and NATIONAL_CERTIFICATES (default 1,000,000)
 * certificates made by bench/national-data.ts, on SQLite and on PostgreSQL
 * (NATIONAL_STORES, default "sqlite,postgres"; PostgreSQL needs
 * SEKISHO_TEST_POSTGRES_URL or NATIONAL_POSTGRES_URL, a server where it may
 * create and drop a database). Run `npm run -s bench -- national` (not part of
 * a plain `npm run bench`: it takes minutes), or `node dist/bench/national.js`
 * after a build. Per store, in this order:
 *
 *  1. data: the generator's own figures (rows per second, the data set's shape).
 *  2. issuance: NATIONAL_CLIENTS (default 41) facility certificates issued one
 *     after another through CertificateAuthority.issueWithNewKey into the big
 *     store (the pool issued into the empty store before is the comparison);
 *     they are the clients of steps 5–6.
 *  3. queries: `sekisho cert list` (all, --status revoked, --facility N),
 *     `sekisho crl`, `sekisho report access` (7 days), each a real CLI
 *     process: wall seconds and peak RSS (/usr/bin/time), output size.
 *  4. gateways: three `sekisho gateway` processes (real children of the CLI,
 *     one worker each), each with a copy of the CA home as a gateway host
 *     has (its own audit spool), on the one store, started one after another: seconds
 *     from spawn to accepting connections, RSS and peak RSS (/proc), and the
 *     revoked serials each reports (/status of its admin listener).
 *  5. handshakes: full mutual-TLS 1.3 handshakes (+ one GET each) against all
 *     three at once (bench/tls-load.ts, one load thread per gateway), a
 *     NATIONAL_SECONDS (default 10) window after a 2 s warm-up; gateway CPU
 *     seconds (/proc of each process) and the machine's busy share.
 *  6. revoke → refused: each of the other clients is revoked in this process
 *     (CertificateAuthority.revoke: the commit is t0), at a random moment
 *     (0–1.2 s apart, so revocations fall anywhere in the gateways' poll
 *     cycle); each gateway is then probed every 50 ms with a new mutual-TLS
 *     connection and a GET using the revoked certificate until it answers
 *     403 with x-sekisho-refusal: REVOKED. Refusal is detected by handshakes
 *     with the revoked certificate, not by metrics. Reported: p50/p90/p99/max of the
 *     time until the LAST of the three refused, and of every gateway's own.
 *  7. report access again, now over the handshakes' audit events.
 *
 * The machine's 1-minute load average is recorded before each step (other
 * work on a shared machine skews every figure). The bench drives the store
 * through the CLI and the public CA API only, so it re-runs unchanged when
 * the gateway's feed changes (a 1-second poll today; LISTEN/NOTIFY later).
 */
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { cpSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CertificateAuthority } from '../src/ca/index.js';
import { certificateToPem } from '../src/pki/index.js';
import { POOL_FACILITY } from '../src/testing/national-data.js';
import { fillStore } from './national-data.js';
import { CLK_TCK, cpuSeconds, freePorts, machineTicks, processTree, waitForPort } from './gateway.js';
import { envNumber, invokedDirectly, log, round, runDirectly, sh, start, tempDir, type Started } from './support.js';
import { runLoad } from './tls-load.js';

const PASSPHRASE = 'national-bench-passphrase';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(REPO, 'dist/src/cli/main.js');
const GATEWAYS = 3;

const load = () => round(loadavg()[0] ?? 0, 2);

function quantiles(xs: number[]): { n: number; p50: number; p90: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  return { n: s.length, p50: round(q(0.5)), p90: round(q(0.9)), p99: round(q(0.99)), max: round(s[s.length - 1] ?? NaN) };
}

// ---- a fresh PostgreSQL database ----

async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.NATIONAL_POSTGRES_URL ?? process.env.SEKISHO_TEST_POSTGRES_URL;
  if (!base) throw new Error('set SEKISHO_TEST_POSTGRES_URL (or NATIONAL_POSTGRES_URL) for the PostgreSQL run, or NATIONAL_STORES=sqlite');
  const name = `sekisho_national_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const a = new pg.Client({ connectionString: base });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => a.end());
    },
  };
}

// ---- CLI runs ----

interface CliFigure {
  command: string;
  seconds: number;
  maxRssMiB: number;
  outputBytes: number;
  outputLines?: number;
  json?: unknown;
}

/** Runs `sekisho ARGS` under /usr/bin/time with stdout to a file; wall seconds and peak RSS. */
function cli(dir: string, args: string[], opts: { json?: boolean } = {}): CliFigure {
  const out = join(dir, `out-${randomBytes(4).toString('hex')}`);
  const timing = join(dir, `time-${randomBytes(4).toString('hex')}`);
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = sh('/usr/bin/time', ['-f', '%e %M', '-o', timing, 'sh', '-c', `${quoted} > '${out}'`], { timeoutMs: 1_800_000, env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE } });
  if (r.status !== 0) throw new Error(`sekisho ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.out.slice(0, 2000)}`);
  const [seconds, kib] = readFileSync(timing, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
  const size = statSync(out).size;
  const fig: CliFigure = { command: `sekisho ${args.filter((a) => !a.startsWith('/')).join(' ')}`, seconds: seconds ?? NaN, maxRssMiB: round((kib ?? 0) / 1024, 1), outputBytes: size };
  if (size < 64 * 2 ** 20) {
    const text = readFileSync(out, 'utf8');
    if (opts.json) fig.json = JSON.parse(text);
    else fig.outputLines = text.split('\n').filter(Boolean).length;
  } else {
    let lines = 0;
    const buf = readFileSync(out);
    for (let i = 0; i < buf.length; i++) if (buf[i] === 10) lines++;
    fig.outputLines = lines;
  }
  return fig;
}

// ---- gateways ----

interface Gateway {
  port: number;
  admin: number;
  started: Started;
  pids: number[];
}

function procStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

async function getJson(port: number, path: string): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return res.json();
}

interface Client {
  serial: string;
  cert: string;
  key: string;
}

/** One new mutual-TLS connection and a GET: the status and the refusal header. */
function probe(port: number, c: { cert: Buffer; key: Buffer }): Promise<{ status: number; refusal?: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', cert: c.cert, key: c.key, rejectUnauthorized: false, agent: false, timeout: 10_000, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(res.headers['x-sekisho-refusal'] ? { refusal: String(res.headers['x-sekisho-refusal']) } : {}) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.message }));
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- one store ----

async function runStore(kind: 'sqlite' | 'postgres', facilities: number, certificates: number): Promise<Record<string, unknown>> {
  const dir = tempDir('sekisho-national-');
  const pgdb = kind === 'postgres' ? await freshPostgres() : undefined;
  const home = join(dir.path, 'home');
  const loadAverage1m: Record<string, number> = {};
  const result: Record<string, unknown> = { store: kind, loadAverage1m };
  const gateways: Gateway[] = [];
  let upstream: HttpServer | undefined;
  let ca: CertificateAuthority | undefined;
  try {
    // 1. data
    loadAverage1m.data = load();
    log(`national ${kind}: generating ${facilities} facilities, ${certificates} certificates`);
    const data = await fillStore({ home, ...(pgdb ? { db: pgdb.url } : {}), facilities, certificates, pool: 32, seed: 1 }, PASSPHRASE);
    result.data = data;
    if (kind === 'sqlite') result.sqliteFileMiB = round(statSync(join(home, 'sekisho.db')).size / 2 ** 20, 1);

    // 2. issuance into the big store; the clients
    loadAverage1m.issuance = load();
    ca = await CertificateAuthority.open({ home });
    await ca.unlock(PASSPHRASE);
    const nClients = Math.max(2, envNumber('NATIONAL_CLIENTS', 41));
    const numbers = (await ca.db.all<{ number: string }>("SELECT number FROM facilities WHERE status = 'active' AND number <> ? ORDER BY number LIMIT ?", [POOL_FACILITY, nClients])).map((r) => r.number);
    const chainPem = certificateToPem(ca.chain()[0]!);
    const clients: Client[] = [];
    const latencies: number[] = [];
    const t0 = performance.now();
    for (const [k, number] of numbers.entries()) {
      const t = performance.now();
      const issued = await ca.issueWithNewKey({ via: 'bench', actor: 'bench:national', keyType: 'ecdsa-p256', profile: 'facility', facilityNumber: number });
      latencies.push(performance.now() - t);
      const cert = join(dir.path, `client-${k}.pem`);
      const key = join(dir.path, `client-${k}.key`);
      writeFileSync(cert, certificateToPem(issued.der) + chainPem);
      writeFileSync(key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
      clients.push({ serial: issued.serial, cert, key });
    }
    const issueSeconds = (performance.now() - t0) / 1000;
    result.issuance = {
      method: 'CertificateAuthority.issueWithNewKey (ECDSA P-256), one after another',
      bigStore: { count: clients.length, seconds: round(issueSeconds), perSecond: round(clients.length / issueSeconds, 1), latencyMs: quantiles(latencies) },
      emptyStore: { count: data.pool.certificates, seconds: data.pool.seconds, perSecond: round(data.pool.certificates / data.pool.seconds, 1) },
    };

    // 3. CLI queries on the big store
    loadAverage1m.queries = load();
    const anyFacility = numbers[numbers.length - 1]!;
    const today = new Date().toISOString().slice(0, 10);
    const weekAgo = new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10);
    const reportArgs = ['report', 'access', '--home', home, '--from', weekAgo, '--to', today, '--zone', 'UTC', '--format', 'csv'];
    result.queries = {
      certListAll: cli(dir.path, ['cert', 'list', '--home', home]),
      certListRevoked: cli(dir.path, ['cert', 'list', '--home', home, '--status', 'revoked']),
      certListFacility: cli(dir.path, ['cert', 'list', '--home', home, '--facility', anyFacility]),
      crl: cli(dir.path, ['crl', '--home', home, '--out', join(dir.path, 'national.crl'), '--json'], { json: true }),
      reportAccessBeforeLoad: cli(dir.path, reportArgs),
    };

    // 4. three gateways, started one after another
    upstream = createHttpServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => upstream!.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as { port: number }).port;
    const ports = await freePorts(GATEWAYS * 2);
    const startup: Record<string, unknown>[] = [];
    for (let g = 0; g < GATEWAYS; g++) {
      loadAverage1m[`gateway${g}`] = load();
      const port = ports[2 * g]!;
      const admin = ports[2 * g + 1]!;
      // Each gateway is a host of its own: a copy of the CA home (certificates, config; its own audit spool) on the one store.
      const gHome = join(dir.path, `gateway-${g}`);
      cpSync(home, gHome, { recursive: true, filter: (src) => !/sekisho\.db|audit-spool/.test(src) });
      const t = performance.now();
      const started = start(process.execPath, [CLI, 'gateway', '--home', gHome, '--db', pgdb ? pgdb.url : join(home, 'sekisho.db'), '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${upstreamPort}`, '--admin', `127.0.0.1:${admin}`, '--log-level', 'warn'], {
        timeoutMs: 3_600_000,
        env: { ...process.env, SEKISHO_PASSPHRASE: PASSPHRASE },
      });
      await waitForPort(port, started, `gateway ${g}`, 600_000);
      const seconds = (performance.now() - t) / 1000 - 0.2; // waitForPort waits 200 ms after the first accept
      const pid = started.child.pid!;
      gateways.push({ port, admin, started, pids: processTree(pid) });
      await sleep(1000);
      const status = (await getJson(admin, '/status').catch((e: unknown) => ({ error: String(e) }))) as { revocation?: unknown };
      startup.push({ seconds: round(seconds), rssMiB: round(procStatusKiB(pid, 'VmRSS') / 1024, 1), peakRssMiB: round(procStatusKiB(pid, 'VmHWM') / 1024, 1), revocation: status.revocation ?? status });
    }
    result.gatewayStartup = startup;

    // 5. handshakes across the three
    loadAverage1m.handshakes = load();
    const good = clients[0]!;
    const first = await Promise.all(gateways.map((g) => probe(g.port, { cert: readFileSync(good.cert), key: readFileSync(good.key) })));
    if (!first.every((r) => 'status' in r && r.status === 200)) throw new Error(`a fresh client certificate is not accepted by every gateway: ${JSON.stringify(first)}`);
    const seconds = envNumber('NATIONAL_SECONDS', 10);
    const countFrom = Date.now() + 2000;
    const until = countFrom + seconds * 1000;
    let cpuBefore = 0;
    let ticksBefore = { busy: 0, total: 0 };
    setTimeout(() => {
      cpuBefore = cpuSeconds(gateways.flatMap((g) => g.pids));
      ticksBefore = machineTicks();
    }, countFrom - Date.now());
    let cpuAfter = 0;
    let ticksAfter = { busy: 0, total: 0 };
    setTimeout(() => {
      cpuAfter = cpuSeconds(gateways.flatMap((g) => g.pids));
      ticksAfter = machineTicks();
    }, until - Date.now());
    const loads = await Promise.all(gateways.map((g) => runLoad({ mode: 'handshake', host: '127.0.0.1', port: g.port, cert: good.cert, key: good.key, tls: 'TLSv1.3', concurrency: 4, countFrom, until }, 1)));
    const total = loads.reduce((a, l) => a + l.completed, 0);
    const busy = ticksAfter.busy - ticksBefore.busy;
    const all = ticksAfter.total - ticksBefore.total;
    result.handshakes = {
      tls: 'TLSv1.3, full handshake + one GET, no resumption',
      gateways: GATEWAYS,
      windowSeconds: seconds,
      perSecond: round(total / seconds, 1),
      perGateway: loads.map((l) => ({ perSecond: round(l.perSecond, 1), errors: l.errors, ...(l.firstError ? { firstError: l.firstError } : {}) })),
      gatewayCpuSeconds: round(cpuAfter - cpuBefore, 2),
      handshakesPerGatewayCpuSecond: round(total / Math.max(0.01, cpuAfter - cpuBefore), 1),
      machineBusyShare: round(all > 0 ? busy / all : NaN, 3),
      gatewayShareOfMachine: round(all > 0 ? (cpuAfter - cpuBefore) / (all / CLK_TCK) : NaN, 3),
    };

    // 6. revoke → refused at every gateway
    loadAverage1m.revocations = load();
    const lastOfThree: number[] = [];
    const each: number[] = [];
    const revokeMs: number[] = [];
    const failures: string[] = [];
    for (const c of clients.slice(1)) {
      const creds = { cert: readFileSync(c.cert), key: readFileSync(c.key) };
      await sleep(Math.random() * 1200);
      const r0 = performance.now();
      await ca.revoke(c.serial, 'keyCompromise', 'bench:national');
      const t = performance.now();
      revokeMs.push(t - r0);
      const refusedAt = await Promise.all(
        gateways.map(async (g) => {
          const deadline = t + 60_000;
          while (performance.now() < deadline) {
            const r = await probe(g.port, creds);
            if ('status' in r && r.status === 403 && r.refusal === 'REVOKED') return (performance.now() - t) / 1000;
            if ('status' in r && r.status !== 200) failures.push(`${c.serial}@${g.port}: ${r.status} ${r.refusal ?? ''}`);
            await sleep(50);
          }
          failures.push(`${c.serial}@${g.port}: not refused within 60 s`);
          return NaN;
        }),
      );
      each.push(...refusedAt);
      lastOfThree.push(Math.max(...refusedAt));
    }
    result.revokeToRefused = {
      detection: 'a new mutual-TLS connection + GET with the revoked certificate every 50 ms per gateway until 403 x-sekisho-refusal: REVOKED',
      feed: kind === 'postgres' ? 'PostgreSQL LISTEN/NOTIFY at commit, then a read from the cursor (10 s safety-net poll)' : 'a poll of the store every 1 s (SQLite has no notifications)',
      secondsAllGateways: quantiles(lastOfThree),
      secondsEachGateway: quantiles(each),
      revokeCallMs: quantiles(revokeMs),
      ...(failures.length ? { unexpected: failures.slice(0, 10) } : {}),
    };

    // 7. the access report over what the gateways wrote
    loadAverage1m.reportAfter = load();
    const auditEvents = await ca.db.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM audit_events');
    (result.queries as Record<string, unknown>).reportAccessAfterLoad = { ...cli(dir.path, reportArgs), auditEvents: Number(auditEvents?.n ?? 0) };
    loadAverage1m.end = load();
    return result;
  } finally {
    for (const g of gateways) {
      g.started.child.kill('SIGTERM');
      await Promise.race([g.started.exited, sleep(15_000)]);
      g.started.kill();
    }
    if (upstream) await new Promise((r) => upstream!.close(r));
    await ca?.close().catch(() => undefined);
    await pgdb?.drop().catch((e: unknown) => log(`national: could not drop the bench database: ${String(e)}`));
    if (!process.env.NATIONAL_KEEP) dir.remove();
    else log(`national: kept ${dir.path}`);
  }
}

export async function main(): Promise<unknown> {
  const facilities = envNumber('NATIONAL_FACILITIES', 230_000);
  const certificates = envNumber('NATIONAL_CERTIFICATES', 1_000_000);
  const stores = (process.env.NATIONAL_STORES ?? 'sqlite,postgres').split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of stores) if (s !== 'sqlite' && s !== 'postgres') throw new Error(`NATIONAL_STORES: unknown store "${s}"; use sqlite, postgres`);
  const out: Record<string, unknown> = { bench: 'national', facilities, certificates, gateways: GATEWAYS };
  for (const s of stores) {
    try {
      out[s] = await runStore(s as 'sqlite' | 'postgres', facilities, certificates);
    } catch (e) {
      log(`national ${s} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      out[s] = { error: e instanceof Error ? e.message : String(e) };
    }
  }
  return out;
}

if (invokedDirectly(import.meta.url)) runDirectly(main);
