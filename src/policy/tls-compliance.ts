import { readFileSync } from 'node:fs';
import { malformed } from '../errors/index.js';
import { tlsProfile, type TlsProfileName } from './tls-profiles.js';

/**
 * What a TLS server must, must not and may do under a profile, for the
 * scanner's judgement (and the gateway's configuration). Built from the
 * shipped CRYPTREC data (data/tls-profiles.json) so the rules live in one
 * place; `mhlw` is `high` plus a required client certificate (MHLW 6.0
 * システム運用編 13章).
 */
export type ComplianceProfileName = TlsProfileName | 'mhlw';
export const COMPLIANCE_PROFILES: readonly ComplianceProfileName[] = ['high', 'recommended', 'exception', 'mhlw'];

export type Protocol = 'SSLv3' | 'TLSv1.0' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface ComplianceProfile {
  name: string;
  nameJa: string;
  /** Protocols the server may offer; anything else offered is a failure. At least one of them must be offered. */
  protocolsAllowed: Protocol[];
  /** Protocols the server should offer (a warning when missing). */
  protocolsPreferred: Protocol[];
  /** TLS 1.2 and below: suites the profile lists (IANA names). */
  suitesListed: string[];
  /** TLS ≤ 1.2 suites outside the list are still acceptable when they meet this rule (must/may semantics). */
  suiteRule: { aead: boolean; forwardSecret: boolean };
  tls13SuitesListed: string[];
  certificate: { rsaMinBits: number; ecdsaMinBits: number; signatureHashes: string[] };
  keyExchange: { ecdheMinBits: number; dheMinBits: number };
  clientCertificate: 'required' | 'optional';
  /** Where each rule comes from, for the report. */
  cites: { protocols: string; suites: string; certificate: string; clientCertificate: string };
}

const CRYPTREC = 'CRYPTREC GL-3001-3.0.1';

function fromData(name: TlsProfileName): ComplianceProfile {
  const p = tlsProfile(name);
  const high = tlsProfile('high');
  return {
    name,
    nameJa: p.name_ja,
    protocolsAllowed: p.protocols as Protocol[],
    protocolsPreferred: ['TLSv1.3'],
    suitesListed: p.tls12_suites ?? p.tls12_suites_head ?? [],
    // The high profile's rule (PFS AND AEAD); the others accept any non-broken suite, so only the list is advisory there.
    suiteRule: name === 'high' ? { aead: true, forwardSecret: true } : { aead: false, forwardSecret: false },
    tls13SuitesListed: p.tls13_suites ?? high.tls13_suites ?? [],
    certificate: {
      rsaMinBits: (p.certificates ?? high.certificates)!.rsa_min_bits,
      ecdsaMinBits: (p.certificates ?? high.certificates)!.ecdsa_min_bits,
      signatureHashes: (p.certificates ?? high.certificates)!.signature_hashes,
    },
    keyExchange: { ecdheMinBits: (p.key_exchange ?? high.key_exchange)!.ecdhe_min_bits, dheMinBits: (p.key_exchange ?? high.key_exchange)!.dhe_min_bits },
    clientCertificate: 'optional',
    cites: {
      protocols: `${CRYPTREC} ${p.name_ja}: protocol versions`,
      suites: `${CRYPTREC} ${p.name_ja}: cipher suite list`,
      certificate: `${CRYPTREC} (SHA-1 forbidden; RSA ≥ 2048, ECDSA ≥ 256)`,
      clientCertificate: 'MHLW 6.0 システム運用編 13章 (TLS client authentication)',
    },
  };
}

export function complianceProfile(name: ComplianceProfileName): ComplianceProfile {
  if (name === 'mhlw') {
    return { ...fromData('high'), name: 'mhlw', nameJa: '医療情報安全管理ガイドライン6.0（高セキュリティ型＋クライアント証明書）', clientCertificate: 'required' };
  }
  return fromData(name);
}

export function isComplianceProfileName(s: string): s is ComplianceProfileName {
  return (COMPLIANCE_PROFILES as readonly string[]).includes(s);
}

/** Every protocol the profiles name, oldest first. */
export const PROTOCOL_ORDER: readonly Protocol[] = ['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const PROTOCOLS = PROTOCOL_ORDER;

/** A protocol from its wire version (ProtocolVersion; 0x0002 is an SSL 2.0-format hello's SSL 3.0 offer folded into SSLv3); undefined for others. */
export function protocolOfWire(version: number): Protocol | undefined {
  if (version === 0x0002) return 'SSLv3';
  return version >= 0x0300 && version <= 0x0304 ? PROTOCOL_ORDER[version - 0x0300] : undefined;
}

/**
 * Loads a user-supplied profile (JSON): every field of ComplianceProfile may
 * be given; `extends` names a built-in profile to start from. Unknown keys and
 * wrong types are errors naming the field.
 */
export function loadComplianceProfile(path: string): ComplianceProfile {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw malformed('PROFILE_FILE_INVALID', `cannot read the profile ${path}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformed('PROFILE_FILE_INVALID', `${path}: a profile is a JSON object`);
  const base = raw.extends ?? 'high';
  if (typeof base !== 'string' || !isComplianceProfileName(base)) throw malformed('PROFILE_FILE_INVALID', `${path}: "extends" must be one of ${COMPLIANCE_PROFILES.join(', ')}`);
  const out: ComplianceProfile = { ...complianceProfile(base), name: typeof raw.name === 'string' ? raw.name : `custom(${base})` };
  const fail = (k: string, what: string) => malformed('PROFILE_FILE_INVALID', `${path}: "${k}" ${what}`);
  const strings = (k: string, v: unknown, allowed?: readonly string[]) => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && (!allowed || allowed.includes(x)))) throw fail(k, `must be a list of ${allowed ? allowed.join('/') : 'strings'}`);
    return v as string[];
  };
  for (const [k, v] of Object.entries(raw)) {
    switch (k) {
      case 'extends':
      case 'name':
        break;
      case 'nameJa':
        if (typeof v !== 'string') throw fail(k, 'must be a string');
        out.nameJa = v;
        break;
      case 'protocolsAllowed':
      case 'protocolsPreferred':
        out[k] = strings(k, v, PROTOCOLS) as Protocol[];
        break;
      case 'suitesListed':
      case 'tls13SuitesListed':
        out[k] = strings(k, v);
        break;
      case 'suiteRule':
        if (typeof v !== 'object' || v === null || typeof (v as { aead?: unknown }).aead !== 'boolean' || typeof (v as { forwardSecret?: unknown }).forwardSecret !== 'boolean') throw fail(k, 'must be { "aead": boolean, "forwardSecret": boolean }');
        out.suiteRule = v as ComplianceProfile['suiteRule'];
        break;
      case 'clientCertificate':
        if (v !== 'required' && v !== 'optional') throw fail(k, 'must be "required" or "optional"');
        out.clientCertificate = v;
        break;
      case 'certificate':
      case 'keyExchange':
        if (typeof v !== 'object' || v === null) throw fail(k, 'must be an object');
        for (const [kk, vv] of Object.entries(v)) {
          const target = out[k] as unknown as Record<string, unknown>;
          if (!(kk in target)) throw fail(`${k}.${kk}`, 'is not a known setting');
          if (typeof vv !== typeof target[kk]) throw fail(`${k}.${kk}`, `must be a ${typeof target[kk]}`);
          target[kk] = vv;
        }
        break;
      default:
        throw fail(k, 'is not a known profile setting');
    }
  }
  return out;
}
