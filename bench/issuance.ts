/**
 * Issuance benchmark: CSR → signed, stored, audited certificate per second on
 * the embedded store (SQLite). Run `npx tsc -p tsconfig.json && node
 * dist/bench/issuance.js`; prints one JSON document. `main()` returns the same
 * document for bench/run.ts.
 *
 * Preparation (not timed): N distinct ECDSA P-256 CSRs made by `openssl req`
 * (two shell loops, one per core), N facilities registered.
 *
 * sekisho: for every CSR, `ca.issue` with the CSR as received, the CA opened
 * as `sekisho serve` opens it (issuance workers 'auto': none on a machine of
 * two cores or fewer, one per core above; ISSUANCE_BENCH_WORKERS=cores|N|0
 * sets them). With workers, per issuance:
 * registry lookup on the main thread; one message to a worker, which parses
 * the CSR, checks its proof of possession, builds and lints the TBS and keeps
 * it under a single-use token; serial reserved (facility checked) and audit
 * "signing" appended in a group-commit transaction on the main thread; a
 * second message to the same worker, which signs that token's TBS once and
 * verifies the signature; certificate stored and audit "issued" appended in a
 * second group-commit transaction. The messages of all issuances released by
 * one commit go to each worker as one, posted before the next COMMIT starts,
 * so the workers sign while the main thread waits for the disk; a commit
 * usually carries one batch's "issued" stores and the next batch's
 * reservations. Each transaction is COMMITted with an fsync (`synchronous=FULL`)
 * on the main thread (better-sqlite3 is synchronous): at 16 in flight that,
 * not the workers, bounds the rate (docs/scale.md, "Issuance"). Without
 * workers the same steps run in turn on the main thread. Four
 * variants: SQLite synchronous FULL (the default) and NORMAL
 * (SEKISHO_SQLITE_SYNC=NORMAL), each sequentially and with C requests in
 * flight, and a fifth: FULL with C in flight the other way (a worker per
 * core where the basis has none, -workers; else none, -main-thread), so the
 * run itself says what the workers buy at the load it saw.
 * ISSUANCE_BENCH_VARIANTS=name,name runs only those (full-sequential,
 * full-concurrent16, normal-sequential, normal-concurrent16,
 * full-concurrent16-workers or -main-thread, with 16 the concurrency). Each
 * variant gets a fresh CA home and an untimed warm-up of 1,000 issuances at
 * its own concurrency (ISSUANCE_BENCH_WARMUP).
 *
 * CPU: each side's CPU-seconds during its timed run (sekisho: this process,
 * all threads; cfssl: the server process from /proc, and this process as its
 * client), as cores used and requests per CPU-second. The machine is shared:
 * compare ratios from one run, and the load average run.ts records.
 *
 * openssl: `openssl x509 -req … -extfile ext.cnf -set_serial …` once per CSR,
 * as an operator's script runs it, two processes at a time (one shell loop per
 * core), with the same issuing key exported to a plain PEM file. It keeps no
 * database and no audit trail.
 *
 * cfssl: `cfssl serve` on 127.0.0.1 with the same key and certificate;
 * POST /api/v1/cfssl/sign over keep-alive HTTP, C requests in flight. It
 * keeps no database either (none configured).
 *
 * Sizes: ISSUANCE_BENCH_N (default 2000), ISSUANCE_BENCH_CONCURRENCY (16),
 * ISSUANCE_BENCH_OPENSSL_N (default 1000: each openssl process costs ~30 ms,
 * so the peer's rate is steady long before), ISSUANCE_BENCH_MAX_S (time bound per
 * timed run, default 300 s; a run cut short reports the count it reached).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { accepts as canConnect, freePort } from '../src/testing/tls-servers.js';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, initAuthority, issuanceWorkerCount, readKeyFile } from '../src/ca/index.js';
import { certificateToPem } from '../src/pki/index.js';
import { checkDigit } from '../src/policy/index.js';
import { envNumber, invokedDirectly, log, opensslVersion, round, runDirectly, sh, start, tempDir } from './support.js';

export interface IssuanceBenchOptions {
  n?: number;
  concurrency?: number;
  opensslN?: number;
  maxSeconds?: number;
  /** Issuance worker threads ('auto' as `sekisho serve`, 'cores', or a number; 0 for none); ISSUANCE_BENCH_WORKERS. */
  workers?: number | 'cores' | 'auto';
}

