import { badRequest } from '../errors/index.js';

/**
 * Days and local times in an IANA time zone, from Node's Intl (ICU): an
 * access review is read by day in the reader's zone (Asia/Tokyo by default,
 * since MHLW's readers think in JST), while every instant stays UTC with
 * milliseconds beside it.
 */
export class ReportZone {
  readonly #fmt: Intl.DateTimeFormat;

  constructor(readonly name: string) {
    try {
      this.#fmt = new Intl.DateTimeFormat('en-US', { timeZone: name, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    } catch {
      throw badRequest('REPORT_FILTER_INVALID', `--zone "${name.slice(0, 60)}" is not a time zone; use an IANA name such as Asia/Tokyo or UTC`);
    }
  }

  #parts(t: number): { y: number; m: number; d: number; h: number; mi: number; s: number } {
    const p: Record<string, number> = {};
    for (const x of this.#fmt.formatToParts(new Date(t))) if (x.type !== 'literal') p[x.type] = Number(x.value);
    return { y: p.year!, m: p.month!, d: p.day!, h: p.hour!, mi: p.minute!, s: p.second! };
  }

  /** The zone's offset from UTC at instant t, in minutes. */
  offsetMinutes(t: number): number {
    const p = this.#parts(t);
    const asUtc = Date.UTC(p.y, p.m - 1, p.d, p.h, p.mi, p.s);
    return Math.round((asUtc - (t - (((t % 1000) + 1000) % 1000))) / 60_000);
  }

  /** YYYY-MM-DD of instant t in this zone. */
  day(t: number): string {
    const p = this.#parts(t);
    return `${String(p.y).padStart(4, '0')}-${pad(p.m)}-${pad(p.d)}`;
  }

  /** ISO 8601 local time with milliseconds and offset, e.g. 2026-12-07T09:16:19.123+09:00. */
  local(t: number): string {
    const p = this.#parts(t);
    const off = this.offsetMinutes(t);
    const sign = off < 0 ? '-' : '+';
    const a = Math.abs(off);
    return `${String(p.y).padStart(4, '0')}-${pad(p.m)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}.${String(((t % 1000) + 1000) % 1000).padStart(3, '0')}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }

  /** The UTC instant at which day `ymd` (YYYY-MM-DD, already validated) starts in this zone. */
  startOf(ymd: string): number {
    const [y, m, d] = ymd.split('-').map(Number) as [number, number, number];
    const wall = Date.UTC(y, m - 1, d);
    const guess = wall - this.offsetMinutes(wall) * 60_000;
    return wall - this.offsetMinutes(guess) * 60_000;
  }
}

const pad = (n: number) => String(n).padStart(2, '0');

/** YYYY-MM-DD of the day after. */
export function nextDay(ymd: string): string {
  const [y, m, d] = ymd.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}
