import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { certificateToPem } from '../pki/index.js';
import { ensurePrivateDir, writeFileAtomic } from '../files/index.js';
import type { CertificateAuthority } from './authority.js';

export interface ServerCredentialPaths {
  cert: string;
  key: string;
}

/** Where a home keeps the certificate its own HTTPS surfaces (gateway, portal) present. */
export function serverCredentialPaths(home: string): ServerCredentialPaths {
  const dir = join(home, 'server');
  return { cert: join(dir, 'server.pem'), key: join(dir, 'server.key.pem') };
}

/** True when the home holds a server credential that covers every host and is valid for at least `minDays` more. */
export function serverCredentialUsable(paths: ServerCredentialPaths, hosts: readonly string[], now: Date, minDays = 30): boolean {
  if (!existsSync(paths.cert) || !existsSync(paths.key)) return false;
  try {
    const cert = new X509Certificate(readFileSync(paths.cert));
    if (new Date(cert.validTo).getTime() - now.getTime() < minDays * 86_400_000) return false;
    return hosts.every((h) => (/^[\d.]+$|:/.test(h) ? cert.checkIP(h) : cert.checkHost(h)) !== undefined);
  } catch {
    return false;
  }
}

/**
 * Issues the home's server certificate (server profile, ECDSA P-256, the CA
 * chain appended) for the given host names and addresses, and writes it with
 * its key (0600). The CA must be unlocked. Used on a gateway's or portal's
 * first start, and again when the certificate nears its end or lacks a host.
 */
export async function issueServerCredential(ca: CertificateAuthority, hosts: readonly string[], actor: string): Promise<ServerCredentialPaths> {
  const paths = serverCredentialPaths(ca.paths.home);
  const issued = await ca.issueWithNewKey({ profile: 'server', hosts: [...hosts], keyType: 'ecdsa-p256', via: 'server-credential', actor });
  ensurePrivateDir(join(ca.paths.home, 'server'));
  writeFileAtomic(paths.key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  writeFileAtomic(paths.cert, [issued.der, ...ca.chain().slice(0, 1)].map(certificateToPem).join(''));
  return paths;
}
