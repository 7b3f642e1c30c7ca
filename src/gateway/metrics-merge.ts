/**
 * One /metrics for a gateway process group: the texts each worker renders
 * (Prometheus text format 0.0.4) merged into one. Counters and histograms
 * are summed series by series (same name and labels); gauges are summed
 * where they count something each worker holds (open connections, spool
 * bytes) and take the largest value otherwise (seconds since the last
 * refresh, alarms, entries known: every worker knows the same set). Every
 * series is then labelled with the host and the instance (this process
 * group's admin address), so a Prometheus server sums hosts with
 * `sum without (host, instance)`.
 */
const SUMMED_GAUGES = new Set([
  'sekisho_gateway_active_connections',
  'sekisho_audit_spool_bytes',
  'sekisho_audit_spool_behind_bytes',
  'sekisho_audit_spool_refused_total',
  'sekisho_listener_open_connections',
  'sekisho_listener_max_connections',
  'sekisho_gateway_resident_memory_bytes',
  'sekisho_gateway_heap_used_bytes',
]);

interface Family {
  help?: string;
  type: string;
  series: Map<string, number>;
}

/** The family a sample line belongs to: its name, less a histogram's suffix. */
function familyOf(name: string, families: Map<string, Family>): string {
  if (families.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m && families.get(m[1]!)?.type === 'histogram' ? m[1]! : name;
}

const labelEscape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** Adds host and instance to a series' labels. */
function labelled(series: string, extra: string): string {
  const brace = series.indexOf('{');
  if (brace < 0) return `${series}{${extra}}`;
  const inner = series.slice(brace + 1, -1);
  return `${series.slice(0, brace)}{${extra}${inner ? `,${inner}` : ''}}`;
}

export function mergeMetrics(texts: readonly string[], labels: { host: string; instance: string }): string {
  const families = new Map<string, Family>();
  const order: string[] = [];
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) {
      f = { type: 'untyped', series: new Map() };
      families.set(name, f);
      order.push(name);
    }
    return f;
  };
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line) continue;
      const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (meta) {
        const f = family(meta[2]!);
        if (meta[1] === 'HELP') f.help ??= meta[3]!;
        else f.type = meta[3]!;
        continue;
      }
      if (line.startsWith('#')) continue;
      const space = line.lastIndexOf(' ');
      const series = line.slice(0, space);
      const value = Number(line.slice(space + 1));
      const name = series.split('{')[0]!;
      const f = family(familyOf(name, families));
      const before = f.series.get(series);
      const combine = f.type === 'gauge' && !SUMMED_GAUGES.has(name) ? Math.max : (a: number, b: number) => a + b;
      f.series.set(series, before === undefined ? value : combine(before, value));
    }
  }
  const extra = `host="${labelEscape(labels.host)}",instance="${labelEscape(labels.instance)}"`;
  const out: string[] = [];
  for (const name of order) {
    const f = families.get(name)!;
    if (f.help !== undefined) out.push(`# HELP ${name} ${f.help}`);
    out.push(`# TYPE ${name} ${f.type}`);
    for (const [series, value] of f.series) out.push(`${labelled(series, extra)} ${value}`);
  }
  return out.join('\n') + '\n';
}
