import { resolve } from 'node:path';
import { badRequest } from '../errors/index.js';
import { parseCollectorUrl, type CollectorConfig } from './collector.js';
import { SPOOL_DEFAULTS, type FsyncPolicy } from './spool.js';

/** `audit:` in a configuration: where the trail is sent and how the local spool is bounded. */
export interface AuditSetting {
  collectors: CollectorConfig[];
  spool: { maxBytes: number; segmentBytes: number; highWater: number; fsync: FsyncPolicy; fsyncMs: number };
}

export const DEFAULT_AUDIT_SETTING: AuditSetting = {
  collectors: [],
  spool: { maxBytes: SPOOL_DEFAULTS.maxBytes, segmentBytes: SPOOL_DEFAULTS.segmentBytes, highWater: SPOOL_DEFAULTS.highWater, fsync: SPOOL_DEFAULTS.fsync, fsyncMs: SPOOL_DEFAULTS.fsyncMs },
};

type Obj = Record<string, unknown>;

/** Strict: unknown keys are errors; relative file paths resolve against `base`. */
export function parseAuditSetting(raw: unknown, where: string, code: string, base: string): AuditSetting {
  const fail = (w: string, what: string) => badRequest(code, `${w}: ${what}`);
  const object = (v: unknown, w: string, keys: readonly string[]): Obj => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(w, 'must be a mapping');
    for (const k of Object.keys(v)) if (!keys.includes(k)) throw fail(w, `unknown key "${k}" (allowed: ${keys.join(', ')})`);
    return v as Obj;
  };
  const file = (v: unknown, w: string): string => {
    if (typeof v !== 'string' || !v) throw fail(w, 'must be a file path');
    return resolve(base, v);
  };
  const o = object(raw, where, ['collectors', 'spool']);
  const out: AuditSetting = { collectors: [], spool: { ...DEFAULT_AUDIT_SETTING.spool } };
  if (o.collectors !== undefined) {
    if (!Array.isArray(o.collectors)) throw fail(`${where}.collectors`, 'must be a list');
    const seen = new Set<string>();
    out.collectors = o.collectors.map((c, i) => {
      const w = `${where}.collectors[${i}]`;
      const x = object(typeof c === 'string' ? { url: c } : c, w, ['url', 'cert', 'key', 'ca', 'maxDatagram']);
      if (typeof x.url !== 'string') throw fail(`${w}.url`, 'must be tls://host:port or udp://host:port');
      let t;
      try {
        t = parseCollectorUrl(x.url);
      } catch (e) {
        throw fail(`${w}.url`, e instanceof Error ? e.message : String(e));
      }
      if (seen.has(t.consumer)) throw fail(`${w}.url`, `${x.url} is listed twice`);
      seen.add(t.consumer);
      const cfg: CollectorConfig = { url: x.url };
      if (t.transport === 'tls') {
        if (x.maxDatagram !== undefined) throw fail(`${w}.maxDatagram`, 'applies to udp:// collectors only');
        for (const k of ['cert', 'key', 'ca'] as const) if (x[k] === undefined) throw fail(`${w}.${k}`, `a tls:// collector needs cert and key (a client certificate sekisho issued) and ca (the collector's CA)`);
        cfg.cert = file(x.cert, `${w}.cert`);
        cfg.key = file(x.key, `${w}.key`);
        cfg.ca = file(x.ca, `${w}.ca`);
      } else {
        for (const k of ['cert', 'key', 'ca'] as const) if (x[k] !== undefined) throw fail(`${w}.${k}`, 'a udp:// collector takes no TLS files');
        if (x.maxDatagram !== undefined) {
          if (!Number.isInteger(x.maxDatagram) || (x.maxDatagram as number) < 480 || (x.maxDatagram as number) > 65_000) throw fail(`${w}.maxDatagram`, 'must be a whole number of octets from 480 to 65000 (RFC 5426)');
          cfg.maxDatagram = x.maxDatagram as number;
        }
      }
      return cfg;
    });
  }
  if (o.spool !== undefined) {
    const s = object(o.spool, `${where}.spool`, ['maxBytes', 'segmentBytes', 'highWater', 'fsync', 'fsyncMs']);
    const int = (v: unknown, w: string, min: number, max: number): number => {
      if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw fail(w, `must be a whole number from ${min} to ${max}`);
      return v as number;
    };
    if (s.maxBytes !== undefined) out.spool.maxBytes = int(s.maxBytes, `${where}.spool.maxBytes`, 65_536, 2 ** 40);
    if (s.segmentBytes !== undefined) out.spool.segmentBytes = int(s.segmentBytes, `${where}.spool.segmentBytes`, 4096, 2 ** 30);
    if (s.fsyncMs !== undefined) out.spool.fsyncMs = int(s.fsyncMs, `${where}.spool.fsyncMs`, 1, 10_000);
    if (s.highWater !== undefined) {
      if (typeof s.highWater !== 'number' || !(s.highWater > 0 && s.highWater <= 1)) throw fail(`${where}.spool.highWater`, 'must be a fraction above 0 and at most 1 (e.g. 0.8)');
      out.spool.highWater = s.highWater;
    }
    if (s.fsync !== undefined) {
      if (!['always', 'interval', 'never'].includes(s.fsync as string)) throw fail(`${where}.spool.fsync`, 'must be always, interval or never');
      out.spool.fsync = s.fsync as FsyncPolicy;
    }
    if (out.spool.maxBytes < 2 * out.spool.segmentBytes) throw fail(`${where}.spool`, 'maxBytes must hold at least two segments (segmentBytes)');
  }
  return out;
}
