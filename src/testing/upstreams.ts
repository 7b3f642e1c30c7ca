/**
 * Real upstreams for the gateway's HTTP and TCP modes, the way a service
 * center runs them: nginx (normalizes the path, merges slashes, decodes
 * percent-encoding before choosing a location), a Python WSGI application
 * under the stdlib's wsgiref (folds header names into CGI variables), and a
 * TCP service that answers only once the client has finished sending.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './stores.js';
import { accepts, freePort } from './tls-servers.js';

export interface RunningUpstream {
  port: number;
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
let hooked = false;
function track(child: ChildProcess): void {
  running.add(child);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const c of running) if (c.pid) killGroup(c.pid);
    });
  }
}
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL'); // detached: the leader of its own group (nginx master + worker)
  } catch {
    /* gone */
  }
}

async function waitFor(what: string, ready: () => Promise<boolean>, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await ready())) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited before it listened:\n${logs()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen within 15 s:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      killGroup(child.pid!);
      await exited;
    }
    running.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * nginx as a plain-HTTP upstream. Each location answers
 * `route=<name> uri=<$uri>`: which location nginx chose, for the path it
 * normalized. `locations` maps a location prefix to its name.
 */
export async function nginxUpstream(locations: Record<string, string>): Promise<RunningUpstream> {
  const dir = tempDir('sekisho-nginx-upstream-');
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, `${t}_temp`));
  const port = await freePort();
  const conf = [
    process.getuid?.() === 0 ? 'user root;' : '# not root',
    'worker_processes 1;',
    'events { worker_connections 64; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path "${join(dir, `${t}_temp`)}";`),
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    server_name localhost;',
    '    default_type text/plain;',
    ...Object.entries(locations).map(([prefix, name]) => `    location ${prefix} { return 200 "route=${name} uri=$uri\\n"; }`),
    '  }',
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), conf + '\n');
  const errorLog = join(dir, 'error.log');
  const child = spawn('nginx', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${errorLog} notice;`], { cwd: dir, detached: true, stdio: 'ignore' });
  track(child);
  const logs = () => {
    try {
      return readFileSync(errorLog, 'utf8');
    } catch {
      return '';
    }
  };
  const close = stopper(child, dir);
  try {
    await waitFor('nginx', async () => /start worker process/.test(logs()) && (await accepts(port)), child, logs);
  } catch (e) {
    await close();
    throw e;
  }
  return { port, close };
}

const WSGI_APP = `
import json, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

def app(environ, start_response):
    body = json.dumps({k: v for k, v in environ.items() if isinstance(v, str)}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]

server = make_server('127.0.0.1', 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
`;

/** A WSGI application (Python stdlib wsgiref) that answers with its environ as JSON: what a CGI/WSGI upstream believes. */
export async function wsgiEchoUpstream(): Promise<RunningUpstream> {
  const dir = tempDir('sekisho-wsgi-upstream-');
  writeFileSync(join(dir, 'echo.py'), WSGI_APP);
  const child = spawn('python3', [join(dir, 'echo.py')], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const close = stopper(child, dir);
  try {
    await waitFor('wsgiref', async () => /^\d+\n/.test(out), child, () => out);
  } catch (e) {
    await close();
    throw e;
  }
  return { port: Number(/^(\d+)/.exec(out)![1]), close };
}

/**
 * A TCP service that reads until the client has finished sending (FIN), then
 * answers `got N bytes: …` and closes; a message that is just `PING\n` is
 * answered `PONG` at once, and closed.
 */
export async function replyAtEndUpstream(): Promise<RunningUpstream & { server: NetServer }> {
  const server = createNetServer({ allowHalfOpen: true }, (s) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => {
      parts.push(d);
      if (Buffer.concat(parts).toString() === 'PING\n') s.end('PONG\n');
    });
    s.on('end', () => {
      const all = Buffer.concat(parts);
      s.end(`got ${all.length} bytes: ${all.toString()}`);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, close: () => new Promise((r) => server.close(() => r())) };
}
