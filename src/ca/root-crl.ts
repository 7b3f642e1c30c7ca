import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCrl, describeCertificate, keyIdentifier, type Signer } from '../pki/index.js';
import { writeFileAtomic } from '../files/index.js';
import type { AuditLog } from '../audit/index.js';
import type { HomePaths } from './home.js';

/**
 * The root's CRL: the CRL distribution point of the issuing CA certificate.
 * The root signs nothing else at run time, so this CRL lists nobody; it
 * exists so that a relying party that checks the whole chain (NSS with
 * `requireFreshInfo` on the chain, OpenSSL `-crl_check_all`) finds a fresh,
 * signed answer for the issuing CA. Kept as a file in the home; signed at
 * `init` and again whenever the root key is unlocked (the CA passphrase) and
 * half of its validity has passed.
 */
export const ROOT_CRL_VALIDITY_DAYS = 180;
const DAY = 86_400_000;

export function rootCrlPath(paths: HomePaths): string {
  return join(paths.caDir, 'root-crl.der');
}

/** The root's CRL as published, or undefined when the home has none yet. */
export function readRootCrl(paths: HomePaths): Buffer | undefined {
  try {
    return readFileSync(rootCrlPath(paths));
  } catch {
    return undefined;
  }
}

/** Whether the root CRL is missing or past half its validity (then the next unlock signs a new one). */
export function rootCrlDue(paths: HomePaths, now: Date): boolean {
  try {
    return now.getTime() - statSync(rootCrlPath(paths)).mtimeMs > (ROOT_CRL_VALIDITY_DAYS * DAY) / 2;
  } catch {
    return true;
  }
}

/** Signs an empty CRL with the root key and writes it into the home; the CRL number is the signing time in seconds (increasing, RFC 5280 §5.2.3). */
export async function signRootCrl(o: { paths: HomePaths; rootDer: Buffer; signer: Signer; audit: AuditLog; actor: string; now: Date }): Promise<Buffer> {
  const root = describeCertificate(o.rootDer);
  const thisUpdate = new Date(Math.floor(o.now.getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + ROOT_CRL_VALIDITY_DAYS * DAY);
  const crlNumber = BigInt(thisUpdate.getTime() / 1000);
  const der = await buildCrl({
    issuer: root.subjectDer,
    signer: o.signer,
    authorityKeyIdentifier: root.extensions.subjectKeyIdentifier ?? keyIdentifier(root.publicKey),
    crlNumber,
    thisUpdate,
    nextUpdate,
    entries: [],
  });
  writeFileAtomic(rootCrlPath(o.paths), der);
  await o.audit.append({ actor: o.actor, action: 'crl.signed', outcome: 'success', details: { issuer: 'root', number: crlNumber.toString(), entries: 0, nextUpdate: nextUpdate.toISOString() } });
  return der;
}
