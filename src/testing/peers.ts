/**
 * Test support for real peers (openssl, PostgreSQL, …). A test that needs an
 * absent peer skips with a reason locally; under CI (CI=true) the absence is a
 * failure, so CI can never pass by skipping.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export const underCi = process.env.CI === 'true';

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Returns true when the peer is there; otherwise skips (locally) or fails (CI). */
export function needPeer(t: TestContext, available: boolean, what: string): boolean {
  if (available) return true;
  if (underCi) throw new Error(`${what} is required under CI but is not available (.ci/run installs it)`);
  t.skip(`${what} is not available on this machine`);
  return false;
}

export function needCommand(t: TestContext, cmd: string): boolean {
  return needPeer(t, hasCommand(cmd), `the command "${cmd}"`);
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], input?: string | Buffer, env?: NodeJS.ProcessEnv): RunResult {
  const r = spawnSync(cmd, args, { input, env: env ?? process.env, maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
}

/** Like run(), without blocking the event loop (for peers talking to a server in this process). */
export function runAsync(cmd: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    // A peer may exit without reading its input (EPIPE); its exit status says what happened.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
