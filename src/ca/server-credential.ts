import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { certificateToPem } from '../pki/index.js';
import { ensurePrivateDir, writeFileAtomic } from '../files/index.js';
import type { CertificateAuthority } from './authority.js';

export interface ServerCredentialPaths {
  /** ECDSA P-256 (what TLS 1.3 clients and ECDSA suites get). */
  cert: string;
  key: string;
  /** RSA 2048 beside it, for peers that offer only RSA-authenticated suites (IHE ITI-19 BCP195: ECDHE_RSA/DHE_RSA with AES-GCM). */
  rsaCert: string;
  rsaKey: string;
}

/** Where a home keeps the certificates its own HTTPS surfaces (gateway, portal) present. */
export function serverCredentialPaths(home: string): ServerCredentialPaths {
  const dir = join(home, 'server');
  return { cert: join(dir, 'server.pem'), key: join(dir, 'server.key.pem'), rsaCert: join(dir, 'server-rsa.pem'), rsaKey: join(dir, 'server-rsa.key.pem') };
}

function usable(cert: string, key: string, hosts: readonly string[], now: Date, minDays: number): boolean {
  if (!existsSync(cert) || !existsSync(key)) return false;
  try {
    const c = new X509Certificate(readFileSync(cert));
    if (new Date(c.validTo).getTime() - now.getTime() < minDays * 86_400_000) return false;
    return hosts.every((h) => (/^[\d.]+$|:/.test(h) ? c.checkIP(h) : c.checkHost(h)) !== undefined);
  } catch {
    return false;
  }
}

/** True when the home holds both server credentials (ECDSA and RSA), each covering every host and valid for at least `minDays` more. */
export function serverCredentialUsable(paths: ServerCredentialPaths, hosts: readonly string[], now: Date, minDays = 30): boolean {
  return usable(paths.cert, paths.key, hosts, now, minDays) && usable(paths.rsaCert, paths.rsaKey, hosts, now, minDays);
}

/**
 * Issues the home's server certificates (server profile, one ECDSA P-256 and
 * one RSA 2048, the CA chain appended) for the given host names and
 * addresses, and writes each with its key (0600). The gateway presents both
 * at once: OpenSSL picks the one the peer's suites and signature algorithms
 * can use. The CA must be unlocked. Used on a gateway's or portal's first
 * start, and again when a certificate nears its end or lacks a host.
 */
export async function issueServerCredential(ca: CertificateAuthority, hosts: readonly string[], actor: string): Promise<ServerCredentialPaths> {
  const paths = serverCredentialPaths(ca.paths.home);
  ensurePrivateDir(join(ca.paths.home, 'server'));
  for (const [keyType, cert, key] of [['ecdsa-p256', paths.cert, paths.key], ['rsa-2048', paths.rsaCert, paths.rsaKey]] as const) {
    const issued = await ca.issueWithNewKey({ profile: 'server', hosts: [...hosts], keyType, via: 'server-credential', actor });
    writeFileAtomic(key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
    writeFileAtomic(cert, [issued.der, ...ca.chain().slice(0, 1)].map(certificateToPem).join(''));
  }
  return paths;
}
