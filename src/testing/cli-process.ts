/**
 * A long-running sekisho command (gateway, serve, up) as an operator starts
 * it: a separate process whose --json start-up summary arrives on stdout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SEKISHO_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface RunningSekisho<T> {
  child: ChildProcessWithoutNullStreams;
  /** The start-up summary (--json), once printed; rejects when the process exits first. */
  summary: Promise<T>;
  stderr(): string;
  /** Resolves with the exit status. */
  exited: Promise<number | null>;
  /** Sends the signal (if still running) and waits for the exit. */
  stop(signal: NodeJS.Signals): Promise<number | null>;
}

/**
 * `prefix`: a command that runs sekisho, e.g. `['prlimit', '--nofile=256:256', '--']`
 * to start it under a lowered file-descriptor limit.
 */
export function startSekisho<T = unknown>(args: string[], o: { cwd?: string; env: NodeJS.ProcessEnv; prefix?: string[] }): RunningSekisho<T> {
  const [cmd, ...pre] = [...(o.prefix ?? []), process.execPath];
  const child = spawn(cmd!, [...pre, SEKISHO_MAIN, ...args], { ...(o.cwd ? { cwd: o.cwd } : {}), env: o.env });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const summary = new Promise<T>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        /* not complete yet */
      }
    });
    void exited.then((code) => reject(new Error(`sekisho ${args[0]} exited with ${code} before its summary: ${err}`)));
  });
  summary.catch(() => undefined); // a caller that never awaits it must not see an unhandled rejection
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return {
    child,
    summary,
    stderr: () => err,
    exited,
    stop(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
