/**
 * A real syslog collector for tests: rsyslogd from Debian, run unprivileged in
 * the foreground with a configuration of its own: RFC 5425 on imtcp with the
 * gtls driver and mutual X.509 authentication (its server certificate issued
 * by the sekisho CA), RFC 5426 on imudp, and every message written raw, one
 * per line, to a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { join } from 'node:path';
import type { RecordedAuditEvent } from '../audit/index.js';

export interface Rsyslog {
  tcpPort: number;
  udpPort: number;
  /** Messages received so far (raw, one per line). */
  lines(): string[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** `files`: PEM paths for rsyslog's own server certificate and key, and the CA it trusts clients from. */
export async function rsyslogCollector(dir: string, files: { cert: string; key: string; ca: string }): Promise<Rsyslog> {
  mkdirSync(join(dir, 'work'), { recursive: true });
  const tcpPort = await freePort();
  const udpPort = await freePort();
  const out = join(dir, 'messages.log');
  const conf = join(dir, 'rsyslog.conf');
  const pidFile = join(dir, 'rsyslogd.pid');
  writeFileSync(
    conf,
    `global(
  workDirectory="${join(dir, 'work')}"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="${files.ca}"
  DefaultNetstreamDriverCertFile="${files.cert}"
  DefaultNetstreamDriverKeyFile="${files.key}"
  maxMessageSize="64k"
)
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" address="127.0.0.1" port="${tcpPort}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="${udpPort}")
template(name="raw" type="string" string="%inputname% %rawmsg%\\n")
action(type="omfile" file="${out}" template="raw" flushOnTXEnd="on" asyncWriting="off")
`,
  );
  let child: ChildProcess | undefined;
  let stderr = '';
  const r: Rsyslog = {
    tcpPort,
    udpPort,
    lines: () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : []),
    async start() {
      stderr = '';
      child = spawn('rsyslogd', ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
      // Listening once a TCP connect succeeds.
      for (let i = 0; i < 200; i++) {
        if (child.exitCode !== null) throw new Error(`rsyslogd exited: ${stderr}`);
        const ok = await new Promise<boolean>((res) => {
          const s = createConnection(tcpPort);
          s.once('connect', () => (s.destroy(), res(true)));
          s.once('error', () => res(false));
        });
        if (ok) return;
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error(`rsyslogd did not listen: ${stderr}`);
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((res) => c.once('exit', res));
      c.kill('SIGTERM');
      await exited;
    },
  };
  return r;
}

function createConnection(port: number) {
  return netConnect({ host: '127.0.0.1', port });
}

/**
 * A stand-in for the ATNA formatter (RFC 5424 with a JSON body carrying the
 * event id), used by tests until src/audit/syslog-frame.ts is merged.
 */
export function placeholderSyslogLine(event: RecordedAuditEvent): Buffer {
  const id = String(event.details?.eventId ?? '');
  const body = JSON.stringify({ id, action: event.action, actor: event.actor, outcome: event.outcome, seq: event.seq, n: event.details?.n, signature: event.details?.signature, headHash: event.details?.headHash });
  return Buffer.from(`<110>1 ${event.at} localhost sekisho - ${event.action} - ${body}`);
}

/** The event ids in the lines a collector received (from one input: imtcp or imudp), with how often each came. */
export function countIds(lines: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) {
    const i = l.indexOf('{');
    if (i < 0) continue;
    const id = (JSON.parse(l.slice(i)) as { id: string }).id;
    m.set(id, (m.get(id) ?? 0) + 1);
  }
  return m;
}
