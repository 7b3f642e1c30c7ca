/**
 * The gateway's metrics in the Prometheus text format (0.0.4): counters and
 * gauges with labels, and one latency histogram. Small on purpose: the
 * gateway has a dozen series, not a metrics framework.
 */
type Labels = Record<string, string>;

const NEEDS_ESCAPE = /[\\"\n]/;
/** Label values are escaped on every count (several per connection): most need nothing, found with one scan instead of three replacements. */
const escape = (v: string) => (NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v);
const labelText = (l: Labels) => {
  const keys = Object.keys(l);
  return keys.length ? `{${keys.map((k) => `${k}="${escape(l[k]!)}"`).join(',')}}` : '';
};

class Family {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}
  add(labels: Labels, by = 1): void {
    const k = labelText(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  set(labels: Labels, value: number): void {
    this.values.set(labelText(labels), value);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join('\n');
  }
}

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

class Histogram {
  readonly counts = new Array<number>(BUCKETS.length).fill(0);
  sum = 0;
  count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.counts[i]!++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    BUCKETS.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export class GatewayMetrics {
  readonly handshakes = new Family('sekisho_gateway_handshakes_total', 'Client connections by outcome (accepted/refused) and refusal reason.', 'counter');
  readonly handshakeSeconds = new Histogram('sekisho_gateway_handshake_seconds', 'Time from TCP accept to the authentication decision.');
  readonly active = new Family('sekisho_gateway_active_connections', 'Authenticated connections currently open, by listener.', 'gauge');
  readonly cut = new Family('sekisho_gateway_connections_cut_total', 'Live connections closed because their certificate was revoked or their facility suspended.', 'counter');
  readonly requests = new Family('sekisho_gateway_http_requests_total', 'Proxied HTTP requests by listener and status code.', 'counter');
  readonly upstreamErrors = new Family('sekisho_gateway_upstream_errors_total', 'Upstream connections or requests that failed, by listener.', 'counter');
  readonly exceptionUse = new Family('sekisho_gateway_policy_exception_uses_total', 'Connections accepted only because of a dated policy exception, by facility and rule.', 'counter');
  readonly revocationEntries = new Family('sekisho_gateway_revocation_entries', 'Revoked serials known, by source.', 'gauge');
  readonly revocationAge = new Family('sekisho_gateway_revocation_age_seconds', 'Seconds since revocation information was last refreshed, by source.', 'gauge');
  readonly crlNextUpdate = new Family('sekisho_gateway_crl_seconds_until_next_update', 'Seconds until the earliest CRL nextUpdate (negative: the CRL is stale).', 'gauge');
  readonly revocationStale = new Family('sekisho_gateway_revocation_stale', '1 when revocation information is stale (the gateway fails closed unless configured otherwise).', 'gauge');
  readonly reloads = new Family('sekisho_gateway_reloads_total', 'Credential and trust reloads by outcome.', 'counter');
  readonly auditSpoolBytes = new Family('sekisho_audit_spool_bytes', 'Bytes in the local audit spool (bounded by audit.spool.maxBytes).', 'gauge');
  readonly auditSpoolAlarm = new Family('sekisho_audit_spool_alarm', '1 while the audit spool is above its high-water mark (a store or collector is not taking events).', 'gauge');
  readonly auditSpoolBehind = new Family('sekisho_audit_spool_behind_bytes', 'Spooled bytes a consumer (the store, each collector) has not taken yet.', 'gauge');
  readonly auditRefused = new Family('sekisho_audit_spool_refused_total', 'Events the full spool refused (their connections were refused: AUDIT_SPOOL_FULL).', 'counter');
  readonly residentBytes = new Family('sekisho_gateway_resident_memory_bytes', 'Resident memory of the gateway process (summed over a process group): steady growth under steady load is a leak.', 'gauge');
  readonly heapUsedBytes = new Family('sekisho_gateway_heap_used_bytes', 'JavaScript heap in use at the scrape, live and not yet collected (summed over a process group).', 'gauge');
  readonly cpuSeconds = new Family('sekisho_gateway_cpu_seconds_total', 'CPU time of the gateway process, user and system, all threads (summed over a process group).', 'counter');
  readonly clockOffset = new Family('sekisho_clock_offset_seconds', 'How far the clock reference (NTP server, database) is ahead of this host, by source, at the last check.', 'gauge');
  readonly clockAlarm = new Family('sekisho_clock_alarm', '1 while the host clock is off by more than the limit (or cannot be checked) against a source.', 'gauge');

  render(): string {
    return (
      [this.handshakes, this.handshakeSeconds, this.active, this.cut, this.requests, this.upstreamErrors, this.exceptionUse, this.revocationEntries, this.revocationAge, this.crlNextUpdate, this.revocationStale, this.reloads, this.clockOffset, this.clockAlarm, this.auditSpoolBytes, this.auditSpoolAlarm, this.auditSpoolBehind, this.auditRefused, this.residentBytes, this.heapUsedBytes, this.cpuSeconds]
        .map((f) => f.render())
        .join('\n') + '\n'
    );
  }
}
