/**
 * Bulk delivery benchmark: `sekisho cert bulk` for N facilities with RSA-2048
 * keys, against the bound set by `openssl genpkey` making the same N keys on
 * every core. Run `npx tsc -p tsconfig.json && node dist/bench/bulk.js`;
 * prints one JSON document. `main()` returns the same document for
 * bench/run.ts.
 *
 * Ours: the real CLI (`node dist/src/cli/main.js cert bulk --csv F --out DIR
 * --key rsa-2048 --json`, default concurrency) in a temp home made by
 * initAuthority; the wall time of that process, so it includes start-up,
 * unlocking the CA key, registering the facilities, key generation, issuance,
 * PKCS#12 building and writing every file.
 *
 * Bound: `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`, one
 * shell loop per core (2 on the reference machine), each making its share of
 * the N keys into files.
 *
 * Both sides also report user + system CPU seconds (the shell's `times` of
 * its children) and `cpuRatio`: on a machine others are using, wall times
 * swing with their load, CPU seconds much less.
 *
 * RSA key generation time varies a lot from key to key (prime search), so
 * small N give noisy ratios. BULK_BENCH_N (default 1000) shrinks the run;
 * BULK_BENCH_TIMEOUT_S (default 900) bounds each side.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initAuthority } from '../src/ca/index.js';
import { checkDigit } from '../src/policy/index.js';
import { envNumber, invokedDirectly, log, opensslVersion, round, runDirectly, start, tempDir } from './support.js';

export interface BulkBenchOptions {
  n?: number;
  timeoutSeconds?: number;
}

export interface BulkBenchReport {
  bench: 'bulk';
  node: string;
  opensslVersion: string;
  cpus: number;
  n: number;
  keyType: 'rsa-2048';
  goalRatio: 1.2;
  sekisho: {
    seconds: number | null;
    /** User + system CPU seconds of the CLI process (all its threads). */
    cpuSeconds: number | null;
    finished: boolean;
    issued: number;
    errors: number;
    p12Files: number;
    perSecond: number | null;
    command: string;
    note?: string;
  };
  openssl: {
    seconds: number | null;
    /** User + system CPU seconds of all the openssl processes. */
    cpuSeconds: number | null;
    finished: boolean;
    keys: number;
    processesInParallel: number;
    perSecond: number | null;
    command: string;
    note?: string;
  };
  /** sekisho seconds / openssl seconds (goal ≤ 1.2). */
  ratio: number | null;
  /** sekisho CPU seconds / openssl CPU seconds: the work ratio, steadier than `ratio` on a busy machine. */
  cpuRatio: number | null;
  meetsGoal: boolean | null;
}

const PASSPHRASE = 'bulk-bench-passphrase';

const nullableRound = (x: number | null) => (x === null ? null : round(x, 2));

function facilityNumber(i: number): string {
  const nine = '131' + String(i).padStart(6, '0');
  return nine + checkDigit(nine);
}

function countFiles(dir: string, suffix: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith(suffix)).length;
}

/**
 * The shell's `times` (printed last on stderr by the wrappers below): its
 * second line is the user and system CPU time of the shell's finished children.
 * CPU seconds say how much work each side did, which other load on the machine
 * disturbs far less than it disturbs wall time.
 */
const TIMES = 'rc=$?; times >&2; exit $rc';
function childCpuSeconds(stderr: string): number | null {
  const lines = stderr.trim().split('\n').slice(-2);
  const m = [...(lines[1] ?? '').matchAll(/(\d+)m([\d.]+)s/g)];
  if (m.length !== 2) return null;
  return m.reduce((sum, x) => sum + Number(x[1]) * 60 + Number(x[2]), 0);
}

