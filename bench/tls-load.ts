/**
 * A small mutual-TLS load generator, the same for every server measured
 * (bench/gateway.ts drives nginx and the gateway with it). It runs in
 * `workers` worker threads; each keeps a fixed number of operations in
 * flight until the end of the window and counts those that completed inside
 * it (after the warm-up):
 *
 *  - `handshake`: a new TCP connection and a FULL TLS handshake each time
 *    (no session is offered, so there is no resumption), the client
 *    certificate presented, then one minimal `GET` with `Connection: close`
 *    whose `200` proves the server accepted the certificate; then close.
 *    With `rate`, each worker starts handshakes at that pace instead of
 *    back to back (at most `concurrency` in flight; a start that finds them
 *    all busy waits, and counts as `late`): the same offered load for every
 *    server, below what any of them can take, so their CPU per handshake
 *    is compared without the machine's cores running out.
 *  - `requests`: `concurrency` kept-alive connections per worker, each
 *    sending HTTP/1.1 GETs one after another (no pipelining); a connection
 *    the server closes is replaced (counted in `reconnects`).
 *
 * The client's credentials are parsed once per worker (one SecureContext)
 * and it does not verify the server's chain: that work is the client's, the
 * same for every server, and would only take CPU from the servers on a
 * small machine.
 */
import { createSecureContext, connect, type SecureContext, type TLSSocket } from 'node:tls';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';

export interface LoadSpec {
  mode: 'handshake' | 'requests';
  host: string;
  port: number;
  cert: string;
  key: string;
  tls: 'TLSv1.2' | 'TLSv1.3';
  /** Operations (handshake) or connections (requests) in flight per worker. */
  concurrency: number;
  /** Handshake mode: handshakes started per second per worker, paced (default: back to back). */
  rate?: number;
  /** Epoch ms: counting starts (everything before is warm-up). */
  countFrom: number;
  /** Epoch ms: no new operation starts; counting ends. */
  until: number;
  path?: string;
}

export interface WorkerResult {
  completed: number;
  errors: number;
  reconnects: number;
  /** Paced handshakes that could not start on time (all `concurrency` in flight): the server did not keep up. */
  late: number;
  firstError?: string;
}

export interface LoadResult extends WorkerResult {
  workers: number;
  seconds: number;
  perSecond: number;
}

const MARK = 'sekisho-tls-load';