export interface RateResult {
  count: number;
  seconds: number;
  perSecond: number;
  /** Set when the time bound stopped the run before all requests were done. */
  cutShort?: boolean;
}

/**
 * CPU time spent during a timed run, in CPU-seconds and in cores (CPU-seconds
 * per wall second; 2 = both cores of this machine). The machine is shared, so
 * these, not the wall time, say what a side cost.
 */
export interface CpuShare {
  cpuSeconds: number;
  cores: number;
  /** Requests per CPU-second of that side. */
  perCpuSecond: number;
}

/** CPU-seconds used by a process (or one of its threads) so far (utime + stime from /proc), or undefined off Linux. */
function processCpuSeconds(pid: number, thread?: number): number | undefined {
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after "(comm) ", field 3 of the full line is index 0 here: utime is field 14, stime 15
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

const ownCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const cpuShare = (cpuSeconds: number, seconds: number, count: number): CpuShare => ({
  cpuSeconds: round(cpuSeconds, 2),
  cores: round(cpuSeconds / seconds, 2),
  perCpuSecond: round(count / cpuSeconds, 1),
});

export interface SekishoVariant extends RateResult {
  /** The whole bench process (CA, store, worker threads; the CSRs are read in the same process). */
  cpu: CpuShare;
  /**
   * The main thread alone (registry, serial reservations, audit chain, group
   * commit, messages to the workers): the part that does not spread over
   * cores, so 1 / (its CPU-seconds per issuance) bounds the rate.
   */
  mainThreadCpu?: CpuShare;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  concurrency: number;
  /** Worker threads of the issuance pool (0: everything on the main thread). */
  issuanceWorkers: number;
  meetsGoal: boolean;
  warmup: number;
  /**
   * Median time of a 4 KiB append + fsync in the CA home just before the run.
   * With synchronous=FULL every commit waits for one; on a shared virtual disk
   * it swings several-fold from minute to minute, and FULL figures with it.
   */
  fsyncMedianMs: number;
  /** Facility certificates in the store afterwards (warm-up included). */
  stored: number;
  auditEvents: number;
  auditProblems: number;
}

export interface IssuanceBenchReport {
  bench: 'issuance';
  goalPerSecond: number;
  node: string;
  opensslVersion: string;
  cpus: number;
  key: 'ecdsa-p256';
  csrs: { count: number; prepareSeconds: number };
  sekisho: Record<string, SekishoVariant> & { verify?: string };
  openssl: (RateResult & { processesInParallel: number; verify: string; note: string }) | { error: string };
  cfssl: (RateResult & { version: string; concurrency: number; failures: number; cpu?: CpuShare; clientCpu: CpuShare; verify: string; note: string }) | { skipped: string } | { error: string };
  ratios: {
    basis: string;
    vsOpenssl: number | null;
    vsCfssl: number | null;
    /** vsCfsslPerCpuSecond: issuances per sekisho CPU-second over signatures per cfssl server CPU-second (the steadier figure on a shared machine). */
    byVariant: Record<string, { vsOpenssl: number | null; vsCfssl: number | null; vsCfsslPerCpuSecond: number | null }>;
  };
}

const GOAL = 1000;
const PASSPHRASE = 'issuance-bench-passphrase';
const ACTOR = 'bench:issuance';

function facilityNumber(i: number): string {
  const nine = '011' + String(i).padStart(6, '0');
  return nine + checkDigit(nine);
}

const rate = (count: number, seconds: number, cutShort: boolean): RateResult => ({
  count,
  seconds: round(seconds, 3),
  perSecond: round(count / seconds, 1),
  ...(cutShort ? { cutShort: true } : {}),
});

/** Median milliseconds of a 4 KiB append + fsync in `dir` (100 rounds). */
function fsyncProbe(dir: string): number {
  const file = join(dir, '.fsync-probe');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4096, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      writeSync(fd, block, 0, block.length, i * block.length);
      fsyncSync(fd);
      times.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
  times.sort((a, b) => a - b);
  return round(times[times.length >> 1] as number, 3);
}

/** Splits `lines` into `parts` shell scripts (set -e) and runs them in parallel; resolves with the wall time. */
async function parallelScripts(dir: string, name: string, lines: string[], parts: number, timeoutMs: number): Promise<{ seconds: number; ok: boolean; detail: string }> {
  const scripts: string[] = [];
  for (let p = 0; p < parts; p++) {
    const mine = lines.filter((_, i) => i % parts === p);
    const file = join(dir, `${name}-${p}.sh`);
    writeFileSync(file, `set -e\n${mine.join('\n')}\n`);
    scripts.push(file);
  }
  const started = performance.now();
  const runs = scripts.map((s) => start('sh', [s], { timeoutMs }));
  const exits = await Promise.all(runs.map((r) => r.exited));
  const seconds = (performance.now() - started) / 1000;
  const bad = exits.find((e) => e.code !== 0);
  return {
    seconds,
    ok: !bad,
    detail: bad ? `${bad.timedOut ? `timed out after ${timeoutMs / 1000}s` : `exit ${bad.code ?? bad.signal}`}: ${bad.stderr.trim().slice(0, 500)}` : '',
  };
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function makeCsrs(dir: string, n: number): Promise<{ files: string[]; seconds: number }> {
  const csrDir = join(dir, 'csr');
  mkdirSync(csrDir);
  const cnf = join(dir, 'req.cnf');
  writeFileSync(cnf, '[ req ]\ndistinguished_name = dn\nprompt = no\nstring_mask = utf8only\n[ dn ]\nCN = unused\n');
  const files = Array.from({ length: n }, (_, i) => join(csrDir, `${i}.pem`));
  const lines = files.map(
    (f, i) =>
      `openssl req -config ${shq(cnf)} -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -sha256 -subj ${shq(`/C=JP/O=Facility ${i}/CN=${facilityNumber(i)}`)} -out ${shq(f)} 2>/dev/null`,
  );
  const r = await parallelScripts(dir, 'make-csrs', lines, Math.max(2, availableParallelism()), 600_000);
  if (!r.ok) throw new Error(`making CSRs with openssl req failed: ${r.detail}`);
  return { files, seconds: r.seconds };
}

async function sekishoVariant(
  dir: string,
  name: string,
  csrs: Buffer[],
  sync: 'FULL' | 'NORMAL',
  concurrency: number,
  maxSeconds: number,
  workers: number | 'cores' | 'auto',
): Promise<{ result: SekishoVariant; home: string; sampleDer: Buffer }> {
  const previous = process.env.SEKISHO_SQLITE_SYNC;
  process.env.SEKISHO_SQLITE_SYNC = sync;
  const home = join(dir, `home-${name}`);
  try {
    await initAuthority({ home, passphrase: PASSPHRASE, actor: ACTOR });
    const ca = await CertificateAuthority.open({ home, issuanceWorkers: workers });
    try {
      await ca.unlock(PASSPHRASE);
      const n = csrs.length;
      const warmNumber = facilityNumber(999_999);
      await ca.addFacility({ number: warmNumber, name: 'Warm-up Clinic' }, ACTOR);
      for (let i = 0; i < n; i++) await ca.addFacility({ number: facilityNumber(i), name: `Facility ${i}` }, ACTOR);

      // As `cert issue --csr` and `sekisho serve` do: the CSR goes to the CA as received; it is parsed and
      // its signature checked where the certificate is built (a worker thread of the issuance pool).
      const issueOne = async (csr: Buffer, number: string) => ca.issue({ profile: 'facility', facilityNumber: number, csr, via: 'csr', actor: ACTOR });
      // Warm-up (untimed), at the variant's own concurrency: the JIT, the statement cache, the WAL file, the
      // workers. 1,000 issuances (ISSUANCE_BENCH_WARMUP): with 100, whichever variant ran first still ran
      // partly unoptimized code and cost up to 1.5× the CPU per issuance of the same code run later.
      const warmup = Math.min(envNumber('ISSUANCE_BENCH_WARMUP', 1000), n);
      let w = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (w < warmup) await issueOne(csrs[w++ % n] as Buffer, warmNumber);
        }),
      );

      const fsyncMedianMs = fsyncProbe(home);
      let next = 0;
      let done = 0;
      let sampleDer: Buffer = Buffer.alloc(0);
      const started = performance.now();
      const cpuBefore = ownCpuSeconds();
      const mainBefore = processCpuSeconds(process.pid, process.pid);
      const deadline = started + maxSeconds * 1000;
      const worker = async () => {
        while (next < n && performance.now() < deadline) {
          const i = next++;
          const issued = await issueOne(csrs[i] as Buffer, facilityNumber(i));
          done++;
          sampleDer = issued.der;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const seconds = (performance.now() - started) / 1000;
      const cpu = cpuShare(ownCpuSeconds() - cpuBefore, seconds, done);
      const mainAfter = processCpuSeconds(process.pid, process.pid);
      const mainThreadCpu = mainBefore !== undefined && mainAfter !== undefined ? cpuShare(mainAfter - mainBefore, seconds, done) : undefined;

      const stored = (await ca.listCertificates({ status: 'issued' })).filter((c) => c.profile === 'facility').length;
      const audit = await ca.audit.verify();
      const result: SekishoVariant = {
        sqliteSynchronous: sync,
        concurrency,
        issuanceWorkers: ca.issuancePool?.size ?? 0,
        ...rate(done, seconds, done < n),
        cpu,
        ...(mainThreadCpu ? { mainThreadCpu } : {}),
        meetsGoal: done / seconds >= GOAL,
        warmup,
        fsyncMedianMs,
        stored,
        auditEvents: audit.events,
        auditProblems: audit.problems.length,
      };
      if (stored !== done + warmup) throw new Error(`${name}: the store holds ${stored} facility certificates, expected ${done + warmup}`);
      log(`issuance bench: sekisho ${name}: ${done} in ${result.seconds}s = ${result.perSecond}/s, ${cpu.cores} cores (main thread ${mainThreadCpu?.cores ?? '?'}) (fsync ${fsyncMedianMs} ms)`);
      return { result, home, sampleDer };
    } finally {
      await ca.close();
    }
  } finally {
    if (previous === undefined) delete process.env.SEKISHO_SQLITE_SYNC;
    else process.env.SEKISHO_SQLITE_SYNC = previous;
  }
}

/** The extensions sekisho writes on a facility certificate (no CRL/AIA URLs configured). */
const EXT_CNF = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = clientAuth',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid:always',
  '',
].join('\n');

