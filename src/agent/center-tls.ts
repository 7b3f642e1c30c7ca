/**
 * How the agent speaks TLS to the center: the center's own TLS profile
 * (policy/: versions, suites, groups, signature algorithms — the same data the
 * gateway serves with), trust in exactly one root — the one whose SHA-256
 * thumbprint the notice letter printed — and the center's host name.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { certificatesFromPem, certificateToPem } from '../pki/index.js';
import { complianceProfile, tlsServerOptions } from '../policy/index.js';
import { agentErrors } from './messages.js';
import type { AgentConfig } from './config.js';

/** The root certificate (PEM) from `file` whose SHA-256 over its DER is `thumbprint`; refused when none is. */
export function trustedRoot(file: string, thumbprint: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw agentErrors.rootMismatch(file);
  }
  let certs: Buffer[] = [];
  try {
    certs = text.includes('-----BEGIN') ? certificatesFromPem(text) : [readFileSync(file)];
  } catch {
    throw agentErrors.rootMismatch(file);
  }
  const root = certs.find((der) => createHash('sha256').update(der).digest('hex') === thumbprint);
  if (!root) throw agentErrors.rootMismatch(file);
  const x = new X509Certificate(root);
  if (!x.ca || !x.checkIssued(x)) throw agentErrors.rootMismatch(file);
  return certificateToPem(root);
}

/** Client-side settings drawn from the center's profile: what the gateway accepts, nothing weaker. */
export function centerTlsOptions(center: AgentConfig['center'], rootPem: string): ConnectionOptions {
  const p = tlsServerOptions(complianceProfile(center.profile));
  const name = center.serverName;
  return {
    minVersion: p.minVersion,
    maxVersion: p.maxVersion,
    ciphers: p.ciphers,
    ecdhCurve: p.ecdhCurve,
    sigalgs: p.sigalgs,
    ca: [rootPem],
    rejectUnauthorized: true,
    ...(isIP(name) ? {} : { servername: name }),
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert),
  };
}