/** dist/src/cli/main.js, next to this file's dist/bench/. */
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export async function main(options: BulkBenchOptions = {}): Promise<BulkBenchReport> {
  const n = Math.floor(options.n ?? envNumber('BULK_BENCH_N', 1000));
  const timeoutS = options.timeoutSeconds ?? envNumber('BULK_BENCH_TIMEOUT_S', 900);
  const cores = Math.max(1, availableParallelism());
  const tmp = tempDir('sekisho-bulk-bench-');
  try {
    const dir = tmp.path;
    const home = join(dir, 'home');
    await initAuthority({ home, passphrase: PASSPHRASE, actor: 'bench:bulk' });
    const csv = join(dir, 'facilities.csv');
    const rows = ['number,name', ...Array.from({ length: n }, (_, i) => `${facilityNumber(i)},医療法人ベンチ会 第${i}診療所`)];
    writeFileSync(csv, rows.join('\r\n') + '\r\n');
    const outDir = join(dir, 'delivery');

    // ---- ours: the CLI ----
    const args = [CLI, 'cert', 'bulk', '--csv', csv, '--out', outDir, '--key', 'rsa-2048', '--json'];
    log(`bulk bench: sekisho cert bulk, ${n} facilities, RSA-2048`);
    const ours = await start('sh', ['-c', `"$0" "$@"; ${TIMES}`, process.execPath, ...args], {
      timeoutMs: timeoutS * 1000,
      env: { ...process.env, SEKISHO_HOME: home, SEKISHO_PASSPHRASE: PASSPHRASE, SEKISHO_ACTOR: 'bench:bulk' },
    }).exited;
    let issued = 0;
    let errors = 0;
    let note: string | undefined;
    try {
      const out = JSON.parse(ours.stdout) as { issued?: number; errors?: number };
      issued = out.issued ?? 0;
      errors = out.errors ?? 0;
    } catch {
      note = `no JSON from the CLI: ${(ours.stderr || ours.stdout).trim().slice(0, 500)}`;
    }
    const p12Files = countFiles(outDir, '.p12');
    const oursFinished = ours.code === 0 && issued === n && p12Files === n;
    if (ours.timedOut) note = `killed after ${timeoutS}s`;
    else if (!oursFinished && !note) note = `exit ${ours.code ?? ours.signal}, issued ${issued}, errors ${errors}: ${ours.stderr.trim().slice(0, 500)}`;
    const sekisho: BulkBenchReport['sekisho'] = {
      seconds: oursFinished ? round(ours.seconds, 2) : null,
      cpuSeconds: oursFinished ? nullableRound(childCpuSeconds(ours.stderr)) : null,
      finished: oursFinished,
      issued,
      errors,
      p12Files,
      perSecond: oursFinished ? round(n / ours.seconds, 1) : null,
      command: 'sekisho cert bulk --csv F --out DIR --key rsa-2048 --json (default concurrency)',
      ...(note ? { note } : {}),
    };
    log(`bulk bench: sekisho ${sekisho.seconds ?? note}s, ${sekisho.cpuSeconds} CPU s`);

    // ---- bound: openssl genpkey, one loop per core ----
    const keyDir = join(dir, 'openssl-keys');
    const shares = Array.from({ length: cores }, (_, p) => Math.floor(n / cores) + (p < n % cores ? 1 : 0));
    log(`bulk bench: openssl genpkey RSA-2048 x ${n}, ${cores} loops in parallel`);
    const startedAll = performance.now();
    const loops = shares.map((count, p) =>
      start(
        'sh',
        [
          '-c',
          `mkdir -p "$1" && i=0 && while [ "$i" -lt "$2" ]; do openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1/$3-$i.pem" 2>/dev/null || break; i=$((i+1)); done; [ "$i" -eq "$2" ]; ${TIMES}`,
          'genpkey-loop',
          keyDir,
          String(count),
          String(p),
        ],
        { timeoutMs: timeoutS * 1000 },
      ),
    );
    const exits = await Promise.all(loops.map((l) => l.exited));
    const theirSeconds = (performance.now() - startedAll) / 1000;
    const keys = countFiles(keyDir, '.pem');
    const bad = exits.find((e) => e.code !== 0);
    const theirsFinished = !bad && keys === n;
    const cpuParts = exits.map((e) => childCpuSeconds(e.stderr));
    const theirCpu = cpuParts.every((x) => x !== null) ? cpuParts.reduce((a: number, b) => a + (b as number), 0) : null;
    const openssl: BulkBenchReport['openssl'] = {
      seconds: theirsFinished ? round(theirSeconds, 2) : null,
      cpuSeconds: theirsFinished ? nullableRound(theirCpu) : null,
      finished: theirsFinished,
      keys,
      processesInParallel: cores,
      perSecond: theirsFinished ? round(n / theirSeconds, 1) : null,
      command: `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048, ${cores} shell loops in parallel`,
      ...(bad ? { note: bad.timedOut ? `killed after ${timeoutS}s` : `exit ${bad.code ?? bad.signal}: ${bad.stderr.trim().slice(0, 300)}` } : {}),
    };
    log(`bulk bench: openssl ${openssl.seconds ?? openssl.note}s, ${openssl.cpuSeconds} CPU s`);

    const ratio = sekisho.seconds !== null && openssl.seconds !== null ? round(sekisho.seconds / openssl.seconds, 2) : null;
    const cpuRatio = sekisho.cpuSeconds && openssl.cpuSeconds ? round(sekisho.cpuSeconds / openssl.cpuSeconds, 2) : null;
    return {
      bench: 'bulk',
      node: process.version,
      opensslVersion: opensslVersion(),
      cpus: cores,
      n,
      keyType: 'rsa-2048',
      goalRatio: 1.2,
      sekisho,
      openssl,
      ratio,
      cpuRatio,
      meetsGoal: ratio === null ? null : ratio <= 1.2,
    };
  } finally {
    tmp.remove();
  }
}

if (invokedDirectly(import.meta.url)) runDirectly(() => main());