function verifyPem(certFile: string, rootPem: string, issuingPem: string): string {
  const r = sh('openssl', ['verify', '-CAfile', rootPem, '-untrusted', issuingPem, '-purpose', 'sslclient', certFile]);
  return r.status === 0 && /: OK/.test(r.out) ? 'OK' : `FAILED: ${r.out.trim().slice(0, 300)}`;
}

async function runOpenssl(dir: string, csrFiles: string[], caPem: string, caKey: string, rootPem: string, issuingPem: string, maxSeconds: number): Promise<IssuanceBenchReport['openssl']> {
  const outDir = join(dir, 'openssl-out');
  mkdirSync(outDir);
  const ext = join(dir, 'ext.cnf');
  writeFileSync(ext, EXT_CNF);
  const lines = csrFiles.map((csr, i) => {
    const serial = randomBytes(9);
    serial[0] = 1 + ((serial[0] as number) % 0x7f);
    return `openssl x509 -req -in ${shq(csr)} -CA ${shq(caPem)} -CAkey ${shq(caKey)} -days 730 -sha256 -extfile ${shq(ext)} -set_serial 0x${serial.toString('hex')} -out ${shq(join(outDir, `${i}.pem`))} 2>/dev/null`;
  });
  const r = await parallelScripts(dir, 'openssl-sign', lines, 2, maxSeconds * 1000);
  const made = readdirSync(outDir).length;
  if (!r.ok && made === 0) return { error: `openssl x509 -req failed: ${r.detail}` };
  const verify = verifyPem(join(outDir, `${made - 1}.pem`), rootPem, issuingPem);
  const res = { ...rate(made, r.seconds, made < csrFiles.length), processesInParallel: 2, verify, note: 'one openssl x509 -req process per CSR; writes PEM files, no database or audit trail' };
  log(`issuance bench: openssl: ${made} in ${res.seconds}s = ${res.perSecond}/s`);
  return res;
}