/** Runs `spec` in `workers` threads; resolves when all have stopped (shortly after `spec.until`). */
export async function runLoad(spec: LoadSpec, workers: number): Promise<LoadResult> {
  const results = await Promise.all(
    Array.from(
      { length: workers },
      () =>
        new Promise<WorkerResult>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { [MARK]: spec } });
          let result: WorkerResult | undefined;
          w.once('message', (m: WorkerResult) => (result = m));
          w.once('error', reject);
          w.once('exit', (code) => (result ? resolve(result) : reject(new Error(`load worker exited with ${code} and no result`))));
        }),
    ),
  );
  const sum = (f: (r: WorkerResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const seconds = (spec.until - spec.countFrom) / 1000;
  const completed = sum((r) => r.completed);
  const firstError = results.find((r) => r.firstError)?.firstError;
  return { workers, seconds, completed, perSecond: completed / seconds, errors: sum((r) => r.errors), reconnects: sum((r) => r.reconnects), late: sum((r) => r.late), ...(firstError ? { firstError } : {}) };
}

// ---- inside a worker ----

class Counter implements WorkerResult {
  completed = 0;
  errors = 0;
  reconnects = 0;
  late = 0;
  firstError?: string;
  constructor(private readonly spec: LoadSpec) {}
  done(): void {
    const t = Date.now();
    if (t >= this.spec.countFrom && t <= this.spec.until) this.completed++;
  }
  error(message: string): void {
    if (Date.now() > this.spec.until) return; // the window is over: whatever happens now is not counted
    this.errors++;
    this.firstError ??= message;
  }
}

function tlsConnect(spec: LoadSpec, context: SecureContext): TLSSocket {
  return connect({
    host: spec.host,
    port: spec.port,
    servername: 'localhost',
    secureContext: context,
    minVersion: spec.tls,
    maxVersion: spec.tls,
    rejectUnauthorized: false,
  });
}

function request(spec: LoadSpec, close: boolean): string {
  return `GET ${spec.path ?? '/'} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sekisho-bench\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
}

/** One full handshake + one request, resolved when the connection is closed. */
function handshakeOnce(spec: LoadSpec, context: SecureContext, c: Counter): Promise<void> {
  return new Promise((resolve) => {
    const s = tlsConnect(spec, context);
    let head = '';
    let ok = false;
    s.setNoDelay(true);
    s.setTimeout(10_000, () => s.destroy(new Error('timeout')));
    s.once('secureConnect', () => s.write(request(spec, true)));
    s.on('data', (d: Buffer) => {
      if (ok) return;
      head += d.toString('latin1');
      if (head.length >= 12) {
        if (head.startsWith('HTTP/1.1 200')) ok = true;
        else s.destroy(new Error(`unexpected response: ${head.split('\r\n')[0]}`));
      }
    });
    s.on('error', (e) => c.error(e.message));
    s.once('close', () => {
      if (ok) c.done();
      else if (!s.errored) c.error(`closed without a 200 (${head.split('\r\n')[0] || 'nothing received'})`);
      resolve();
    });
  });
}

/** A kept-alive connection sending GETs back to back until the window ends; resolves when it closes. */
function keepAliveLoop(spec: LoadSpec, context: SecureContext, c: Counter): Promise<void> {
  return new Promise((resolve) => {
    const s = tlsConnect(spec, context);
    const req = request(spec, false);
    let buf: Buffer = Buffer.alloc(0);
    let need = -1; // total bytes of the current response once its head is parsed
    s.setNoDelay(true);
    s.once('secureConnect', () => s.write(req));
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        if (need < 0) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          if (!head.startsWith('HTTP/1.1 200')) {
            s.destroy(new Error(`unexpected response: ${head.split('\r\n')[0]}`));
            return;
          }
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (!m) {
            s.destroy(new Error('response without content-length'));
            return;
          }
          need = end + 4 + Number(m[1]);
        }
        if (buf.length < need) return;
        buf = buf.subarray(need);
        need = -1;
        c.done();
        if (Date.now() >= spec.until) {
          s.end();
          return;
        }
        s.write(req);
      }
    });
    s.on('error', (e) => c.error(e.message));
    s.once('close', () => resolve());
  });
}

/** Handshakes started at `spec.rate` a second until the window ends, at most `spec.concurrency` in flight. */
async function pacedHandshakes(spec: LoadSpec, rate: number, context: SecureContext, c: Counter): Promise<void> {
  const interval = 1000 / rate;
  const inFlight = new Set<Promise<void>>();
  const start = Date.now();
  for (let i = 0; ; i++) {
    const due = start + i * interval;
    if (due >= spec.until) break;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (inFlight.size >= spec.concurrency) {
      if (Date.now() >= spec.countFrom) c.late++;
      await Promise.race(inFlight);
    }
    const op: Promise<void> = handshakeOnce(spec, context, c).then(() => void inFlight.delete(op));
    inFlight.add(op);
  }
  await Promise.all(inFlight);
}

async function workerMain(spec: LoadSpec): Promise<WorkerResult> {
  const context = createSecureContext({ cert: readFileSync(spec.cert), key: readFileSync(spec.key) });
  const c = new Counter(spec);
  const result = (): WorkerResult => ({ completed: c.completed, errors: c.errors, reconnects: c.reconnects, late: c.late, ...(c.firstError ? { firstError: c.firstError } : {}) });
  if (spec.rate && spec.mode === 'handshake') {
    await pacedHandshakes(spec, spec.rate, context, c);
    return result();
  }
  const lane = async () => {
    for (let i = 0; Date.now() < spec.until; i++) {
      if (spec.mode === 'handshake') await handshakeOnce(spec, context, c);
      else {
        if (i > 0) c.reconnects++;
        await keepAliveLoop(spec, context, c);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, () => lane()));
  return result();
}

if (!isMainThread && (workerData as Record<string, unknown> | null)?.[MARK]) {
  const spec = (workerData as Record<string, LoadSpec>)[MARK]!;
  workerMain(spec).then(
    (r) => parentPort!.postMessage(r),
    (e: unknown) => {
      throw e;
    },
  );
}
