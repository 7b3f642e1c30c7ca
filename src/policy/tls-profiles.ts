import { readFileSync } from 'node:fs';

/**
 * The TLS profiles (CRYPTREC GL-3001 high / recommended / exception) as data,
 * shipped in data/tls-profiles.json with the sources and how firm each item
 * is (copied beside the compiled module by scripts/postbuild.mjs). The gateway enforces them, the scanner judges with them.
 */
export type TlsProfileName = 'high' | 'recommended' | 'exception';

export interface TlsProfile {
  name_ja: string;
  protocols: string[];
  tls13_suites?: string[];
  tls12_suites?: string[];
  tls12_suites_head?: string[];
  key_exchange?: { ecdhe_min_bits: number; dhe_min_bits: number; groups: string[] };
  certificates?: { rsa_min_bits: number; ecdsa_min_bits: number; signature_hashes: string[]; sha1: string };
}

interface TlsProfilesFile {
  profiles: Record<TlsProfileName, TlsProfile>;
}

let cache: TlsProfilesFile | undefined;

export function tlsProfile(name: TlsProfileName): TlsProfile {
  cache ??= JSON.parse(readFileSync(new URL('./data/tls-profiles.json', import.meta.url), 'utf8')) as TlsProfilesFile;
  return cache.profiles[name];
}