function post(agent: Agent, port: number, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

async function runCfssl(
  dir: string,
  csrs: string[],
  caPem: string,
  caKey: string,
  rootPem: string,
  issuingPem: string,
  concurrency: number,
  maxSeconds: number,
): Promise<IssuanceBenchReport['cfssl']> {
  const which = sh('sh', ['-c', 'command -v cfssl']);
  if (which.status !== 0) return { skipped: 'cfssl is not installed (apt-get install -y golang-cfssl)' };
  const versionOut = sh('cfssl', ['version']).out;
  const version = /Version:\s*(\S+)/.exec(versionOut)?.[1] ?? versionOut.trim().split('\n')[0] ?? 'unknown';
  const config = join(dir, 'cfssl.json');
  writeFileSync(config, JSON.stringify({ signing: { default: { expiry: '17520h', usages: ['digital signature', 'client auth'] } } }));
  const port = await freePort();
  const logFile = join(dir, 'cfssl.log');
  const logFd = openSync(logFile, 'w');
  // -loglevel 3 (errors only): cfssl would otherwise log every request, which only slows it down.
  const server = start('cfssl', ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', caPem, '-ca-key', caKey, '-config', config, '-loglevel', '3'], {
    timeoutMs: (maxSeconds + 120) * 1000,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let exited = false;
  void server.exited.then(() => (exited = true));
  try {
    const readyBy = performance.now() + 30_000;
    while (!(await canConnect(port))) {
      if (exited) return { error: `cfssl serve exited at start: ${readFileSync(logFile, 'utf8').trim().slice(0, 500)}` };
      if (performance.now() > readyBy) return { error: 'cfssl serve did not listen within 30 s' };
      await new Promise((r) => setTimeout(r, 100));
    }
    const signOne = async (csr: string): Promise<string> => {
      const r = await post(agent, port, '/api/v1/cfssl/sign', JSON.stringify({ certificate_request: csr }));
      const parsed = JSON.parse(r.body) as { success?: boolean; result?: { certificate?: string }; errors?: { message?: string }[] };
      if (r.status !== 200 || !parsed.success || !parsed.result?.certificate) throw new Error(`cfssl sign: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
      return parsed.result.certificate;
    };
    // Warm-up (untimed), and a first request that must succeed.
    let sample = '';
    try {
      for (let i = 0; i < Math.min(50, csrs.length); i++) sample = await signOne(csrs[i] as string);
    } catch (e) {
      return { error: (e as Error).message };
    }
    const n = csrs.length;
    let next = 0;
    let done = 0;
    let failures = 0;
    let firstFailure = '';
    const pid = server.child.pid;
    const serverCpuBefore = pid === undefined ? undefined : processCpuSeconds(pid);
    const clientCpuBefore = ownCpuSeconds();
    const started = performance.now();
    const deadline = started + maxSeconds * 1000;
    const worker = async () => {
      while (next < n && performance.now() < deadline && failures < 100) {
        const i = next++;
        try {
          sample = await signOne(csrs[i] as string);
          done++;
        } catch (e) {
          failures++;
          firstFailure ||= (e as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = (performance.now() - started) / 1000;
    const serverCpuAfter = pid === undefined ? undefined : processCpuSeconds(pid);
    const clientCpu = cpuShare(ownCpuSeconds() - clientCpuBefore, seconds, done);
    const sampleFile = join(dir, 'cfssl-sample.pem');
    writeFileSync(sampleFile, sample);
    const res = {
      ...rate(done, seconds, done + failures < n),
      version,
      concurrency,
      failures,
      ...(serverCpuBefore !== undefined && serverCpuAfter !== undefined ? { cpu: cpuShare(serverCpuAfter - serverCpuBefore, seconds, done) } : {}),
      clientCpu,
      verify: verifyPem(sampleFile, rootPem, issuingPem),
      note: `cfssl serve, POST /api/v1/cfssl/sign over keep-alive HTTP on 127.0.0.1; no database configured${firstFailure ? `; first failure: ${firstFailure}` : ''}`,
    };
    log(`issuance bench: cfssl: ${done} in ${res.seconds}s = ${res.perSecond}/s, server ${res.cpu?.cores ?? '?'} cores, client ${clientCpu.cores} cores`);
    return res;
  } finally {
    agent.destroy();
    server.kill();
    await server.exited;
  }
}

export async function main(options: IssuanceBenchOptions = {}): Promise<IssuanceBenchReport> {
  const n = Math.floor(options.n ?? envNumber('ISSUANCE_BENCH_N', 2000));
  const concurrency = Math.floor(options.concurrency ?? envNumber('ISSUANCE_BENCH_CONCURRENCY', 16));
  const opensslN = Math.min(n, Math.floor(options.opensslN ?? envNumber('ISSUANCE_BENCH_OPENSSL_N', 1000)));
  const maxSeconds = options.maxSeconds ?? envNumber('ISSUANCE_BENCH_MAX_S', 300);
  // As `sekisho serve` runs ('auto': no workers on 2 cores or fewer, one per core above). ISSUANCE_BENCH_WORKERS=cores|N|0 sets it.
  const workersEnv = process.env.ISSUANCE_BENCH_WORKERS;
  const workers = options.workers ?? (workersEnv === undefined || workersEnv === '' || workersEnv === 'auto' ? 'auto' : workersEnv === 'cores' ? 'cores' : Number(workersEnv));
  const pooled = issuanceWorkerCount(workers) > 0;
  const tmp = tempDir('sekisho-issuance-bench-');
  try {
    const dir = tmp.path;
    log(`issuance bench: making ${n} P-256 CSRs with openssl req`);
    const made = await makeCsrs(dir, n);
    const csrs = made.files.map((f) => readFileSync(f, 'utf8'));
    const csrBytes = csrs.map((c) => Buffer.from(c));

    const all: [string, 'FULL' | 'NORMAL', number, number | 'cores' | 'auto'][] = [
      ['full-sequential', 'FULL', 1, workers],
      [`full-concurrent${concurrency}`, 'FULL', concurrency, workers],
      ['normal-sequential', 'NORMAL', 1, workers],
      [`normal-concurrent${concurrency}`, 'NORMAL', concurrency, workers],
      // The basis again the other way, at the same load: with a worker per core where the basis has none, or on the main thread alone.
      pooled ? [`full-concurrent${concurrency}-main-thread`, 'FULL', concurrency, 0] : [`full-concurrent${concurrency}-workers`, 'FULL', concurrency, 'cores'],
    ];
    const only = (process.env.ISSUANCE_BENCH_VARIANTS ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    const variants = only.length ? all.filter(([name]) => only.includes(name)) : all;
    if (variants.length === 0) throw new Error(`ISSUANCE_BENCH_VARIANTS names none of ${all.map(([n]) => n).join(', ')}`);
    const sekisho: Record<string, SekishoVariant> & { verify?: string } = {};
    let firstHome = '';
    let sample: Buffer = Buffer.alloc(0);
    for (const [name, sync, c, w] of variants) {
      const v = await sekishoVariant(dir, name, csrBytes, sync, c, maxSeconds, w);
      sekisho[name] = v.result;
      if (!firstHome) {
        firstHome = v.home;
        sample = v.sampleDer;
      }
    }
    const rootPem = join(firstHome, 'ca', 'root.pem');
    const issuingPem = join(firstHome, 'ca', 'issuing.pem');
    const sampleFile = join(dir, 'sekisho-sample.pem');
    writeFileSync(sampleFile, certificateToPem(sample));
    sekisho.verify = verifyPem(sampleFile, rootPem, issuingPem);

    // The same issuing key, decrypted to a plain PEM file for the peers.
    const issuingKey = await readKeyFile(join(firstHome, 'ca', 'issuing.key.json'), PASSPHRASE);
    const keyFile = join(dir, 'issuing.key');
    writeFileSync(keyFile, issuingKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });

    log(`issuance bench: openssl x509 -req for ${opensslN} CSRs, 2 at a time`);
    const openssl = await runOpenssl(dir, made.files.slice(0, opensslN), issuingPem, keyFile, rootPem, issuingPem, maxSeconds);
    log(`issuance bench: cfssl serve, ${n} sign requests, ${concurrency} in flight`);
    let cfssl: IssuanceBenchReport['cfssl'];
    try {
      cfssl = await runCfssl(dir, csrs, issuingPem, keyFile, rootPem, issuingPem, concurrency, maxSeconds);
    } catch (e) {
      cfssl = { error: (e as Error).message };
    }

    const peerRate = (r: object): number | null => ('perSecond' in r && typeof r.perSecond === 'number' && r.perSecond > 0 ? r.perSecond : null);
    const o = peerRate(openssl);
    const c = peerRate(cfssl);
    const byVariant: IssuanceBenchReport['ratios']['byVariant'] = {};
    const cfsslCpu = 'cpu' in cfssl && cfssl.cpu ? cfssl.cpu.perCpuSecond : null;
    for (const [name] of variants) {
      const ours = sekisho[name] as SekishoVariant;
      byVariant[name] = {
        vsOpenssl: o ? round(ours.perSecond / o, 2) : null,
        vsCfssl: c ? round(ours.perSecond / c, 2) : null,
        vsCfsslPerCpuSecond: cfsslCpu ? round(ours.cpu.perCpuSecond / cfsslCpu, 2) : null,
      };
    }
    const basis = variants.some(([name]) => name === `full-concurrent${concurrency}`) ? `full-concurrent${concurrency}` : variants[0]![0];
    return {
      bench: 'issuance',
      goalPerSecond: GOAL,
      node: process.version,
      opensslVersion: opensslVersion(),
      cpus: availableParallelism(),
      key: 'ecdsa-p256',
      csrs: { count: n, prepareSeconds: round(made.seconds, 2) },
      sekisho,
      openssl,
      cfssl,
      ratios: { basis: `sekisho ${basis} (default synchronous=FULL) perSecond / peer perSecond`, vsOpenssl: byVariant[basis]?.vsOpenssl ?? null, vsCfssl: byVariant[basis]?.vsCfssl ?? null, byVariant },
    };
  } finally {
    tmp.remove();
  }
}

if (invokedDirectly(import.meta.url)) runDirectly(() => main());
