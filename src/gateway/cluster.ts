import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { mergeMetrics } from './metrics-merge.js';

/**
 * `sekisho gateway --workers N`: one gateway per worker process on the same
 * listen addresses, so TLS handshakes use every core. On Linux each worker
 * binds a listening socket of its own on each address (SO_REUSEPORT): the
 * kernel spreads new connections over the workers, and no connection passes
 * through the primary or wakes every worker (see workerOwnsSockets). Elsewhere,
 * or with NODE_CLUSTER_SCHED_POLICY set, node:cluster shares the primary's
 * socket as before. Each worker opens the store on its own (audit batches from
 * several processes are fine on SQLite WAL and PostgreSQL). The primary only
 * supervises: it starts the first worker alone (it may issue the home's
 * server certificate), then the others; forwards SIGHUP (reload) and
 * SIGTERM/SIGINT (graceful stop) to them; replaces a worker that dies while
 * running; and exits once every worker has stopped. It also answers a
 * worker's /metrics for the whole group: it asks every worker for its own
 * counters over IPC and merges them (metrics-merge.ts), so whichever worker
 * the scrape lands on, it counts them all.
 */
export interface ListeningMessage {
  sekisho: 'gateway-listening';
  summary: Record<string, unknown>;
}

export interface PrimaryOptions {
  workers: number;
  /** Once every worker listens: the first worker's summary and all worker pids. */
  onListening: (summary: Record<string, unknown>, workerPids: number[]) => void;
  /** A line for the operator (stderr). */
  say: (line: string) => void;
}

export const isClusterWorker = (): boolean => cluster.isWorker;

/** The environment variable by which the primary tells its workers to bind their own sockets. */
const OWN_SOCKETS = 'SEKISHO_WORKER_OWN_SOCKETS';

/**
 * Whether workers may each bind their own listening socket: on Linux
 * (SO_REUSEPORT spreads connections over the sockets of one port), unless
 * the operator chose node:cluster's scheduling (NODE_CLUSTER_SCHED_POLICY).
 */
export function ownSocketsPossible(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): boolean {
  return platform === 'linux' && !env.NODE_CLUSTER_SCHED_POLICY;
}

/**
 * In a worker: bind each listener's socket itself (SO_REUSEPORT, exclusive
 * of the cluster) instead of asking the primary for a shared one. Each
 * socket has its own accept queue: a connection is woken in, and accepted
 * by, one worker only, and none is handed over IPC.
 */
export function workerOwnsSockets(): boolean {
  return cluster.isWorker && process.env[OWN_SOCKETS] === '1';
}

/** In a worker: tells the primary this worker is listening. */
export function notifyListening(summary: Record<string, unknown>): void {
  const m: ListeningMessage = { sekisho: 'gateway-listening', summary };
  process.send?.(m);
}

/** In a worker, after the gateway has closed: drop the channel to the primary so the process can exit. */
export function leaveCluster(): void {
  if (cluster.isWorker && process.connected) process.disconnect();
}

interface MetricsMessage {
  sekisho: 'metrics-collect' | 'metrics-collected' | 'metrics-snapshot-request' | 'metrics-snapshot';
  id: string;
  text?: string;
  instance?: string;
}

const isMetricsMessage = (m: unknown): m is MetricsMessage => typeof m === 'object' && m !== null && typeof (m as MetricsMessage).id === 'string' && /^metrics-/.test(String((m as MetricsMessage).sekisho));

/**
 * In a worker: answers the primary's requests for this worker's metrics
 * with `renderLocal()`, and returns what the admin listener calls for
 * /metrics: the whole group's, merged by the primary (this worker's alone,
 * labelled the same way, if the primary does not answer within 5 s).
 */
export function workerMetrics(renderLocal: () => string): (instance: string) => Promise<string> {
  const waiting = new Map<string, (text: string) => void>();
  process.on('message', (m: unknown) => {
    if (!isMetricsMessage(m)) return;
    if (m.sekisho === 'metrics-snapshot-request') process.send?.({ sekisho: 'metrics-snapshot', id: m.id, text: renderLocal() } satisfies MetricsMessage);
    else if (m.sekisho === 'metrics-collected') waiting.get(m.id)?.(m.text ?? '');
  });
  return (instance) =>
    new Promise((resolve) => {
      const id = randomUUID();
      const done = (text: string) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(text);
      };
      const timer = setTimeout(() => done(mergeMetrics([renderLocal(), '# TYPE sekisho_gateway_workers_reporting gauge\nsekisho_gateway_workers_reporting 1'], { host: hostname(), instance })), 5000);
      waiting.set(id, done);
      process.send?.({ sekisho: 'metrics-collect', id, instance } satisfies MetricsMessage);
    });
}

