import { readFileSync } from 'node:fs';
import { malformed } from '../errors/index.js';
import { isKeyType, type KeyType } from '../pki/index.js';

/**
 * The CA's configuration (<home>/config.json). Strict: an unknown key, a wrong
 * type or an out-of-range value is an error at start-up that names the field.
 */
export interface CaConfig {
  version: 1;
  /** Organization written into the CA subjects (O=). */
  organization: string;
  keyType: KeyType;
  /** postgres://user@host/db when the store is PostgreSQL (password from PGPASSWORD or ~/.pgpass, never here). */
  database?: string;
  urls: {
    /**
     * Base URL (http://) of the revocation listener (`serve`/`up
     * --revocation-listen`): every certificate's CRL distribution point and
     * AIA (OCSP, caIssuers) are derived from it (revocation-pointers.ts), the
     * issuing CA's pointing to the root's CRL.
     */
    revocation?: string;
    /** Written into certificates as cRLDistributionPoints. */
    crl?: string;
    /** Written as AIA id-ad-ocsp. */
    ocsp?: string;
    /** Written as AIA id-ad-caIssuers. */
    caIssuers?: string;
    /** The enrollment portal, printed on delivery texts and notices. */
    portal?: string;
    /** The service center (gateway) facilities connect to. */
    center?: string;
  };
  validityDays: { facility: number; device: number; server: number };
  crlValidityHours: number;
  pkcs12: { minPasswordLength: number; iterations: number };
  /** Renewal with the current certificate (EST simplereenroll). */
  renewal: RenewalConfig;
  /** Issuance notices (letters). */
  notices: NoticesConfig;
  audit: AuditConfig;
}

export interface AuditConfig {
  /**
   * How often a long-running CA process (`serve`, `up`) signs a checkpoint of
   * the audit trail when events were appended since the last one (it also
   * signs one at start and at shutdown; CLI commands sign one after their events).
   */
  checkpointSeconds: number;
}

export interface NoticesConfig {
  /**
   * Downloads a letter allows within its window (a clinic that forgot its
   * certificate password downloads again); each download revokes the one
   * before it (reason superseded). 1 makes letters single-use. A notice can
   * be given its own number at \`notice create --max-downloads\`; EST codes
   * are single-use unless made so.
   */
  maxDownloads: number;
}

export interface RenewalConfig {
  /**
   * Renewal opens when at most this percentage of the certificate's validity
   * is left (33: the last third; 730 days → the last 240). Earlier renewals
   * are refused with RENEWAL_TOO_EARLY.
   */
  windowPercent: number;
  /** Hours the renewed (superseded) certificate stays valid beside its successor before it is revoked (reason superseded); 0 = at once. */
  overlapHours: number;
  /** Renewals per facility (all its certificates and devices) in any 24 hours; more are refused with RENEWAL_RATE_LIMITED. */
  maxPerFacilityPerDay: number;
}

export const DEFAULT_CONFIG: CaConfig = {
  version: 1,
  organization: 'sekisho',
  keyType: 'ecdsa-p256',
  urls: {},
  validityDays: { facility: 730, device: 730, server: 397 },
  crlValidityHours: 24,
  pkcs12: { minPasswordLength: 8, iterations: 2048 },
  renewal: { windowPercent: 33, overlapHours: 24, maxPerFacilityPerDay: 50 },
  notices: { maxDownloads: 3 },
  audit: { checkpointSeconds: 300 },
};

/** The most downloads one notice may allow (each is a certificate; more is a new notice). */
export const MAX_DOWNLOADS_LIMIT = 10;

