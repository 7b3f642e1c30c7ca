/**
 * `npm run bench`: runs the benchmarks in sequence and prints ONE JSON
 * document to stdout (progress goes to stderr):
 *
 *   { "machine": { cpus, cpuModel, node, openssl, … }, "results": { crl, issuance, bulk, scan, gateway } }
 *
 * `npm run bench -- crl issuance` runs only the named ones (`national`, the
 * national-size store, runs only when named); `--out FILE` also
 * writes the document to FILE. npm prints its own "> sekisho@… bench" banner
 * on stdout: use `npm run -s bench` (or the file) for pure JSON. A benchmark that
 * throws is reported as { "error": … } and the exit code is 1; the others
 * still run. Each benchmark removes its temp directories and stops what it
 * started, also on failure.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { main as crl } from './crl.js';
import { main as issuance } from './issuance.js';
import { main as bulk } from './bulk.js';
import { main as scan } from './scan.js';
import { main as gateway } from './gateway.js';
import { main as national } from './national.js';
import { invokedDirectly, log, opensslVersion, round, sh, withRuntime } from './support.js';

const BENCHES = { crl, issuance, bulk, scan, gateway, national } as const satisfies Record<string, () => Promise<unknown>>;
type BenchName = keyof typeof BENCHES;
const ON_REQUEST: readonly BenchName[] = ['national'];

export interface BenchRun {
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    platform: string;
    node: string;
    openssl: string;
    /** 1-minute load average before each benchmark: other work on the machine skews every figure. */
    loadAverage1m: Partial<Record<BenchName | 'end', number>>;
    /** `git describe --always --dirty` of the working tree measured, when git is there. */
    source?: string;
  };
  results: Partial<Record<BenchName, unknown>>;
  seconds: Partial<Record<BenchName, number>>;
}

function sourceVersion(): { source?: string } {
  const r = sh('git', ['describe', '--always', '--dirty'], { timeoutMs: 10_000, cwd: fileURLToPath(new URL('../..', import.meta.url)) });
  return r.status === 0 ? { source: r.out.trim() } : {};
}

export interface RunArgs {
  names: string[];
  out?: string;
}

export function parseArgs(argv: string[]): RunArgs {
  const names: string[] = [];
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--out') {
      out = argv[++i];
      if (!out) throw new Error('--out needs a file name');
    } else if (a.startsWith('--out=')) out = a.slice('--out='.length);
    else if (a.trim() !== '') names.push(a);
  }
  return { names, ...(out ? { out } : {}) };
}

export async function run(asked: string[]): Promise<{ report: BenchRun; failed: boolean }> {
  const names = Object.keys(BENCHES) as BenchName[];
  const unknown = asked.filter((a) => !(names as string[]).includes(a));
  if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}; known: ${names.join(', ')}`);
  // national takes minutes and a PostgreSQL server: only when named.
  const selected = asked.length ? names.filter((n) => asked.includes(n)) : names.filter((n) => !ON_REQUEST.includes(n));

  const report: BenchRun = {
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      platform: `${platform()} ${release()}`,
      node: process.version,
      openssl: `${process.versions.openssl} (Node.js); peers: ${opensslVersion()}`,
      loadAverage1m: {},
      ...sourceVersion(),
    },
    results: {},
    seconds: {},
  };
  let failed = false;
  for (const name of selected) {
    report.machine.loadAverage1m[name] = round(loadavg()[0] ?? 0, 2);
    log(`bench: ${name} … (load average ${report.machine.loadAverage1m[name]})`);
    const started = performance.now();
    try {
      report.results[name] = withRuntime(await BENCHES[name]());
    } catch (e) {
      failed = true;
      report.results[name] = { error: e instanceof Error ? e.message : String(e) };
      log(`bench: ${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    report.seconds[name] = round((performance.now() - started) / 1000, 1);
    log(`bench: ${name} done in ${report.seconds[name]}s`);
  }
  report.machine.loadAverage1m.end = round(loadavg()[0] ?? 0, 2);
  return { report, failed };
}

if (invokedDirectly(import.meta.url)) {
  let args: RunArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  run(args.names).then(
    ({ report, failed }) => {
      const text = `${JSON.stringify(report, null, 2)}\n`;
      if (args.out) writeFileSync(args.out, text);
      process.stdout.write(text);
      if (failed) process.exitCode = 1;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
