import pg from 'pg';
import { CHANGE_CHANNEL } from './change-seq.js';

/**
 * A wake-up call for a reader of the status feed: `onChange` is called when
 * the store announces a committed change (PostgreSQL NOTIFY, see
 * change-seq.ts) and each time listening (re)starts, so the reader reads from
 * its cursor and catches up on whatever committed while it was not
 * listening. It never says what changed: the reader always asks the store.
 */
export interface ChangeListener {
  /** True while notifications can arrive (the listening connection is up). */
  readonly listening: boolean;
  /** Why the last attempt to listen failed, while not listening. */
  readonly lastError: string | undefined;
  close(): Promise<void>;
}

export interface ChangeListenerOptions {
  onChange: () => void;
  /** Told when listening starts or stops (with why). */
  onState?: (listening: boolean, error?: string) => void;
  /** Reconnect delays: the first, doubled up to the last (default 250 ms … 5 s). */
  retryMs?: { first: number; max: number };
}

/**
 * LISTEN on its own connection (a pooled one would be handed to others),
 * reconnecting with back-off after the connection drops: a restart of the
 * database, a failover behind the same address, pg_terminate_backend, a
 * network cut. A silent cut (no FIN) shows on the next keepalive probe.
 */
export class PostgresChangeListener implements ChangeListener {
  #client: pg.Client | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #delay: number;
  listening = false;
  lastError: string | undefined;

  constructor(
    private readonly url: string,
    private readonly o: ChangeListenerOptions,
  ) {
    this.#delay = o.retryMs?.first ?? 250;
    void this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ connectionString: this.url, keepAlive: true, keepAliveInitialDelayMillis: 10_000, application_name: 'sekisho-feed-listener' });
    this.#client = client;
    let failed = false;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      const was = this.listening;
      this.listening = false;
      this.lastError = e instanceof Error ? e.message : String(e);
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      if (was || !this.#closed) this.o.onState?.(false, this.lastError);
      this.#retry();
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('the listening connection ended')));
    client.on('notification', (n) => {
      if (n.channel === CHANGE_CHANNEL) this.o.onChange();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (e) {
      return fail(e);
    }
    if (this.#closed || failed) return;
    this.listening = true;
    this.lastError = undefined;
    this.#delay = this.o.retryMs?.first ?? 250;
    this.o.onState?.(true);
    // Whatever committed while no one listened: read from the cursor now.
    this.o.onChange();
  }

  #retry(): void {
    if (this.#closed || this.#timer) return;
    const wait = this.#delay;
    this.#delay = Math.min(this.#delay * 2, this.o.retryMs?.max ?? 5000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, wait).unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.listening = false;
    const c = this.#client;
    c?.removeAllListeners('end');
    c?.removeAllListeners('error');
    c?.on('error', () => undefined);
    await c?.end().catch(() => undefined);
  }
}
