import type { ListenerLimits } from './limits.js';

/** What one listener has seen; plain numbers, bumped in place on the hot path. */
export interface ListenerCounts {
  open: number;
  accepted: number;
  /** Closed at once: the listener was at its total cap. */
  refusedTotal: number;
  /** Closed at once: the client's address was at its per-address cap. */
  refusedPerAddress: number;
  /** TLS handshakes not finished within the handshake timeout. */
  handshakeTimeouts: number;
  /** Connections closed because the client asked for a TLS renegotiation. */
  renegotiationsRefused: number;
  limits: ListenerLimits;
}

/**
 * The counters of every listener of one process (gateway listeners, portal,
 * admin), rendered into the gateway's /metrics in the Prometheus text
 * format, so a flood on one listener shows beside the others.
 */
export class ListenerLedger {
  readonly #rows = new Map<string, ListenerCounts>();

  listener(name: string, limits: ListenerLimits): ListenerCounts {
    let row = this.#rows.get(name);
    if (!row) this.#rows.set(name, (row = { open: 0, accepted: 0, refusedTotal: 0, refusedPerAddress: 0, handshakeTimeouts: 0, renegotiationsRefused: 0, limits }));
    else row.limits = limits;
    return row;
  }

  get(name: string): ListenerCounts | undefined {
    return this.#rows.get(name);
  }

  render(): string {
    const rows = [...this.#rows];
    const family = (name: string, help: string, type: 'counter' | 'gauge', lines: string[]) => [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines].join('\n');
    const l = (n: string) => `listener="${n.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    return (
      [
        family('sekisho_listener_open_connections', 'TCP connections open, by listener (gateway listeners, portal, admin).', 'gauge', rows.map(([n, c]) => `sekisho_listener_open_connections{${l(n)}} ${c.open}`)),
        family('sekisho_listener_max_connections', 'The total connection cap, by listener.', 'gauge', rows.map(([n, c]) => `sekisho_listener_max_connections{${l(n)}} ${c.limits.maxConnections}`)),
        family('sekisho_listener_connections_accepted_total', 'TCP connections admitted, by listener.', 'counter', rows.map(([n, c]) => `sekisho_listener_connections_accepted_total{${l(n)}} ${c.accepted}`)),
        family(
          'sekisho_listener_connections_refused_total',
          'TCP connections closed at once over a cap (total or per address), by listener.',
          'counter',
          rows.flatMap(([n, c]) => [`sekisho_listener_connections_refused_total{${l(n)},cap="total"} ${c.refusedTotal}`, `sekisho_listener_connections_refused_total{${l(n)},cap="per-address"} ${c.refusedPerAddress}`]),
        ),
        family('sekisho_listener_handshake_timeouts_total', 'TLS handshakes closed unfinished after the handshake timeout, by listener.', 'counter', rows.map(([n, c]) => `sekisho_listener_handshake_timeouts_total{${l(n)}} ${c.handshakeTimeouts}`)),
        family('sekisho_listener_renegotiations_refused_total', 'Connections closed because the client asked for a TLS renegotiation, by listener.', 'counter', rows.map(([n, c]) => `sekisho_listener_renegotiations_refused_total{${l(n)}} ${c.renegotiationsRefused}`)),
      ].join('\n') + '\n'
    );
  }
}