type Check = (v: unknown, path: string) => void;
const fail = (path: string, what: string) => malformed('CONFIG_INVALID', `config ${path}: ${what}`);
const str: Check = (v, p) => {
  if (typeof v !== 'string' || v.length === 0) throw fail(p, 'must be a non-empty string');
};
const url: Check = (v, p) => {
  str(v, p);
  if (!/^https?:\/\/[^\s]+$/.test(v as string)) throw fail(p, `"${String(v)}" must be an http(s) URL`);
};
/**
 * Revocation pointers are plain http:// (RFC 5280 §4.2.1.13, RFC 6960
 * Appendix A): what they serve is signed, NSS (Firefox) fetches nothing else
 * (with https it soft-fails and accepts a revoked certificate), and fetching
 * over TLS would need the very revocation check being made.
 */
const httpUrl: Check = (v, p) => {
  str(v, p);
  if (!/^http:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(v as string)) throw fail(p, `"${String(v)}" must be a plain http:// URL (CRLs and OCSP answers are signed; NSS/Firefox fetches them only over http)`);
};
const int = (min: number, max: number): Check => (v, p) => {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw fail(p, `must be a whole number from ${min} to ${max}`);
};
function object(fields: Record<string, Check>, required: readonly string[] = []): Check {
  return (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(p, 'must be an object');
    for (const k of Object.keys(v)) if (!fields[k]) throw fail(`${p}.${k}`, `unknown setting (known: ${Object.keys(fields).join(', ')})`);
    for (const k of required) if (!(k in v)) throw fail(`${p}.${k}`, 'is required');
    for (const [k, check] of Object.entries(fields)) if (k in v) check((v as Record<string, unknown>)[k], `${p}.${k}`);
  };
}

const CONFIG_SCHEMA = object(
  {
    version: (v, p) => {
      if (v !== 1) throw fail(p, 'must be 1');
    },
    organization: str,
    keyType: (v, p) => {
      if (typeof v !== 'string' || !isKeyType(v)) throw fail(p, 'must be one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096');
    },
    database: (v, p) => {
      str(v, p);
      let u: URL | undefined;
      try {
        u = new URL(v as string);
      } catch {
        u = undefined;
      }
      if (!u || !/^postgres(ql)?:$/.test(u.protocol) || u.password || u.searchParams.has('password')) throw fail(p, 'must be a postgres:// URL without a password (set PGPASSWORD or use ~/.pgpass)');
    },
    urls: object({ revocation: httpUrl, crl: httpUrl, ocsp: httpUrl, caIssuers: httpUrl, portal: url, center: url }),
    validityDays: object({ facility: int(1, 730), device: int(1, 730), server: int(1, 397) }, ['facility', 'device', 'server']),
    crlValidityHours: int(1, 24 * 31),
    pkcs12: object({ minPasswordLength: int(4, 128), iterations: int(1000, 1_000_000) }, ['minPasswordLength', 'iterations']),
    renewal: object({ windowPercent: int(1, 100), overlapHours: int(0, 24 * 30), maxPerFacilityPerDay: int(1, 100_000) }),
    notices: object({ maxDownloads: int(1, MAX_DOWNLOADS_LIMIT) }),
    audit: object({ checkpointSeconds: int(1, 86_400) }),
  },
  ['version', 'organization', 'keyType'],
);

export function parseConfig(value: unknown): CaConfig {
  CONFIG_SCHEMA(value, 'config');
  const v = value as Partial<CaConfig>;
  return {
    ...DEFAULT_CONFIG,
    ...v,
    urls: { ...(v.urls ?? {}) },
    validityDays: v.validityDays ?? DEFAULT_CONFIG.validityDays,
    pkcs12: v.pkcs12 ?? DEFAULT_CONFIG.pkcs12,
    renewal: { ...DEFAULT_CONFIG.renewal, ...(v.renewal ?? {}) },
    notices: { ...DEFAULT_CONFIG.notices, ...(v.notices ?? {}) },
    audit: { ...DEFAULT_CONFIG.audit, ...(v.audit ?? {}) },
  } as CaConfig;
}

export function loadConfig(path: string): CaConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw malformed('CONFIG_INVALID', `cannot read ${path}: ${(e as Error).message}`);
  }
  return parseConfig(raw);
}
