/**
 * Shared plumbing for the benchmarks: temp directories and child processes
 * that are removed / killed at the end even when a benchmark throws or the
 * process is interrupted, bounded shell runs, rounding, and the "run directly"
 * check.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// ---- cleanup on exit / signals ----

const cleanups = new Set<() => void>();
let installed = false;

function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort: the other cleanups still run
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runCleanups);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}, cleaning up\n`);
      runCleanups();
      process.exit(code);
    });
  }
}

/** Runs `fn` (synchronously) at process exit or on SIGINT/SIGTERM unless the returned disposer ran first. */
export function onCleanup(fn: () => void): () => void {
  install();
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    cleanups.delete(once);
    fn();
  };
  cleanups.add(once);
  return once;
}

export interface TempDir {
  path: string;
  /** Removes the directory (idempotent). */
  remove(): void;
}

/** A fresh directory under the OS temp dir, removed by `remove()` or at exit at the latest. */
export function tempDir(prefix: string): TempDir {
  const path = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const remove = onCleanup(() => rmSync(path, { recursive: true, force: true }));
  return { path, remove };
}

// ---- child processes ----

export interface ShResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
  seconds: number;
  out: string;
}

/** Runs a command to completion (killed after `timeoutMs`); stdout and stderr together in `out`. */
export function sh(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): ShResult {
  const started = performance.now();
  const r = spawnSync(cmd, args, {
    maxBuffer: 256 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 600_000,
    killSignal: 'SIGKILL',
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  const seconds = (performance.now() - started) / 1000;
  return {
    status: r.status,
    signal: r.signal,
    ...(r.error ? { error: r.error } : {}),
    seconds,
    out: `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}`,
  };
}

export function mustSh(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  const r = sh(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}): ${r.out.trim().slice(0, 2000)}`);
  return r.out;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Wall time from spawn to exit. */
  seconds: number;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export interface Started {
  child: ChildProcess;
  exited: Promise<Exit>;
  /** SIGKILL to the child's whole process group (it was started detached), if still running. */
  kill(): void;
}

/**
 * Starts a command in a process group of its own, so the group (a shell and
 * the openssl it runs, say) can be killed on timeout or at exit. Output is
 * collected (capped at 16 MiB per stream) unless stdio says otherwise.
 */
export function start(cmd: string, args: string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string; stdio?: SpawnOptions['stdio'] }): Started {
  const started = performance.now();
  const child = spawn(cmd, args, {
    detached: true,
    stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  let running = true;
  const kill = () => {
    if (!running || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const disposeCleanup = onCleanup(kill);
  const cap = 16 * 1024 * 1024;
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (stdout.length < cap) stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < cap) stderr += d.toString();
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, opts.timeoutMs);
  const exited = new Promise<Exit>((resolve) => {
    child.on('error', (e) => {
      stderr += `spawn error: ${e.message}`;
    });
    child.on('close', (code, signal) => {
      running = false;
      clearTimeout(timer);
      disposeCleanup();
      resolve({ code, signal, seconds: (performance.now() - started) / 1000, timedOut, stdout, stderr });
    });
  });
  return { child, exited, kill };
}

// ---- misc ----

export const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

export function opensslVersion(): string {
  return mustSh('openssl', ['version']).trim();
}

/**
 * The runtime a figure was measured on, printed beside every benchmark's
 * result: the Node.js version, the OpenSSL it links (sekisho's TLS and
 * crypto), and the OpenSSL of the command-line peers (openssl s_time, nginx).
 */
export function runtimeVersions(): { node: string; nodeOpenssl: string; peerOpenssl: string } {
  return { node: process.version, nodeOpenssl: process.versions.openssl, peerOpenssl: opensslVersion() };
}

/** A benchmark's result with the runtime it was measured on first. */
export function withRuntime(result: unknown): unknown {
  return result !== null && typeof result === 'object' && !Array.isArray(result) ? { runtime: runtimeVersions(), ...result } : { runtime: runtimeVersions(), result };
}

export function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not "${v}"`);
  return n;
}

/** Whether the module at `url` is the script node was started with. */
export function invokedDirectly(url: string): boolean {
  return process.argv[1] !== undefined && url === pathToFileURL(realpathSync(process.argv[1])).href;
}

/** `main().then(print JSON)` for a benchmark run as a script. */
export function runDirectly(main: () => Promise<unknown>): void {
  main().then(
    (report) => process.stdout.write(`${JSON.stringify(withRuntime(report), null, 2)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}

export const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