/** In the primary: asks every worker for its metrics (up to 2 s), merges what came back. */
function collectMetrics(workers: Iterable<Worker>, instance: string): Promise<string> {
  const list = [...workers].filter((w) => w.isConnected());
  const texts: string[] = [];
  return new Promise((resolve) => {
    const id = randomUUID();
    let pending = list.length;
    const listeners = new Map<Worker, (m: unknown) => void>();
    const finish = () => {
      clearTimeout(timer);
      for (const [w, l] of listeners) w.off('message', l);
      const count = [`# HELP sekisho_gateway_workers Worker processes of this gateway, and how many answered this scrape.`, `# TYPE sekisho_gateway_workers gauge`, `sekisho_gateway_workers{state="running"} ${list.length}`, `sekisho_gateway_workers{state="reporting"} ${texts.length}`].join('\n');
      resolve(mergeMetrics([...texts, count], { host: hostname(), instance }));
    };
    const timer = setTimeout(finish, 2000);
    if (pending === 0) return finish();
    for (const w of list) {
      const l = (m: unknown) => {
        if (!isMetricsMessage(m) || m.sekisho !== 'metrics-snapshot' || m.id !== id) return;
        texts.push(m.text ?? '');
        w.off('message', l);
        listeners.delete(w);
        if (--pending === 0) finish();
      };
      listeners.set(w, l);
      w.on('message', l);
      w.send({ sekisho: 'metrics-snapshot-request', id } satisfies MetricsMessage);
    }
  });
}

/** In the primary: runs N workers until a stop signal; resolves with the exit code. */
export function runPrimary(o: PrimaryOptions): Promise<number> {
  // Workers accept on the shared socket themselves: with Node's default
  // round-robin the primary accepts every connection and hands it over, which
  // costs a busy gateway a good part of a core (NODE_CLUSTER_SCHED_POLICY=rr
  // restores it).
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
  const ownSockets = ownSocketsPossible();
  return new Promise((resolve) => {
    const workers = new Set<Worker>();
    let stopping = false;
    let started = false;
    let exitCode = 0;

    const finishIfDone = () => {
      if (stopping && workers.size === 0) {
        for (const [s, f] of handlers) process.off(s, f);
        resolve(exitCode);
      }
    };
    const stop = () => {
      if (stopping) return;
      stopping = true;
      for (const w of workers) w.process.kill('SIGTERM');
      finishIfDone();
    };
    const reload = () => {
      for (const w of workers) w.process.kill('SIGHUP');
    };
    const handlers: [NodeJS.Signals, () => void][] = [
      ['SIGTERM', stop],
      ['SIGINT', stop],
      ['SIGHUP', reload],
    ];
    for (const [s, f] of handlers) process.on(s, f);

    // Each worker keeps a slot (its audit spool, <home>/audit-spool/gateway-<slot>): a replacement takes over the spool of the worker it replaces.
    const fork = (slot: number): Promise<Record<string, unknown>> =>
      new Promise((ready, failed) => {
        const w = cluster.fork({ SEKISHO_WORKER_SLOT: String(slot), [OWN_SOCKETS]: ownSockets ? '1' : '0' });
        workers.add(w);
        let listening = false;
        w.on('message', (msg: unknown) => {
          if (isMetricsMessage(msg)) {
            if (msg.sekisho === 'metrics-collect') {
              void collectMetrics(workers, msg.instance ?? '').then((text) => {
                if (w.isConnected()) w.send({ sekisho: 'metrics-collected', id: msg.id, text } satisfies MetricsMessage);
              });
            }
            return;
          }
          const m = msg as Partial<ListeningMessage> | undefined;
          if (m?.sekisho !== 'gateway-listening' || listening) return;
          listening = true;
          ready(m.summary ?? {});
        });
        w.once('exit', (code, signal) => {
          workers.delete(w);
          if (!listening) failed(Object.assign(new Error(`a gateway worker stopped before listening (${code ?? signal})`), { exitCode: code || 1 }));
          else if (!stopping) {
            o.say(`sekisho gateway: worker ${w.process.pid} stopped (${code ?? signal}); starting another`);
            setTimeout(() => {
              if (!stopping) fork(slot).catch((e: unknown) => o.say(`sekisho gateway: ${e instanceof Error ? e.message : String(e)}`));
            }, 1000).unref();
          }
          finishIfDone();
        });
      });

    (async () => {
      const summary = await fork(1);
      await Promise.all(Array.from({ length: o.workers - 1 }, (_, i) => fork(i + 2)));
      return summary;
    })().then(
      (summary) => {
        started = true;
        if (stopping) return;
        o.onListening(summary, [...workers].map((w) => w.process.pid!));
      },
      (e: unknown) => {
        if (!started) exitCode = (e as { exitCode?: number }).exitCode ?? 1;
        o.say(`sekisho gateway: ${e instanceof Error ? e.message : String(e)}`);
        stop();
      },
    );
  });
}
