/**
 * Where a token-held key lives, written down so a later process (the CA at
 * `sekisho cert issue`, the gateway at start-up) can find it again: a software
 * token file and the key's label, or a PKCS#11 module and an RFC 7512 URI.
 * Never a PIN: that comes from SEKISHO_PIN at use.
 */
import { readFileSync } from 'node:fs';
import { badRequest, malformed, notFound } from '../errors/index.js';
import { writeFileAtomic } from '../files/index.js';
import { openPkcs11Module } from './pkcs11-token.js';
import { TokenSigner } from './signer.js';
import { openSoftwareToken } from './software-token.js';
import type { TokenModule, TokenSession } from './token.js';
import { formatPkcs11Uri, parsePkcs11Uri, redactPkcs11Uri } from './uri.js';

export type TokenKeyRef = { kind: 'software'; file: string; label: string } | { kind: 'pkcs11'; module: string; uri: string };

const FORMAT = 'sekisho-token-key-ref';

/** Checks a reference and drops any PIN from its URI. */
export function normalizeTokenKeyRef(ref: TokenKeyRef): TokenKeyRef {
  if (ref.kind === 'software') {
    if (!ref.file || !ref.label) throw badRequest('TOKEN_KEY_REF_INVALID', 'a software-token key needs the token file and the key label');
    return { kind: 'software', file: ref.file, label: ref.label };
  }
  if (!ref.module) throw badRequest('TOKEN_KEY_REF_INVALID', 'a PKCS#11 key needs --module PATH');
  const u = parsePkcs11Uri(ref.uri);
  if (u.object === undefined && u.id === undefined) throw badRequest('TOKEN_KEY_REF_INVALID', 'the pkcs11: URI must name the key with object=LABEL or id=…');
  if (u.token === undefined && u.slotId === undefined && u.serial === undefined) throw badRequest('TOKEN_KEY_REF_INVALID', 'the pkcs11: URI must name the token with token=LABEL, serial=… or slot-id=N');
  return { kind: 'pkcs11', module: ref.module, uri: redactPkcs11Uri(u) };
}

export function describeTokenKeyRef(ref: TokenKeyRef): string {
  return ref.kind === 'software' ? `key "${ref.label}" in the software token ${ref.file}` : `${ref.uri} in ${ref.module}`;
}

export function writeTokenKeyRef(path: string, ref: TokenKeyRef): void {
  writeFileAtomic(path, JSON.stringify({ format: FORMAT, version: 1, ...normalizeTokenKeyRef(ref) }, null, 2) + '\n', 0o600);
}

export function readTokenKeyRef(path: string): TokenKeyRef {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('TOKEN_KEY_REF_MISSING', `${path} is missing`);
    throw malformed('TOKEN_KEY_REF_INVALID', `${path} is not a readable token key reference; restore it from backup`);
  }
  if (doc.format !== FORMAT || doc.version !== 1) throw malformed('TOKEN_KEY_REF_INVALID', `${path} is not a sekisho token key reference`);
  if (doc.kind === 'software' && typeof doc.file === 'string' && typeof doc.label === 'string') return normalizeTokenKeyRef({ kind: 'software', file: doc.file, label: doc.label });
  if (doc.kind === 'pkcs11' && typeof doc.module === 'string' && typeof doc.uri === 'string') return normalizeTokenKeyRef({ kind: 'pkcs11', module: doc.module, uri: doc.uri });
  throw malformed('TOKEN_KEY_REF_INVALID', `${path} names neither a software token key nor a PKCS#11 key`);
}

/** Opens the token a reference points at and a session on its slot (not yet logged in). */
export async function openTokenOfRef(ref: TokenKeyRef): Promise<{ module: TokenModule; session: TokenSession }> {
  if (ref.kind === 'software') {
    const module = openSoftwareToken(ref.file);
    return { module, session: await module.openSession(0) };
  }
  const u = parsePkcs11Uri(ref.uri);
  const module = openPkcs11Module(ref.module);
  try {
    const slot = await module.slotForUri(u);
    return { module, session: await module.openSession(slot) };
  } catch (e) {
    await module.close();
    throw e;
  }
}

export interface OpenedTokenKey {
  signer: TokenSigner;
  /** Logs out and closes the token. */
  close(): Promise<void>;
}

/** Logs in with the user PIN and returns a Signer over the referenced key. */
export async function openTokenSigner(ref: TokenKeyRef, pin: string): Promise<OpenedTokenKey> {
  const { module, session } = await openTokenOfRef(ref);
  try {
    await session.login('user', pin);
    let signer: TokenSigner;
    if (ref.kind === 'software') signer = await TokenSigner.find(session, { label: ref.label });
    else {
      const u = parsePkcs11Uri(ref.uri);
      signer = await TokenSigner.find(session, { ...(u.object !== undefined ? { label: u.object } : {}), ...(u.id ? { id: u.id } : {}) });
    }
    return { signer, close: () => module.close() };
  } catch (e) {
    await module.close();
    throw e;
  }
}

/** The pkcs11: URI of a key in a token (for pkcs11-tool, OpenSSL and TLS). */
export function keyUri(tokenLabel: string, keyLabel: string, type: 'private' | 'public' | 'cert' = 'private'): string {
  return formatPkcs11Uri({ token: tokenLabel, object: keyLabel, type });
}
