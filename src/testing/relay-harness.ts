import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { httpForwarder, type HttpForwarder, type HttpTimeouts } from '../gateway/http-forwarder.js';
import type { ClientIdentity } from '../gateway/client-identity.js';

/**
 * The gateway's HTTP relay without TLS, for tests of its framing: the relay
 * (gateway/http-forwarder.ts) serves plain TCP connections as if each were an
 * authenticated TLS connection of IDENTITY; the upstream is a raw TCP server
 * whose answers each test scripts, and which keeps every byte it received.
 */
export const IDENTITY: ClientIdentity = {
  profile: 'facility',
  facilityNumber: '0110113712',
  facilityName: 'ハーネス診療所',
  subject: 'CN=0110113712,O=harness',
  serial: '0a0b0c',
  fingerprint: 'ab'.repeat(32),
  issuer: 'CN=harness CA',
  notAfter: new Date('2100-01-01T00:00:00Z'),
  certificate: Buffer.from('certificate'),
  chain: [],
  pinned: false,
};

export interface ScriptedUpstream {
  port: number;
  /** Bytes received, per upstream connection, in order of connection. */
  received: string[];
  /** Closes the upstream's connections (a test starts on fresh ones). */
  dropConnections(): Promise<void>;
  /** Called on every read with the connection's bytes so far (latin1) and its index; answer with socket.write / end. */
  script: (sofar: string, socket: Socket, index: number) => void;
  close(): Promise<void>;
}

export async function scriptedUpstream(): Promise<ScriptedUpstream> {
  const sockets = new Set<Socket>();
  const up: ScriptedUpstream = {
    port: 0,
    received: [],
    script: () => undefined,
    dropConnections: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => setTimeout(r, 50));
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  const server: Server = createServer((s) => {
    sockets.add(s);
    const index = up.received.push('') - 1;
    s.on('data', (d: Buffer) => {
      up.received[index] += d.toString('latin1');
      up.script(up.received[index]!, s, index);
    });
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as AddressInfo).port;
  return up;
}

export interface RelayHarness {
  port: number;
  forwarder: HttpForwarder;
  requests: { status: number; method: string; url: string; path?: string }[];
  upstreamErrors: string[];
  /** The relay's side of each open client connection (what it has buffered for the client: `writableLength`). */
  clients: ReadonlySet<Socket>;
  close(): Promise<void>;
}

export async function relayHarness(upstreamPort: number, timeouts: Partial<HttpTimeouts> = {}): Promise<RelayHarness> {
  const requests: RelayHarness['requests'] = [];
  const upstreamErrors: string[] = [];
  const forwarder = httpForwarder({
    routes: [
      { path: '/', upstream: new URL(`http://127.0.0.1:${upstreamPort}`), allow: { anyone: true } },
      { path: '/closed/', upstream: new URL(`http://127.0.0.1:${upstreamPort}`), allow: { facilities: ['9999999999'] } },
    ],
    stateOf: () => ({ identity: IDENTITY }),
    timeouts: { headersTimeoutMs: 30_000, requestTimeoutMs: 300_000, idleTimeoutMs: 600_000, ...timeouts },
    onAccessDenied: () => undefined,
    onBadTarget: () => undefined,
    onRequest: (status, _s, method, url, _id, path) => requests.push({ status, method, url, ...(path !== undefined ? { path } : {}) }),
    onUpstreamError: (m) => upstreamErrors.push(m),
  });
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    forwarder.serve(s as TLSSocket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    forwarder,
    requests,
    upstreamErrors,
    clients: sockets,
    close: () =>
      new Promise<void>((r) => {
        forwarder.closeAllConnections();
        forwarder.closeUpstreams();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * A client: sends `parts` (each written after the previous, `gapMs` apart),
 * collects what comes back until the relay closes the connection or `until`
 * holds or `waitMs` passes. `closed` says whether the relay closed it.
 */
export function talk(port: number, parts: (string | Buffer)[], o: { until?: (text: string) => boolean; waitMs?: number; gapMs?: number; endAfter?: boolean } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), o.waitMs ?? 5000);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (o.until?.(text)) finish(false);
    });
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
    s.once('connect', async () => {
      for (const p of parts) {
        if (s.destroyed) break;
        s.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
        if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
      }
      if (o.endAfter) s.end();
    });
  });
}

/** The status codes of the responses in `text`, in order (status lines only). */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
}
